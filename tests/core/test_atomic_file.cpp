// Atomic writes: the new content lands, an abandoned write leaves the old content and no
// temporary litter, and bad destinations raise sllm::Error.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "core/atomic_file.h"
#include "core/error.h"

namespace fs = std::filesystem;
using sllm::AtomicDirectory;
using sllm::AtomicFileWriter;

namespace {

// A fresh, empty directory per test, removed afterwards.
class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("sllm_atomic_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // The names directly inside the test directory: how we detect temp litter.
  std::set<std::string> listing() const {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.insert(e.path().filename().string());
    return names;
  }

  static std::string slurp(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static void put(const std::string& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary) << bytes;
  }

  fs::path dir_;
};

TEST_F(AtomicFileTest, WriteFileAtomicCreatesAndReplaces) {
  sllm::write_file_atomic(path("a.txt"), "first");
  EXPECT_EQ(slurp(path("a.txt")), "first");
  sllm::write_file_atomic(path("a.txt"), std::string("second\0binary", 13));
  EXPECT_EQ(slurp(path("a.txt")), std::string("second\0binary", 13));
  EXPECT_EQ(listing(), std::set<std::string>{"a.txt"});
}

TEST_F(AtomicFileTest, EmptyContentIsAValidFile) {
  sllm::write_file_atomic(path("empty"), "");
  EXPECT_TRUE(fs::exists(path("empty")));
  EXPECT_EQ(fs::file_size(path("empty")), 0u);
}

TEST_F(AtomicFileTest, StreamingWriterWritesPiecesInOrder) {
  {
    AtomicFileWriter out(path("big.bin"));
    std::string chunk(100000, 'x');
    for (char c : std::string("abc")) {
      chunk[0] = c;
      out.write(chunk.data(), chunk.size());
    }
    EXPECT_FALSE(fs::exists(path("big.bin")));  // nothing visible before commit
    out.commit();
  }
  std::string got = slurp(path("big.bin"));
  ASSERT_EQ(got.size(), 300000u);
  EXPECT_EQ(got[0], 'a');
  EXPECT_EQ(got[100000], 'b');
  EXPECT_EQ(got[200000], 'c');
  EXPECT_EQ(listing(), std::set<std::string>{"big.bin"});
}

TEST_F(AtomicFileTest, AbandonedWriterLeavesOldFileAndNoTemp) {
  put(path("model.bin"), "old content");
  {
    AtomicFileWriter out(path("model.bin"));
    out.write("new and partial", 15);
    EXPECT_TRUE(fs::exists(out.temp_path()));
    // destroyed without commit(): as if an exception unwound past the writer
  }
  EXPECT_EQ(slurp(path("model.bin")), "old content");
  EXPECT_EQ(listing(), std::set<std::string>{"model.bin"});
}

TEST_F(AtomicFileTest, ExceptionDuringWriteLeavesOldFile) {
  put(path("ckpt.bin"), "good");
  try {
    AtomicFileWriter out(path("ckpt.bin"));
    out.write("half", 4);
    throw std::runtime_error("simulated crash of the producer");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(slurp(path("ckpt.bin")), "good");
  EXPECT_EQ(listing(), std::set<std::string>{"ckpt.bin"});
}

TEST_F(AtomicFileTest, MissingDirectoryIsAnError) {
  std::string target = path("no/such/dir/file.txt");
  try {
    sllm::write_file_atomic(target, "x");
    FAIL() << "expected sllm::Error";
  } catch (const sllm::Error& e) {
    EXPECT_NE(std::string(e.what()).find(target), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("does not exist"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(listing().empty());
}

TEST_F(AtomicFileTest, CommitOntoADirectoryFailsCleanly) {
  fs::create_directories(path("taken/inside"));
  AtomicFileWriter out(path("taken"));
  out.write("x", 1);
  EXPECT_THROW(out.commit(), sllm::Error);
  EXPECT_TRUE(fs::is_directory(path("taken/inside")));
  EXPECT_EQ(listing(), std::set<std::string>{"taken"});
}

TEST_F(AtomicFileTest, ReadFileRoundTripsBytes) {
  std::string bytes;
  for (int i = 0; i < 70000; ++i) bytes.push_back(static_cast<char>(i * 7));
  put(path("r.bin"), bytes);
  EXPECT_EQ(sllm::read_file(path("r.bin")), bytes);
}

TEST_F(AtomicFileTest, ReadFileErrorsNameThePath) {
  try {
    sllm::read_file(path("missing.json"));
    FAIL() << "expected sllm::Error";
  } catch (const sllm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.json"), std::string::npos);
    EXPECT_FALSE(e.hint().empty());
  }
  EXPECT_THROW(sllm::read_file(dir_.string()), sllm::Error);  // a directory is not a file
}

// ---- AtomicDirectory ----

TEST_F(AtomicFileTest, DirectoryCommitCreatesFinalDir) {
  {
    AtomicDirectory ckpt(path("ckpt-100"));
    EXPECT_FALSE(fs::exists(path("ckpt-100")));
    sllm::write_file_atomic(ckpt.temp_path() + "/model.safetensors", "weights");
    fs::create_directories(ckpt.temp_path() + "/optimizer");
    sllm::write_file_atomic(ckpt.temp_path() + "/optimizer/state.bin", "moments");
    ckpt.commit();
  }
  EXPECT_EQ(slurp(path("ckpt-100/model.safetensors")), "weights");
  EXPECT_EQ(slurp(path("ckpt-100/optimizer/state.bin")), "moments");
  EXPECT_EQ(listing(), std::set<std::string>{"ckpt-100"});
}

TEST_F(AtomicFileTest, DirectoryCommitReplacesExistingDir) {
  fs::create_directories(path("ckpt-5"));
  put(path("ckpt-5/model.bin"), "old");
  put(path("ckpt-5/only_in_old.txt"), "stale");
  {
    AtomicDirectory ckpt(path("ckpt-5"));
    put(ckpt.temp_path() + "/model.bin", "new");
    ckpt.commit();
  }
  EXPECT_EQ(slurp(path("ckpt-5/model.bin")), "new");
  EXPECT_FALSE(fs::exists(path("ckpt-5/only_in_old.txt")));  // replaced, not merged
  EXPECT_EQ(listing(), std::set<std::string>{"ckpt-5"});      // old copy removed
}

TEST_F(AtomicFileTest, AbandonedDirectoryLeavesOldDirAndNoTemp) {
  fs::create_directories(path("ckpt-7"));
  put(path("ckpt-7/model.bin"), "old");
  {
    AtomicDirectory ckpt(path("ckpt-7"));
    put(ckpt.temp_path() + "/model.bin", "half-written");
    fs::create_directories(ckpt.temp_path() + "/nested/deeper");
    put(ckpt.temp_path() + "/nested/deeper/x", "y");
  }
  EXPECT_EQ(slurp(path("ckpt-7/model.bin")), "old");
  EXPECT_EQ(listing(), std::set<std::string>{"ckpt-7"});
}

TEST_F(AtomicFileTest, DirectoryInMissingParentIsAnError) {
  EXPECT_THROW(AtomicDirectory(path("missing/ckpt-1")), sllm::Error);
  EXPECT_TRUE(listing().empty());
}

TEST_F(AtomicFileTest, DirectoryCannotReplaceAFile) {
  put(path("ckpt-9"), "a file, not a directory");
  {
    AtomicDirectory ckpt(path("ckpt-9"));
    EXPECT_THROW(ckpt.commit(), sllm::Error);
  }
  EXPECT_EQ(slurp(path("ckpt-9")), "a file, not a directory");
  EXPECT_EQ(listing(), std::set<std::string>{"ckpt-9"});
}

}  // namespace

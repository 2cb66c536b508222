// resolve_model_dir: model directories, run directories (latest), and bad paths.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "infer/model_path.h"
#include "tests/infer/infer_test_support.h"

namespace sllm::infer {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

void touch(const fs::path& p, const std::string& text = "{}") {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

TEST(ModelPath, ModelDirectoryIsItself) {
  TempDir tmp;
  touch(tmp.path / "config.json");
  EXPECT_EQ(resolve_model_dir(tmp.str()), tmp.str());
}

TEST(ModelPath, RunDirectoryFollowsLatest) {
  TempDir tmp;
  touch(tmp.path / "ckpt-100" / "config.json");
  touch(tmp.path / "ckpt-200" / "config.json");
  touch(tmp.path / "latest", "ckpt-200\n");
  EXPECT_EQ(fs::path(resolve_model_dir(tmp.str())), tmp.path / "ckpt-200");
  touch(tmp.path / "latest", "ckpt-100");  // no trailing newline
  EXPECT_EQ(fs::path(resolve_model_dir(tmp.str())), tmp.path / "ckpt-100");
}

TEST(ModelPath, BadPathsRaiseErrorsWithHints) {
  TempDir tmp;
  auto expect_error = [](const std::string& path, const std::string& fragment) {
    try {
      resolve_model_dir(path);
      ADD_FAILURE() << path << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
      EXPECT_FALSE(e.hint().empty());
    }
  };
  expect_error((tmp.path / "missing").string(), "is not a directory");
  expect_error(tmp.str(), "neither config.json nor a 'latest' file");
  touch(tmp.path / "latest", "ckpt-300\n");
  expect_error(tmp.str(), "holds no config.json");
  touch(tmp.path / "latest", "\n");
  expect_error(tmp.str(), "is empty");
  touch(tmp.path / "file.txt");
  expect_error((tmp.path / "file.txt").string(), "is not a directory");
  expect_error("", "empty");
}

}  // namespace
}  // namespace sllm::infer

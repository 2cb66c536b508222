// Atomic file and directory writes (DESIGN.md: "a crash never leaves a half-written
// checkpoint in place of a good one").
//
// The recipe is the classic POSIX one: write everything to a temporary name in the same
// directory, fsync it, rename(2) it over the final name, then fsync the directory so the
// rename itself is durable. rename(2) within one file system is atomic: an observer (or a
// reboot after a crash) sees either the old file or the new one, never a mix.
// See rename(2) and fsync(2) in the Linux man pages, and "Ensuring data reaches disk"
// (LWN, 2011) for why the directory fsync is needed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sllm {

// Writes `bytes` to `path` atomically: the old content (if any) stays until the new one is
// complete and on disk. Throws sllm::Error naming the path on any failure and leaves no
// temporary file behind.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Reads a whole file into memory. Missing or unreadable files raise sllm::Error with a hint.
std::string read_file(const std::string& path);

// A command's --out for a new model directory: absent or an empty directory; otherwise a
// sllm::Error naming `command` ("sllm merge"), so a model is never overwritten.
void check_new_output_dir(const std::string& dir, const std::string& command);

// Streaming variant of write_file_atomic for big files (weights, checkpoints):
//   AtomicFileWriter out(path);  out.write(p, n); ...;  out.commit();
// Until commit() returns, `path` is untouched. If the writer is destroyed without commit()
// (an exception unwound past it, or the caller gave up) the temporary file is removed.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t nbytes);
  // fsync the temp file, rename it over the final path, fsync the directory.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  [[noreturn]] void fail_and_clean(const std::string& what, int err, const std::string& hint);
  std::string path_, temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// A directory that appears complete or not at all, for checkpoints `RUN/ckpt-<step>/`:
//   AtomicDirectory dir(run + "/ckpt-100");
//   write files into dir.temp_path() ...;
//   dir.commit();
// Files are written into `final_dir + ".tmp.<pid>.<n>"`; commit() fsyncs every file and
// directory inside it and then puts it in place of final_dir (replacing an existing one
// safely, see commit() in atomic_file.cpp for the crash-safety argument). Destroyed without
// commit(), the temporary directory is removed recursively and final_dir is untouched.
class AtomicDirectory {
 public:
  explicit AtomicDirectory(const std::string& final_dir);
  ~AtomicDirectory();
  AtomicDirectory(const AtomicDirectory&) = delete;
  AtomicDirectory& operator=(const AtomicDirectory&) = delete;

  const std::string& temp_path() const { return temp_path_; }
  const std::string& final_path() const { return final_path_; }
  void commit();

 private:
  std::string final_path_, temp_path_;
  bool committed_ = false;
};

}  // namespace sllm

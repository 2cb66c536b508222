// Atomic writes: temp file + fsync + rename + directory fsync. See atomic_file.h.
#include "core/atomic_file.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_EXCHANGE (glibc >= 2.28)
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <system_error>

#include "core/error.h"

namespace sllm {
namespace fs = std::filesystem;

namespace {

std::string errno_text(int err) { return std::system_category().message(err); }

// "<path>.tmp.<pid>.<n>": the pid keeps concurrent processes apart, the counter keeps
// concurrent writers inside one process apart.
std::string unique_sibling(const std::string& path, const char* tag) {
  static std::atomic<uint64_t> counter{0};
  return str(path, tag, ::getpid(), ".", counter.fetch_add(1));
}

std::string parent_dir(const std::string& path) {
  std::string parent = fs::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

// The hint for a failed open/create: the usual culprits, by errno.
std::string create_hint(int err, const std::string& path) {
  if (err == ENOENT) return str("the directory '", parent_dir(path), "' does not exist; create it first");
  if (err == EACCES || err == EPERM || err == EROFS)
    return str("check that '", parent_dir(path), "' is writable by this user");
  if (err == ENOSPC || err == EDQUOT) return "the disk is full: free some space and retry";
  return "check the path and the free disk space";
}

// fsync(2) on a directory makes the entries created or renamed in it durable; without it a
// crash right after rename() may forget the rename even though the file data was synced.
int fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return errno;
  int rc = ::fsync(fd);
  int err = rc == 0 ? 0 : errno;
  ::close(fd);
  return err;
}

void fsync_dir_or_throw(const std::string& dir, const std::string& what_for) {
  int err = fsync_path(dir, /*directory=*/true);
  SLLM_CHECK(err == 0, str("cannot fsync directory '", dir, "' after writing '", what_for, "': ", errno_text(err)),
             "the new content is in place but may not survive a power loss; check the file system");
}

// Every regular file and directory under `root` (root included) reaches the disk. Children
// are synced before their directory, so a synced directory never lists unsynced files.
void fsync_tree(const std::string& root) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    fs::file_status st = it->symlink_status(ec);
    if (ec) break;
    if (st.type() != fs::file_type::regular && st.type() != fs::file_type::directory) continue;
    int err = fsync_path(it->path().string(), st.type() == fs::file_type::directory);
    SLLM_CHECK(err == 0, str("cannot fsync '", it->path().string(), "': ", errno_text(err)),
               "check the free disk space and the file system");
  }
  SLLM_CHECK(!ec, str("cannot list '", root, "' to fsync it: ", ec.message()),
             "was the directory removed while it was being written?");
  fsync_dir_or_throw(root, root);
}

}  // namespace

// ---- AtomicFileWriter ---------------------------------------------------------------------

AtomicFileWriter::AtomicFileWriter(const std::string& path)
    : path_(path), temp_path_(unique_sibling(path, ".tmp.")) {
  // O_EXCL: never clobber a file we did not create (e.g. a stale temp of another process).
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    int err = errno;
    fail(str("cannot write '", path_, "': creating the temporary file '", temp_path_, "' failed: ", errno_text(err)),
         create_hint(err, path_));
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (committed_) return;
  if (fd_ >= 0) ::close(fd_);
  ::unlink(temp_path_.c_str());
}

void AtomicFileWriter::fail_and_clean(const std::string& what, int err, const std::string& hint) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(temp_path_.c_str());
  committed_ = true;  // nothing left for the destructor to clean
  fail(str("cannot write '", path_, "': ", what, ": ", errno_text(err)), hint);
}

void AtomicFileWriter::write(const void* data, size_t nbytes) {
  SLLM_ASSERT(fd_ >= 0 && !committed_);
  const char* p = static_cast<const char*>(data);
  while (nbytes > 0) {
    ssize_t n = ::write(fd_, p, nbytes);  // may write less than asked: loop
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      fail_and_clean(str("write to '", temp_path_, "' failed"), err, create_hint(err, path_));
    }
    p += n;
    nbytes -= static_cast<size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  SLLM_ASSERT(fd_ >= 0 && !committed_);
  // 1. The data must be on disk before the rename publishes it; otherwise a crash could
  //    leave the new name pointing at an empty or partial file (the ext4 "zero-length
  //    file" problem).
  if (::fsync(fd_) != 0) {
    int err = errno;
    fail_and_clean(str("fsync of '", temp_path_, "' failed"), err, create_hint(err, path_));
  }
  int rc = ::close(fd_);  // close can report deferred write errors (NFS, quotas)
  fd_ = -1;
  if (rc != 0) {
    int err = errno;
    fail_and_clean(str("closing '", temp_path_, "' failed"), err, create_hint(err, path_));
  }
  // 2. rename(2) replaces path_ atomically: readers see the old or the new file, never a mix.
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    fail_and_clean(str("renaming '", temp_path_, "' into place failed"), err,
                   err == EISDIR ? "the destination is a directory; choose a file name" : create_hint(err, path_));
  }
  committed_ = true;
  // 3. Make the rename itself durable.
  fsync_dir_or_throw(parent_dir(path_), path_);
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicFileWriter out(path);
  out.write(bytes.data(), bytes.size());
  out.commit();
}

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string hint = err == ENOENT ? str("check the path (relative paths start at '", fs::current_path().string(), "')")
                                     : "check the file's permissions";
    fail(str("cannot read '", path, "': ", errno_text(err)), hint);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(str("cannot read '", path, "': not a regular file"), "pass the path of a file, not a directory");
  }
  std::string bytes;
  bytes.reserve(static_cast<size_t>(st.st_size));
  char buffer[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      fail(str("cannot read '", path, "': ", errno_text(err)), "check the disk and the file system");
    }
    if (n == 0) break;
    bytes.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return bytes;
}

// ---- AtomicDirectory ----------------------------------------------------------------------

AtomicDirectory::AtomicDirectory(const std::string& final_dir)
    : final_path_(final_dir), temp_path_(unique_sibling(final_dir, ".tmp.")) {
  if (::mkdir(temp_path_.c_str(), 0755) != 0) {
    int err = errno;
    fail(str("cannot create directory '", final_path_, "': creating '", temp_path_, "' failed: ", errno_text(err)),
         create_hint(err, final_path_));
  }
}

AtomicDirectory::~AtomicDirectory() {
  if (committed_) return;
  std::error_code ec;  // a destructor must not throw; a leftover temp dir is only litter
  fs::remove_all(temp_path_, ec);
}

// Crash-safety argument. Let F = final_path_, T = temp_path_ (complete and fsynced in step 1).
//
// F absent:  rename(T, F) is atomic. Before it, F does not exist and T is complete; after
//            it, F is complete. A crash never exposes a partial F.
// F present: renameat2(T, F, RENAME_EXCHANGE) swaps the two names in one atomic step (Linux
//            >= 3.15, see rename(2)). Before it F is the old complete directory, after it F
//            is the new complete one and T holds the old, which we then delete. At every
//            instant F names a complete directory.
//            File systems without RENAME_EXCHANGE get a three-step fallback:
//              rename(F, A) ; rename(T, F) ; remove A      (A = F + ".old.<pid>.<n>")
//            A crash between the two renames leaves no F, but the old complete directory at
//            A and the new complete one at T; no state ever holds a partial directory under
//            any of the names F, A or T that a loader could mistake for complete.
// The parent directory is fsynced after the rename so the new name survives power loss.
void AtomicDirectory::commit() {
  SLLM_ASSERT(!committed_);
  fsync_tree(temp_path_);  // step 1: every byte of the new directory is on disk
  const std::string parent = parent_dir(final_path_);

  std::error_code ec;
  fs::file_status st = fs::symlink_status(final_path_, ec);
  if (!fs::exists(st)) {
    if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
      int err = errno;
      fail(str("cannot move '", temp_path_, "' to '", final_path_, "': ", errno_text(err)),
           create_hint(err, final_path_));
    }
    committed_ = true;
    fsync_dir_or_throw(parent, final_path_);
    return;
  }
  SLLM_CHECK(fs::is_directory(st), str("cannot replace '", final_path_, "': it exists and is not a directory"),
             "remove or rename that file, or choose another output directory");

  std::string old_copy;  // where the previous content of final_path_ ends up
  if (::renameat2(AT_FDCWD, temp_path_.c_str(), AT_FDCWD, final_path_.c_str(), RENAME_EXCHANGE) == 0) {
    old_copy = temp_path_;
  } else {
    int err = errno;
    SLLM_CHECK(err == EINVAL || err == ENOSYS || err == ENOTSUP,
               str("cannot replace '", final_path_, "' with '", temp_path_, "': ", errno_text(err)),
               create_hint(err, final_path_));
    old_copy = unique_sibling(final_path_, ".old.");
    if (::rename(final_path_.c_str(), old_copy.c_str()) != 0) {
      err = errno;
      fail(str("cannot move the old '", final_path_, "' aside: ", errno_text(err)), create_hint(err, final_path_));
    }
    if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
      err = errno;
      ::rename(old_copy.c_str(), final_path_.c_str());  // best effort: put the old one back
      fail(str("cannot move '", temp_path_, "' to '", final_path_, "': ", errno_text(err)),
           create_hint(err, final_path_));
    }
  }
  committed_ = true;
  fsync_dir_or_throw(parent, final_path_);
  fs::remove_all(old_copy, ec);  // the old directory is garbage now; failing to delete it is harmless
}

void check_new_output_dir(const std::string& dir, const std::string& command) {
  std::error_code ec;
  const bool exists = fs::exists(fs::symlink_status(dir, ec));
  SLLM_CHECK(!exists || (fs::is_directory(dir, ec) && fs::is_empty(dir, ec)),
             str(command, ": --out '", dir, "' already exists and is not an empty directory"),
             str("choose a new --out directory (", command, " never overwrites a model), or remove the old one first"));
}

}  // namespace sllm

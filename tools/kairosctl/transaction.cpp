#include "tools/kairosctl/transaction.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace kairos::ctl {

namespace fs = std::filesystem;

namespace {

std::runtime_error os_error(const std::string& what, const fs::path& p) {
  return std::runtime_error(what + " " + p.string() + ": " + std::strerror(errno));
}

// A name beside path that does not exist yet.
fs::path beside(const fs::path& path, const char* tag) {
  for (int i = 0;; ++i) {
    fs::path p = path;
    p += std::string(".kairos-") + tag + (i ? std::to_string(i) : "");
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(p, ec))) return p;
  }
}

void sync_file(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

Transaction::~Transaction() {
  if (!done_) rollback();
}

void Transaction::step() {
  ++steps_;
  if (const char* fail = std::getenv("KAIROS_PROVISION_FAIL_AFTER"))
    if (steps_ > std::atol(fail)) throw std::runtime_error("injected failure after " + std::string(fail) + " changes");
}

void Transaction::make_dirs(const fs::path& dir, unsigned mode) {
  std::error_code ec;
  auto st = fs::status(dir, ec);  // follows symlinks: a link to a directory is a directory
  if (fs::is_directory(st)) return;
  if (fs::exists(fs::symlink_status(dir, ec))) throw std::runtime_error(dir.string() + " exists and is not a directory");
  if (dir.has_parent_path() && dir.parent_path() != dir) make_dirs(dir.parent_path(), mode);
  step();
  if (::mkdir(dir.c_str(), mode) != 0) throw os_error("cannot create directory", dir);
  ::chmod(dir.c_str(), mode);
  undo_.push_back({Kind::made_dir, dir, {}});
  touched_.push_back(dir);
}

void Transaction::place(const fs::path& path, const fs::path& staged, unsigned mode) {
  std::error_code ec;
  auto old = fs::symlink_status(path, ec);
  if (fs::is_symlink(old)) throw std::runtime_error("will not replace the symlink " + path.string());
  if (fs::exists(old) && !fs::is_regular_file(old))
    throw std::runtime_error("will not replace " + path.string() + ": it is not a regular file");
  ::chmod(staged.c_str(), mode);
  sync_file(staged);
  step();
  if (fs::exists(old)) {
    // The old file stays reachable under a backup name until commit.
    fs::path backup = beside(path, "old");
    if (::link(path.c_str(), backup.c_str()) != 0) throw os_error("cannot keep a backup of", path);
    if (::rename(staged.c_str(), path.c_str()) != 0) {
      ::unlink(backup.c_str());
      throw os_error("cannot replace", path);
    }
    undo_.push_back({Kind::replaced, path, backup});
  } else {
    if (::rename(staged.c_str(), path.c_str()) != 0) throw os_error("cannot write", path);
    undo_.push_back({Kind::created, path, {}});
  }
  touched_.push_back(path);
}

void Transaction::write(const fs::path& path, const std::string& text, unsigned mode) {
  make_dirs(path.parent_path());
  fs::path tmp = beside(path, "new");
  {
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw os_error("cannot write", tmp);
    std::size_t off = 0;
    while (off < text.size()) {
      ssize_t n = ::write(fd, text.data() + off, text.size() - off);
      if (n <= 0) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw os_error("cannot write", tmp);
      }
      off += static_cast<std::size_t>(n);
    }
    ::close(fd);
  }
  try {
    place(path, tmp, mode);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

void Transaction::copy(const fs::path& from, const fs::path& path, unsigned mode) {
  make_dirs(path.parent_path());
  fs::path tmp = beside(path, "new");
  std::error_code ec;
  if (!fs::copy_file(from, tmp, ec)) throw std::runtime_error("cannot copy " + from.string() + " to " + tmp.string() + ": " + ec.message());
  try {
    place(path, tmp, mode);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

void Transaction::symlink(const fs::path& path, const std::string& target) {
  std::error_code ec;
  auto old = fs::symlink_status(path, ec);
  if (fs::is_symlink(old) && fs::read_symlink(path, ec) == target) return;
  if (fs::exists(old)) throw std::runtime_error("will not replace " + path.string() + " with a symlink to " + target);
  make_dirs(path.parent_path());
  step();
  if (::symlink(target.c_str(), path.c_str()) != 0) throw os_error("cannot create the symlink", path);
  undo_.push_back({Kind::linked, path, {}});
  touched_.push_back(path);
}

void Transaction::commit() {
  for (const auto& u : undo_)
    if (u.kind == Kind::replaced) ::unlink(u.backup.c_str());
  ::sync();
  undo_.clear();
  done_ = true;
}

void Transaction::rollback() {
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
    switch (it->kind) {
      case Kind::made_dir: ::rmdir(it->path.c_str()); break;
      case Kind::created:
      case Kind::linked: ::unlink(it->path.c_str()); break;
      case Kind::replaced: ::rename(it->backup.c_str(), it->path.c_str()); break;
    }
  }
  undo_.clear();
  touched_.clear();
  done_ = true;
}

}  // namespace kairos::ctl

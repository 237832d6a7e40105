#include "common/io/rotated_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>


namespace kairos {

namespace {

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string failed(const std::string& what, const std::string& path) {
  return path + ": " + what + " failed: " + std::strerror(errno);
}

// mkdir -p with mode 0700 for what it makes.
void make_dirs(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) return;
  if (dir != "/" && dir != ".") make_dirs(dir_of(dir));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) throw std::runtime_error(failed("mkdir", dir));
}

void sync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(failed("open", dir));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw std::runtime_error(failed("fsync", dir));
}

}  // namespace

std::optional<RotatedKey> load_rotated_key(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::nullopt;
    throw std::runtime_error(failed("stat", path));
  }
  // As for every key file: group read at most.
  if ((st.st_mode & (S_IWGRP | S_IXGRP | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", st.st_mode & 0777);
    throw std::runtime_error(path + ": key file has mode " + mode +
                             " and may be read or changed by others; run: chmod 600 " + path);
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(failed("open", path));
  std::string text;
  char buf[512];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < 4096;)
    text.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  std::string why;
  auto k = parse_rotated_key(text, why);
  if (!k) throw std::runtime_error(path + ": not a rotated key file (" + why + ")");
  return k;
}

void save_rotated_key(const std::string& path, const RotatedKey& k) {
  const std::string dir = dir_of(path);
  make_dirs(dir);
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error(failed("create", tmp));
  ::fchmod(fd, 0600);  // an older temporary file keeps its mode through O_TRUNC
  const std::string text = format_rotated_key(k);
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n <= 0) {
      std::string why = failed("write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      throw std::runtime_error(why);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    std::string why = failed("fsync", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    throw std::runtime_error(why);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = failed("rename", path);
    ::unlink(tmp.c_str());
    throw std::runtime_error(why);
  }
  sync_dir(dir);
}

void remove_rotated_key(const std::string& path) {
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return;
    throw std::runtime_error(failed("unlink", path));
  }
  sync_dir(dir_of(path));
}

}  // namespace kairos

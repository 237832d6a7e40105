#include "firmware/drivers/pipe.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

namespace kairos::node {

namespace {

bool parse_double(std::string_view s, double& out) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  // nan or inf would poison every scale of the KAIROS loop for good.
  return ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(out);
}

}  // namespace

void LineBuffer::feed(const char* data, std::size_t n, std::vector<std::string>& out) {
  for (std::size_t i = 0; i < n; ++i) {
    char c = data[i];
    if (c == '\n') {
      if (!skipping_) out.push_back(std::move(partial_));
      partial_.clear();
      skipping_ = false;
      continue;
    }
    if (skipping_) continue;
    if (partial_.size() >= max_line_) {
      partial_.clear();
      skipping_ = true;
      ++overlong_;
      continue;
    }
    partial_.push_back(c);
  }
}

PipeInput::PipeInput(PipeConfig config) : config_(std::move(config)) {}

PipeInput::~PipeInput() {
  if (fd_ >= 0) ::close(fd_);
}

void PipeInput::feed(std::string_view text) {
  lines_.feed(text.data(), text.size(), ready_);
  if (!text.empty() && text.back() != '\n') lines_.feed("\n", 1, ready_);
}

bool PipeInput::setup() {
  if (from_topic()) return true;
  if (fd_ >= 0) return true;
  struct stat st {};
  if (::stat(config_.path.c_str(), &st) != 0) {
    // Create the FIFO when nothing is there yet.
    if (::mkfifo(config_.path.c_str(), 0660) != 0 && errno != EEXIST) return false;
  } else if (!S_ISFIFO(st.st_mode)) {
    return false;
  }
  fd_ = ::open(config_.path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  return fd_ >= 0;
}

ReadResult PipeInput::read(std::int64_t) {
  if (!from_topic() && fd_ < 0 && !setup()) return ReadResult::failure(config_.path + ": cannot open the FIFO");
  char buf[4096];
  for (int rounds = 0; !from_topic() && rounds < 16; ++rounds) {  // bounded: a fast writer cannot hold the loop
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n > 0) {
      lines_.feed(buf, static_cast<std::size_t>(n), ready_);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
    if (n == 0) break;
    ::close(fd_);
    fd_ = -1;
    return ReadResult::failure(config_.path + ": read failed: " + std::strerror(errno));
  }
  // Newest valid line wins; the others are coalesced into it.
  ReadResult result = ReadResult::nothing();
  std::size_t used = 0;
  for (auto it = ready_.rbegin(); it != ready_.rend(); ++it) {
    if (it->empty()) continue;
    auto r = parse(*it);
    if (r.status == ReadResult::Status::sample) {
      result = r;
      used = 1;
      break;
    }
    ++malformed_;
  }
  if (used && ready_.size() > 1) coalesced_ += ready_.size() - 1;
  ready_.clear();
  return result;
}

ReadResult PipeInput::parse(const std::string& line) {
  if (!config_.llm) {
    // "value" or "value confidence"
    auto space = line.find_first_of(" \t");
    double x = 0, conf = 1;
    if (!parse_double(std::string_view(line).substr(0, space), x)) return ReadResult::failure("not a number");
    if (space != std::string::npos && !parse_double(std::string_view(line).substr(space + 1), conf))
      return ReadResult::failure("bad confidence");
    return ReadResult::of(x, std::clamp(1.0 - conf, 0.0, 1.0));
  }
  // llm: "token confidence"; a = the token's position among the distinct
  // tokens of the recent window (so a repeating output repeats in a), b = 1 - confidence.
  auto space = line.find_last_of(" \t");
  if (space == std::string::npos || space == 0) return ReadResult::failure("expected 'token confidence'");
  double conf = 0;
  if (!parse_double(std::string_view(line).substr(space + 1), conf) || conf < 0 || conf > 1)
    return ReadResult::failure("confidence must be 0..1");
  std::string token = line.substr(0, space);
  auto it = std::find(recent_.begin(), recent_.end(), token);
  if (it == recent_.end()) {
    if (recent_.size() >= config_.window) recent_.erase(recent_.begin());
    recent_.push_back(token);
    it = recent_.end() - 1;
  }
  double pos = config_.window > 1 ? static_cast<double>(it - recent_.begin()) / static_cast<double>(config_.window - 1) : 0.0;
  return ReadResult::of(pos, 1.0 - conf);
}

std::string PipeInput::dump_config() const {
  return std::string(config_.llm ? "llm" : "pipe") + (from_topic() ? " from MQTT topic " + config_.topic : " from FIFO " + config_.path);
}

}  // namespace kairos::node

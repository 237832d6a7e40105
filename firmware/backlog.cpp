#include "firmware/backlog.h"

#include <fstream>
#include <iterator>

#include "common/io/files.h"

namespace kairos::node {

namespace {

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

std::string record(const QueuedFrame& f) {
  std::string r;
  r.push_back(static_cast<char>(f.kind));
  put_u32(r, static_cast<std::uint32_t>(f.topic.size()));
  r += f.topic;
  put_u32(r, static_cast<std::uint32_t>(f.envelope.size()));
  r.append(f.envelope.begin(), f.envelope.end());
  return r;
}

}  // namespace

Backlog::Backlog(std::size_t capacity, std::string file) : capacity_(capacity), file_(std::move(file)) {}

bool Backlog::thin_phase() {
  // The oldest phase report that has another after it: thinning the oldest
  // stretch first halves its rate and keeps the newest picture.
  auto first = q_.end();
  for (auto it = q_.begin(); it != q_.end(); ++it) {
    if (it->important()) continue;
    if (first == q_.end()) {
      first = it;
      continue;
    }
    q_.erase(first);
    ++phase_dropped_;
    return true;
  }
  if (first != q_.end()) {
    q_.erase(first);
    ++phase_dropped_;
    return true;
  }
  return false;
}

void Backlog::push(QueuedFrame f) {
  if (q_.size() >= capacity_) {
    if (!f.important()) {
      // room for a phase report only by thinning the others
      if (!thin_phase()) {
        ++phase_dropped_;
        return;
      }
    } else if (!thin_phase()) {
      // all important: the oldest goes
      q_.pop_front();
      ++important_dropped_;
      rewrite_file();
    }
  }
  if (f.important()) append_to_file(f);
  q_.push_back(std::move(f));
}

void Backlog::pop() {
  if (q_.empty()) return;
  if (q_.front().important()) ++important_popped_;
  q_.pop_front();
  // Sent everything the file held: start it afresh.
  if (!file_.empty() && important_popped_ >= important_in_file_ && important_in_file_ > 0) rewrite_file();
}

void Backlog::append_to_file(const QueuedFrame& f) {
  if (file_.empty()) return;
  std::ofstream out(file_, std::ios::binary | std::ios::app);
  auto r = record(f);
  out.write(r.data(), static_cast<std::streamsize>(r.size()));
  out.flush();
  if (!out) ++file_errors_;
  ++important_in_file_;
}

void Backlog::rewrite_file() {
  if (file_.empty()) return;
  std::string all;
  std::size_t n = 0;
  for (const auto& f : q_) {
    if (!f.important()) continue;
    all += record(f);
    ++n;
  }
  try {
    write_file_atomic(file_, all, 0600);
  } catch (const std::exception&) {
    ++file_errors_;
  }
  important_in_file_ = n;
  important_popped_ = 0;
}

void Backlog::load() {
  if (file_.empty()) return;
  std::ifstream in(file_, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)), {});
  std::size_t p = 0;
  auto u32 = [&](std::uint32_t& v) {
    if (p + 4 > data.size()) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(data[p + static_cast<std::size_t>(i)])) << (8 * i);
    p += 4;
    return true;
  };
  std::deque<QueuedFrame> loaded;
  while (p < data.size()) {
    QueuedFrame f;
    f.kind = static_cast<TopicKind>(static_cast<unsigned char>(data[p++]));
    std::uint32_t tl = 0, el = 0;
    if (!u32(tl) || p + tl > data.size()) break;  // a torn tail (power cut) ends the file
    f.topic = data.substr(p, tl);
    p += tl;
    if (!u32(el) || p + el > data.size()) break;
    f.envelope.assign(data.begin() + static_cast<long>(p), data.begin() + static_cast<long>(p + el));
    p += el;
    loaded.push_back(std::move(f));
  }
  for (auto& f : loaded) {
    if (q_.size() >= capacity_) break;
    q_.push_back(std::move(f));
  }
  rewrite_file();
}

}  // namespace kairos::node

#include "firmware/drivers/gpio_input.h"

#include <gpiod.h>
#include <time.h>

#include <cerrno>
#include <cstring>

namespace kairos::node {

void Debouncer::reset(bool level, std::int64_t now_us) {
  stable_ = pending_ = level;
  pending_since_ = now_us;
}

void Debouncer::edge(const Edge& e) {
  if (e.level != pending_) {
    pending_ = e.level;
    pending_since_ = e.at_us;
  }
}

bool Debouncer::level(std::int64_t now_us) {
  if (pending_ != stable_ && now_us - pending_since_ >= hold_us_) stable_ = pending_;
  return stable_;
}

GpiodEdges::GpiodEdges(GpioInputConfig config) : c_(std::move(config)) {}

GpiodEdges::~GpiodEdges() {
  if (line_) gpiod_line_release(static_cast<gpiod_line*>(line_));
  if (chip_) gpiod_chip_close(static_cast<gpiod_chip*>(chip_));
}

bool GpiodEdges::setup() {
  if (line_) return true;
  if (!chip_) chip_ = gpiod_chip_open_by_label(c_.chip_label.c_str());
  if (!chip_) {
    error_ = "no GPIO chip labelled '" + c_.chip_label + "'";
    return false;
  }
  auto* line = gpiod_chip_find_line(static_cast<gpiod_chip*>(chip_), c_.line.c_str());
  if (!line) {
    error_ = "no line '" + c_.line + "' on " + c_.chip_label;
    return false;
  }
  int flags = c_.active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
  if (c_.bias == "pull-up") flags |= GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP;
  else if (c_.bias == "pull-down") flags |= GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN;
  else if (c_.bias == "disable") flags |= GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE;
  if (gpiod_line_request_both_edges_events_flags(line, "kairos-node", flags) != 0) {
    error_ = "line '" + c_.line + "' busy: " + std::strerror(errno);
    return false;
  }
  line_ = line;
  return true;
}

bool GpiodEdges::poll(std::vector<Edge>& out) {
  auto* line = static_cast<gpiod_line*>(line_);
  if (!line) return false;
  timespec zero{0, 0};
  for (int i = 0; i < 64; ++i) {  // bounded: a chattering line cannot hold the loop
    int rc = gpiod_line_event_wait(line, &zero);
    if (rc < 0) {
      error_ = std::string("event wait: ") + std::strerror(errno);
      return false;
    }
    if (rc == 0) break;
    gpiod_line_event ev{};
    if (gpiod_line_event_read(line, &ev) != 0) {
      error_ = std::string("event read: ") + std::strerror(errno);
      return false;
    }
    // The kernel stamps events with CLOCK_MONOTONIC in libgpiod 1.6.
    out.push_back({static_cast<std::int64_t>(ev.ts.tv_sec) * 1'000'000 + ev.ts.tv_nsec / 1000,
                   ev.event_type == GPIOD_LINE_EVENT_RISING_EDGE});
  }
  return true;
}

bool GpiodEdges::level() {
  return line_ && gpiod_line_get_value(static_cast<gpiod_line*>(line_)) == 1;
}

GpioInput::GpioInput(std::unique_ptr<EdgeSource> edges, double debounce_ms, std::string describe)
    : edges_(std::move(edges)), debounce_(static_cast<std::int64_t>(debounce_ms * 1000)), describe_(std::move(describe)) {}

bool GpioInput::setup() {
  primed_ = false;
  return edges_->setup();
}

ReadResult GpioInput::read(std::int64_t now_us) {
  if (!primed_) {
    debounce_.reset(edges_->level(), now_us);
    primed_ = true;
  }
  buf_.clear();
  if (!edges_->poll(buf_)) return ReadResult::failure(edges_->error());
  for (const auto& e : buf_) debounce_.edge(e);
  return ReadResult::of(debounce_.level(now_us) ? 1.0 : 0.0);
}

}  // namespace kairos::node

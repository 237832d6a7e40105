#pragma once
// gpio input (docs/DESIGN.md 3.3): edges of one line through libgpiod 1.6, debounced.
// The reading is the debounced level (0 or 1): a button, a reed switch, a
// PIR sensor. Edges come through a small seam so tests use a fake chip.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "firmware/drivers/input.h"

namespace kairos::node {

struct Edge {
  std::int64_t at_us;  // monotonic
  bool level;          // level after the edge (active-low already applied)
};

// Where edges come from.
class EdgeSource {
 public:
  virtual ~EdgeSource() = default;
  virtual bool setup() = 0;
  // Edges that happened since the last call; false on a read failure.
  virtual bool poll(std::vector<Edge>& out) = 0;
  // The level now.
  virtual bool level() = 0;
  virtual const std::string& error() const = 0;
};

// Keeps a level only once it has held for `hold_us` (contact bounce ignored).
class Debouncer {
 public:
  explicit Debouncer(std::int64_t hold_us) : hold_us_(hold_us) {}
  void reset(bool level, std::int64_t now_us);
  void edge(const Edge& e);
  // The debounced level as of now_us.
  bool level(std::int64_t now_us);

 private:
  std::int64_t hold_us_;
  bool stable_ = false;
  bool pending_ = false;
  std::int64_t pending_since_ = 0;
};

struct GpioInputConfig {
  std::string chip_label;
  std::string line;             // line name (board pin names resolved)
  std::string bias = "as-is";   // as-is, pull-up, pull-down, disable
  bool active_low = false;
  double debounce_ms = 20;
};

// The libgpiod implementation of EdgeSource: lines found by chip label and name.
class GpiodEdges : public EdgeSource {
 public:
  explicit GpiodEdges(GpioInputConfig config);
  ~GpiodEdges() override;
  bool setup() override;
  bool poll(std::vector<Edge>& out) override;
  bool level() override;
  const std::string& error() const override { return error_; }

 private:
  GpioInputConfig c_;
  void* chip_ = nullptr;
  void* line_ = nullptr;
  std::string error_;
};

class GpioInput : public Input {
 public:
  GpioInput(std::unique_ptr<EdgeSource> edges, double debounce_ms, std::string describe);
  bool setup() override;
  ReadResult read(std::int64_t now_us) override;
  std::string dump_config() const override { return describe_; }

 private:
  std::unique_ptr<EdgeSource> edges_;
  Debouncer debounce_;
  std::string describe_;
  bool primed_ = false;
  std::vector<Edge> buf_;
};

}  // namespace kairos::node

#pragma once
#include <cstdint>
#include <string>

namespace kairos::node {

// One raw reading: x is normalised by the input's [lo, hi] into a; b is the
// second channel, already in [0, 1] (0 for most inputs).
struct Reading {
  double x = 0.0;
  double b = 0.0;
};

// What one read gave.
struct ReadResult {
  enum class Status { sample, none, failed };
  Status status = Status::none;
  Reading reading;    // status == sample
  std::string error;  // status == failed: why, for the log

  static ReadResult of(double x, double b = 0.0) { return {Status::sample, {x, b}, {}}; }
  static ReadResult nothing() { return {}; }
  static ReadResult failure(std::string why) { return {Status::failed, {}, std::move(why)}; }
};

// The seam every input adapter implements (docs/DESIGN.md 3.3). Linux and fake
// implementations sit behind it.
class Input {
 public:
  virtual ~Input() = default;
  // Opens the source; false marks the adapter failed (it retries later).
  virtual bool setup() = 0;
  // A reading at now_us (monotonic); `none` when a stream has nothing new
  // (not an error); `failed` is a CAT-2 event: the sample is skipped, never
  // replaced by a stale value.
  virtual ReadResult read(std::int64_t now_us) = 0;
  // One line describing the effective configuration, for logs.
  virtual std::string dump_config() const = 0;
};

}  // namespace kairos::node

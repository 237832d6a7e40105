#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace kairos::node {

// One raw reading: x is normalised by the input's [lo, hi] into a; b is the
// second channel, already in [0, 1] (0 for most inputs).
struct Reading {
  double x = 0.0;
  double b = 0.0;
};

// The seam every input adapter implements (SPEC 3.3). Linux and fake
// implementations sit behind it.
class Input {
 public:
  virtual ~Input() = default;
  // Opens the source; false marks the adapter failed (it retries later).
  virtual bool setup() = 0;
  // A reading taken at now_us (monotonic), or nullopt when the read failed:
  // a failed read is absent, never a stale value.
  virtual std::optional<Reading> read(std::int64_t now_us) = 0;
  // One line describing the effective configuration, for logs.
  virtual std::string dump_config() const = 0;
};

}  // namespace kairos::node

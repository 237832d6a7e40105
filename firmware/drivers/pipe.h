#pragma once
// `pipe` and `llm` inputs (docs/DESIGN.md 3.3): lines from a named pipe (FIFO), read
// without ever blocking the loop. The FIFO is opened read-write so that it
// always has a writer: writers may come and go, and an empty pipe reads as
// "nothing new", not as end of file. Partial lines wait until complete.
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/drivers/input.h"

namespace kairos::node {

// Splits a byte stream into lines; keeps at most max_line bytes of a line
// (a longer one is dropped whole, with a count).
class LineBuffer {
 public:
  explicit LineBuffer(std::size_t max_line = 256) : max_line_(max_line) {}
  // Adds bytes; complete lines go to out.
  void feed(const char* data, std::size_t n, std::vector<std::string>& out);
  std::uint64_t overlong() const { return overlong_; }

 private:
  std::size_t max_line_;
  std::string partial_;
  bool skipping_ = false;
  std::uint64_t overlong_ = 0;
};

struct PipeConfig {
  std::string path;         // a FIFO, or
  std::string topic;        // an MQTT topic whose messages carry the lines (plain text, outside kairos/)
  bool llm = false;       // lines are "token confidence"
  std::size_t window = 32;  // llm: tokens remembered for their position
};

class PipeInput : public Input {
 public:
  explicit PipeInput(PipeConfig config);
  ~PipeInput() override;
  PipeInput(const PipeInput&) = delete;
  PipeInput& operator=(const PipeInput&) = delete;

  bool setup() override;
  // The newest complete line since the last read (earlier ones are counted
  // as coalesced); `none` when no line completed.
  ReadResult read(std::int64_t now_us) override;
  std::string dump_config() const override;

  // Lines that arrived by MQTT (topic mode); a message without a final
  // newline is one line.
  void feed(std::string_view text);
  bool from_topic() const { return !config_.topic.empty(); }

  std::uint64_t coalesced() const { return coalesced_; }
  std::uint64_t malformed() const { return malformed_; }

 private:
  ReadResult parse(const std::string& line);

  const PipeConfig config_;
  int fd_ = -1;
  LineBuffer lines_;
  std::vector<std::string> ready_;
  std::vector<std::string> recent_;  // llm: distinct tokens in first-seen order, newest window
  std::uint64_t coalesced_ = 0;
  std::uint64_t malformed_ = 0;
};

}  // namespace kairos::node

#pragma once
// What the wire fuzz targets (frame_fuzz, control_fuzz) hold every opened
// frame to, and the seed files they write. docs/FUZZING.md lists the invariants.
#include <functional>
#include <string>
#include <string_view>

#include "common/core/frame.h"

namespace kairos::fuzz {

// A broken invariant: prints what broke and aborts, so libFuzzer keeps the input.
[[noreturn]] void fail(std::string_view what, std::string_view detail = {});
inline void require(bool ok, std::string_view what, std::string_view detail = {}) {
  if (!ok) fail(what, detail);
}

// The topic kinds, in TopicKind order; a first input byte picks one (byte % kKinds).
inline constexpr int kKinds = static_cast<int>(TopicKind::ball_to) + 1;
// A topic of that kind on mesh "m" (node c/n1, gateway gw1, client ops,
// Ball session s1, peer Ana).
std::string topic_of(TopicKind kind);

// The key every fuzzed frame is sealed with (node, broadcast and operator alike).
const Key& fuzz_key();

// Calls visit on every string present in msg (nested messages, repeated
// fields and the set oneof member included). Fails when a string is not
// NUL-terminated inside its array or a count or bytes size exceeds its bound.
void for_each_string(const pb_msgdesc_t* desc, const void* msg, const std::function<void(std::string_view)>& visit);

// open()'s answer: exactly one of an envelope and a drop reason, a drop with its detail.
void check_opened(const Opened& r);

// An envelope open() accepted on topic: valid, its message type on exactly
// one topic kind, every field in bounds, every string UTF-8; re-encoded it decodes to the same
// bytes and is valid again; sealed again it opens, and the MAC binds topic and key.
void check_accepted(std::string_view topic, const Envelope& env);

// Seed files: while KAIROS_FUZZ_SEEDS names a directory, LLVMFuzzerInitialize
// writes the target's seeds there and exits. Empty when it is not set.
std::string seed_dir();
void write_seed(const std::string& dir, const std::string& name, ByteView data);
// The body of every target's LLVMFuzzerInitialize: writes the seeds with
// write_seeds and exits when KAIROS_FUZZ_SEEDS is set; 0 otherwise.
int seeds_if_asked(void (*write_seeds)(const std::string& dir));

}  // namespace kairos::fuzz

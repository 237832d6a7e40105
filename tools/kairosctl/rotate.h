#pragma once
// kairosctl rotate-key (docs/PROTOCOL.md, Key rotation).
#include <string>
#include <vector>

#include "kairos.pb.h"

namespace kairos::ctl {

// rotate-key <node> [--within MS]: "" or the error (exit 2).
std::string parse_rotate_args(const std::vector<std::string>& args, kairos_v1_RotateKeyRequest& req);
// How long to wait for the answer: the rotation's own time limit, then timeout_ms more.
int rotate_wait_ms(const kairos_v1_RotateKeyRequest& req, int timeout_ms);
// Exit status: 0 rotated, 1 not.
int print_rotate(const kairos_v1_RotateKeyReply& r, bool json);

}  // namespace kairos::ctl

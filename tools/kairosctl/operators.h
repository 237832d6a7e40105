#pragma once
// kairosctl operators: the named operators a gateway knows, revocation, and
// the audit log of what each asked (docs/PROTOCOL.md, Operators).
#include <string>
#include <vector>

#include "kairos.pb.h"

namespace kairos::ctl {

// Fills req from the words after `operators`; "" or the error (exit 2).
std::string parse_operators_args(const std::vector<std::string>& args, kairos_v1_OperatorsRequest& req);
// Prints the gateway's answer to req; the exit status (0).
int print_operators(const kairos_v1_OperatorsRequest& req, const kairos_v1_OperatorsReply& r, bool json);

}  // namespace kairos::ctl

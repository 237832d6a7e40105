#pragma once
// The node's part of a provisioning run (kairosctl provision --kind node):
// its node.toml, validated as the node will read it, and its board file.
#include <optional>
#include <string>
#include <vector>

#include "common/core/board.h"
#include "tools/kairosctl/provision.h"
#include "tools/kairosctl/provision_tls.h"

namespace kairos::ctl {

// The node's config: the template's inputs, outputs and jobs (or a
// synthetic demo input), with the identity and broker provisioning owns.
// Throws ConfigError.
std::string node_config_text(const ProvisionArgs& a, const std::string& mesh, const std::string& broker,
                             const std::optional<TlsNames>& tls);

// The node's config validated as the node will read it (a Refusal, status 2,
// when it does not read); the topics its outputs write and its inputs read
// go into its ACL.
void check_node_config(const ProvisionArgs& a, const std::string& text, std::vector<std::string>& writes,
                       std::vector<std::string>& reads);

// The board of a (a Refusal, status 2, naming the boards there when it has no file).
BoardConfig load_board(const ProvisionArgs& a);

}  // namespace kairos::ctl

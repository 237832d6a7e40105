#pragma once
// A node's key as it rotates (docs/PROTOCOL.md, Key rotation): the key it
// starts with, where a new one is kept, and what a rekey command gives.
#include <optional>
#include <string>

#include "common/core/keywrap.h"
#include "firmware/node_config.h"
#include "kairos.pb.h"

namespace kairos::node {

// Where a rotated key is kept: node.rotated_key_file, else <id>.key beside
// the node's state file (node.state_file, or $STATE_DIRECTORY under
// systemd: /var/lib/kairos/<id>.key); "" when the node keeps no state.
std::string rotated_key_file(const NodeConfig& c);

struct NodeKey {
  RotatedKey current;        // the key in use and its generation (0: node.key_file's)
  std::string rotated_file;  // where a new one is kept; "" when rotation is refused
  std::string note;          // for the log: where the key came from, or why a rotated key was passed over
};

// The key to start with: the rotated key file's when it is a rotation of
// node.key_file's key, else node.key_file's (generation 0). Throws
// std::runtime_error for a key file that is unusable (mode, contents).
NodeKey load_node_key(const NodeConfig& c);

// What a rekey command gives a node of id holding `current` (pure).
struct Rekeyed {
  std::optional<RotatedKey> next;  // the new key: keep it, then switch to it
  bool already = false;            // a copy of the rekey this node took last (its confirmation got lost)
  std::string refusal;             // why neither (the CONFLICT ack's detail)
};
// retired: the key the node rotated away from, while it still takes
// commands signed with it (a copy of the last rekey is unwrapped with it).
Rekeyed open_rekey(const kairos_v1_Rekey& r, const std::string& id, const RotatedKey& current,
                   const std::optional<Key>& retired);

}  // namespace kairos::node

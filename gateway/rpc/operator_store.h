#pragma once
// Named operators in the gateway's SQLite file: their state, and the audit
// log (append-only) of what they asked.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "gateway/rpc/operators.h"
#include "gateway/store/store.h"

namespace kairos::gw {

std::vector<OperatorRecord> load_operators(Store& store);
void save_operator(Store& store, const OperatorRecord& r);
void append_operator_action(Store& store, const OperatorAction& a);
// The newest entries first: name's ("" = everyone's), older than before_id (0 = the newest).
std::vector<OperatorAction> operator_actions(Store& store, const std::string& name, std::uint64_t before_id,
                                             std::size_t limit);

}  // namespace kairos::gw

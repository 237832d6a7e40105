#pragma once
// Separated lists of names ("Ana,Ben,n1"): capabilities, job needs, node
// selectors, the peers of a Ball play.
#include <string>
#include <string_view>
#include <vector>

namespace kairos {

// The non-empty parts of s between separators.
inline std::vector<std::string> split_list(std::string_view s, char sep = ',') {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < s.size()) {
    std::size_t end = s.find(sep, start);
    if (end == std::string_view::npos) end = s.size();
    if (end > start) out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

inline std::string join_list(const std::vector<std::string>& parts, char sep = ',') {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

}  // namespace kairos

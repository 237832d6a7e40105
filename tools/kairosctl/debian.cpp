#include "tools/kairosctl/debian.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace kairos::ctl::deb {

namespace {

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string Stanza::get(std::string_view name) const {
  for (const auto& [k, v] : fields)
    if (same_name(k, name)) return v;
  return "";
}

void Stanza::set(std::string_view name, std::string value) {
  for (auto& [k, v] : fields)
    if (same_name(k, name)) {
      v = std::move(value);
      return;
    }
  fields.emplace_back(std::string(name), std::move(value));
}

void Stanza::erase(std::string_view name) {
  std::erase_if(fields, [&](const auto& f) { return same_name(f.first, name); });
}

std::string Stanza::text() const {
  std::string out;
  for (const auto& [k, v] : fields) {
    out += k + ":";
    // Multi-line values: the first line follows the colon (it may be
    // empty, as in Conffiles), each further line is indented by one space.
    std::size_t start = 0;
    bool first = true;
    while (true) {
      auto nl = v.find('\n', start);
      std::string_view line(v.data() + start, (nl == std::string::npos ? v.size() : nl) - start);
      // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) about "x" + string on ARM.
      if (first && !line.empty()) out.append(" ").append(line);
      if (!first) out.append("\n ").append(line.empty() ? std::string_view(".") : line);
      first = false;
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    out += "\n";
  }
  return out;
}

std::vector<Stanza> parse_stanzas(std::string_view text) {
  std::vector<Stanza> out;
  Stanza cur;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (trim(line).empty()) {
      if (!cur.fields.empty()) out.push_back(std::move(cur));
      cur = {};
      continue;
    }
    if (line.front() == '#') continue;
    if ((line.front() == ' ' || line.front() == '\t') && !cur.fields.empty()) {
      auto rest = line.substr(1);
      cur.fields.back().second.append("\n").append(rest == "." ? std::string_view() : rest);
      continue;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;  // not a field: ignored, as dpkg would refuse to write it
    cur.fields.emplace_back(std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  }
  if (!cur.fields.empty()) out.push_back(std::move(cur));
  return out;
}

std::string package_key(const Stanza& s) {
  std::string key = s.get("Package");
  if (s.get("Multi-Arch") == "same") key.append(":").append(s.get("Architecture"));
  return key;
}

std::string status_with(std::string_view status, const Stanza& s) {
  std::string out;
  bool replaced = false;
  for (const auto& st : parse_stanzas(status)) {
    bool same = st.get("Package") == s.get("Package") &&
                (st.get("Multi-Arch") != "same" || st.get("Architecture") == s.get("Architecture"));
    if (!out.empty()) out += "\n";
    if (same && !replaced) {
      out += s.text();
      replaced = true;
    } else if (!same) {
      out += st.text();
    } else {
      out.pop_back();  // a duplicate stanza of the same package: dropped
    }
  }
  if (!replaced) out.append(out.empty() ? "" : "\n").append(s.text());
  return out;
}

bool is_installed(const Stanza& s) { return s.get("Status") == "install ok installed"; }

std::string Relation::text() const {
  std::string t = name;
  if (!arch.empty()) t += ":" + arch;
  if (!op.empty()) t += " (" + op + " " + version + ")";
  return t;
}

std::vector<std::vector<Relation>> parse_depends(std::string_view field) {
  std::vector<std::vector<Relation>> out;
  auto bad = [&](const std::string& why) {
    return std::invalid_argument("malformed Depends '" + std::string(field) + "': " + why);
  };
  std::size_t pos = 0;
  std::string f(field);
  std::replace(f.begin(), f.end(), '\n', ' ');
  while (pos <= f.size()) {
    auto comma = f.find(',', pos);
    std::string_view group = trim(std::string_view(f).substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    pos = comma == std::string::npos ? f.size() + 1 : comma + 1;
    if (group.empty()) {
      if (comma == std::string::npos) break;  // an empty field, or a trailing comma
      throw bad("an empty relation");
    }
    std::vector<Relation> alts;
    std::size_t apos = 0;
    while (apos <= group.size()) {
      auto bar = group.find('|', apos);
      std::string_view alt = trim(group.substr(apos, bar == std::string_view::npos ? std::string_view::npos : bar - apos));
      apos = bar == std::string_view::npos ? group.size() + 1 : bar + 1;
      Relation r;
      std::size_t i = 0;
      while (i < alt.size() && !std::isspace(static_cast<unsigned char>(alt[i])) && alt[i] != '(' && alt[i] != '[' && alt[i] != '<')
        ++i;
      std::string_view name = alt.substr(0, i);
      if (auto c = name.find(':'); c != std::string_view::npos) {
        r.arch = std::string(name.substr(c + 1));
        name = name.substr(0, c);
      }
      if (name.empty()) throw bad("a relation without a package name");
      for (char ch : name)
        if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '+' && ch != '-' && ch != '.') throw bad("'" + std::string(name) + "' is not a package name");
      r.name = std::string(name);
      auto rest = trim(alt.substr(i));
      if (!rest.empty() && rest.front() == '(') {
        auto close = rest.find(')');
        if (close == std::string_view::npos) throw bad("an unclosed version");
        auto inside = trim(rest.substr(1, close - 1));
        std::size_t o = 0;
        while (o < inside.size() && (inside[o] == '<' || inside[o] == '>' || inside[o] == '=')) ++o;
        r.op = std::string(inside.substr(0, o));
        r.version = std::string(trim(inside.substr(o)));
        if (r.op == "<") r.op = "<=";  // obsolete spellings, as dpkg reads them
        if (r.op == ">") r.op = ">=";
        static const char* ops[] = {">=", "<=", "=", ">>", "<<"};
        if (std::find(std::begin(ops), std::end(ops), r.op) == std::end(ops) || r.version.empty())
          throw bad("a version needs one of >= <= = >> << and a version");
      }
      alts.push_back(std::move(r));
    }
    out.push_back(std::move(alts));
  }
  return out;
}

std::string elf_debian_arch(std::span<const std::uint8_t> h) {
  if (h.size() < 52 || h[0] != 0x7f || h[1] != 'E' || h[2] != 'L' || h[3] != 'F') return "";
  bool little = h[5] == 1;
  auto u16 = [&](std::size_t o) {
    return static_cast<std::uint16_t>(little ? h[o] | (h[o + 1] << 8) : (h[o] << 8) | h[o + 1]);
  };
  auto u32 = [&](std::size_t o) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(h[o + (little ? i : 3 - i)]) << (8 * i);
    return v;
  };
  std::uint16_t machine = u16(18);
  bool is64 = h[4] == 2;
  switch (machine) {
    case 62: return is64 ? "amd64" : "";  // EM_X86_64
    case 3: return "i386";                // EM_386
    case 183: return is64 ? "arm64" : ""; // EM_AARCH64
    case 40: {                            // EM_ARM: e_flags at 36 in a 32-bit header
      std::uint32_t flags = u32(36);
      if ((flags & 0xff000000u) != 0x05000000u) return "";  // not EABI version 5
      return (flags & 0x400u) ? "armhf" : "armel";        // EF_ARM_ABI_FLOAT_HARD
    }
    default: return "";
  }
}

}  // namespace kairos::ctl::deb

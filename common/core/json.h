#pragma once
#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>

#include "common/core/utf8.h"

namespace kairos {

// A minimal JSON writer for --json output: objects and arrays built in order.
class Json {
 public:
  Json& begin_object() { sep(); out_ += '{'; first_ = true; return *this; }
  Json& end_object() { out_ += '}'; first_ = false; return *this; }
  Json& begin_array() { sep(); out_ += '['; first_ = true; return *this; }
  Json& end_array() { out_ += ']'; first_ = false; return *this; }
  Json& key(std::string_view k) {
    sep();
    str_raw(k);
    out_ += ':';
    first_ = true;  // the value follows without a comma
    return *this;
  }
  Json& str(std::string_view v) { sep(); str_raw(v); return *this; }
  Json& num(double v) {
    sep();
    if (!std::isfinite(v)) { out_ += "null"; return *this; }
    char b[32];
    std::snprintf(b, sizeof b, "%.6g", v);
    out_ += b;
    return *this;
  }
  Json& integer(unsigned long long v) { sep(); out_ += std::to_string(v); return *this; }
  Json& boolean(bool v) { sep(); out_ += v ? "true" : "false"; return *this; }
  Json& null() { sep(); out_ += "null"; return *this; }
  const std::string& text() const { return out_; }

 private:
  void sep() {
    if (!first_) out_ += ',';
    first_ = false;
  }
  // Bytes that are not UTF-8 become U+FFFD: the output is valid JSON
  // whatever the string held.
  void str_raw(std::string_view s) {
    out_ += '"';
    for (std::size_t i = 0; i < s.size();) {
      char c = s[i];
      std::size_t n = utf8_sequence(s, i);
      if (n == 0) {
        out_ += "\\ufffd";
        ++i;
        continue;
      }
      switch (c) {
        case '"': out_ += "\\\""; break;
        case '\\': out_ += "\\\\"; break;
        case '\n': out_ += "\\n"; break;
        case '\t': out_ += "\\t"; break;
        default:
          if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
            out_ += b;
          } else {
            out_.append(s.substr(i, n));
          }
      }
      i += n;
    }
    out_ += '"';
  }
  std::string out_;
  bool first_ = true;
};

}  // namespace kairos

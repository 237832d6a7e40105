#include "common/core/config.h"

#include <toml++/toml.h>

#include "common/core/topic.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <set>

namespace kairos {

namespace {

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    default: return "a date or time";
  }
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

std::string number_text(double v) {
  char buf[40];
  auto res = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that reads back exactly
  std::string s(buf, res.ptr);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

thread_local KeyLog* key_log = nullptr;

}  // namespace

KeyLog::KeyLog() : outer_(key_log) { key_log = this; }
KeyLog::~KeyLog() { key_log = outer_; }

ConfigError::ConfigError(std::string file_, std::uint32_t line_, std::uint32_t column_,
                         std::string key_, const std::string& message)
    : std::runtime_error(file_ + ":" + std::to_string(line_) + ":" + std::to_string(column_) +
                         ": " + (key_.empty() ? std::string() : "key '" + key_ + "': ") + message),
      file(std::move(file_)),
      line(line_),
      column(column_),
      key(std::move(key_)) {}

struct Config::Impl {
  toml::table doc;
  std::map<std::string, std::string> effective;
  // (table, key) pairs that some reader asked for
  std::set<std::pair<const toml::table*, std::string>> used;
};

Config::Config(std::string_view text, std::string file) : impl_(std::make_unique<Impl>()), file_(std::move(file)) {
  try {
    impl_->doc = toml::parse(text, file_);
  } catch (const toml::parse_error& e) {
    throw ConfigError(file_, e.source().begin.line, e.source().begin.column, "",
                      std::string(e.description()));
  }
}

Config::~Config() = default;

Section Config::root() { return Section(this, &impl_->doc, ""); }

void Config::finish() {
  // Walk every table; report the first key (in file order) nobody read.
  struct Unknown {
    std::uint32_t line = 0, column = 0;
    std::string key;
  };
  std::optional<Unknown> first;
  auto visit = [&](auto&& self, const toml::table& t, const std::string& prefix) -> void {
    for (const auto& [k, v] : t) {
      std::string path = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
      if (!impl_->used.count({&t, std::string(k.str())})) {
        auto src = k.source().begin;
        if (!first || src.line < first->line || (src.line == first->line && src.column < first->column))
          first = Unknown{src.line, src.column, path};
        continue;
      }
      if (const auto* sub = v.as_table()) self(self, *sub, path);
    }
  };
  visit(visit, impl_->doc, "");
  if (first) throw ConfigError(file_, first->line, first->column, first->key, "unknown key");
}

std::string Config::dump() const {
  std::string out;
  for (const auto& [k, v] : impl_->effective) out += k + " = " + v + "\n";
  return out;
}

Section::Section(Config* owner, const toml::table* table, std::string path)
    : owner_(owner), table_(table), path_(std::move(path)) {}

std::string Section::full(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

const void* Section::node(std::string_view key) const {
  if (!table_) return nullptr;
  owner_->impl_->used.insert({table_, std::string(key)});
  return table_->get(key);
}

bool Section::has(std::string_view key) const { return table_ && table_->contains(key); }

void Section::record(std::string_view key, std::string value) {
  if (key_log) key_log->keys_.insert(full(key));
  owner_->impl_->effective[full(key)] = std::move(value);
}

void Section::fail(std::string_view key, const std::string& message) const {
  toml::source_position pos{1, 1};
  if (table_) {
    if (const auto* n = table_->get(key)) pos = n->source().begin;
    else if (table_->source().begin.line != 0) pos = table_->source().begin;
  }
  throw ConfigError(owner_->file(), pos.line, pos.column, full(key), message);
}

std::string Section::str(std::string_view key) {
  const auto* n = static_cast<const toml::node*>(node(key));
  if (!n) fail(key, "missing (required)");
  if (!n->is_string()) fail(key, "expected a string, got " + type_name(*n));
  std::string v = n->as_string()->get();
  record(key, quote(v));
  return v;
}

std::string Section::str(std::string_view key, std::string_view def) {
  if (!has(key)) {
    node(key);
    record(key, quote(def));
    return std::string(def);
  }
  return str(key);
}

std::string Section::name(std::string_view key) {
  auto v = str(key);
  if (!valid_name(v)) fail(key, "'" + v + "' is not a valid name (" + std::string(kNameRule) + ")");
  return v;
}

std::string Section::name(std::string_view key, std::string_view def) {
  if (!has(key)) return str(key, def);
  return name(key);
}

std::string Section::choice(std::string_view key, std::string_view def,
                            std::initializer_list<std::string_view> allowed) {
  std::string v = str(key, def);
  for (auto a : allowed)
    if (a == v) return v;
  std::string list;
  for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
  fail(key, "'" + v + "' is not one of: " + list);
}

double Section::num(std::string_view key, double min, double max) {
  const auto* n = static_cast<const toml::node*>(node(key));
  if (!n) fail(key, "missing (required)");
  double v;
  if (const auto* i = n->as_integer()) v = static_cast<double>(i->get());
  else if (const auto* f = n->as_floating_point()) v = f->get();
  else fail(key, "expected a number, got " + type_name(*n));
  if (!std::isfinite(v) || v < min || v > max)
    fail(key, number_text(v) + " is out of range [" + number_text(min) + ", " + number_text(max) + "]");
  record(key, number_text(v));
  return v;
}

double Section::num(std::string_view key, double def, double min, double max) {
  if (!has(key)) {
    node(key);
    record(key, number_text(def));
    return def;
  }
  return num(key, min, max);
}

std::int64_t Section::integer(std::string_view key, std::int64_t def, std::int64_t min, std::int64_t max) {
  const auto* n = static_cast<const toml::node*>(node(key));
  std::int64_t v = def;
  if (n) {
    if (!n->is_integer()) fail(key, "expected an integer, got " + type_name(*n));
    v = n->as_integer()->get();
    if (v < min || v > max)
      fail(key, std::to_string(v) + " is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  record(key, std::to_string(v));
  return v;
}

bool Section::boolean(std::string_view key, bool def) {
  const auto* n = static_cast<const toml::node*>(node(key));
  bool v = def;
  if (n) {
    if (!n->is_boolean()) fail(key, "expected a boolean, got " + type_name(*n));
    v = n->as_boolean()->get();
  }
  record(key, v ? "true" : "false");
  return v;
}

std::vector<std::string> Section::strings(std::string_view key, std::size_t max_count) {
  const auto* n = static_cast<const toml::node*>(node(key));
  std::vector<std::string> out;
  if (n) {
    const auto* arr = n->as_array();
    if (!arr) fail(key, "expected an array of strings, got " + type_name(*n));
    if (arr->size() > max_count) fail(key, "more than " + std::to_string(max_count) + " entries");
    for (const auto& e : *arr) {
      if (!e.is_string()) fail(key, "expected an array of strings, found " + type_name(e));
      out.push_back(e.as_string()->get());
    }
  }
  std::string text = "[";
  for (std::size_t i = 0; i < out.size(); ++i) text += (i ? ", " : "") + quote(out[i]);
  record(key, text + "]");
  return out;
}

std::vector<std::pair<std::string, std::string>> Section::string_entries() {
  std::vector<std::pair<std::string, std::string>> out;
  if (!table_) return out;
  std::vector<std::pair<toml::source_position, std::string>> order;
  for (const auto& [k, v] : *table_) order.push_back({k.source().begin, std::string(k.str())});
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.first.line != b.first.line ? a.first.line < b.first.line : a.first.column < b.first.column;
  });
  for (const auto& [pos, key] : order) out.emplace_back(key, str(key));
  return out;
}

std::vector<double> Section::numbers(std::string_view key, std::vector<double> def, std::size_t count) {
  const auto* n = static_cast<const toml::node*>(node(key));
  std::vector<double> out = std::move(def);
  if (n) {
    const auto* arr = n->as_array();
    if (!arr || arr->size() != count) fail(key, "expected an array of " + std::to_string(count) + " numbers");
    out.clear();
    for (const auto& e : *arr) {
      if (const auto* i = e.as_integer()) out.push_back(static_cast<double>(i->get()));
      else if (const auto* f = e.as_floating_point()) out.push_back(f->get());
      else fail(key, "expected an array of numbers, found " + type_name(e));
      if (!std::isfinite(out.back())) fail(key, "numbers must be finite");
    }
  }
  std::string text = "[";
  for (std::size_t i = 0; i < out.size(); ++i) text += (i ? ", " : "") + number_text(out[i]);
  record(key, text + "]");
  return out;
}

Section Section::section(std::string_view key) {
  const auto* n = static_cast<const toml::node*>(node(key));
  if (n && !n->is_table()) fail(key, "expected a table, got " + type_name(*n));
  return Section(owner_, n ? n->as_table() : nullptr, full(key));
}

std::vector<std::pair<std::string, Section>> Section::sections(std::string_view key) {
  const auto* n = static_cast<const toml::node*>(node(key));
  std::vector<std::pair<std::string, Section>> out;
  if (!n) return out;
  const auto* t = n->as_table();
  if (!t) fail(key, "expected a table of named tables, got " + type_name(*n));
  Section parent(owner_, t, full(key));
  std::vector<std::pair<toml::source_position, std::string>> order;
  for (const auto& [k, v] : *t) order.push_back({k.source().begin, std::string(k.str())});
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.first.line != b.first.line ? a.first.line < b.first.line : a.first.column < b.first.column;
  });
  for (const auto& [pos, name] : order) {
    const auto* v = t->get(name);
    if (!v->is_table()) parent.fail(name, "expected a table, got " + type_name(*v));
    out.emplace_back(name, parent.section(name));
  }
  return out;
}

}  // namespace kairos

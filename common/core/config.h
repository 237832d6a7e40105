#pragma once
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace toml {
inline namespace v3 {
class table;
}
}  // namespace toml

namespace kairos {

// A configuration error, always with its place: file, line, column, key.
struct ConfigError : std::runtime_error {
  ConfigError(std::string file, std::uint32_t line, std::uint32_t column, std::string key,
              const std::string& message);
  std::string file;
  std::uint32_t line;
  std::uint32_t column;
  std::string key;
};

class Config;

// While one is alive, every key path that a Config's readers ask for on this
// thread is noted ("inputs.mic.kind"): how the tests hold the README's key
// tables to the parsers. Otherwise a key read costs one pointer test more.
class KeyLog {
 public:
  KeyLog();
  ~KeyLog();
  KeyLog(const KeyLog&) = delete;
  KeyLog& operator=(const KeyLog&) = delete;
  const std::set<std::string>& keys() const { return keys_; }

 private:
  friend class Section;
  std::set<std::string> keys_;
  KeyLog* outer_;
};

// A table of a config file. Reading a key records its effective value (with
// defaults) for the canonical dump; keys never read are reported as unknown
// by Config::finish().
class Section {
 public:
  std::string str(std::string_view key);
  std::string str(std::string_view key, std::string_view def);
  // A mesh, cluster, node or gateway name (the topic rules of valid_name).
  std::string name(std::string_view key);
  std::string name(std::string_view key, std::string_view def);
  // One of the allowed words.
  std::string choice(std::string_view key, std::string_view def,
                     std::initializer_list<std::string_view> allowed);
  // A number (integer or float) in [min, max].
  double num(std::string_view key, double def, double min, double max);
  double num(std::string_view key, double min, double max);
  std::int64_t integer(std::string_view key, std::int64_t def, std::int64_t min, std::int64_t max);
  bool boolean(std::string_view key, bool def);
  std::vector<std::string> strings(std::string_view key, std::size_t max_count);
  // An array of exactly `count` numbers; def when absent.
  std::vector<double> numbers(std::string_view key, std::vector<double> def, std::size_t count);
  // Every key of this table as a string value, in file order ([pins] name = "line").
  std::vector<std::pair<std::string, std::string>> string_entries();
  bool has(std::string_view key) const;
  // A sub-table; an absent one reads as empty (all defaults).
  Section section(std::string_view key);
  // Named sub-tables in file order: [inputs.<name>] -> ("name", section).
  std::vector<std::pair<std::string, Section>> sections(std::string_view key);

  // An error positioned at key (or at this table when the key is absent).
  [[noreturn]] void fail(std::string_view key, const std::string& message) const;
  const std::string& path() const { return path_; }

 private:
  friend class Config;
  Section(Config* owner, const toml::table* table, std::string path);
  const void* node(std::string_view key) const;
  void record(std::string_view key, std::string value);
  std::string full(std::string_view key) const;

  Config* owner_;
  const toml::table* table_;  // null for an absent table
  std::string path_;
};

// A parsed config file.
class Config {
 public:
  // Parses TOML text; a syntax error throws ConfigError with its position.
  Config(std::string_view text, std::string file);
  ~Config();
  Config(const Config&) = delete;
  Config& operator=(const Config&) = delete;

  Section root();
  // Throws ConfigError at the first key that no reader asked for.
  void finish();
  // The effective configuration, one `path = value` line per key, sorted:
  // the canonical form whose SHA-256 is the context hash.
  std::string dump() const;
  const std::string& file() const { return file_; }

 private:
  friend class Section;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string file_;
};

}  // namespace kairos

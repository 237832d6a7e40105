#pragma once
// Debian's formats as provisioning reads and writes them on an SD card: the
// dpkg status database (RFC 822 stanzas), Depends relations, and the
// architecture an ELF binary was built for. Pure code.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kairos::ctl::deb {

// One stanza of a control file or of var/lib/dpkg/status: fields in order,
// continuation lines kept in the value (without their leading space).
struct Stanza {
  std::vector<std::pair<std::string, std::string>> fields;

  std::string get(std::string_view name) const;  // "" when absent; names match case-insensitively
  void set(std::string_view name, std::string value);  // replaces, or appends
  void erase(std::string_view name);
  std::string text() const;  // the stanza as dpkg writes it, ending in "\n"
};

std::vector<Stanza> parse_stanzas(std::string_view text);

// A package's key in the status file: name, plus ":arch" for Multi-Arch:
// same packages (that is how dpkg names their info files too).
std::string package_key(const Stanza& s);

// status with the stanza for s's package (and architecture) replaced, or
// appended when there is none.
std::string status_with(std::string_view status, const Stanza& s);

// "Status: install ok installed".
bool is_installed(const Stanza& s);

// One alternative of a relation: name[:arch] [(op version)].
struct Relation {
  std::string name;
  std::string arch;     // "" or any/native/an architecture
  std::string op;       // "", ">=", "<=", "=", ">>", "<<"
  std::string version;
  std::string text() const;
};
// A Depends field: groups of alternatives ("a (>= 1), b | c").
// Throws std::invalid_argument on a malformed field.
std::vector<std::vector<Relation>> parse_depends(std::string_view field);

// Debian's name for the architecture an ELF file was built for, from its
// first 52 bytes (ident, machine, flags): amd64, i386, arm64, armhf (ARM
// EABI hard-float), armel (ARM EABI soft-float), or "" when unknown.
std::string elf_debian_arch(std::span<const std::uint8_t> header);

}  // namespace kairos::ctl::deb

// From an empty SD card to a registered node: a scratch root shaped like
// the Raspberry Pi OS Lite image a user flashes (tests/card/make_card), a
// node provisioned onto it exactly as the README says, the card checked
// (its merged-/usr links and files intact, the unit enabled inside it), and
// the node installed on the card run under qemu-user with only the card's
// libraries, against a real Mosquitto on the generated passwd and ACL and a
// real gateway, until the gateway lists it online.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "common/core/crypto.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct Flavor {
  std::string card;   // tests/card/make_card flavor
  std::string arch;   // Debian architecture of the card
  std::string board;  // the board this card is for
  std::string qemu;   // qemu-user binary and CPU that stand in for the board
  std::string cpu;
  unsigned elf_machine;  // e_machine of the card's programs
  std::string other_arch;  // a package for this one must be refused
};

const Flavor kPiZeroW{"raspios-lite-32", "armhf", "pi-zero-w", "qemu-arm-static", "arm1176", 40, "arm64"};
const Flavor kPi4{"raspios-lite-64", "arm64", "pi-4-b", "qemu-aarch64-static", "cortex-a53", 183, "armhf"};

std::string dist_dir() {
  const char* d = std::getenv("KAIROS_DIST_DIR");
  return d && *d ? d : std::string(KAIROS_SOURCE_DIR) + "/dist";
}

// The first file in dir whose name starts with prefix and ends with suffix, or "".
std::string find_deb(const std::string& dir, const std::string& prefix, const std::string& suffix) {
  std::error_code ec;
  std::set<std::string> found;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    auto n = it->path().filename().string();
    if (n.rfind(prefix, 0) == 0 && n.size() >= suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
      found.insert(it->path().string());
  }
  return found.empty() ? "" : *found.rbegin();
}

bool required(const std::string& arch) {
  const char* r = std::getenv("KAIROS_REQUIRE_ARCHES");
  std::istringstream in(r ? r : "");
  std::string a;
  while (in >> a)
    if (a == arch) return true;
  return false;
}

std::string seconds(std::chrono::steady_clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", std::chrono::duration<double>(d).count());
  return buf;
}

std::string shell_words(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

// One entry of a tree: type, mode, and a symlink's target or a file's size and sha256.
struct Entry {
  char type = '?';  // f, d, l, or ? for anything else
  unsigned mode = 0;
  std::string what;
  bool operator==(const Entry&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Entry& e) {
  char m[8];
  std::snprintf(m, sizeof m, "%04o", e.mode);
  return os << e.type << " " << m << " " << e.what;
}
using Snapshot = std::map<std::string, Entry>;  // path relative to the root

Snapshot snapshot(const std::string& root) {
  Snapshot s;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end; !ec && it != end; it.increment(ec)) {
    auto st = it->symlink_status();
    Entry e;
    e.mode = static_cast<unsigned>(st.permissions()) & 07777u;
    if (fs::is_symlink(st)) {
      e.type = 'l';
      e.what = fs::read_symlink(it->path()).string();
    } else if (fs::is_directory(st)) {
      e.type = 'd';
    } else if (fs::is_regular_file(st)) {
      e.type = 'f';
      auto text = read_text(it->path().string());
      e.what = std::to_string(text.size()) + " " +
               to_hex(sha256(ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size())));
    }
    s[it->path().lexically_relative(root).string()] = e;
  }
  return s;
}

// What differs between two snapshots, one line each (empty: identical).
std::string differences(const Snapshot& before, const Snapshot& after) {
  std::ostringstream out;
  for (const auto& [p, e] : before) {
    auto it = after.find(p);
    if (it == after.end()) out << "  removed " << p << "\n";
    else if (!(it->second == e)) out << "  changed " << p << ": " << e << " -> " << it->second << "\n";
  }
  for (const auto& [p, e] : after)
    if (!before.count(p)) out << "  added " << p << "\n";
  return out.str();
}

// Follows path as the booted card would: symlinks inside the card are
// followed (the last component only when follow_last), absolute targets
// taken from the card's root, ".." never leaves it.
fs::path on_card(const fs::path& card, const std::string& path, bool follow_last = true) {
  int hops = 0;
  std::vector<std::string> done;
  std::vector<std::string> todo;
  for (const auto& c : fs::path(path)) {
    auto s = c.string();
    if (!s.empty() && s != "/" && s != ".") todo.push_back(s);
  }
  std::reverse(todo.begin(), todo.end());
  while (!todo.empty()) {
    auto part = todo.back();
    todo.pop_back();
    if (part == "..") {
      if (!done.empty()) done.pop_back();
      continue;
    }
    fs::path host = card;
    for (const auto& d : done) host /= d;
    host /= part;
    std::error_code ec;
    if ((follow_last || !todo.empty()) && fs::is_symlink(fs::symlink_status(host, ec))) {
      if (++hops > 40) return {};
      auto target = fs::read_symlink(host, ec);
      if (target.is_absolute()) done.clear();
      std::vector<std::string> more;
      for (const auto& c : target) {
        auto s = c.string();
        if (!s.empty() && s != "/" && s != ".") more.push_back(s);
      }
      for (auto it = more.rbegin(); it != more.rend(); ++it) todo.push_back(*it);
      continue;
    }
    done.push_back(part);
  }
  fs::path out = card;
  for (const auto& d : done) out /= d;
  return out;
}

// The ELF machine and interpreter (PT_INTERP) of a little-endian ELF file.
struct Elf {
  unsigned machine = 0;
  std::string interp;
};
std::optional<Elf> read_elf(const std::string& path) {
  auto b = read_text(path);
  if (b.size() < 52 || b.compare(0, 4, "\x7f" "ELF") != 0 || b[5] != 1) return std::nullopt;
  auto u = [&](std::size_t off, int n) {
    std::uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(b.at(off + i));
    return v;
  };
  bool is64 = b[4] == 2;
  Elf e;
  e.machine = static_cast<unsigned>(u(18, 2));
  std::uint64_t phoff = is64 ? u(32, 8) : u(28, 4);
  unsigned phentsize = static_cast<unsigned>(is64 ? u(54, 2) : u(42, 2));
  unsigned phnum = static_cast<unsigned>(is64 ? u(56, 2) : u(44, 2));
  for (unsigned i = 0; i < phnum; ++i) {
    std::size_t ph = phoff + i * phentsize;
    if (ph + phentsize > b.size()) break;
    if (u(ph, 4) != 3) continue;  // PT_INTERP
    std::uint64_t off = is64 ? u(ph + 8, 8) : u(ph + 4, 4);
    std::uint64_t size = is64 ? u(ph + 32, 8) : u(ph + 16, 4);
    if (off + size <= b.size()) e.interp = b.substr(off, size).c_str();
  }
  return e;
}

// The stanzas of a dpkg status file, keyed by "package:arch".
std::map<std::string, std::string> stanzas(const std::string& status) {
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while (pos < status.size()) {
    auto end = status.find("\n\n", pos);
    auto s = status.substr(pos, end == std::string::npos ? std::string::npos : end - pos + 1);
    pos = end == std::string::npos ? status.size() : end + 2;
    std::smatch pkg, arch;
    static const std::regex p("(^|\n)Package: ([^\n]+)"), a("(^|\n)Architecture: ([^\n]+)");
    if (std::regex_search(s, pkg, p)) out[pkg[2].str() + ":" + (std::regex_search(s, arch, a) ? arch[2].str() : "")] = s;
  }
  return out;
}

std::string field(const std::string& stanza, const std::string& name) {
  std::smatch m;
  std::regex r("(^|\n)" + name + ": ([^\n]*)");
  return std::regex_search(stanza, m, r) ? m[2].str() : "";
}

// The .so files the process maps (qemu-user maps the guest's ELF files).
std::set<std::string> mapped_libraries(pid_t pid) {
  std::set<std::string> out;
  std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/maps"));
  std::string line;
  static const std::regex so(R"(.*\.so(\.[0-9]+)*( \(deleted\))?$)");
  while (std::getline(in, line)) {
    auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    auto path = line.substr(slash);
    if (std::regex_match(fs::path(path).filename().string(), so)) out.insert(path);
  }
  return out;
}

void card_flow(const Flavor& f) {
  using clock = std::chrono::steady_clock;
  const std::string dist = dist_dir();
  const std::string node_deb = find_deb(dist, "kairos-node_", "_" + f.arch + ".deb");
  const std::string boards_deb = find_deb(dist, "kairos-boards_", "_all.deb");
  if (node_deb.empty() || boards_deb.empty()) {
    std::string why = dist + " lacks kairos-node_*_" + f.arch + ".deb or kairos-boards_*_all.deb: build them with `tools/package " +
                      f.arch + "` (it also downloads the runtime dependencies into dist/deps-" + f.arch + ")";
    if (required(f.arch)) FAIL() << why << " (KAIROS_REQUIRE_ARCHES names " << f.arch << ")";
    GTEST_SKIP() << why;
  }
  for (const auto& tool : {f.qemu, std::string("mosquitto"), std::string("dpkg-deb")}) {
    auto r = run_command({"sh", "-c", "command -v " + tool}, "/tmp");
    ASSERT_EQ(r.status, 0) << tool << " is not installed (tools/setup " << tool << ")";
  }

  TempDir dir;
  const std::string card = dir.file("card");
  const std::string out = dir.file("out");
  const std::string mesh = "farm";
  const int port = free_port();
  const std::string uri = "tcp://127.0.0.1:" + std::to_string(port);

  // 1. The card, as flashed.
  auto t0 = clock::now();
  auto made = run_command({std::string(KAIROS_SOURCE_DIR) + "/tests/card/make_card", f.card, card}, dir.path(), 600s);
  ASSERT_EQ(made.status, 0) << made.output;
  auto t_card = clock::now() - t0;
  const Snapshot flashed = snapshot(card);
  const std::string flashed_status = read_text(card + "/var/lib/dpkg/status");
  ASSERT_EQ(flashed.at("lib").what, "usr/lib");
  ASSERT_EQ(flashed.at("bin").what, "usr/bin");
  ASSERT_EQ(flashed.at("sbin").what, "usr/sbin");
  ASSERT_FALSE(flashed.count("usr/bin/kairos-node"));

  // 2. Provisioning, as the README has the user type it.
  auto ctl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{bin("kairosctl"), "--mesh", mesh, "--broker", uri, "provision"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  };
  const std::vector<std::vector<std::string>> typed{
      ctl({"--gateway", "gw1", "--out", out}),
      ctl({"--operator", "alice", "--out", out}),
      ctl({"barn-1", "--board", f.board, "--cluster", "barn", "--out", out, "--rootfs", card, "--debs", dist}),
  };
  std::printf("[ card     ] %s (%s) for %s: the user types %zu commands\n", f.card.c_str(), f.arch.c_str(), f.board.c_str(),
              typed.size());
  auto t1 = clock::now();
  for (std::size_t i = 0; i < typed.size(); ++i) {
    std::printf("[ card     ] %zu. %s\n", i + 1, shell_words(typed[i]).c_str());
    auto r = run_command(typed[i], dir.path(), 300s);
    ASSERT_EQ(r.status, 0) << shell_words(typed[i]) << "\n" << r.output;
  }
  auto t_provision = clock::now() - t1;

  // 3. The card after provisioning: nothing it had is broken or replaced.
  const Snapshot provisioned = snapshot(card);
  // Files provisioning owns among those the card had: the dpkg database it registers into.
  const std::set<std::string> owned_before{"var/lib/dpkg/status"};
  for (const auto& [path, was] : flashed) {
    auto it = provisioned.find(path);
    if (it == provisioned.end()) {
      ADD_FAILURE() << path << " was on the card and is gone";
      continue;
    }
    const Entry& now = it->second;
    if (was.type == 'l') {
      EXPECT_EQ(now, was) << "the card's symlink " << path << " changed";
    } else if (was.type == 'd') {
      EXPECT_EQ(now, was) << "the card's directory " << path << " changed";
    } else if (!owned_before.count(path)) {
      EXPECT_EQ(now, was) << "the card's file " << path << " changed";
    }
  }
  fs::path unit_link = fs::path(card) / "etc/systemd/system/multi-user.target.wants/kairos-node.service";
  ASSERT_TRUE(fs::is_symlink(unit_link)) << "kairos-node.service is not enabled on the card";
  EXPECT_EQ(fs::read_symlink(unit_link), "/lib/systemd/system/kairos-node.service");
  fs::path unit = on_card(card, "/etc/systemd/system/multi-user.target.wants/kairos-node.service");
  EXPECT_EQ(unit, fs::path(card) / "usr/lib/systemd/system/kairos-node.service") << "lib -> usr/lib followed inside the card";
  ASSERT_TRUE(fs::is_regular_file(fs::symlink_status(unit))) << unit << " (the enabled unit) is not a file on the card";
  EXPECT_NE(read_text(unit).find("ExecStart=/usr/bin/kairos-node"), std::string::npos) << read_text(unit);
  // The speaker's audio engine may take SCHED_FIFO on the board (docs/DESIGN.md 3.5).
  EXPECT_NE(read_text(unit).find("\nLimitRTPRIO=10\n"), std::string::npos) << read_text(unit);

  struct stat st {};
  ASSERT_EQ(lstat(on_card(card, "/etc/kairos/node.key").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string node_bin = card + "/usr/bin/kairos-node";
  ASSERT_TRUE(fs::is_regular_file(fs::symlink_status(node_bin)));
  auto elf = read_elf(node_bin);
  ASSERT_TRUE(elf) << node_bin << " is not an ELF file";
  EXPECT_EQ(elf->machine, f.elf_machine) << node_bin << " is not built for " << f.arch;
  ASSERT_FALSE(elf->interp.empty());
  EXPECT_TRUE(fs::is_regular_file(on_card(card, elf->interp)))
      << "the node's ELF interpreter " << elf->interp << " is not on the card";
  auto toml = read_text(on_card(card, "/etc/kairos/node.toml"));
  EXPECT_TRUE(std::regex_search(toml, std::regex("(^|\n)board *= *[\"']" + f.board + "[\"']"))) << toml;

  // Registered with the card's dpkg: everything the card had, plus what was installed.
  const std::string status_text = read_text(card + "/var/lib/dpkg/status");
  const auto status = stanzas(status_text);
  for (const auto& [key, stanza] : stanzas(flashed_status)) {
    auto it = status.find(key);
    if (it == status.end()) ADD_FAILURE() << key << " is no longer in the card's dpkg status";
    else EXPECT_EQ(it->second, stanza) << "the card's dpkg stanza of " << key << " changed";
  }
  std::vector<std::string> expect_installed{"kairos-node:" + f.arch, "kairos-boards:all"};
  if (f.arch == "arm64")
    for (const char* dep : {"libmbedcrypto7", "libpaho-mqtt1.3", "libpaho-mqttpp3-1", "libtomlplusplus3"})
      expect_installed.push_back(std::string(dep) + ":" + f.arch);
  for (const auto& key : expect_installed) {
    auto it = status.find(key);
    if (it == status.end()) {
      ADD_FAILURE() << key << " is not in the card's dpkg status:\n" << status_text;
      continue;
    }
    EXPECT_EQ(field(it->second, "Status"), "install ok installed") << it->second;
    std::string pkg = key.substr(0, key.find(':'));
    std::string info = card + "/var/lib/dpkg/info/" + (field(it->second, "Multi-Arch") == "same" ? key : pkg) + ".list";
    EXPECT_TRUE(fs::exists(info)) << info << " (the files of " << key << ") is missing";
    std::istringstream list(read_text(info));
    for (std::string line; std::getline(list, line);) {
      if (line.empty() || line == "/.") continue;
      EXPECT_TRUE(fs::exists(fs::symlink_status(on_card(card, line, false)))) << key << " lists " << line << ", not on the card";
    }
  }
  // What each package brought is on the card as the package has it: its
  // directories (through the card's links), files of the same size, links
  // with the same target.
  std::vector<std::string> debs{node_deb, boards_deb};
  std::error_code ec;
  for (fs::directory_iterator it(dist + "/deps-" + f.arch, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".deb") debs.push_back(it->path().string());
  for (const auto& deb : debs) {
    auto name = run_command({"dpkg-deb", "-f", deb, "Package"}, dir.path());
    auto pkg = name.output.substr(0, name.output.find('\n'));
    if (!status.count(pkg + ":" + f.arch) && !status.count(pkg + ":all")) continue;  // not needed on this card
    auto contents = run_command({"dpkg-deb", "-c", deb}, dir.path());
    ASSERT_EQ(contents.status, 0) << contents.output;
    // Its conffiles are provisioning's to write (the node's config is).
    auto conffiles = run_command({"dpkg-deb", "-I", deb, "conffiles"}, dir.path()).output;
    std::istringstream lines(contents.output);
    for (std::string line; std::getline(lines, line);) {
      // drwxr-xr-x root/root 0 2023-03-29 19:39 ./usr/lib/ (links: "./a -> b")
      std::istringstream words(line);
      std::string perms, owner, size, date, time, path, arrow, target;
      if (!(words >> perms >> owner >> size >> date >> time >> path)) continue;
      words >> arrow >> target;
      if (path.size() > 1 && path.back() == '/') path.pop_back();
      path = path.substr(1);  // "./usr/bin" -> "/usr/bin"
      if (path.empty()) continue;
      auto there = on_card(card, path, perms[0] == 'd');
      auto got = fs::symlink_status(there, ec);
      if (perms[0] == 'd') {
        EXPECT_TRUE(fs::is_directory(got)) << pkg << "'s directory " << path << " is not on the card";
      } else if (perms[0] == 'l') {
        EXPECT_TRUE(fs::is_symlink(got) && fs::read_symlink(there, ec) == target)
            << pkg << "'s link " << path << " -> " << target << " is not on the card"
            << (fs::is_symlink(got) ? " (it points to " + fs::read_symlink(there, ec).string() + ")" : "");
      } else if (conffiles.find(path + "\n") != std::string::npos) {
        EXPECT_TRUE(fs::is_regular_file(got)) << pkg << "'s conffile " << path << " is not on the card";
      } else {
        EXPECT_TRUE(fs::is_regular_file(got) && std::to_string(fs::file_size(there, ec)) == size)
            << pkg << "'s file " << path << " (" << size << " bytes) is not on the card as a file of that size";
      }
    }
  }
  // dpkg itself finds every package's files as their md5sums say; only the
  // node's own config, written by provisioning, differs from its package.
  auto verified = run_command({"dpkg", "--root=" + card, "--verify"}, dir.path(), 120s);
  std::istringstream verify_lines(verified.output);
  for (std::string line; std::getline(verify_lines, line);) {
    if (line.empty() || line.find(" c /etc/kairos/") != std::string::npos) continue;
    ADD_FAILURE() << "dpkg --root=CARD --verify: " << line;
  }

  // The unit as systemd would load it from the card (informative: the
  // build machine's systemd may not know every directive).
  auto verify = run_command({"systemd-analyze", "verify", "--root=" + card, "kairos-node.service"}, dir.path(), 60s);
  std::printf("[ card     ] systemd-analyze verify --root=CARD kairos-node.service: exit %d%s%s\n", verify.status,
              verify.output.empty() ? "" : "\n", verify.output.c_str());

  // 5. Refusals: a board that cannot run this card, a package for another
  // architecture. Each names both architectures and changes nothing.
  const Snapshot card_before = snapshot(card);
  const Snapshot out_before = snapshot(out);
  auto refused = [&](const std::vector<std::string>& argv, const std::string& board_arch) {
    auto r = run_command(argv, dir.path(), 300s);
    std::printf("[ card     ] refused (exit %d): %s\n[ card     ]   %s\n", r.status, shell_words(argv).c_str(),
                r.output.substr(0, r.output.find('\n')).c_str());
    EXPECT_NE(r.status, 0) << shell_words(argv) << "\n" << r.output;
    EXPECT_NE(r.output.find(f.arch), std::string::npos) << "the card's " << f.arch << " is not named:\n" << r.output;
    EXPECT_NE(r.output.find(board_arch), std::string::npos) << board_arch << " is not named:\n" << r.output;
    EXPECT_EQ(differences(card_before, snapshot(card)), "") << "the refusal changed the card";
    EXPECT_EQ(differences(out_before, snapshot(out)), "") << "the refusal changed " << out;
  };
  if (f.arch == "arm64")
    refused(ctl({"barn-2", "--board", kPiZeroW.board, "--cluster", "barn", "--out", out, "--rootfs", card, "--debs", dist}),
            kPiZeroW.arch);
  std::string other_deb = find_deb(dist, "kairos-node_", "_" + f.other_arch + ".deb");
  if (!other_deb.empty())
    refused(ctl({"barn-3", "--board", f.board, "--cluster", "barn", "--out", out, "--rootfs", card, "--deb", other_deb}),
            f.other_arch);
  else
    std::printf("[ card     ] no %s node package in %s: the wrong-package refusal is not tried\n", f.other_arch.c_str(),
                dist.c_str());

  // 4. A real broker on the generated users, the gateway, and the node from the card.
  dir.write("mosquitto.conf", "listener " + std::to_string(port) +
                                  " 127.0.0.1\nallow_anonymous false\npersistence false\nuser root\nset_tcp_nodelay true\n"
                                  "password_file " + out + "/mosquitto/passwd\nacl_file " + out + "/mosquitto/acl\n");
  Process mosq({"mosquitto", "-c", dir.file("mosquitto.conf")}, dir.file("mosquitto.log"));
  ASSERT_TRUE(eventually([&] { return read_text(dir.file("mosquitto.log")).find(" running") != std::string::npos; }, 30s))
      << read_text(dir.file("mosquitto.log"));
  // A bundle names its on-device paths (its etc/kairos is the device's
  // /etc/kairos); point them at this test's copies.
  // The bundle's file: in a folder named after who, or naming who itself.
  auto bundle_file = [&](const std::string& name, const std::string& who) {
    std::string by_path, by_text;
    std::regex names_who("= *[\"']" + who + "[\"']");
    for (fs::recursive_directory_iterator it(out, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().filename() != name || it->path().parent_path().filename() != "kairos") continue;
      auto p = it->path().string();
      if (p.find("/" + who + "/") != std::string::npos) by_path = p;
      else if (std::regex_search(read_text(p), names_who)) by_text = p;
    }
    return by_path.empty() ? by_text : by_path;
  };
  auto localise = [&](const std::string& who, const std::string& file) {
    std::string path = bundle_file(file, who);
    EXPECT_FALSE(path.empty()) << "no " << file << " of " << who << " under " << out;
    std::string etc = fs::path(path).parent_path().string();
    std::string text = read_text(path);
    for (auto [from, to] : {std::pair<std::string, std::string>{"/etc/kairos", etc},
                            {"/var/lib/kairos", dir.path()},
                            {"/usr/share/kairos/boards", std::string(KAIROS_SOURCE_DIR) + "/boards"}}) {
      for (auto p = text.find(from); p != std::string::npos; p = text.find(from, p + to.size())) text.replace(p, from.size(), to);
    }
    std::smatch m;
    static const std::regex password(R"((^|\n)password_file *= *["']([^"']+)["'])");
    if (std::regex_search(text, m, password)) {
      EXPECT_TRUE(fs::exists(m[2].str())) << who << "'s " << file << " names the password file " << m[2] << ", not in its bundle";
    }
    dir.write(who + ".toml", text);
    return dir.file(who + ".toml");
  };
  Process gateway({bin("kairos-gateway"), "--config", localise("gw1", "gateway.toml")}, dir.file("gateway.log"));
  const std::string ctl_config = localise("alice", "kairosctl.toml");

  auto t2 = clock::now();
  // The node runs chrooted into the card, so that every path it opens or
  // stats is the card's: qemu-user's -L prefix redirects open() but not
  // statx(), which 32-bit glibc uses. The static qemu and the host's /proc
  // and /dev are lent to the card in a private mount namespace.
  std::string qemu_host;
  for (const char* d : {"/usr/bin/", "/usr/local/bin/"})
    if (fs::exists(d + f.qemu)) qemu_host = d + f.qemu;
  ASSERT_FALSE(qemu_host.empty()) << "no " << f.qemu;
  fs::copy_file(qemu_host, card + "/kairos-test-qemu", fs::copy_options::overwrite_existing);
  for (const char* d : {"/proc", "/dev"}) fs::create_directories(card + d);
  Process node({"unshare", "--mount", "sh", "-c",
                "mount --bind /proc \"$0/proc\" && mount --bind /dev \"$0/dev\" && exec chroot \"$0\" /kairos-test-qemu -cpu " +
                    f.cpu + " /usr/bin/kairos-node --config /etc/kairos/node.toml",
                card},
               dir.file("node.log"));
  std::string listed;
  bool online = eventually([&] {
    if (!node.running() || !gateway.running()) return true;  // no use waiting: the logs say why
    auto r = run_command({bin("kairosctl"), "--config", ctl_config, "--timeout", "2000", "--json", "nodes"}, dir.path());
    auto at = r.output.find("\"id\":\"barn-1\"");
    if (r.status != 0 || at == std::string::npos) return false;
    listed = r.output.substr(at, r.output.find("\"phase\"", at) - at);
    return listed.find("\"online\":true") != std::string::npos;
  }, 180s) && node.running() && gateway.running();
  auto t_registered = clock::now() - t2;
  ASSERT_TRUE(online) << "barn-1 never came online; kairosctl nodes: " << listed << "\nnode (under " << f.qemu
                      << "):\n" << read_text(dir.file("node.log")) << "\ngateway:\n" << read_text(dir.file("gateway.log"))
                      << "\nmosquitto:\n" << read_text(dir.file("mosquitto.log"));
  EXPECT_NE(listed.find("\"board\":\"" + f.board + "\""), std::string::npos) << "its birth names another board: " << listed;
  EXPECT_NE(listed.find("\"cluster\":\"barn\""), std::string::npos) << listed;

  // Only the card's libraries: every shared object qemu mapped for the node is on the card.
  ASSERT_TRUE(node.running()) << read_text(dir.file("node.log"));
  const std::string card_real = fs::canonical(card).string() + "/";
  std::set<std::string> libs;
  eventually([&] {  // sh execs chroot, which execs qemu: the same process, once the mounts are done
    libs = mapped_libraries(node.pid());
    return !libs.empty();
  }, 10s);
  EXPECT_FALSE(libs.empty()) << "no shared object mapped: is " << node_bin << " static?";
  std::string listing;
  for (const auto& lib : libs) {
    listing += "\n  " + lib;
    EXPECT_EQ(lib.rfind(card_real, 0), 0u) << "the node mapped " << lib << ", which is not on the card";
  }
  std::printf("[ card     ] the node mapped %zu shared objects, all from the card:%s\n", libs.size(), listing.c_str());
  std::printf("[ card     ] %s (%s, %s): card %s, provisioning %s, registered %s after start\n", f.card.c_str(),
              f.arch.c_str(), f.board.c_str(), seconds(t_card).c_str(), seconds(t_provision).c_str(),
              seconds(t_registered).c_str());
}

}  // namespace

TEST(CardFlow, PiZeroWOnRaspberryPiOsLite32RegistersFromAnEmptyCard) { card_flow(kPiZeroW); }

TEST(CardFlow, Pi4OnRaspberryPiOsLite64RegistersFromAnEmptyCard) { card_flow(kPi4); }

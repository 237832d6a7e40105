#include "tools/kairosctl/rootfs.h"

#include "common/io/files.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <deque>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>

extern char** environ;

namespace kairos::ctl {

namespace fs = std::filesystem;

namespace {

// Runs argv without a shell; stdout (and stderr) into out. Exit status, or -1.
int run_capture(std::vector<std::string> argv, std::string& out) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return -1;
  }
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<std::string> components(const std::string& path) {
  std::vector<std::string> out;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '/'))
    if (!part.empty() && part != ".") out.push_back(part);
  return out;
}

// Does the installed `have` satisfy "op want"? dpkg decides.
bool version_satisfies(const std::string& have, const std::string& op, const std::string& want) {
  if (op.empty()) return true;
  static const std::map<std::string, std::string> names{{">=", "ge"}, {"<=", "le"}, {"=", "eq"}, {">>", "gt"}, {"<<", "lt"}};
  std::string out;
  return run_capture({"dpkg", "--compare-versions", have, names.at(op), want}, out) == 0;
}

std::string list_words(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (const auto& w : v) s += (s.empty() ? "" : sep) + w;
  return s;
}

std::string arch_words(const std::vector<std::string>& arches) {
  std::vector<std::string> named;
  for (const auto& a : arches)
    named.push_back(a == "armhf" ? "armhf (Raspberry Pi OS 32-bit)" : a == "arm64" ? "arm64 (64-bit OS)" : a);
  std::string s;
  for (std::size_t i = 0; i < named.size(); ++i) s += (i == 0 ? "" : i + 1 == named.size() ? " or " : ", ") + named[i];
  return s;
}

// Files dpkg says other packages own, as host paths inside the card.
std::map<fs::path, std::string> owned_files(const fs::path& root) {
  std::map<fs::path, std::string> owner;
  std::error_code ec;
  fs::path info = card_path(root, "/var/lib/dpkg/info");
  for (fs::directory_iterator it(info, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() != ".list") continue;
    std::string pkg = it->path().stem().string();
    std::istringstream in(read_file_or_empty(it->path()));
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line == "/.") continue;
      owner.emplace(card_path(root, line, false), pkg);
    }
  }
  return owner;
}

}  // namespace

fs::path card_path(const fs::path& root, const std::string& path, bool follow_last) {
  std::deque<std::string> todo;
  for (auto& c : components(path)) todo.push_back(c);
  std::vector<std::string> cur;
  int hops = 0;
  while (!todo.empty()) {
    std::string part = todo.front();
    todo.pop_front();
    if (part == "..") {
      if (!cur.empty()) cur.pop_back();
      continue;
    }
    fs::path host = root;
    for (const auto& c : cur) host /= c;
    host /= part;
    std::error_code ec;
    bool last = todo.empty();
    if ((!last || follow_last) && fs::is_symlink(fs::symlink_status(host, ec))) {
      if (++hops > 40) throw Refusal("too many levels of symlinks at " + host.string());
      std::string target = fs::read_symlink(host, ec).string();
      auto parts = components(target);
      if (!target.empty() && target.front() == '/') cur.clear();
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) todo.push_front(*it);
      continue;
    }
    cur.push_back(part);
  }
  fs::path out = root;
  for (const auto& c : cur) out /= c;
  return out;
}

Card read_card(const fs::path& root) {
  Card c;
  c.root = root;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw Refusal(root.string() + " is not a directory: mount the card's root partition and name it", 2);
  if (fs::exists(root / "cmdline.txt", ec) || fs::exists(root / "config.txt", ec))
    throw Refusal(root.string() + " is the card's boot partition (it has config.txt): mount the second, larger partition "
                  "(the root file system, ext4) and name that", 2);
  if (!fs::is_directory(card_path(root, "/etc"), ec))
    throw Refusal(root.string() + " does not look like a root file system (no etc/)", 2);

  fs::path status = card_path(root, "/var/lib/dpkg/status");
  c.status_text = read_file_or_empty(status);
  c.status = deb::parse_stanzas(c.status_text);
  std::string dpkg_arch;
  for (const char* pkg : {"dpkg", "libc6"}) {
    for (const auto& s : c.status)
      if (s.get("Package") == pkg && deb::is_installed(s) && s.get("Architecture") != "all") dpkg_arch = s.get("Architecture");
    if (!dpkg_arch.empty()) {
      c.arch_source = "var/lib/dpkg/status, package " + std::string(pkg);
      break;
    }
  }
  std::string elf_arch, elf_file;
  for (const char* bin : {"/usr/bin/dpkg", "/bin/sh", "/usr/bin/env"}) {
    std::ifstream in(card_path(root, bin), std::ios::binary);
    std::array<std::uint8_t, 52> h{};
    if (in.read(reinterpret_cast<char*>(h.data()), h.size())) {
      elf_arch = deb::elf_debian_arch(h);
      elf_file = bin;
      if (!elf_arch.empty()) break;
    }
  }
  if (!dpkg_arch.empty() && !elf_arch.empty() && dpkg_arch != elf_arch)
    throw Refusal("the card at " + root.string() + " contradicts itself: its dpkg database says " + dpkg_arch + " but " +
                  elf_file + " is built for " + elf_arch);
  c.arch = !dpkg_arch.empty() ? dpkg_arch : elf_arch;
  if (dpkg_arch.empty() && !elf_arch.empty()) c.arch_source = "the ELF header of " + elf_file;
  if (c.arch.empty())
    throw Refusal("cannot tell the architecture of the card at " + root.string() +
                  ": it has no var/lib/dpkg/status and no /bin/sh to read; is this the root partition of a Raspberry Pi OS "
                  "or Debian image?", 2);

  std::istringstream os(read_file_or_empty(card_path(root, "/etc/os-release")));
  std::string line;
  auto value = [](std::string v) {
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'')) v = v.substr(1, v.size() - 2);
    return v;
  };
  while (std::getline(os, line)) {
    if (line.rfind("PRETTY_NAME=", 0) == 0) c.os = value(line.substr(12));
    if (line.rfind("ID=", 0) == 0) c.os_id = value(line.substr(3));
  }
  return c;
}

DebFile read_deb(const fs::path& path) {
  std::string out;
  if (run_capture({"dpkg-deb", "-f", path.string()}, out) != 0) throw Refusal("cannot read the package " + path.string() + ": " + out);
  auto stanzas = deb::parse_stanzas(out);
  if (stanzas.empty() || stanzas[0].get("Package").empty()) throw Refusal(path.string() + " has no control fields");
  return {path, stanzas[0]};
}

RootfsPlan::~RootfsPlan() {
  std::error_code ec;
  if (!scratch_.empty()) fs::remove_all(scratch_, ec);
}

RootfsPlan plan_rootfs(const RootfsRequest& r, Card card_read) {
  RootfsPlan plan;
  plan.card_ = std::move(card_read);
  const Card& card = plan.card_;
  const std::string where = "the card at " + r.root.string() + " is " + card.arch + " (from " + card.arch_source + ")";

  // The board must run the card's architecture, and the package must be built for it.
  bool any = std::find(r.board_arches.begin(), r.board_arches.end(), "native") != r.board_arches.end();
  if (!any && std::find(r.board_arches.begin(), r.board_arches.end(), card.arch) == r.board_arches.end())
    throw Refusal("board " + r.board + " runs " + arch_words(r.board_arches) + ", but " + where +
                  ": flash the image the README names for this board, or name the board this card is for");
  DebFile node = read_deb(r.node_deb);
  if (node.control.get("Architecture") != card.arch)
    throw Refusal(r.node_deb.string() + " is built for " + node.control.get("Architecture") + ", but " + where +
                  ": use kairos-node_*_" + card.arch + ".deb (tools/package " + card.arch + ")");
  DebFile boards = read_deb(r.boards_deb);

  // Dependencies: installed on the card, brought along, or missing.
  std::map<std::string, DebFile> available;
  std::error_code ec;
  for (fs::directory_iterator it(r.deps_dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() != ".deb") continue;
    DebFile d = read_deb(it->path());
    std::string a = d.control.get("Architecture");
    if (a == card.arch || a == "all") available.emplace(d.control.get("Package"), d);
  }
  std::vector<DebFile> chosen{boards, node};
  std::vector<std::string> missing;
  std::deque<std::pair<std::string, deb::Stanza>> todo{{node.control.get("Package"), node.control},
                                                        {boards.control.get("Package"), boards.control}};
  // What the card has installed, by the names it answers to (its own and
  // what it Provides, the latter without a version), read once.
  std::multimap<std::string, std::pair<const deb::Stanza*, bool>> installed;  // name -> (stanza, by Provides)
  for (const auto& st : card.status) {
    std::string a = st.get("Architecture");
    if (!deb::is_installed(st) || (a != card.arch && a != "all")) continue;
    installed.emplace(st.get("Package"), std::pair{&st, false});
    try {
      for (const auto& p : deb::parse_depends(st.get("Provides")))
        for (const auto& pr : p) installed.emplace(pr.name, std::pair{&st, true});
    } catch (const std::invalid_argument&) {
      // A Provides the card's dpkg wrote but this reader does not take: that package provides nothing here.
    }
  }
  std::set<std::string> seen_groups;
  while (!todo.empty()) {
    auto [who, control] = todo.front();
    todo.pop_front();
    std::string field = control.get("Pre-Depends");
    if (!control.get("Depends").empty()) field += (field.empty() ? "" : ", ") + control.get("Depends");
    std::vector<std::vector<deb::Relation>> groups;
    try {
      groups = deb::parse_depends(field);
    } catch (const std::invalid_argument& e) {
      throw Refusal(who + ": " + e.what());
    }
    for (const auto& group : groups) {
      std::string group_text;
      for (const auto& alt : group) group_text += (group_text.empty() ? "" : " | ") + alt.text();
      if (!seen_groups.insert(group_text).second) continue;
      bool ok = false;
      std::string why_not;
      for (const auto& alt : group) {
        auto [first, last] = installed.equal_range(alt.name);
        for (auto it = first; it != last; ++it) {
          const auto& [st, by_provides] = it->second;
          if (by_provides ? alt.op.empty() : version_satisfies(st->get("Version"), alt.op, alt.version)) ok = true;
          else if (!by_provides) why_not = alt.name + " " + st->get("Version") + " is on the card";
        }
        for (const auto& c : chosen)
          if (c.control.get("Package") == alt.name && version_satisfies(c.control.get("Version"), alt.op, alt.version)) ok = true;
        if (ok) break;
      }
      if (ok) continue;
      const DebFile* bring = nullptr;
      for (const auto& alt : group) {
        auto it = available.find(alt.name);
        if (it != available.end() && version_satisfies(it->second.control.get("Version"), alt.op, alt.version)) {
          bring = &it->second;
          break;
        }
      }
      if (!bring) {
        missing.push_back(group_text + (why_not.empty() ? "" : " (" + why_not + ")") + " for " + who);
        continue;
      }
      chosen.insert(chosen.begin(), *bring);  // dependencies first
      todo.emplace_back(bring->control.get("Package"), bring->control);
    }
  }
  if (!missing.empty())
    throw Refusal("the card at " + r.root.string() + " (" + (card.os.empty() ? card.arch : card.os + ", " + card.arch) +
                  ") lacks packages kairos-node needs, and " + r.deps_dir.string() + " has no " + card.arch +
                  " .deb for them:\n  " + list_words(missing, "\n  ") + "\nrun tools/package " + card.arch +
                  " (it downloads them into dist/deps-" + card.arch + "), or give --debs DIR, or install them on the Pi "
                  "with apt after its first boot");
  plan.packages_ = chosen;

  // Unpack each package into scratch space, then plan it onto the card.
  char tmpl[] = "/tmp/kairos-rootfs-XXXXXX";
  if (!::mkdtemp(tmpl)) throw Refusal("cannot create a scratch directory in /tmp");
  plan.scratch_ = tmpl;
  std::map<fs::path, std::size_t> at;  // dest -> index in ops_ (a later op for one dest replaces the earlier)
  auto add = [&](RootfsPlan::Op op) {
    auto it = at.find(op.dest);
    if (it != at.end()) plan.ops_[it->second] = std::move(op);
    else {
      at.emplace(op.dest, plan.ops_.size());
      plan.ops_.push_back(std::move(op));
    }
  };
  std::set<std::string> ours;  // packages being installed: their own old files may be replaced
  for (const auto& p : chosen) ours.insert(p.control.get("Package"));
  std::optional<std::map<fs::path, std::string>> owners;
  std::string status = card.status_text;
  fs::path info = card_path(r.root, "/var/lib/dpkg/info");
  int n = 0;
  for (const auto& pkg : chosen) {
    fs::path tree = plan.scratch_ / std::to_string(n);
    fs::path ctl = plan.scratch_ / (std::to_string(n++) + ".control");
    std::string out;
    if (run_capture({"dpkg-deb", "-x", pkg.path.string(), tree.string()}, out) != 0 ||
        run_capture({"dpkg-deb", "-e", pkg.path.string(), ctl.string()}, out) != 0)
      throw Refusal("cannot unpack " + pkg.path.string() + ": " + out);
    std::vector<fs::path> entries;
    for (fs::recursive_directory_iterator it(tree, fs::directory_options::none, ec), end; !ec && it != end; it.increment(ec))
      entries.push_back(it->path());
    std::sort(entries.begin(), entries.end());
    std::string list = "/.\n";
    for (const auto& e : entries) {
      std::string rel = "/" + e.lexically_relative(tree).string();  // not fs::relative: it follows symlinks
      list += rel + "\n";
      auto st = fs::symlink_status(e);
      auto mode = static_cast<unsigned>(st.permissions()) & 07777u;
      if (fs::is_directory(st)) {
        fs::path dest = card_path(r.root, rel, true);
        auto have = fs::status(dest, ec);
        if (fs::exists(have) && !fs::is_directory(have))
          throw Refusal(pkg.control.get("Package") + " needs the directory " + rel + ", but the card has a file at " + dest.string());
        if (!fs::exists(have)) add({RootfsPlan::Op::Kind::dir, dest, {}, {}, mode});
        continue;
      }
      fs::path dest = card_path(r.root, rel, false);
      auto have = fs::symlink_status(dest, ec);
      bool link = fs::is_symlink(st);
      std::string target = link ? fs::read_symlink(e).string() : "";
      if (fs::exists(have) || fs::is_symlink(have)) {
        if (fs::is_directory(have))
          throw Refusal(pkg.control.get("Package") + " installs " + rel + ", but the card has a directory at " + dest.string() +
                        ": it is left alone, so nothing was installed");
        if (fs::is_symlink(have)) {
          if (link && fs::read_symlink(dest, ec).string() == target) continue;
          throw Refusal(pkg.control.get("Package") + " installs " + rel + ", but the card has a symlink at " + dest.string() +
                        " (-> " + fs::read_symlink(dest, ec).string() + "): it is left alone, so nothing was installed");
        }
        if (!owners) owners = owned_files(r.root);
        auto o = owners->find(dest);
        if (o != owners->end()) {
          std::string owner = o->second.substr(0, o->second.find(':'));
          if (!ours.count(owner))
            throw Refusal(pkg.control.get("Package") + " installs " + rel + ", which belongs to the card's package " + owner +
                          ": nothing was installed");
        }
        if (link) throw Refusal(pkg.control.get("Package") + " installs the symlink " + rel + ", but the card has a file there");
      }
      if (link) add({RootfsPlan::Op::Kind::link, dest, {}, target, 0});
      else add({RootfsPlan::Op::Kind::file, dest, e, {}, mode});
    }
    // Registered with the card's dpkg, so that apt on the Pi knows the files.
    deb::Stanza s;
    s.set("Package", pkg.control.get("Package"));
    s.set("Status", "install ok installed");
    for (const auto& [k, v] : pkg.control.fields)
      if (k != "Package") s.set(k, v);
    std::string md5sums = read_file_or_empty(ctl / "md5sums");
    std::istringstream conf(read_file_or_empty(ctl / "conffiles"));
    std::string conffiles, line;
    while (std::getline(conf, line)) {
      if (line.empty()) continue;
      std::string sum = "newconffile";
      std::istringstream sums(md5sums);
      std::string sl;
      while (std::getline(sums, sl))
        if (sl.size() > 34 && !line.empty() && std::string_view(sl).substr(34) == std::string_view(line).substr(1))
          sum = sl.substr(0, 32);
      conffiles += "\n" + line + " " + sum;
    }
    if (!conffiles.empty()) s.set("Conffiles", conffiles);
    status = deb::status_with(status, s);
    std::string key = deb::package_key(s);
    add({RootfsPlan::Op::Kind::text, info / (key + ".list"), {}, list, 0644});
    if (!md5sums.empty()) add({RootfsPlan::Op::Kind::text, info / (key + ".md5sums"), {}, md5sums, 0644});
    for (const char* script : {"preinst", "postinst", "prerm", "postrm"})
      if (fs::exists(ctl / script)) add({RootfsPlan::Op::Kind::file, info / (key + "." + script), ctl / script, {}, 0755});
  }

  // The bundle, the enabled unit, and Wi-Fi power save off.
  for (const auto& [path, content] : r.files) add({RootfsPlan::Op::Kind::text, card_path(r.root, path, false), {}, content.first, content.second});
  auto wants = card_path(r.root, "/etc/systemd/system/multi-user.target.wants");
  add({RootfsPlan::Op::Kind::link, wants / "kairos-node.service", {}, "/lib/systemd/system/kairos-node.service", 0});
  if (r.wifi) {
    add({RootfsPlan::Op::Kind::text, card_path(r.root, "/etc/NetworkManager/conf.d/kairos-wifi-powersave.conf", false), {},
         "# Written by kairosctl provision: Wi-Fi power save adds latency jitter.\n[connection]\nwifi.powersave = 2\n", 0644});
    add({RootfsPlan::Op::Kind::text, card_path(r.root, "/etc/systemd/system/kairos-wifi-powersave.service", false), {},
         "[Unit]\nDescription=Wi-Fi power save off for Kairos mesh\nAfter=sys-subsystem-net-devices-wlan0.device\n"
         "BindsTo=sys-subsystem-net-devices-wlan0.device\n\n[Service]\nType=oneshot\n"
         "ExecStart=-/sbin/iw dev wlan0 set power_save off\n\n[Install]\nWantedBy=multi-user.target\n",
         0644});
    add({RootfsPlan::Op::Kind::link, wants / "kairos-wifi-powersave.service", {}, "/etc/systemd/system/kairos-wifi-powersave.service", 0});
  }
  for (const auto& op : plan.ops_) {
    if (op.kind != RootfsPlan::Op::Kind::text && op.kind != RootfsPlan::Op::Kind::link) continue;
    auto have = fs::symlink_status(op.dest, ec);
    if (fs::is_directory(have)) throw Refusal("the card has a directory at " + op.dest.string() + ": nothing was installed");
    if (op.kind == RootfsPlan::Op::Kind::text && fs::is_symlink(have))
      throw Refusal("the card has a symlink at " + op.dest.string() + ": it is left alone, so nothing was installed");
    if (op.kind == RootfsPlan::Op::Kind::link && fs::exists(have) && !fs::is_symlink(have))
      throw Refusal("the card has a file at " + op.dest.string() + " where a link belongs: nothing was installed");
    if (op.kind == RootfsPlan::Op::Kind::link && fs::is_symlink(have) && fs::read_symlink(op.dest, ec).string() != op.text)
      throw Refusal(op.dest.string() + " on the card points to " + fs::read_symlink(op.dest, ec).string() + ", not " + op.text +
                    ": remove it and provision again");
  }
  add({RootfsPlan::Op::Kind::text, card_path(r.root, "/var/lib/dpkg/status"), {}, status, 0644});
  return plan;
}

void RootfsPlan::apply(Transaction& tx) const {
  for (const auto& op : ops_) {
    switch (op.kind) {
      case Op::Kind::dir: tx.make_dirs(op.dest, op.mode); break;
      case Op::Kind::file: tx.copy(op.source, op.dest, op.mode); break;
      case Op::Kind::text: tx.write(op.dest, op.text, op.mode); break;
      case Op::Kind::link: tx.symlink(op.dest, op.text); break;
    }
  }
}

}  // namespace kairos::ctl

#include "tools/kairosctl/provision.h"

#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/core/config.h"
#include "common/core/topic.h"
#include "common/io/files.h"
#include "common/io/keygen.h"
#include "firmware/node_config.h"

namespace kairos::ctl {

namespace fs = std::filesystem;

namespace {

std::string base64(ByteView b) {
  std::size_t n = 0;
  mbedtls_base64_encode(nullptr, 0, &n, b.data(), b.size());
  std::string out(n, '\0');
  if (mbedtls_base64_encode(reinterpret_cast<unsigned char*>(out.data()), out.size(), &n, b.data(), b.size()) != 0)
    throw std::runtime_error("base64 failed");
  out.resize(n);
  return out;
}

std::string root(std::string_view mesh) { return "kairos/v1/" + std::string(mesh) + "/"; }

std::string frame(std::string_view kind, std::string_view name, const std::string& body) {
  return "# kairos " + std::string(kind) + " " + std::string(name) + " begin\n" + body + "# kairos " +
         std::string(kind) + " " + std::string(name) + " end\n";
}

std::string read_or_empty(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& text, unsigned mode) {
  fs::create_directories(p.parent_path());
  write_file_atomic(p.string(), text, mode);
  ::chmod(p.c_str(), mode);
  std::printf("  wrote %s\n", p.c_str());
}

// The key at path: kept when it exists (unless new_key), created otherwise.
Key ensure_key(const fs::path& path, bool new_key) {
  if (fs::exists(path) && !new_key) {
    std::printf("  kept the existing key %s\n", path.c_str());
    return load_key_file(path.string());
  }
  if (fs::exists(path)) std::printf("  REPLACING the key %s (--new-key)\n", path.c_str());
  Key k = generate_key();
  write_file(path, to_hex(k.bytes) + "\n", 0600);
  return k;
}

void add_broker_user(const fs::path& mosquitto_dir, std::string_view user, std::string_view password,
                     std::string_view kind, const std::string& acl_block) {
  auto salt = random_bytes(12);
  auto passwd = mosquitto_dir / "passwd";
  write_file(passwd, replace_password_line(read_or_empty(passwd), user, mosquitto_hash(password, salt)), 0600);
  auto acl = mosquitto_dir / "acl";
  write_file(acl, replace_acl_block(read_or_empty(acl), kind, user, acl_block), 0644);
}

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

node::BoardConfig load_board(const ProvisionArgs& a) {
  std::string dir = a.boards_dir.empty() ? KAIROS_BOARDS_DIR : a.boards_dir;
  std::string file = dir + "/" + a.board + ".toml";
  std::string canonical;
  return node::parse_board(read_config_file(file), file, a.board, canonical);
}

std::string deb_arch(const std::string& board_arch) {
  if (board_arch != "native") return board_arch;
  FILE* p = ::popen("dpkg --print-architecture", "r");
  char buf[32] = {};
  if (p && std::fgets(buf, sizeof buf, p)) {
    ::pclose(p);
    std::string s = buf;
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
  }
  if (p) ::pclose(p);
  return "amd64";
}

// Runs a program without a shell; its exit status, or -1.
int run(std::vector<std::string> argv) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Installs the bundle, the package and the unit onto a mounted root.
int install_rootfs(const ProvisionArgs& a, const node::BoardConfig& board, const fs::path& bundle) {
  fs::path rootfs = a.rootfs;
  if (!fs::is_directory(rootfs / "etc")) {
    std::fprintf(stderr, "kairosctl: %s does not look like a root file system (no etc/)\n", rootfs.c_str());
    return 2;
  }
  std::string arch = deb_arch(board.arch);
  fs::path deb = a.deb;
  std::error_code ec;
  if (deb.empty()) {
    for (const auto& e : fs::directory_iterator(a.debs_dir, ec)) {
      auto n = e.path().filename().string();
      if (n.rfind("kairos-node_", 0) == 0 && n.size() > arch.size() + 4 &&
          n.compare(n.size() - arch.size() - 4, std::string::npos, arch + ".deb") == 0)
        deb = e.path();
    }
  }
  if (deb.empty() || !fs::exists(deb)) {
    std::fprintf(stderr, "kairosctl: no kairos-node package for %s (board %s) in %s: run tools/package %s, or give --deb FILE\n",
                 arch.c_str(), a.board.c_str(), a.debs_dir.c_str(), arch.c_str());
    return 1;
  }
  std::string deb_arch_field;
  if (FILE* p = ::popen(("dpkg-deb -f '" + deb.string() + "' Architecture").c_str(), "r")) {
    char buf[32] = {};
    if (std::fgets(buf, sizeof buf, p)) deb_arch_field = buf;
    ::pclose(p);
    while (!deb_arch_field.empty() && std::isspace(static_cast<unsigned char>(deb_arch_field.back()))) deb_arch_field.pop_back();
  }
  if (deb_arch_field != arch) {
    std::fprintf(stderr, "kairosctl: %s is for '%s' but board %s needs %s\n", deb.c_str(), deb_arch_field.c_str(),
                 a.board.c_str(), arch.c_str());
    return 1;
  }
  if (run({"dpkg-deb", "-x", deb.string(), rootfs.string()}) != 0) {
    std::fprintf(stderr, "kairosctl: dpkg-deb -x %s failed\n", deb.c_str());
    return 1;
  }
  std::printf("  unpacked %s into %s\n", deb.filename().c_str(), rootfs.c_str());
  fs::path boards_deb;
  for (const auto& e : fs::directory_iterator(deb.parent_path().empty() ? fs::path(".") : deb.parent_path(), ec))
    if (e.path().filename().string().rfind("kairos-boards_", 0) == 0) boards_deb = e.path();
  if (boards_deb.empty() || run({"dpkg-deb", "-x", boards_deb.string(), rootfs.string()}) != 0) {
    std::fprintf(stderr, "kairosctl: no kairos-boards package beside %s: run tools/package\n", deb.c_str());
    return 1;
  }
  std::printf("  unpacked %s\n", boards_deb.filename().c_str());
  for (const auto& e : fs::directory_iterator(bundle / "etc/kairos")) {
    auto mode = e.path().extension() == ".toml" ? 0644u : 0600u;
    write_file(rootfs / "etc/kairos" / e.path().filename(), read_or_empty(e.path()), mode);
  }
  auto wants = rootfs / "etc/systemd/system/multi-user.target.wants";
  fs::create_directories(wants);
  fs::remove(wants / "kairos-node.service");
  fs::create_symlink("/lib/systemd/system/kairos-node.service", wants / "kairos-node.service");
  std::printf("  enabled kairos-node.service\n");
  if (board.wifi) {
    // NetworkManager (Raspberry Pi OS 12 and later); a oneshot unit with iw for older images.
    write_file(rootfs / "etc/NetworkManager/conf.d/kairos-wifi-powersave.conf",
               "# Written by kairosctl provision: Wi-Fi power save adds latency jitter.\n"
               "[connection]\nwifi.powersave = 2\n",
               0644);
    write_file(rootfs / "etc/systemd/system/kairos-wifi-powersave.service",
               "[Unit]\nDescription=Wi-Fi power save off for Kairos mesh\nAfter=sys-subsystem-net-devices-wlan0.device\n"
               "BindsTo=sys-subsystem-net-devices-wlan0.device\n\n[Service]\nType=oneshot\n"
               "ExecStart=-/sbin/iw dev wlan0 set power_save off\n\n[Install]\nWantedBy=multi-user.target\n",
               0644);
    fs::remove(wants / "kairos-wifi-powersave.service");
    fs::create_symlink("/etc/systemd/system/kairos-wifi-powersave.service", wants / "kairos-wifi-powersave.service");
    std::printf("  Wi-Fi power save off (board %s)\n", a.board.c_str());
  }
  return 0;
}

}  // namespace

std::string mosquitto_hash(std::string_view password, ByteView salt, int iterations) {
  unsigned char hash[64];
  mbedtls_md_context_t md;
  mbedtls_md_init(&md);
  int rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA512), 1);
  if (rc == 0)
    rc = mbedtls_pkcs5_pbkdf2_hmac(&md, reinterpret_cast<const unsigned char*>(password.data()), password.size(),
                                   salt.data(), salt.size(), static_cast<unsigned>(iterations), sizeof hash, hash);
  mbedtls_md_free(&md);
  if (rc != 0) throw std::runtime_error("PBKDF2 failed");
  return "$7$" + std::to_string(iterations) + "$" + base64(salt) + "$" + base64(ByteView(hash, sizeof hash));
}

std::string acl_node(std::string_view mesh, std::string_view cluster, std::string_view node) {
  std::string base = root(mesh) + std::string(cluster) + "/" + std::string(node) + "/";
  std::string b = "user " + std::string(node) + "\n";
  for (const char* kind : {"birth", "state", "hb", "phase", "event", "ack", "result"}) b += "topic write " + base + kind + "\n";
  b += "topic read " + base + "cmd\n";
  b += "topic read " + root(mesh) + "_mesh/state\n";
  b += "topic read " + root(mesh) + "_gw/+/state\n";
  return frame("node", node, b);
}

std::string acl_gateway(std::string_view mesh, std::string_view gateway) {
  return frame("gateway", gateway, "user " + std::string(gateway) + "\ntopic readwrite " + root(mesh) + "#\n");
}

std::string acl_operator(std::string_view mesh, std::string_view name) {
  return frame("operator", name,
               "user " + std::string(name) + "\ntopic write " + root(mesh) + "_ctl/req\ntopic read " + root(mesh) +
                   "_ctl/resp/#\ntopic read " + root(mesh) + "_mesh/state\ntopic read " + root(mesh) + "_alert\ntopic read " +
                   root(mesh) + "_ball/#\n");
}

std::string replace_acl_block(std::string_view text, std::string_view kind, std::string_view name,
                              std::string_view block) {
  std::string begin = "# kairos " + std::string(kind) + " " + std::string(name) + " begin\n";
  std::string end = "# kairos " + std::string(kind) + " " + std::string(name) + " end\n";
  std::string s(text);
  auto b = s.find(begin);
  auto e = b == std::string::npos ? std::string::npos : s.find(end, b);
  if (b != std::string::npos && e != std::string::npos) return s.replace(b, e + end.size() - b, block);
  if (!s.empty() && s.back() != '\n') s.push_back('\n');
  return s + std::string(block);
}

std::string replace_password_line(std::string_view text, std::string_view user, std::string_view hash) {
  std::string out;
  std::string prefix = std::string(user) + ":";
  std::istringstream in{std::string(text)};
  std::string line;
  bool replaced = false;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) {
      out += prefix + std::string(hash) + "\n";
      replaced = true;
    } else if (!line.empty()) {
      out += line + "\n";
    }
  }
  if (!replaced) out += prefix + std::string(hash) + "\n";
  return out;
}

std::string parse_provision_args(const std::vector<std::string>& args, ProvisionArgs& a) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& k = args[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= args.size()) return false;
      out = args[++i];
      return true;
    };
    bool ok = true;
    if (k == "--force") a.force = true;
    else if (k == "--new-key") a.new_key = true;
    else if (k == "--gateway") { a.role = "gateway"; ok = value(a.name); }
    else if (k == "--operator") { a.role = "operator"; ok = value(a.name); }
    else if (k == "--board") ok = value(a.board);
    else if (k == "--cluster") ok = value(a.cluster);
    else if (k == "--mesh") ok = value(a.mesh);
    else if (k == "--broker") ok = value(a.broker);
    else if (k == "--out") ok = value(a.out);
    else if (k == "--keys-dir") ok = value(a.keys_dir);
    else if (k == "--mosquitto-dir") ok = value(a.mosquitto_dir);
    else if (k == "--boards") ok = value(a.boards_dir);
    else if (k == "--rootfs") ok = value(a.rootfs);
    else if (k == "--deb") ok = value(a.deb);
    else if (k == "--debs") ok = value(a.debs_dir);
    else if (!k.empty() && k[0] != '-' && a.name.empty()) a.name = k;
    else return "provision: unknown argument '" + k + "'";
    if (!ok) return "provision: " + k + " needs a value";
  }
  if (a.name.empty()) return "provision: name the node (kairosctl provision NODE ...), or give --gateway ID / --operator NAME";
  for (const auto* n : {&a.name, &a.cluster, &a.mesh})
    if (!valid_name(*n)) return "provision: '" + *n + "' is not a valid name (" + std::string(kNameRule) + ")";
  if (!a.rootfs.empty() && a.role != "node") return "provision: --rootfs installs a node";
  return "";
}

int provision(const ProvisionArgs& a) {
  fs::path out = a.out;
  fs::path keys = a.keys_dir.empty() ? out / "gateway/etc/kairos/keys" : fs::path(a.keys_dir);
  fs::path mosq = a.mosquitto_dir.empty() ? out / "mosquitto" : fs::path(a.mosquitto_dir);
  fs::path bundle = out / a.name;
  try {
    if (a.role == "gateway" || a.role == "operator") {
      std::printf("provisioning %s %s (mesh %s)\n", a.role.c_str(), a.name.c_str(), a.mesh.c_str());
      ensure_key(keys / "broadcast.key", false);
      ensure_key(keys / "operator.key", false);
      std::string password = generate_password();
      write_file(bundle / "etc/kairos/broker.password", password + "\n", 0600);
      if (a.role == "gateway") {
        add_broker_user(mosq, a.name, password, "gateway", acl_gateway(a.mesh, a.name));
        write_file(bundle / "etc/kairos/gateway.toml",
                   "[gateway]\nid = " + toml_string(a.name) + "\nmesh = " + toml_string(a.mesh) +
                       "\nkeys_dir = \"/etc/kairos/keys\"\ndatabase = \"/var/lib/kairos/gateway.db\"\n\n[broker]\nuri = " +
                       toml_string(a.broker) + "\nusername = " + toml_string(a.name) +
                       "\npassword_file = \"/etc/kairos/broker.password\"\n",
                   0644);
      } else {
        add_broker_user(mosq, a.name, password, "operator", acl_operator(a.mesh, a.name));
        write_file(bundle / "etc/kairos/operator.key", read_or_empty(keys / "operator.key"), 0600);
        write_file(bundle / "etc/kairos/kairosctl.toml",
                   "[broker]\nuri = " + toml_string(a.broker) + "\nusername = " + toml_string(a.name) +
                       "\npassword_file = \"/etc/kairos/broker.password\"\n\n[ctl]\nmesh = " + toml_string(a.mesh) +
                       "\nkey_file = \"/etc/kairos/operator.key\"\n",
                   0644);
      }
      return 0;
    }

    auto board = load_board(a);
    fs::path gateway_key = keys / "nodes" / (a.name + ".key");
    if (!a.force && (fs::exists(gateway_key) || fs::exists(bundle))) {
      std::fprintf(stderr,
                   "kairosctl: node %s is already provisioned (%s exists): use another name, or --force to rewrite "
                   "its config and credentials (the key is kept unless --new-key)\n",
                   a.name.c_str(), fs::exists(gateway_key) ? gateway_key.c_str() : bundle.c_str());
      return 1;
    }
    std::printf("provisioning node %s (board %s, %s, cluster %s, mesh %s)\n", a.name.c_str(), a.board.c_str(),
                board.arch.c_str(), a.cluster.c_str(), a.mesh.c_str());
    Key key = ensure_key(gateway_key, a.new_key);
    write_file(bundle / "etc/kairos/node.key", to_hex(key.bytes) + "\n", 0600);
    std::string password = generate_password();
    write_file(bundle / "etc/kairos/broker.password", password + "\n", 0600);
    add_broker_user(mosq, a.name, password, "node", acl_node(a.mesh, a.cluster, a.name));
    write_file(bundle / "etc/kairos/node.toml",
               "# Written by kairosctl provision for board " + a.board + ".\n[node]\nid = " + toml_string(a.name) +
                   "\ncluster = " + toml_string(a.cluster) + "\nmesh = " + toml_string(a.mesh) + "\nboard = " +
                   toml_string(a.board) +
                   "\nboards_dir = \"/usr/share/kairos/boards\"\nkey_file = \"/etc/kairos/node.key\"\n\n[broker]\nuri = " +
                   toml_string(a.broker) + "\nusername = " + toml_string(a.name) +
                   "\npassword_file = \"/etc/kairos/broker.password\"\n\n[inputs.demo]\nkind = \"synthetic\"\n"
                   "waveform = \"sine\"\n",
               0644);
    if (!a.rootfs.empty()) return install_rootfs(a, board, bundle);
    return 0;
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "kairosctl: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kairosctl: provision: %s\n", e.what());
    return 1;
  }
}

}  // namespace kairos::ctl

#include "tools/kairosctl/provision.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "common/core/broker.h"
#include "common/core/config.h"
#include "common/core/frame.h"
#include "common/core/topic.h"
#include "common/io/files.h"
#include "common/io/keygen.h"
#include "tools/kairosctl/node_bundle.h"
#include "tools/kairosctl/provision_tls.h"
#include "tools/kairosctl/rootfs.h"
#include "tools/kairosctl/transaction.h"

namespace kairos::ctl {

namespace fs = std::filesystem;

namespace {

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

// tcp://host:port or ssl://host:port (or mqtt://, mqtts://); returns the port.
int broker_port(const std::string& uri) {
  auto scheme = uri.find("://");
  auto colon = uri.rfind(':');
  bool known = false;
  for (const char* s : {"tcp", "ssl", "mqtt", "mqtts"})
    if (scheme != std::string::npos && uri.compare(0, scheme, s) == 0) known = true;
  bool ok = known && colon > scheme + 3 && colon + 1 < uri.size() &&
            uri.find_first_not_of("0123456789", colon + 1) == std::string::npos && !uri_host(uri).empty();
  if (!ok) throw Refusal("provision: --broker '" + uri + "' is not tcp://HOST:PORT or ssl://HOST:PORT", 2);
  int port = std::stoi(uri.substr(colon + 1));
  if (port < 1 || port > 65535) throw Refusal("provision: --broker '" + uri + "' has no valid port", 2);
  return port;
}

// Lines in b that are not in a, and the other way round, for a short diff.
std::string diff_lines(const std::string& a, const std::string& b) {
  auto lines = [](const std::string& t) {
    std::vector<std::string> v;
    std::istringstream in(t);
    std::string l;
    while (std::getline(in, l)) v.push_back(l);
    return v;
  };
  auto la = lines(a), lb = lines(b);
  std::string out;
  for (const auto& l : la)
    if (std::find(lb.begin(), lb.end(), l) == lb.end()) out += "\n    - " + l;
  for (const auto& l : lb)
    if (std::find(la.begin(), la.end(), l) == la.end()) out += "\n    + " + l;
  return out;
}

// The [broker] TLS keys of a bundle's config, or "" without TLS.
std::string tls_keys_toml(const std::optional<TlsNames>& tls) {
  if (!tls) return "";
  return "ca_file = " + toml_string(tls->ca()) + "\ncert_file = " + toml_string(tls->cert()) +
         "\nkey_file = " + toml_string(tls->key()) + "\n";
}

// The mesh and broker this provisioning folder is for, fixed by its first run.
struct FolderState {
  std::string mesh, broker;
};

FolderState read_state(const fs::path& file) {
  FolderState s;
  if (!fs::exists(file)) return s;
  Config cfg(read_config_file(file.string()), file.string());
  auto r = cfg.root();
  s.mesh = r.name("mesh");
  s.broker = r.str("broker");
  cfg.finish();
  return s;
}

// The broker user's password: the bundle's (kept), or a new one.
std::string password_for(const fs::path& file, bool renew, Plan& plan) {
  std::string old = first_line(read_file_or_empty(file));
  if (!old.empty() && !renew) return old;
  if (!old.empty()) plan.notes.push_back("a new broker password for " + file.string() + " (--new-password)");
  return generate_password();
}

// The broker's passwd and ACL with user's entries as they should be.
void broker_user(const fs::path& mosq, const std::string& user, const std::string& password, const std::string& kind,
                 const std::string& block, Plan& plan) {
  auto passwd = mosq / "passwd";
  auto acl = mosq / "acl";
  std::string ptext = read_file_or_empty(passwd), atext = read_file_or_empty(acl);
  std::string other = acl_kind_of(atext, user);
  if (!other.empty() && other != kind)
    throw Refusal("provision: '" + user + "' is already a broker user, for the " + other + " of that name (" + acl.string() +
                  "): give the " + kind + " another name");
  std::string hash = password_hash_of(ptext, user);
  if (hash.empty() || !mosquitto_hash_matches(hash, password)) {
    plan.files[passwd] = {replace_password_line(ptext, user, mosquitto_hash(password, random_bytes(12))), 0600};
    plan.passwd_changed = true;
  }
  std::string new_acl = replace_acl_block(atext, kind, user, block);
  if (new_acl != atext) {
    plan.files[acl] = {new_acl, 0644};
    plan.acl_changed = true;
  }
}

// A key file: kept when it exists (unless renew), a new one otherwise.
std::string key_text(const fs::path& path, bool renew, Plan& plan) {
  if (fs::exists(path) && !renew) return to_hex(load_key_file(path.string()).bytes) + "\n";
  if (fs::exists(path)) plan.notes.push_back("REPLACING the key " + path.string() + " (--new-key)");
  return to_hex(generate_key().bytes) + "\n";
}

}  // namespace

std::string parse_provision_args(const std::vector<std::string>& args, ProvisionArgs& a) {
  bool board_given = false;
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
    else if (k == "--new-password") a.new_password = true;
    else if (k == "--gateway") { a.role = "gateway"; ok = value(a.name); }
    else if (k == "--operator") { a.role = "operator"; ok = value(a.name); }
    else if (k == "--sector") { a.role = "sector"; ok = value(a.name); }
    else if (k == "--board") { ok = value(a.board); board_given = true; }
    else if (k == "--cluster") ok = value(a.cluster);
    else if (k == "--mesh") ok = value(a.mesh);
    else if (k == "--broker") ok = value(a.broker);
    else if (k == "--out") ok = value(a.out);
    else if (k == "--keys-dir") ok = value(a.keys_dir);
    else if (k == "--mosquitto-dir") ok = value(a.mosquitto_dir);
    else if (k == "--boards") ok = value(a.boards_dir);
    else if (k == "--node-config") ok = value(a.node_config);
    else if (k == "--rootfs") ok = value(a.rootfs);
    else if (k == "--deb") ok = value(a.deb);
    else if (k == "--debs") ok = value(a.debs_dir);
    else if (!k.empty() && k[0] != '-' && a.name.empty()) a.name = k;
    else return "provision: unknown argument '" + k + "'";
    if (!ok) return "provision: " + k + " needs a value";
  }
  if (a.name.empty())
    return "provision: name the node (kairosctl provision NODE ...), or give --gateway ID / --operator NAME / --sector NAME";
  if (a.role == "operator" && a.name == kSharedOperator)
    return "provision: 'operator' is the name the shared operator key's requests go by: give the operator a name of "
           "its own";
  for (const auto* n : {&a.name, &a.cluster})
    if (!valid_name(*n)) return "provision: '" + *n + "' is not a valid name (" + std::string(kNameRule) + ")";
  if (!a.mesh.empty() && !valid_name(a.mesh)) return "provision: mesh '" + a.mesh + "' is not a valid name (" + std::string(kNameRule) + ")";
  if (a.role != "node" && (!a.rootfs.empty() || !a.node_config.empty() || board_given))
    return "provision: --rootfs, --node-config and --board are for a node";
  if (a.rootfs.empty() && (!a.deb.empty())) return "provision: --deb goes with --rootfs";
  return "";
}

int provision(const ProvisionArgs& a) {
  fs::path out = a.out;
  fs::path keys = a.keys_dir.empty() ? out / "gateway/etc/kairos/keys" : fs::path(a.keys_dir);
  fs::path mosq = a.mosquitto_dir.empty() ? out / "mosquitto" : fs::path(a.mosquitto_dir);
  try {
    // One folder, one mesh: the first run names it, later runs follow it.
    fs::path state_file = out / "provision.toml";
    FolderState state = read_state(state_file);
    std::string mesh = a.mesh.empty() ? state.mesh : a.mesh;
    std::string broker = a.broker.empty() ? state.broker : a.broker;
    if (mesh.empty() || broker.empty())
      throw Refusal("provision: name the mesh and the broker the nodes will use the first time, e.g. kairosctl --mesh farm "
                    "--broker tcp://gateway.local:1883 provision ...; " + out.string() + "/provision.toml then remembers them",
                    2);
    if (!state.mesh.empty() && mesh != state.mesh)
      throw Refusal("provision: " + out.string() + " is for mesh '" + state.mesh + "', not '" + mesh +
                        "': give each mesh its own folder (--out DIR)",
                    2);
    int port = broker_port(broker);
    for (const auto& m : acl_meshes(read_file_or_empty(mosq / "acl")))
      if (m != mesh)
        throw Refusal("provision: " + (mosq / "acl").string() + " already grants mesh '" + m + "', not '" + mesh +
                          "': give each mesh its own folder (--out DIR, --mosquitto-dir DIR)",
                      2);

    Plan plan;
    // MQTT over TLS when the broker's URI says so: the mesh CA, the
    // broker's certificate and this device's (docs/DESIGN.md 7).
    const bool tls = uri_is_tls(broker);
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    std::optional<MeshCa> ca;
    if (tls) {
      ca = mesh_ca(out, mesh, now, plan);
      broker_tls(mosq, uri_host(broker), *ca, now, plan);
    }
    if (state.mesh.empty())
      plan.files[state_file] = {"# The mesh and broker of everything provisioned in this folder.\nmesh = " + toml_string(mesh) +
                                    "\nbroker = " + toml_string(broker) + "\n",
                                0644};
    // The broker's config for this mesh: listener (TLS with a client
    // certificate required), no anonymous clients, the passwd and ACL, and
    // frames no larger than the largest legal one.
    plan.files[mosq / "kairos.conf"] = {mosquitto_conf(mesh, port, tls, kMaxPacket), 0644};

    fs::path bundle;
    std::string what;
    std::optional<RootfsPlan> card;
    std::string node_toml;
    if (a.role == "gateway") {
      bundle = out / "gateway/etc/kairos";
      what = "gateway " + a.name;
      plan.files[keys / "broadcast.key"] = {key_text(keys / "broadcast.key", false, plan), 0600};
      plan.files[keys / "operator.key"] = {key_text(keys / "operator.key", false, plan), 0600};
      std::string pw = password_for(bundle / "gateway.password", a.new_password, plan);
      plan.files[bundle / "gateway.password"] = {pw + "\n", 0600};
      broker_user(mosq, a.name, pw, "gateway", acl_gateway(mesh, a.name), plan);
      std::optional<TlsNames> names;
      if (tls) {
        names = TlsNames{"gateway"};
        device_tls(bundle, *names, a.name, *ca, now, a.new_key, plan);
      }
      plan.files[bundle / "gateway.toml"] = {
          "# Written by kairosctl provision.\n[gateway]\nid = " + toml_string(a.name) + "\nmesh = " + toml_string(mesh) +
              "\nkeys_dir = \"/etc/kairos/keys\"\ndatabase = \"/var/lib/kairos/gateway.db\"\n\n[broker]\nuri = " +
              toml_string(broker) + "\nusername = " + toml_string(a.name) + "\npassword_file = \"/etc/kairos/gateway.password\"\n" +
              tls_keys_toml(names),
          0644};
    } else if (a.role == "sector") {
      // Run in the root's folder (its broker is --broker): the sector's key for
      // the root and for the sector gateway, the root broker's user for the
      // sector's bridge, and the sector broker's bridge (docs/DESIGN.md 5.9).
      bundle = out / "sectors" / a.name;
      what = "sector " + a.name;
      const fs::path root_key = keys / "sectors" / (a.name + ".key");
      std::string key = key_text(root_key, a.new_key, plan);
      const fs::path sector_key = bundle / "etc/kairos/keys/sectors" / (a.name + ".key");
      if (!a.new_key && fs::exists(sector_key) && read_file_or_empty(sector_key) != key)
        throw Refusal("provision: " + sector_key.string() + " differs from the root's " + root_key.string() +
                      ": one of them was replaced by hand; --force --new-key issues a fresh key to both");
      plan.files[root_key] = {key, 0600};
      plan.files[sector_key] = {key, 0600};
      const std::string user = "bridge-" + a.name;
      std::string pw = password_for(bundle / "bridge.password", a.new_password, plan);
      plan.files[bundle / "bridge.password"] = {pw + "\n", 0600};
      broker_user(mosq, user, pw, "bridge", acl_bridge(mesh, user, a.name), plan);
      if (tls) device_tls(bundle / "mosquitto", TlsNames{"bridge"}, user, *ca, now, a.new_key, plan);
      plan.files[bundle / "mosquitto/kairos-bridge.conf"] = {
          bridge_conf({mesh, a.name, uri_host(broker), user, pw, port, tls}), 0640};
      plan.files[bundle / "etc/kairos/hierarchy.toml"] = {
          "# Written by kairosctl provision --sector " + a.name +
              ": append to the sector gateway's gateway.toml (its keys_dir holds keys/sectors/" + a.name +
              ".key).\n[hierarchy]\nrole = \"sector\"\nsector = " + toml_string(a.name) + "\n",
          0644};
      plan.notes.push_back("the root gateway reads this sector once its gateway.toml names it: [hierarchy] role = \"root\", "
                           "sectors = [..., " + toml_string(a.name) + "] (README: \"Sectors and a root\")");
    } else if (a.role == "operator") {
      bundle = out / "operators" / a.name / "etc/kairos";
      what = "operator " + a.name;
      // The shared key checks what the gateway sends every operator (alerts, Ball);
      // the operator's own signs its requests (docs/PROTOCOL.md, Operators).
      std::string opkey = key_text(keys / "operator.key", false, plan);
      plan.files[keys / "operator.key"] = {opkey, 0600};
      plan.files[bundle / "operator.key"] = {opkey, 0600};
      const fs::path gateway_key = keys / "operators" / (a.name + ".key");
      const std::string keyfile = "operator-" + a.name + ".key";
      std::string own = key_text(gateway_key, a.new_key, plan);
      if (!a.new_key && fs::exists(bundle / keyfile) && read_file_or_empty(bundle / keyfile) != own)
        throw Refusal("provision: " + (bundle / keyfile).string() + " differs from the gateway's " + gateway_key.string() +
                      ": one of them was replaced by hand; --force --new-key issues a fresh key to both");
      plan.files[gateway_key] = {own, 0600};
      plan.files[bundle / keyfile] = {own, 0600};
      std::string pwfile = "operator-" + a.name + ".password";
      std::string pw = password_for(bundle / pwfile, a.new_password, plan);
      plan.files[bundle / pwfile] = {pw + "\n", 0600};
      broker_user(mosq, a.name, pw, "operator", acl_operator(mesh, a.name), plan);
      std::optional<TlsNames> names;
      if (tls) {
        names = TlsNames{"operator-" + a.name};
        device_tls(bundle, *names, a.name, *ca, now, a.new_key, plan);
      }
      plan.files[bundle / "kairosctl.toml"] = {
          "# Written by kairosctl provision.\n[broker]\nuri = " + toml_string(broker) + "\nusername = " + toml_string(a.name) +
              "\npassword_file = \"/etc/kairos/" + pwfile + "\"\n" + tls_keys_toml(names) + "\n[ctl]\nmesh = " +
              toml_string(mesh) + "\noperator = " + toml_string(a.name) + "\nkey_file = \"/etc/kairos/" + keyfile +
              "\"\nshared_key_file = \"/etc/kairos/operator.key\"\n",
          0644};
    } else {
      auto board = load_board(a);
      bundle = out / "nodes" / a.name / "etc/kairos";
      what = "node " + a.name + " (board " + a.board + ", cluster " + a.cluster + ")";
      fs::path gateway_key = keys / "nodes" / (a.name + ".key");
      std::string key = key_text(gateway_key, a.new_key, plan);
      if (!a.new_key && fs::exists(bundle / "node.key") && read_file_or_empty(bundle / "node.key") != key)
        throw Refusal("provision: " + (bundle / "node.key").string() + " differs from the gateway's " + gateway_key.string() +
                      ": one of them was replaced by hand; --force --new-key issues a fresh key to both");
      plan.files[gateway_key] = {key, 0600};
      plan.files[bundle / "node.key"] = {key, 0600};
      std::string pw = password_for(bundle / "broker.password", a.new_password, plan);
      plan.files[bundle / "broker.password"] = {pw + "\n", 0600};
      std::optional<TlsNames> names;
      if (tls) {
        names = TlsNames{"node"};
        device_tls(bundle, *names, a.name, *ca, now, a.new_key, plan);
      }
      node_toml = node_config_text(a, mesh, broker, names);
      std::vector<std::string> writes, reads;
      check_node_config(a, node_toml, writes, reads);
      plan.files[bundle / "node.toml"] = {node_toml, 0644};
      broker_user(mosq, a.name, pw, "node", acl_node(mesh, a.cluster, a.name, writes, reads), plan);

      if (!a.rootfs.empty()) {
        if (::geteuid() != 0)
          throw Refusal("provision: --rootfs writes root's files onto the card (keys owned by root): run it with sudo", 2);
        Card peek = read_card(a.rootfs);  // read once: its architecture picks the package, then the plan checks it
        fs::path debs = a.debs_dir;
        auto find = [&](const std::string& prefix, const std::string& arch) {
          fs::path best;
          std::error_code ec;
          for (fs::directory_iterator it(debs, ec), end; !ec && it != end; it.increment(ec)) {
            auto n = it->path().filename().string();
            if (n.rfind(prefix, 0) == 0 && n.size() > arch.size() + 5 && n.ends_with("_" + arch + ".deb") &&
                (best.empty() || n > best.filename().string()))
              best = it->path();
          }
          return best;
        };
        RootfsRequest req;
        req.root = a.rootfs;
        req.node_deb = a.deb.empty() ? find("kairos-node_", peek.arch) : fs::path(a.deb);
        if (req.node_deb.empty() || !fs::exists(req.node_deb))
          throw Refusal("provision: no kairos-node package for " + peek.arch + " (the card at " + a.rootfs + " is " + peek.arch +
                        ") in " + debs.string() + ": run tools/package " + peek.arch + ", or give --debs DIR / --deb FILE");
        fs::path near = a.deb.empty() ? debs : req.node_deb.parent_path();
        if (!a.deb.empty()) debs = near;
        req.boards_deb = find("kairos-boards_", "all");
        if (req.boards_deb.empty())
          throw Refusal("provision: no kairos-boards package in " + debs.string() + ": run tools/package");
        req.deps_dir = debs / ("deps-" + peek.arch);
        req.board_arches = board.arches;
        req.board = a.board;
        req.wifi = board.wifi;
        std::vector<std::string> on_card{"node.toml", "node.key", "broker.password"};
        if (names) on_card.insert(on_card.end(), {"tls/ca.crt", "tls/node.crt", "tls/node.key"});
        for (const auto& f : on_card) {  // root's, with the bundle's modes; the unit gives the daemon's group the keys
          auto& [text, mode] = plan.files[bundle / f];
          req.files["/etc/kairos/" + f] = {text, mode};
        }
        card.emplace(plan_rootfs(req, std::move(peek)));
      }
    }

    // Compare with what is there: unchanged, new, or a change that needs --force.
    bool existed = fs::exists(bundle);
    std::vector<fs::path> changed;
    std::string diffs;
    for (const auto& [path, content] : plan.files) {
      std::string old = read_file_or_empty(path);
      if (fs::exists(path) && old == content.first) continue;
      changed.push_back(path);
      if (existed && path.parent_path() == bundle && fs::exists(path) && path.extension() == ".toml")
        diffs += "\n  " + path.string() + ":" + diff_lines(old, content.first);
    }
    if (existed && !diffs.empty() && !a.force)
      throw Refusal("provision: " + what + " is already provisioned, with other settings:" + diffs +
                    "\nrun the same command as before to keep it, or add --force to rewrite its config (the key and broker "
                    "password are kept unless --new-key / --new-password)");

    Transaction tx;
    if (card) card->apply(tx);
    for (const auto& path : changed) {
      const auto& [text, mode] = plan.files[path];
      tx.write(path, text, mode);
    }
    tx.commit();

    std::printf("provisioning %s, mesh %s, broker %s\n", what.c_str(), mesh.c_str(), broker.c_str());
    if (changed.empty() && !card) std::printf("  already provisioned as asked: nothing changed\n");
    for (const auto& p : changed) std::printf("  wrote %s\n", p.c_str());
    for (const auto& n : plan.notes) std::printf("  %s\n", n.c_str());
    if (card) {
      const Card& c = card->card();
      std::printf("  installed onto %s (%s, %s):", a.rootfs.c_str(), c.os.empty() ? "unknown OS" : c.os.c_str(), c.arch.c_str());
      for (const auto& p : card->packages())
        std::printf(" %s %s", p.control.get("Package").c_str(), p.control.get("Version").c_str());
      std::printf("\n  kairos-node.service enabled; the node starts at the card's first boot\n");
    }
    auto tls_file = [&](const fs::path& p) {
      return p.parent_path() == mosq && p.filename() != "passwd" && p.filename() != "acl";
    };
    if (tls && std::any_of(changed.begin(), changed.end(), tls_file))
      std::printf("  the broker's TLS files or listener changed: install %s/{ca.crt,server.crt,server.key,kairos.conf} and "
                  "restart Mosquitto (README: \"MQTT over TLS\")\n",
                  mosq.c_str());
    if (plan.passwd_changed || plan.acl_changed)
      std::printf("  the broker's %s changed: install the new files on the broker and reload Mosquitto (README: \"Set up the broker\")\n",
                  plan.passwd_changed && plan.acl_changed ? "passwd and acl" : plan.passwd_changed ? "passwd" : "acl");
    return 0;
  } catch (const Refusal& e) {
    std::fprintf(stderr, "kairosctl: %s\n", e.what());
    return e.status;
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "kairosctl: config error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kairosctl: provision failed, nothing was changed: %s\n", e.what());
    return 1;
  }
}

}  // namespace kairos::ctl

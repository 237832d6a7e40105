// kairosctl: the operator console (docs/DESIGN.md 5.8).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <cstring>
#include <string>
#include <vector>

#include "common/core/broker.h"
#include "common/core/config.h"
#include "common/core/frame.h"
#include "common/core/topic.h"
#include "common/io/ctl_client.h"
#include "common/io/clock.h"
#include "common/io/files.h"
#include "common/core/json.h"
#include "tools/kairosctl/args.h"
#include "tools/kairosctl/ball.h"
#include "tools/kairosctl/console.h"
#include "tools/kairosctl/ctl_config.h"
#include "tools/kairosctl/provision.h"
#include "tools/kairosctl/jobs.h"
#include "tools/kairosctl/rotate.h"
#include "tools/kairosctl/operators.h"
#include "tools/kairosctl/schedule.h"

using namespace kairos;
using ctl::fail;

namespace {

constexpr const char* kDefaultConfig = "/etc/kairos/kairosctl.toml";

struct Options {
  std::string config;
  bool config_given = false;
  std::string broker;
  std::string mesh;
  std::string key_file;
  std::string operator_name;    // --operator: with --key, instead of ctl.operator and ctl.key_file
  std::string shared_key_file;  // --shared-key: overrides ctl.shared_key_file
  std::string username;       // --username: overrides broker.username
  std::string password_file;  // --password-file: overrides broker.password_file
  int timeout_ms = 3000;
  bool timeout_given = false;
  bool json = false;
  std::string verb;
  std::vector<std::string> args;
};

void usage(FILE* f) {
  std::fprintf(f,
               "usage: kairosctl [options] <verb> [args]\n"
               "verbs:\n"
               "  status                          the mesh at a glance\n"
               "  nodes [--cluster C] [--state online|offline]\n"
               "  node <id>                       one node: clock, impedance, reliability\n"
               "  watch [--interval S] [--count N]  one line of mesh state per interval\n"
               "  conflicts [--limit N] [--queue] the newest entries of the conflict log (at most 20), or the open\n"
               "                                  resolution tasks, highest priority first, with suggested strategies\n"
               "  resolve <task> [--note TEXT]    close a resolution task\n"
               "  heal <node>                     lift the gateway's quarantine of a node and send it heal\n"
               "  rotate-key <node> [--within MS] a new key for the node, sent wrapped under its current one; answered\n"
               "                                  once the node confirms it (exit 0) or after MS (default 15000: exit 1)\n"
               "  schedule <freeze|thaw|heal|rebirth|config_reload|set_output --output O [--value re,im,c] [--hold MS]>\n"
               "           --at TIME | --in MS  [--targets all|cluster:C|class:X|id,id...]\n"
               "           [--strategy parallel|wave|priority_first|naive] [--window MS] [--tolerance MS] [--hit MS]\n"
               "           [--quorum R] [--conflict-max R] [--transit-wait R] [--extensions N] [--mandatory] [--confirm]\n"
               "                                  land a command on every target at the same instant T\n"
               "                                  (exit 0: PROCEED, 3: another verdict)\n"
               "  delegate <handler> [--payload TEXT | --payload-file F] [--to class:X|cluster:C|node:ID|CAP] [--needs CAP,...]\n"
               "           [--timeout MS] [--redundancy R] [--retries N] [--wait] [--confirm]\n"
               "                                  run a job on the capable nodes of lowest impedance\n"
               "                                  (exit 0: accepted or DONE, 3: FAILED)\n"
               "  jobs [ID] [--limit N]           job counts and the newest jobs, or one job whole\n"
               "  breakers                        circuit breakers: cluster, sector, global\n"
               "  broadcast <text> [--ack] [--window MS] [--targets T] [--confirm]\n"
               "                                  a notice to every node (--ack: gather READY acks; exit 3 if any missing)\n"
               "  freeze [scope] [--window MS]    snapshot written, then outputs to their safe state (scope as --targets)\n"
               "  thaw [scope] [--window MS] [--confirm]  outputs back to their sources\n"
               "  ask <question> [--sample N] [--handler H] [--to T] [--timeout MS] [--confirm]\n"
               "                                  the same job to N random capable nodes, answers grouped (default read)\n"
               "  mode                            the degradation mode, active share and what it restricts\n"
               "  ball hut <session> --peers A,B,node-1 --objective TEXT [--objective TEXT ...] [--as NAME]\n"
               "                                  start a play; the first peer holds the Ball\n"
               "  ball say <session> --as NAME [--to PEER] [TEXT | -]\n"
               "                                  \"MM:...\" is appended to the lineage, other text goes to --to only\n"
               "                                  (no TEXT or -: read from stdin; at most 4096 bytes)\n"
               "  ball ack <session> <seq> <read|ack|understood|concur|implement> --as NAME\n"
               "  ball done <session> <objective-number> --as NAME\n"
               "  ball show <session> [--ball ID] the play and its whole lineage\n"
               "  ball verify <session>           the stored lineage against the signed head (exit 3: broken)\n"
               "  ball list                       the newest plays\n"
               "  ball listen <session> --as NAME [--count N]\n"
               "                                  print what is delivered to NAME (until N deliveries or Ctrl-C)\n"
               "  operators [list]                the operators the gateway knows: state, key, requests, last request\n"
               "  operators revoke|restore NAME --confirm\n"
               "                                  refuse (take again) an operator's requests; an alert goes out\n"
               "  operators log [NAME] [--limit N] [--before ID]\n"
               "                                  the audit log: every change each operator asked for, newest first\n"
               "  provision NODE --board B --cluster C [--node-config FILE] [--out DIR] [--keys-dir DIR]\n"
               "            [--mosquitto-dir DIR] [--boards DIR] [--rootfs DIR [--deb FILE | --debs DIR]]\n"
               "            [--force] [--new-key] [--new-password]\n"
               "  provision --gateway ID | --operator NAME [--out DIR] [--keys-dir DIR] [--mosquitto-dir DIR]\n"
               "            keys, configs, broker password and ACL entries; --mesh and --broker the first time\n"
               "            in a folder (kept in DIR/provision.toml); the same command again changes nothing\n"
               "options:\n"
               "  --config FILE    console config (default %s, if present)\n"
               "  --broker URI     broker, e.g. tcp://127.0.0.1:1883\n"
               "  --mesh NAME      mesh name\n"
               "  --key FILE       the key that signs the requests: the operator's own (with --operator), or the\n"
               "                   shared operator key\n"
               "  --operator NAME  the named operator this console speaks for (requests on _ctl/req/NAME)\n"
               "  --shared-key FILE  the shared operator key, for ball verify and listen (default: --key)\n"
               "  --username NAME  broker user name (overrides broker.username)\n"
               "  --password-file FILE  broker password, its first line (overrides broker.password_file)\n"
               "  --timeout MS     how long to wait for the gateway (default 3000)\n"
               "  --json           machine-readable output\n",
               kDefaultConfig);
}


int run(const Options& o) {
  if (o.verb == "provision") {
    ctl::ProvisionArgs pa;
    if (!o.broker.empty()) pa.broker = o.broker;
    if (!o.mesh.empty()) pa.mesh = o.mesh;
    auto err = ctl::parse_provision_args(o.args, pa);
    if (!err.empty()) return fail(err, 2);
    return ctl::provision(pa);
  }
  BrokerConfig broker;
  std::string mesh = o.mesh;
  std::string key_file = o.key_file;
  std::string operator_name = o.operator_name;
  std::string shared_key_file = o.shared_key_file;
  int timeout_ms = o.timeout_ms;
  std::string cfg_path = o.config_given ? o.config : (access(kDefaultConfig, R_OK) == 0 ? kDefaultConfig : "");
  if (!cfg_path.empty()) {
    try {
      auto c = ctl::parse_ctl_config(read_config_file(cfg_path), cfg_path);
      broker = c.broker;
      if (mesh.empty()) mesh = c.mesh;
      // An operator goes with its key: the file's operator is kept only
      // with the file's key, and --operator takes the file's key only when
      // the file is that operator's.
      if (key_file.empty() && (operator_name.empty() || operator_name == c.operator_name)) key_file = c.key_file;
      if (operator_name.empty() && (o.key_file.empty() || o.key_file == c.key_file)) operator_name = c.operator_name;
      if (shared_key_file.empty()) shared_key_file = c.shared_key_file;
      if (!o.timeout_given) timeout_ms = c.timeout_ms;
    } catch (const ConfigError& e) {
      return fail(std::string("config error: ") + e.what(), 2);
    }
  }
  if (!o.broker.empty()) broker.uri = o.broker;
  if (!o.username.empty()) broker.username = o.username;
  if (!o.password_file.empty()) broker.password_file = o.password_file;
  BrokerOrigin origin = origin_of(broker, cfg_path);
  origin.console = true;
  // The broker unreachable, or refusing us (then what to give: flags, keys).
  auto broker_failure = [&](int code) {
    return code ? connect_failure(broker.uri, code) + ": " + connect_hint(code, origin)
                : "cannot reach the broker at " + broker.uri + ": " + connect_hint(-1, origin);
  };
  if (mesh.empty()) mesh = "default";
  if (!valid_name(mesh)) return fail("mesh name '" + mesh + "' is not valid", 2);
  if (key_file.empty())
    return fail(operator_name.empty()
                    ? "no operator key: give --key FILE (with --operator NAME for a named operator) or ctl.key_file in " +
                          std::string(kDefaultConfig)
                    : "--operator " + operator_name + " needs that operator's key: give --key FILE",
                2);
  if (!operator_name.empty() && (!valid_name(operator_name) || operator_name == kSharedOperator))
    return fail("--operator '" + operator_name + "' is not an operator name ('operator' is the shared key's: leave "
                "--operator out)", 2);
  Key key;
  try {
    key = load_key_file(key_file);
  } catch (const std::exception& e) {
    return fail(e.what(), 2);
  }

  kairos_v1_ControlRequest req = kairos_v1_ControlRequest_init_zero;
  ctl::BallArgs ball;
  if (o.verb == "status") {
    if (!o.args.empty()) return fail("status takes no arguments", 2);
    req.which_verb = kairos_v1_ControlRequest_status_tag;
  } else if (o.verb == "nodes") {
    req.which_verb = kairos_v1_ControlRequest_nodes_tag;
    for (std::size_t i = 0; i < o.args.size(); ++i) {
      if (o.args[i] == "--cluster" && i + 1 < o.args.size()) {
        set_string(req.verb.nodes.cluster, o.args[++i]);
      } else if (o.args[i] == "--state" && i + 1 < o.args.size()) {
        std::string s = o.args[++i];
        if (s != "online" && s != "offline") return fail("--state takes online or offline", 2);
        set_string(req.verb.nodes.state, s);
      } else {
        return fail("nodes: unknown argument '" + o.args[i] + "'", 2);
      }
    }
  } else if (o.verb == "node") {
    if (o.args.size() != 1) return fail("node takes a node id: kairosctl node <id>", 2);
    req.which_verb = kairos_v1_ControlRequest_nodes_tag;
    set_string(req.verb.nodes.id, o.args[0]);  // an older gateway ignores it: the list is then filtered here
  } else if (o.verb == "watch") {
    req.which_verb = kairos_v1_ControlRequest_status_tag;
  } else if (o.verb == "conflicts") {
    req.which_verb = kairos_v1_ControlRequest_conflicts_tag;
    for (std::size_t i = 0; i < o.args.size(); ++i) {
      if (o.args[i] == "--queue") {
        req.verb.conflicts.queue = true;
      } else if (o.args[i] == "--limit" && i + 1 < o.args.size()) {
        try {
          req.verb.conflicts.limit = static_cast<std::uint32_t>(std::stoul(o.args[++i]));
        } catch (...) {
          return fail("conflicts: --limit takes a number", 2);
        }
        if (req.verb.conflicts.limit < 1 || req.verb.conflicts.limit > 20) return fail("conflicts: --limit takes 1 to 20", 2);
      } else {
        return fail("conflicts takes --limit N and --queue", 2);
      }
    }
  } else if (o.verb == "resolve") {
    req.which_verb = kairos_v1_ControlRequest_resolve_tag;
    const std::string use = "resolve takes a task number: kairosctl resolve <task> [--note TEXT]";
    if (o.args.empty() || o.args[0].empty() || o.args[0].size() > 18 ||
        o.args[0].find_first_not_of("0123456789") != std::string::npos)
      return fail(use, 2);
    req.verb.resolve.task = std::stoull(o.args[0]);
    if (o.args.size() == 3 && o.args[1] == "--note" && o.args[2].size() <= 128)
      set_string(req.verb.resolve.note, o.args[2]);
    else if (o.args.size() != 1)
      return fail(use, 2);
  } else if (o.verb == "heal") {
    if (o.args.size() != 1 || !valid_name(o.args[0])) return fail("heal takes a node id: kairosctl heal <id>", 2);
    req.which_verb = kairos_v1_ControlRequest_heal_tag;
    set_string(req.verb.heal.node, o.args[0]);
  } else if (o.verb == "rotate-key") {
    req.which_verb = kairos_v1_ControlRequest_rotate_key_tag;
    auto err = ctl::parse_rotate_args(o.args, req.verb.rotate_key);
    if (!err.empty()) return fail(err, 2);
  } else if (o.verb == "delegate") {
    req.which_verb = kairos_v1_ControlRequest_delegate_tag;
    auto err = ctl::parse_delegate_args(o.args, req.verb.delegate);
    if (!err.empty()) return fail(err, 2);
  } else if (o.verb == "jobs") {
    req.which_verb = kairos_v1_ControlRequest_jobs_tag;
    auto err = ctl::parse_jobs_args(o.args, req.verb.jobs);
    if (!err.empty()) return fail(err, 2);
  } else if (o.verb == "broadcast") {
    req.which_verb = kairos_v1_ControlRequest_broadcast_tag;
    auto err = ctl::parse_broadcast_args(o.args, req.verb.broadcast);
    if (!err.empty()) return fail(err, 2);
  } else if (o.verb == "freeze" || o.verb == "thaw") {
    req.which_verb = kairos_v1_ControlRequest_freeze_tag;
    auto err = ctl::parse_freeze_args(o.args, o.verb == "thaw", req.verb.freeze);
    if (!err.empty()) return fail(err, 2);
  } else if (o.verb == "ask") {
    req.which_verb = kairos_v1_ControlRequest_ask_tag;
    auto err = ctl::parse_ask_args(o.args, req.verb.ask);
    if (!err.empty()) return fail(err, 2);
  } else if (o.verb == "mode") {
    if (!o.args.empty()) return fail("mode takes no arguments", 2);
    req.which_verb = kairos_v1_ControlRequest_status_tag;
  } else if (o.verb == "breakers") {
    if (!o.args.empty()) return fail("breakers takes no arguments", 2);
    req.which_verb = kairos_v1_ControlRequest_breakers_tag;
  } else if (o.verb == "schedule") {
    req.which_verb = kairos_v1_ControlRequest_schedule_tag;
    auto err = ctl::parse_schedule_args(o.args, req.verb.schedule, wall_us());
    if (!err.empty()) return fail(err, 2);
  } else if (o.verb == "ball") {
    auto err = ctl::parse_ball_args(o.args, ball, stdin);
    if (!err.empty()) return fail(err, 2);
  } else if (o.verb == "operators") {
    req.which_verb = kairos_v1_ControlRequest_operators_tag;
    auto err = ctl::parse_operators_args(o.args, req.verb.operators);
    if (!err.empty()) return fail(err, 2);
  } else {
    usage(stderr);
    return fail("unknown verb '" + o.verb + "'", 2);
  }
  double interval_s = 1.0;
  long count = 0;  // 0: until interrupted
  if (o.verb == "watch") {
    for (std::size_t i = 0; i < o.args.size(); ++i) {
      try {
        if (o.args[i] == "--interval" && i + 1 < o.args.size()) interval_s = std::stod(o.args[++i]);
        else if (o.args[i] == "--count" && i + 1 < o.args.size()) count = std::stol(o.args[++i]);
        else return fail("watch: unknown argument '" + o.args[i] + "'", 2);
      } catch (...) {
        return fail("watch: --interval takes seconds, --count a number", 2);
      }
    }
    if (interval_s < 0.05) return fail("watch: --interval must be at least 0.05 s", 2);
  }

  MqttOptions mo;
  try {
    mo = mqtt_options(broker, "");
  } catch (const std::exception& e) {
    return fail(e.what(), 2);
  }
  mo.reconnect_min_s = 0.2;
  CtlClient client(mo, mesh, key, operator_name);
  std::string why;
  auto connect = [&] {
    if (client.connect(timeout_ms, why)) return 0;
    return fail(broker_failure(client.connect_code()));
  };
  auto no_answer = [&](int waited_ms) {
    return fail(why + " within " + std::to_string(waited_ms) + " ms on mesh '" + mesh +
                (operator_name.empty() ? "': is kairos-gateway running, on this mesh, with the same operator key?"
                                       : "': is kairos-gateway running, on this mesh, with operator " + operator_name +
                                             "'s key (keys/operators/" + operator_name + ".key)?"));
  };
  if (o.verb == "ball") {
    auto silent = [&](int waited_ms, const std::string& w) {
      why = w;
      return no_answer(waited_ms);
    };
    // Heads and deliveries are signed with the shared operator key.
    Key shared = key;
    if (!shared_key_file.empty() && shared_key_file != key_file) {
      try {
        shared = load_key_file(shared_key_file);
      } catch (const std::exception& e) {
        return fail(e.what(), 2);
      }
    }
    return ctl::run_ball(ball, {client, mo, mesh, shared, timeout_ms, o.json, connect, silent, broker_failure});
  }
  if (int status = connect()) return status;
  if (o.verb == "watch") {
    // Ctrl-C ends watch by the default action, so a calling script sees
    // that its child died of SIGINT and stops too.
    for (long n = 0; count == 0 || n < count; ++n) {
      if (n > 0) std::this_thread::sleep_for(std::chrono::duration<double>(interval_s));
      auto resp = client.call(req, timeout_ms, why);
      if (!resp) {
        std::fprintf(stderr, "kairosctl: %s (gateway silent for %d ms)\n", why.c_str(), timeout_ms);
        why.clear();
        continue;
      }
      ctl::print_watch_line(resp->reply.status, o.json);
      std::fflush(stdout);
    }
    return 0;
  }

  if (req.which_verb == kairos_v1_ControlRequest_schedule_tag) {
    int wait_ms = ctl::schedule_wait_ms(req.verb.schedule, wall_us(), timeout_ms);
    auto resp = client.call(req, wait_ms, why);
    if (!resp) return no_answer(wait_ms);
    if (!resp->ok) return fail(resp->error);
    return ctl::print_schedule(resp->reply.schedule, o.json);
  }
  if (req.which_verb == kairos_v1_ControlRequest_broadcast_tag || req.which_verb == kairos_v1_ControlRequest_freeze_tag) {
    const bool gathers = req.which_verb == kairos_v1_ControlRequest_freeze_tag || req.verb.broadcast.ack;
    std::uint32_t window = req.which_verb == kairos_v1_ControlRequest_freeze_tag ? req.verb.freeze.window_ms
                                                                                 : req.verb.broadcast.window_ms;
    int wait_ms = gathers ? ctl::gather_wait_ms(window, timeout_ms) : timeout_ms;
    auto resp = client.call(req, wait_ms, why);
    if (!resp) return no_answer(wait_ms);
    if (!resp->ok) return fail(resp->error);
    return ctl::print_command(resp->reply.command, o.json);
  }
  if (req.which_verb == kairos_v1_ControlRequest_ask_tag) {
    int wait_ms = ctl::gather_wait_ms(req.verb.ask.timeout_ms ? req.verb.ask.timeout_ms + 1000 : 6000, timeout_ms);
    auto resp = client.call(req, wait_ms, why);
    if (!resp) return no_answer(wait_ms);
    if (!resp->ok) return fail(resp->error);
    return ctl::print_ask(resp->reply.ask, o.json);
  }
  if (o.verb == "mode") {
    auto resp = client.call(req, timeout_ms, why);
    if (!resp) return no_answer(timeout_ms);
    if (!resp->ok) return fail(resp->error);
    return ctl::print_mode(resp->reply.status, o.json);
  }
  if (req.which_verb == kairos_v1_ControlRequest_delegate_tag) {
    int wait_ms = ctl::delegate_wait_ms(req.verb.delegate, timeout_ms);
    auto resp = client.call(req, wait_ms, why);
    if (!resp) return no_answer(wait_ms);
    if (!resp->ok) return fail(resp->error);
    return ctl::print_job(resp->reply.job, o.json);
  }
  if (req.which_verb == kairos_v1_ControlRequest_jobs_tag || req.which_verb == kairos_v1_ControlRequest_breakers_tag) {
    auto resp = client.call(req, timeout_ms, why);
    if (!resp) return no_answer(timeout_ms);
    if (!resp->ok) return fail(resp->error);
    return req.which_verb == kairos_v1_ControlRequest_jobs_tag ? ctl::print_jobs(resp->reply.jobs, o.json)
                                                                : ctl::print_breakers(resp->reply.breakers, o.json);
  }
  if (req.which_verb == kairos_v1_ControlRequest_operators_tag) {
    auto resp = client.call(req, timeout_ms, why);
    if (!resp) return no_answer(timeout_ms);
    if (!resp->ok) return fail(resp->error);
    return ctl::print_operators(req.verb.operators, resp->reply.operators, o.json);
  }
  if (req.which_verb == kairos_v1_ControlRequest_conflicts_tag || req.which_verb == kairos_v1_ControlRequest_resolve_tag) {
    auto resp = client.call(req, timeout_ms, why);
    if (!resp) return no_answer(timeout_ms);
    if (!resp->ok) return fail(resp->error);
    const auto& l = resp->reply.conflicts;
    if (req.which_verb == kairos_v1_ControlRequest_resolve_tag && o.json) {
      Json j;
      j.begin_object().key("task").integer(req.verb.resolve.task).key("resolved").boolean(true);
      j.key("open_tasks").integer(l.open_tasks).end_object();
      std::printf("%s\n", j.text().c_str());
      return 0;
    }
    if (o.json) {
      Json j;
      j.begin_object().key("total").integer(l.total).key("entries").begin_array();
      for (pb_size_t i = 0; i < l.entries_count; ++i) {
        const auto& e = l.entries[i];
        j.begin_object().key("at").str(ctl::format_time_us(e.at_us)).key("type").str(e.type);
        j.key("priority").integer(e.priority).key("node").str(e.node).key("detail").str(e.detail);
        j.key("suggested").str(e.suggested).key("task").integer(e.task).key("task_state").str(e.task_state);
        j.key("resolution").str(e.resolution).key("resolved_by").str(e.resolved_by).end_object();
      }
      j.end_array().key("open_tasks").integer(l.open_tasks).end_object();
      std::printf("%s\n", j.text().c_str());
      return 0;
    }
    if (req.which_verb == kairos_v1_ControlRequest_resolve_tag) {
      std::printf("task %llu resolved; %llu still open\n", static_cast<unsigned long long>(req.verb.resolve.task),
                  static_cast<unsigned long long>(l.open_tasks));
      return 0;
    }
    std::printf("%-24s %-20s %-3s %-20s %s\n", "AT", "TYPE", "P", "NODE", "DETAIL");
    for (pb_size_t i = 0; i < l.entries_count; ++i) {
      const auto& e = l.entries[i];
      std::printf("%-24s %-20s %-3u %-20s %s\n", ctl::format_time_us(e.at_us).c_str(), e.type, e.priority, e.node, e.detail);
      if (e.task)
        std::printf("%24s task %llu %s: %s%s%s\n", "", static_cast<unsigned long long>(e.task), e.task_state,
                    e.resolution[0] ? e.resolution : e.suggested, e.resolved_by[0] ? " (by operator " : "",
                    e.resolved_by[0] ? (std::string(e.resolved_by) + ")").c_str() : "");
    }
    std::printf("%u shown, %llu in the log, %llu resolution tasks open%s\n", static_cast<unsigned>(l.entries_count),
                static_cast<unsigned long long>(l.total), static_cast<unsigned long long>(l.open_tasks),
                req.verb.conflicts.queue ? " (highest priority first)" : "");
    return 0;
  }
  if (req.which_verb == kairos_v1_ControlRequest_rotate_key_tag) {
    int wait_ms = ctl::rotate_wait_ms(req.verb.rotate_key, timeout_ms);
    auto resp = client.call(req, wait_ms, why);
    if (!resp) return no_answer(wait_ms);
    if (!resp->ok) return fail(resp->error);
    return ctl::print_rotate(resp->reply.rotate_key, o.json);
  }
  if (req.which_verb == kairos_v1_ControlRequest_heal_tag) {
    auto resp = client.call(req, timeout_ms, why);
    if (!resp) return no_answer(timeout_ms);
    if (!resp->ok) return fail(resp->error);
    const auto& h = resp->reply.heal;
    if (o.json) {
      Json j;
      j.begin_object().key("node").str(h.node).key("was_quarantined").boolean(h.was_quarantined);
      j.key("reason").str(h.reason).key("heal_sent").boolean(h.sent).end_object();
      std::printf("%s\n", j.text().c_str());
    } else {
      std::printf("%s: %s; heal %s\n", h.node,
                  h.was_quarantined ? ("quarantine lifted (it was: " + std::string(h.reason) + ")").c_str()
                                    : "was not quarantined at the gateway",
                  h.sent ? "sent to the node" : "NOT sent (no key for the node)");
    }
    return h.sent ? 0 : 1;
  }
  if (req.which_verb == kairos_v1_ControlRequest_status_tag) {
    auto resp = client.call(req, timeout_ms, why);
    if (!resp) return no_answer(timeout_ms);
    if (!resp->ok) return fail(resp->error);
    return ctl::print_status(resp->reply.status, o.json);
  }

  // nodes: page through the whole list
  std::vector<kairos_v1_NodeInfo> nodes;
  std::uint32_t total = 0;
  do {
    // Both: a gateway that knows the cursor pages from the last id, an older one by offset.
    req.verb.nodes.offset = static_cast<std::uint32_t>(nodes.size());
    if (!nodes.empty()) set_string(req.verb.nodes.after, nodes.back().id);
    auto resp = client.call(req, timeout_ms, why);
    if (!resp) return no_answer(timeout_ms);
    if (!resp->ok) return fail(resp->error);
    const auto& list = resp->reply.nodes;
    total = list.total;
    nodes.insert(nodes.end(), list.nodes, list.nodes + list.nodes_count);
    if (list.nodes_count == 0) break;
  } while (nodes.size() < total);
  if (o.verb == "node") {
    std::vector<kairos_v1_NodeInfo> one;
    for (const auto& n : nodes)
      if (o.args[0] == n.id) one.push_back(n);
    nodes.swap(one);
    if (nodes.empty()) return fail("no node '" + o.args[0] + "' (kairosctl nodes lists them)");
  }

  return ctl::print_nodes(nodes, o.verb == "node", o.json);
}

}  // namespace

int main(int argc, char** argv) {
  // Global options may stand anywhere; the first other word is the verb and
  // the words after it are the verb's arguments.
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    if (a == "--json") {
      o.json = true;
    } else if (a == "--config") {
      if (!value(o.config)) return fail("--config needs a file", 2);
      o.config_given = true;
    } else if (a == "--broker") {
      if (!value(o.broker)) return fail("--broker needs a URI", 2);
    } else if (a == "--mesh") {
      if (!value(o.mesh)) return fail("--mesh needs a name", 2);
    } else if (a == "--key") {
      if (!value(o.key_file)) return fail("--key needs a file", 2);
    } else if (a == "--operator" && o.verb != "provision") {
      if (!value(o.operator_name) || o.operator_name.empty()) return fail("--operator needs a name", 2);
    } else if (a == "--shared-key") {
      if (!value(o.shared_key_file) || o.shared_key_file.empty()) return fail("--shared-key needs a file", 2);
    } else if (a == "--username") {
      if (!value(o.username) || o.username.empty()) return fail("--username needs a name", 2);
    } else if (a == "--password-file") {
      if (!value(o.password_file) || o.password_file.empty()) return fail("--password-file needs a file", 2);
    } else if (a == "--timeout" && (o.verb == "delegate" || o.verb == "ask")) {
      o.args.push_back(a);  // after delegate or ask: the job's timeout (docs/DESIGN.md 5.8 `delegate <job> --timeout`)
    } else if (a == "--timeout") {
      std::string t;
      if (!value(t)) return fail("--timeout needs milliseconds", 2);
      try {
        o.timeout_ms = std::stoi(t);
      } catch (...) {
        return fail("--timeout needs milliseconds", 2);
      }
      if (o.timeout_ms < 100 || o.timeout_ms > 600'000) return fail("--timeout takes 100 to 600000 ms", 2);
      o.timeout_given = true;
    } else if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else if (o.verb.empty()) {
      if (a[0] == '-') {
        usage(stderr);
        return fail("unknown option " + a, 2);
      }
      o.verb = a;
    } else {
      o.args.push_back(a);
    }
  }
  if (o.verb.empty()) {
    usage(stderr);
    return 2;
  }
  return run(o);
}

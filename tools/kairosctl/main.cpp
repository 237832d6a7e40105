// kairosctl: the operator console (docs/DESIGN.md 5.8).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/core/frame.h"
#include "common/core/json.h"
#include "common/core/utf8.h"
#include "common/core/topic.h"
#include "common/io/clock.h"
#include "tools/kairosctl/args.h"
#include "tools/kairosctl/ask_mesh.h"
#include "tools/kairosctl/ball.h"
#include "tools/kairosctl/console.h"
#include "tools/kairosctl/jobs.h"
#include "tools/kairosctl/operators.h"
#include "tools/kairosctl/provision.h"
#include "tools/kairosctl/rotate.h"
#include "tools/kairosctl/schedule.h"
#include "tools/kairosctl/sectors.h"
#include "tools/kairosctl/session.h"

using namespace kairos;
using ctl::fail;
using ctl::Options;
using ctl::Session;

namespace {

using Words = std::vector<std::string>;
using Response = kairos_v1_ControlResponse;

kairos_v1_ControlRequest request(pb_size_t verb_tag) {
  kairos_v1_ControlRequest req = kairos_v1_ControlRequest_init_zero;
  req.which_verb = verb_tag;
  return req;
}

int run_status(const Words& args, Session& s) {
  if (!args.empty()) return fail("status takes no arguments", 2);
  auto req = request(kairos_v1_ControlRequest_status_tag);
  return s.answer(req, s.timeout_ms(), [&](const Response& r) { return ctl::print_status(r.reply.status, s.json()); });
}

int run_mode(const Words& args, Session& s) {
  if (!args.empty()) return fail("mode takes no arguments", 2);
  auto req = request(kairos_v1_ControlRequest_status_tag);
  return s.answer(req, s.timeout_ms(), [&](const Response& r) { return ctl::print_mode(r.reply.status, s.json()); });
}

// Every node the gateway lists for req, page by page: 0, or the exit status.
int fetch_nodes(Session& s, kairos_v1_ControlRequest& req, std::vector<kairos_v1_NodeInfo>& nodes) {
  if (int status = s.reach()) return status;
  std::uint32_t total = 0;
  do {
    // Both: a gateway that knows the cursor pages from the last id, an older one by offset.
    req.verb.nodes.offset = static_cast<std::uint32_t>(nodes.size());
    if (!nodes.empty()) set_string(req.verb.nodes.after, nodes.back().id);
    int status = 0;
    auto resp = s.call(req, s.timeout_ms(), status);
    if (!resp) return status;
    const auto& list = resp->reply.nodes;
    total = list.total;
    nodes.insert(nodes.end(), list.nodes, list.nodes + list.nodes_count);
    if (list.nodes_count == 0) break;
  } while (nodes.size() < total);
  return 0;
}

int run_nodes(const Words& args, Session& s) {
  auto req = request(kairos_v1_ControlRequest_nodes_tag);
  std::size_t slowest = 0;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--slowest" && i + 1 < args.size()) {
      slowest = static_cast<std::size_t>(std::atoi(args[++i].c_str()));
      if (slowest < 1 || slowest > 1000) return fail("--slowest takes 1 to 1000 nodes", 2);
    } else if (args[i] == "--cluster" && i + 1 < args.size()) {
      set_string(req.verb.nodes.cluster, args[++i]);
    } else if (args[i] == "--state" && i + 1 < args.size()) {
      std::string state = args[++i];
      if (state != "online" && state != "offline") return fail("--state takes online or offline", 2);
      set_string(req.verb.nodes.state, state);
    } else {
      return fail("nodes: unknown argument '" + args[i] + "'", 2);
    }
  }
  std::vector<kairos_v1_NodeInfo> nodes;
  if (int status = fetch_nodes(s, req, nodes)) return status;
  if (slowest) {  // the highest impedance (the longest lead a command needs) first
    std::stable_sort(nodes.begin(), nodes.end(), [](const auto& a, const auto& b) { return a.impedance > b.impedance; });
    if (nodes.size() > slowest) nodes.resize(slowest);
  }
  return ctl::print_nodes(nodes, false, s.json());
}

int run_node(const Words& args, Session& s) {
  if (args.size() != 1) return fail("node takes a node id: kairosctl node <id>", 2);
  auto req = request(kairos_v1_ControlRequest_nodes_tag);
  set_string(req.verb.nodes.id, args[0]);  // an older gateway ignores it: the list is then filtered here
  std::vector<kairos_v1_NodeInfo> nodes, one;
  if (int status = fetch_nodes(s, req, nodes)) return status;
  for (const auto& n : nodes)
    if (args[0] == n.id) one.push_back(n);
  if (one.empty()) return fail("no node '" + args[0] + "' (kairosctl nodes lists them)");
  return ctl::print_nodes(one, true, s.json());
}

int run_watch(const Words& args, Session& s) {
  double interval_s = 1.0;
  long count = 0;  // 0: until interrupted
  for (std::size_t i = 0; i < args.size(); ++i) {
    try {
      if (args[i] == "--interval" && i + 1 < args.size()) interval_s = std::stod(args[++i]);
      else if (args[i] == "--count" && i + 1 < args.size()) count = std::stol(args[++i]);
      else return fail("watch: unknown argument '" + args[i] + "'", 2);
    } catch (...) {
      return fail("watch: --interval takes seconds, --count a number", 2);
    }
  }
  if (interval_s < 0.05) return fail("watch: --interval must be at least 0.05 s", 2);
  auto req = request(kairos_v1_ControlRequest_status_tag);
  if (int status = s.reach()) return status;
  // Ctrl-C ends watch by the default action, so a calling script sees
  // that its child died of SIGINT and stops too.
  for (long n = 0; count == 0 || n < count; ++n) {
    if (n > 0) std::this_thread::sleep_for(std::chrono::duration<double>(interval_s));
    auto resp = s.try_call(req, s.timeout_ms());
    if (!resp) {
      std::fprintf(stderr, "kairosctl: %s (gateway silent for %d ms)\n", s.take_why().c_str(), s.timeout_ms());
      continue;
    }
    ctl::print_watch_line(resp->reply.status, s.json());
    std::fflush(stdout);
  }
  return 0;
}

int run_conflicts(const Words& args, Session& s) {
  auto req = request(kairos_v1_ControlRequest_conflicts_tag);
  auto& c = req.verb.conflicts;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--queue") {
      c.queue = true;
    } else if (args[i] == "--limit" && i + 1 < args.size()) {
      try {
        c.limit = static_cast<std::uint32_t>(std::stoul(args[++i]));
      } catch (...) {
        return fail("conflicts: --limit takes a number", 2);
      }
      if (c.limit < 1 || c.limit > 16) return fail("conflicts: --limit takes 1 to 16", 2);
    } else {
      return fail("conflicts takes --limit N and --queue", 2);
    }
  }
  return s.answer(req, s.timeout_ms(),
                  [&](const Response& r) { return ctl::print_conflicts(c, r.reply.conflicts, s.json()); });
}

int run_resolve(const Words& args, Session& s) {
  auto req = request(kairos_v1_ControlRequest_resolve_tag);
  const std::string use = "resolve takes a task number: kairosctl resolve <task> [--note TEXT]";
  if (args.empty() || args[0].empty() || args[0].size() > 18 || args[0].find_first_not_of("0123456789") != std::string::npos)
    return fail(use, 2);
  req.verb.resolve.task = std::stoull(args[0]);
  if (args.size() == 3 && args[1] == "--note" && args[2].size() <= 128)
    set_string(req.verb.resolve.note, args[2]);
  else if (args.size() != 1)
    return fail(use, 2);
  return s.answer(req, s.timeout_ms(), [&](const Response& r) {
    return ctl::print_resolved(req.verb.resolve.task, r.reply.conflicts, s.json());
  });
}

int run_heal(const Words& args, Session& s) {
  if (args.size() != 1 || !valid_name(args[0])) return fail("heal takes a node id: kairosctl heal <id>", 2);
  auto req = request(kairos_v1_ControlRequest_heal_tag);
  set_string(req.verb.heal.node, args[0]);
  return s.answer(req, s.timeout_ms(), [&](const Response& r) { return ctl::print_heal(r.reply.heal, s.json()); });
}

int run_forget(const Words& args, Session& s) {
  if (args.size() != 1 || !valid_name(args[0])) return fail("forget takes a node id: kairosctl forget <id>", 2);
  auto req = request(kairos_v1_ControlRequest_forget_tag);
  set_string(req.verb.forget.node, args[0]);
  return s.answer(req, s.timeout_ms(), [&](const Response&) {
    if (s.json()) std::printf("{\"forgotten\":\"%s\"}\n", args[0].c_str());
    else std::printf("%s forgotten: gone from the registry, the database and the bridges\n", args[0].c_str());
    return 0;
  });
}

int run_quarantine(const Words& args, Session& s) {
  auto req = request(kairos_v1_ControlRequest_quarantine_tag);
  std::string reason;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--reason" && i + 1 < args.size()) reason = args[++i];
    else return fail("quarantine takes a node id and --reason TEXT: kairosctl quarantine <id> [--reason TEXT]", 2);
  }
  if (args.empty() || !valid_name(args[0]) || reason.size() > 128)
    return fail("quarantine takes a node id and --reason TEXT (at most 128 bytes): kairosctl quarantine <id>", 2);
  set_string(req.verb.quarantine.node, args[0]);
  set_string(req.verb.quarantine.reason, reason);
  return s.answer(req, s.timeout_ms(), [&](const Response&) {
    if (s.json()) std::printf("{\"quarantined\":\"%s\"}\n", args[0].c_str());
    else std::printf("%s quarantined: jobs, schedules and the Ball pass it by until kairosctl heal %s\n",
                     args[0].c_str(), args[0].c_str());
    return 0;
  });
}

int run_rotate_key(const Words& args, Session& s) {
  auto req = request(kairos_v1_ControlRequest_rotate_key_tag);
  if (auto err = ctl::parse_rotate_args(args, req.verb.rotate_key); !err.empty()) return fail(err, 2);
  return s.answer(req, ctl::rotate_wait_ms(req.verb.rotate_key, s.timeout_ms()),
                  [&](const Response& r) { return ctl::print_rotate(r.reply.rotate_key, s.json()); });
}

int run_schedule(const Words& args, Session& s) {
  auto req = request(kairos_v1_ControlRequest_schedule_tag);
  if (auto err = ctl::parse_schedule_args(args, req.verb.schedule, wall_us()); !err.empty()) return fail(err, 2);
  if (int status = s.reach()) return status;
  // T is an instant: the wait for it counts from now, once connected.
  int wait_ms = ctl::schedule_wait_ms(req.verb.schedule, wall_us(), s.timeout_ms());
  int status = 0;
  auto resp = s.call(req, wait_ms, status);
  return resp ? ctl::print_schedule(resp->reply.schedule, s.json()) : status;
}

int run_delegate(const Words& args, Session& s) {
  auto req = request(kairos_v1_ControlRequest_delegate_tag);
  if (auto err = ctl::parse_delegate_args(args, req.verb.delegate); !err.empty()) return fail(err, 2);
  return s.answer(req, ctl::delegate_wait_ms(req.verb.delegate, s.timeout_ms()),
                  [&](const Response& r) { return ctl::print_job(r.reply.job, s.json()); });
}

int run_jobs(const Words& args, Session& s) {
  auto req = request(kairos_v1_ControlRequest_jobs_tag);
  if (auto err = ctl::parse_jobs_args(args, req.verb.jobs); !err.empty()) return fail(err, 2);
  return s.answer(req, s.timeout_ms(), [&](const Response& r) { return ctl::print_jobs(r.reply.jobs, s.json()); });
}

int run_breakers(const Words& args, Session& s) {
  auto req = request(kairos_v1_ControlRequest_breakers_tag);
  if (args.size() == 2 && (args[0] == "hold" || args[0] == "release") && valid_name(args[1]))
    set_string(args[0] == "hold" ? req.verb.breakers.hold : req.verb.breakers.release, args[1]);
  else if (!args.empty())
    return fail("breakers takes nothing, or hold|release <cluster>: kairosctl breakers hold east", 2);
  return s.answer(req, s.timeout_ms(),
                  [&](const Response& r) { return ctl::print_breakers(r.reply.breakers, s.json()); });
}

int run_kpi(const Words& args, Session& s) {
  if (!args.empty()) return fail("kpi takes no arguments", 2);
  auto req = request(kairos_v1_ControlRequest_kpi_tag);
  return s.answer(req, s.timeout_ms(), [&](const Response& r) { return ctl::print_kpis(r.reply.kpi, s.json()); });
}

// Every sector a root gateway reads, page by page.
int run_sectors(const Words& args, Session& s) {
  if (!args.empty()) return fail("sectors takes no arguments", 2);
  auto req = request(kairos_v1_ControlRequest_sectors_tag);
  if (int status = s.reach()) return status;
  std::vector<kairos_v1_SectorInfo> sectors;
  std::uint32_t total = 0, stale = 0;
  do {
    if (!sectors.empty()) set_string(req.verb.sectors.after, sectors.back().name);
    int status = 0;
    auto resp = s.call(req, s.timeout_ms(), status);
    if (!resp) return status;
    const auto& list = resp->reply.sectors;
    total = list.total;
    stale = list.stale;
    sectors.insert(sectors.end(), list.sectors, list.sectors + list.sectors_count);
    if (list.sectors_count == 0) break;
  } while (sectors.size() < total);
  return ctl::print_sectors(sectors, stale, s.json());
}

int run_broadcast(const Words& args, Session& s) {
  auto req = request(kairos_v1_ControlRequest_broadcast_tag);
  const auto& b = req.verb.broadcast;
  if (auto err = ctl::parse_broadcast_args(args, req.verb.broadcast); !err.empty()) return fail(err, 2);
  return s.answer(req, b.ack ? ctl::gather_wait_ms(b.window_ms, s.timeout_ms()) : s.timeout_ms(),
                  [&](const Response& r) { return ctl::print_command(r.reply.command, s.json()); });
}

int run_freeze_or_thaw(const Words& args, Session& s, bool thaw) {
  auto req = request(kairos_v1_ControlRequest_freeze_tag);
  if (auto err = ctl::parse_freeze_args(args, thaw, req.verb.freeze); !err.empty()) return fail(err, 2);
  return s.answer(req, ctl::gather_wait_ms(req.verb.freeze.window_ms, s.timeout_ms()),
                  [&](const Response& r) { return ctl::print_command(r.reply.command, s.json()); });
}

int run_freeze(const Words& args, Session& s) { return run_freeze_or_thaw(args, s, false); }
int run_thaw(const Words& args, Session& s) { return run_freeze_or_thaw(args, s, true); }

int run_ask(const Words& args, Session& s) {
  auto req = request(kairos_v1_ControlRequest_ask_tag);
  const auto& a = req.verb.ask;
  if (auto err = ctl::parse_ask_args(args, req.verb.ask); !err.empty()) return fail(err, 2);
  return s.answer(req, ctl::gather_wait_ms(a.timeout_ms ? a.timeout_ms + 1000 : 6000, s.timeout_ms()),
                  [&](const Response& r) { return ctl::print_ask(r.reply.ask, s.json()); });
}

int run_ball(const Words& args, Session& s) {
  ctl::BallArgs ball;
  if (auto err = ctl::parse_ball_args(args, ball, stdin); !err.empty()) return fail(err, 2);
  if (int status = s.open()) return status;
  Key shared;
  if (int status = s.shared_key(shared)) return status;
  return ctl::run_ball(ball, s.ball_link(shared));
}

int run_operators(const Words& args, Session& s) {
  auto req = request(kairos_v1_ControlRequest_operators_tag);
  if (auto err = ctl::parse_operators_args(args, req.verb.operators); !err.empty()) return fail(err, 2);
  return s.answer(req, s.timeout_ms(), [&](const Response& r) {
    return ctl::print_operators(req.verb.operators, r.reply.operators, s.json());
  });
}

int run_provision(const Words& args, Session& s) {
  ctl::ProvisionArgs pa;
  if (!s.options().broker.empty()) pa.broker = s.options().broker;
  if (!s.options().mesh.empty()) pa.mesh = s.options().mesh;
  if (auto err = ctl::parse_provision_args(args, pa); !err.empty()) return fail(err, 2);
  return ctl::provision(pa);
}

int run_ask_mesh(const Words& args, Session& s);

struct Verb {
  const char* name;
  const char* use;  // its lines of the usage text
  int (*run)(const Words& args, Session& s);
  bool offline = false;                    // needs no gateway: no console config, no operator key
  std::vector<std::string_view> own = {};  // global options that are the verb's own words after it
};

// In the order of the usage text.
const std::vector<Verb>& verbs() {
  static const std::vector<Verb> v = {
      {"status", "status                          the mesh at a glance", run_status},
      {"nodes", "nodes [--cluster C] [--state online|offline] [--slowest N]", run_nodes},
      {"node", "node <id>                       one node: clock, impedance, reliability", run_node},
      {"watch", "watch [--interval S] [--count N]  one line of mesh state per interval", run_watch},
      {"conflicts",
       "conflicts [--limit N] [--queue] the newest entries of the conflict log (at most 16), or the open\n"
       "                                resolution tasks, highest priority first, with suggested strategies",
       run_conflicts},
      {"resolve", "resolve <task> [--note TEXT]    close a resolution task", run_resolve},
      {"heal", "heal <node>                     lift the gateway's quarantine of a node and send it heal", run_heal},
      {"forget", "forget <node>                   remove an offline node (decommissioned, renamed) from the gateway", run_forget},
      {"ask-mesh", "ask-mesh <question or order> [--yes] [--plan]\n"
                   "                                plain English to a verb: shown first, confirmed before it changes\n"
                   "                                anything (\"what's happening in sector 7?\", \"route around pi-3\")",
       run_ask_mesh},
      {"quarantine", "quarantine <node> [--reason T]  route around a node: jobs, schedules and the Ball pass it by until heal", run_quarantine},
      {"rotate-key",
       "rotate-key <node> [--within MS] a new key for the node, sent wrapped under its current one; answered\n"
       "                                once the node confirms it (exit 0) or after MS (default 15000: exit 1)",
       run_rotate_key},
      {"schedule",
       "schedule <freeze|thaw|heal|rebirth|config_reload|set_output --output O [--value re,im,c] [--hold MS]>\n"
       "         --at TIME | --in MS  [--targets all|cluster:C|class:X|id,id...]\n"
       "         [--strategy parallel|wave|priority_first|naive] [--lead tail|jitter] [--window MS] [--tolerance MS]\n"
       "         [--hit MS] [--quorum R] [--conflict-max R] [--transit-wait R] [--extensions N] [--mandatory] [--confirm]\n"
       "                                land a command on every target at the same instant T\n"
       "                                (exit 0: PROCEED, 3: another verdict)",
       run_schedule},
      {"delegate",
       "delegate <handler> [--payload TEXT | --payload-file F] [--to class:X|cluster:C|node:ID|CAP] [--needs CAP,...]\n"
       "         [--timeout MS] [--redundancy R] [--retries N] [--wait] [--confirm]\n"
       "                                run a job on the capable nodes of lowest impedance\n"
       "                                (exit 0: accepted or DONE, 3: FAILED)",
       run_delegate, false, {"--timeout"}},  // the job's timeout (docs/DESIGN.md 5.8 `delegate <job> --timeout`)
      {"jobs", "jobs [ID] [--limit N]           job counts and the newest jobs, or one job whole", run_jobs},
      {"breakers", "breakers [hold|release <cluster>]\n"
                   "                                circuit breakers: cluster, sector, global; hold a cluster's OPEN\n"
                   "                                (route around it) until released", run_breakers},
      {"kpi", "kpi                             the mesh's seven KPIs since the gateway started (docs/METRICS.md)", run_kpi},
      {"sectors", "sectors                         a root gateway's sectors: live or stale, nodes, mode, impedance",
       run_sectors},
      {"broadcast",
       "broadcast <text> [--ack] [--window MS] [--targets T] [--confirm]\n"
       "                                a notice to every node (--ack: gather READY acks; exit 3 if any missing)",
       run_broadcast},
      {"freeze",
       "freeze [scope] [--window MS]    snapshot written, then outputs to their safe state (scope as --targets)",
       run_freeze},
      {"thaw", "thaw [scope] [--window MS] [--confirm]  outputs back to their sources", run_thaw},
      {"ask",
       "ask <question> [--sample N] [--handler H] [--to T] [--timeout MS] [--confirm]\n"
       "                                the same job to N random capable nodes, answers grouped (default read)",
       run_ask, false, {"--timeout"}},  // the job's timeout
      {"mode", "mode                            the degradation mode, active share and what it restricts", run_mode},
      {"ball",
       "ball hut <session> --peers A,B,node-1 --objective TEXT [--objective TEXT ...] [--as NAME]\n"
       "                                start a play; the first peer holds the Ball\n"
       "ball say <session> --as NAME [--to PEER] [TEXT | -]\n"
       "                                \"MM:...\" is appended to the lineage, other text goes to --to only\n"
       "                                (no TEXT or -: read from stdin; at most 4096 bytes)\n"
       "ball ack <session> <seq> <read|ack|understood|concur|implement> --as NAME\n"
       "ball done <session> <objective-number> --as NAME\n"
       "ball show <session> [--ball ID] the play and its whole lineage\n"
       "ball verify <session>           the stored lineage against the signed head (exit 3: broken)\n"
       "ball list                       the newest plays\n"
       "ball listen <session> --as NAME [--count N]\n"
       "                                print what is delivered to NAME (until N deliveries or Ctrl-C)",
       run_ball},
      {"operators",
       "operators [list]                the operators the gateway knows: state, key, requests, last request\n"
       "operators revoke|restore NAME --confirm\n"
       "                                refuse (take again) an operator's requests; an alert goes out\n"
       "operators log [NAME] [--limit N] [--before ID]\n"
       "                                the audit log: every change each operator asked for, newest first",
       run_operators},
      {"provision",
       "provision NODE --board B --cluster C [--node-config FILE] [--out DIR] [--keys-dir DIR]\n"
       "          [--mosquitto-dir DIR] [--boards DIR] [--rootfs DIR [--deb FILE | --debs DIR]]\n"
       "          [--force] [--new-key] [--new-password]\n"
       "provision --gateway ID | --operator NAME [--out DIR] [--keys-dir DIR] [--mosquitto-dir DIR]\n"
       "          keys, configs, broker password and ACL entries; --mesh and --broker the first time\n"
       "          in a folder (kept in DIR/provision.toml); the same command again changes nothing",
       run_provision, true, {"--operator"}},  // --operator NAME: provision that operator
  };
  return v;
}

const Verb* find_verb(std::string_view name) {
  for (const auto& v : verbs())
    if (name == v.name) return &v;
  return nullptr;
}

void usage(FILE* f) {
  std::fprintf(f, "usage: kairosctl [options] <verb> [args]\nverbs:\n");
  for (const auto& v : verbs()) {
    std::string_view use = v.use;
    for (std::size_t start = 0; start < use.size();) {
      auto end = std::min(use.find('\n', start), use.size());
      std::fprintf(f, "  %.*s\n", static_cast<int>(end - start), use.data() + start);
      start = end + 1;
    }
  }
  std::fprintf(f,
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
               ctl::kDefaultConfig);
}

int run(const Options& o) {
  const Verb* v = find_verb(o.verb);
  Session s(o);
  if (v && v->offline) return v->run(o.args, s);
  // An unknown verb too: what is wrong with the config or the key is said first.
  if (int status = s.setup()) return status;
  if (!v) {
    usage(stderr);
    return fail("unknown verb '" + o.verb + "'", 2);
  }
  const int status = v->run(o.args, s);
  // The answer is out before the connection is torn down: Paho's threads
  // may take a tenth of a second to end.
  std::fflush(stdout);
  return status;
}

// The conversational console (docs/CONSOLE.md): the plan is shown, a plan
// that changes the mesh is confirmed (--yes: by the caller), then its verb runs.
int run_ask_mesh(const Words& args, Session& s) {
  bool yes = false, plan_only = false;
  std::string text;
  for (const auto& a : args) {
    if (a == "--yes" || a == "-y") yes = true;
    else if (a == "--plan") plan_only = true;
    else text += (text.empty() ? "" : " ") + a;
  }
  if (text.empty() || text.size() > 1000)
    return fail("ask-mesh takes a question or an order (at most 1000 bytes): kairosctl ask-mesh \"who is slow?\"", 2);
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  const ctl::AskPlan p = ctl::plan_intent(text, now, local.tm_gmtoff);
  FILE* say = s.json() && !plan_only ? stderr : stdout;  // --json: stdout is the verb's
  if (s.json() && plan_only) {
    Json j;
    j.begin_object().key("understood").boolean(p.understood()).key("explain").str(p.explain);
    j.key("run").begin_array();
    for (const auto& a : p.run) j.str(a);
    j.end_array().key("writes").boolean(p.writes).key("suggestions").begin_array();
    for (const auto& x : p.suggestions) j.str(x);
    j.end_array().end_object();
    std::printf("%s\n", j.text().c_str());
    return p.understood() ? 0 : 2;
  }
  if (!p.understood()) {
    std::fprintf(stderr, "kairosctl: not understood: %s (%s)\n", log_safe(text, 200).c_str(), p.explain.c_str());
    if (!p.suggestions.empty()) std::fprintf(stderr, "the closest verbs:\n");
    for (const auto& x : p.suggestions) std::fprintf(stderr, "  %s\n", x.c_str());
    return 2;
  }
  std::fprintf(say, "%s: %s\n  %s\n", p.writes ? "this changes the mesh" : "reading", p.explain.c_str(),
               ctl::shell_line(p.run).c_str());
  if (plan_only) return 0;
  if (p.writes && !yes) {
    std::fprintf(say, "run it? [y/N] ");
    std::fflush(say);
    char line[16] = "";
    if (!std::fgets(line, sizeof line, stdin) || (line[0] != 'y' && line[0] != 'Y'))
      return fail("not run (nothing changed); --yes runs it without asking", 1);
  }
  const Verb* v = find_verb(p.run[0]);
  return v->run(Words(p.run.begin() + 1, p.run.end()), s);
}

}  // namespace

int main(int argc, char** argv) {
  // Global options may stand anywhere; the first other word is the verb and
  // the words after it are the verb's arguments.
  Options o;
  const Verb* verb = nullptr;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    if (verb && std::find(verb->own.begin(), verb->own.end(), a) != verb->own.end()) {
      o.args.push_back(a);
    } else if (a == "--json") {
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
    } else if (a == "--operator") {
      if (!value(o.operator_name) || o.operator_name.empty()) return fail("--operator needs a name", 2);
    } else if (a == "--shared-key") {
      if (!value(o.shared_key_file) || o.shared_key_file.empty()) return fail("--shared-key needs a file", 2);
    } else if (a == "--username") {
      if (!value(o.username) || o.username.empty()) return fail("--username needs a name", 2);
    } else if (a == "--password-file") {
      if (!value(o.password_file) || o.password_file.empty()) return fail("--password-file needs a file", 2);
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
      verb = find_verb(a);
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

#include "tools/sim/options.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>

#include "common/core/topic.h"

namespace kairos::sim {

namespace {

std::optional<double> to_double(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<std::uint64_t> to_u64(const std::string& s) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    auto pos = s.find(sep, start);
    out.push_back(s.substr(start, pos - start));
    if (pos == std::string::npos) return out;
    start = pos + 1;
  }
}

// "NAME=NUMBER" as its two parts.
std::optional<std::pair<std::string, double>> name_value(const std::string& item) {
  auto eq = item.find('=');
  if (eq == std::string::npos) return std::nullopt;
  auto v = to_double(item.substr(eq + 1));
  if (!v) return std::nullopt;
  return std::pair{item.substr(0, eq), *v};
}

std::optional<std::size_t> class_index(const std::string& s) {
  if (s.size() != 1 || s[0] < 'A' || s[0] >= static_cast<char>('A' + kClasses)) return std::nullopt;
  return static_cast<std::size_t>(s[0] - 'A');
}

}  // namespace

std::string SimOptions::node_id(std::size_t index) const {
  char n[16];
  std::snprintf(n, sizeof n, "%05zu", index + 1);
  return prefix + "-" + n;
}

int SimOptions::effective_connections() const {
  const int per = client == SimClient::lean ? kNodesPerLeanConnection : kNodesPerConnection;
  return connections > 0 ? connections : (nodes + per - 1) / per;
}

bool parse_options(const std::vector<std::string>& args, SimOptions& o, bool& help, std::string& error) {
  help = false;
  std::string opt, value;
  auto bad = [&](const std::string& what) {
    error = opt + ": " + what + ", got '" + value + "'";
    return false;
  };
  // A number in [lo, hi] into dst.
  auto number = [&](double& dst, double lo, double hi, const char* what) {
    auto v = to_double(value);
    if (!v || *v < lo || *v > hi) return bad(what);
    dst = *v;
    return true;
  };
  auto text = [&](std::string& dst, const char* what) {
    if (value.empty()) return bad(what);
    dst = value;
    return true;
  };
  auto whole = [&](int& dst, int lo, int hi) {
    auto v = to_u64(value);
    if (!v || *v < static_cast<std::uint64_t>(lo) || *v > static_cast<std::uint64_t>(hi))
      return bad("expected a whole number " + std::to_string(lo) + ".." + std::to_string(hi));
    dst = static_cast<int>(*v);
    return true;
  };

  const std::map<std::string, std::function<bool()>> handlers{
      {"--broker", [&] { return text(o.broker, "expected a broker URI"); }},
      {"--mesh",
       [&] {
         if (!valid_name(value)) return bad(std::string("expected a name of ") + std::string(kNameRule));
         o.mesh = value;
         return true;
       }},
      {"--keys-dir", [&] { return text(o.keys_dir, "expected a directory"); }},
      {"--nodes", [&] { return whole(o.nodes, 1, kMaxNodes); }},
      {"--prefix",
       [&] {
         if (!valid_name(value + "-00001")) return bad(std::string("expected a name of ") + std::string(kNameRule));
         o.prefix = value;
         return true;
       }},
      {"--clusters", [&] { return whole(o.clusters, 1, 1000); }},
      {"--cluster-prefix",
       [&] {
         if (!valid_name(value + "1") || value.size() > 48)
           return bad(std::string("expected a name of ") + std::string(kNameRule));
         o.cluster_prefix = value;
         return true;
       }},
      {"--classes",
       [&] {
         std::vector<std::size_t> cs;
         for (const auto& c : split(value, ',')) {
           auto i = class_index(c);
           if (!i) return bad("expected device class letters A..F separated by commas");
           cs.push_back(*i);
         }
         o.classes = std::move(cs);
         return true;
       }},
      {"--latency",
       [&] {
         auto table = o.latency_ms;
         for (const auto& item : split(value, ',')) {
           auto nv = name_value(item);
           auto i = nv ? class_index(nv->first) : std::nullopt;
           if (!i || nv->second < 0 || nv->second > 600'000)
             return bad("expected CLASS=MS pairs such as A=5,C=50 (ms, 0..600000)");
           table[*i] = nv->second;
         }
         o.latency_ms = table;
         return true;
       }},
      {"--jitter", [&] { return number(o.delay.jitter, 0, 100, "expected a share of the base latency, 0..100"); }},
      {"--profile",
       [&] {
         auto p = parse_profile(value);
         if (!p) return bad("expected exponential, lognormal, pareto or wifi");
         o.delay.profile = *p;
         return true;
       }},
      {"--sigma", [&] { return number(o.delay.sigma, 0, 5, "expected the lognormal's shape, 0..5"); }},
      {"--alpha", [&] { return number(o.delay.alpha, 1.05, 100, "expected the Pareto shape, 1.05..100"); }},
      {"--wifi-floor-ms", [&] { return number(o.delay.wifi_floor_ms, 0, 1000, "expected ms, 0..1000"); }},
      {"--wifi-jitter-ms", [&] { return number(o.delay.wifi_median_ms, 0, 1000, "expected ms, 0..1000"); }},
      {"--stall", [&] { return number(o.delay.stall_p, 0, 1, "expected a share of frames, 0..1"); }},
      {"--stall-ms",
       [&] {
         const auto dash = value.find('-');
         double lo = -1, hi = -1;
         if (dash != std::string::npos) {
           lo = std::atof(value.substr(0, dash).c_str());
           hi = std::atof(value.substr(dash + 1).c_str());
         }
         if (dash == std::string::npos || lo < 0 || hi < lo || hi > 60'000)
           return bad("expected MIN-MAX ms, such as 50-300 (at most 60000)");
         o.delay.stall_min_ms = lo;
         o.delay.stall_max_ms = hi;
         return true;
       }},
      {"--loss", [&] { return number(o.delay.loss, 0, 0.5, "expected a share of frames, 0..0.5"); }},
      {"--rto-ms", [&] { return number(o.delay.rto_ms, 1, 60'000, "expected ms, 1..60000"); }},
      {"--clock-step-ms", [&] { return number(o.clock_step_ms, 0, 600'000, "expected ms, 0..600000"); }},
      {"--clock-step-every-s", [&] { return number(o.clock_step_every_s, 1, 1e6, "expected seconds, 1 or more"); }},
      {"--offset-max-ms", [&] { return number(o.offset_max_ms, 0, 1e9, "expected ms, 0 or more"); }},
      {"--drift-ppm", [&] { return number(o.drift_ppm, 0, 1e5, "expected ppm, 0..100000"); }},
      {"--seed",
       [&] {
         auto v = to_u64(value);
         if (!v) return bad("expected a whole number 0..18446744073709551615");
         o.seed = *v;
         return true;
       }},
      {"--connections", [&] { return whole(o.connections, 1, kMaxNodes); }},
      {"--client",
       [&] {
         if (value == "paho") o.client = SimClient::paho;
         else if (value == "lean") o.client = SimClient::lean;
         else return bad("expected paho or lean");
         return true;
       }},
      {"--hb-period-s", [&] { return number(o.hb_period_s, 0.05, 3600, "expected seconds, 0.05..3600"); }},
      {"--phase-period-s",
       [&] {
         const char* what = "expected seconds, 0 (none) or 0.05..3600";
         if (!number(o.phase_period_s, 0, 3600, what)) return false;
         return o.phase_period_s == 0 || o.phase_period_s >= 0.05 || bad(what);
       }},
      {"--duration-s", [&] { return number(o.duration_s, 0, 1e9, "expected seconds, 0 (until stopped) or more"); }},
      {"--ledger", [&] { return text(o.ledger, "expected a file"); }},
      {"--roster", [&] { return text(o.roster, "expected a file"); }},
      {"--job-ms", [&] { return number(o.job_ms, 0, 600'000, "expected ms, 0..600000"); }},
      {"--fail",
       [&] {
         Failures f = o.fail;
         for (const auto& item : split(value, ',')) {
           auto nv = name_value(item);
           const std::string name = nv ? nv->first : "";
           double* dst = name == "crash"    ? &f.crash
                         : name == "slow"   ? &f.slow
                         : name == "lying"  ? &f.lying
                         : name == "badmac" ? &f.badmac
                         : name == "diverge" ? &f.diverge
                         : name == "paradox" ? &f.paradox
                                            : nullptr;
           if (!dst || nv->second < 0 || nv->second > 1)
             return bad("expected KIND=FRACTION pairs, KIND one of crash, slow, lying, badmac, diverge, paradox, FRACTION 0..1");
           *dst = nv->second;
         }
         o.fail = f;
         return true;
       }},
      {"--crash-after-s", [&] { return number(o.crash_after_s, 0, 1e9, "expected seconds, 0 or more"); }},
      {"--jump",
       [&] {
         auto colon = value.rfind(':');
         auto at = value.rfind('@');
         if (colon == std::string::npos || at == std::string::npos || at < colon)
           return bad("expected ID:+MS@S, e.g. sim-00001:+40@10");
         Jump j;
         j.node = value.substr(0, colon);
         auto ms = to_double(value.substr(colon + 1, at - colon - 1));
         auto s = to_double(value.substr(at + 1));
         if (j.node.empty() || !ms || !s || *s < 0) return bad("expected ID:+MS@S, e.g. sim-00001:+40@10");
         j.delta_ms = *ms;
         j.at_s = *s;
         o.jumps.push_back(std::move(j));
         return true;
       }},
  };

  for (std::size_t i = 0; i < args.size(); ++i) {
    opt = args[i];
    value.clear();
    if (opt == "--help" || opt == "-h") {
      help = true;
      return true;
    }
    auto h = handlers.find(opt);
    if (h == handlers.end()) {
      error = "unknown option '" + opt + "'";
      return false;
    }
    if (i + 1 >= args.size()) {
      error = opt + ": missing its value";
      return false;
    }
    value = args[++i];
    if (!h->second()) return false;
  }

  auto fail = [&](std::string why) {
    error = std::move(why);
    return false;
  };
  if (o.broker.empty()) return fail("--broker URI is required");
  if (o.mesh.empty()) return fail("--mesh NAME is required");
  if (o.keys_dir.empty()) return fail("--keys-dir DIR is required");
  if (o.connections > o.nodes) return fail("--connections: at most one per node (" + std::to_string(o.nodes) + ")");
  if (o.client == SimClient::lean && o.broker.rfind("tcp://", 0) != 0 && o.broker.rfind("mqtt://", 0) != 0)
    return fail("--client lean: takes a plain tcp:// or mqtt:// broker, not " + o.broker + " (TLS goes through paho)");
  for (const auto& j : o.jumps) {
    bool known = false;
    for (int i = 0; i < o.nodes && !known; ++i) known = o.node_id(static_cast<std::size_t>(i)) == j.node;
    if (!known)
      return fail("--jump: no simulated node '" + j.node + "' (ids run " + o.node_id(0) + ".." +
                  o.node_id(static_cast<std::size_t>(o.nodes - 1)) + ")");
  }
  return true;
}

std::string usage_text() {
  return "usage: kairos-sim --broker URI --mesh NAME --keys-dir DIR [options]\n"
         "Runs many simulated nodes from one process against a real broker and gateway.\n"
         "  --broker URI          broker, e.g. tcp://127.0.0.1:1883 (required)\n"
         "  --mesh NAME           mesh name (required)\n"
         "  --keys-dir DIR        node keys are DIR/nodes/<id>.key, made when missing (required)\n"
         "  --nodes N             simulated nodes, 1..30000 (default 100)\n"
         "  --prefix P            node ids P-00001, P-00002, ... (default sim)\n"
         "  --clusters K          clusters c1..cK, nodes round-robin (default 4)\n"
         "  --cluster-prefix P    cluster names P1..PK instead of c1..cK\n"
         "  --classes A,B,...     device classes, round-robin (default A,B,C,D,E)\n"
         "  --latency A=5,...     base one-way latency per class, ms\n"
         "                        (default A=5,B=20,C=50,D=100,E=200,F=500)\n"
         "  --jitter J            the tail's scale as a share of the base (default 0.05)\n"
         "  --profile P           the delay's tail: exponential, lognormal, pareto, wifi (default exponential)\n"
         "  --sigma S             lognormal: its shape (default 1)\n"
         "  --alpha A             pareto: its shape, over 1, smaller is heavier (default 2)\n"
         "  --wifi-floor-ms MS    wifi: the floor above the base (default 3)\n"
         "  --wifi-jitter-ms MS   wifi: the median of its lognormal jitter (default 2)\n"
         "  --stall P             wifi: the share of frames held by a power-save stall (default 0)\n"
         "  --stall-ms MIN-MAX    wifi: how long a stall holds a frame (default 50-300)\n"
         "  --loss P              the share of frames lost on the wire and sent again after --rto-ms (default 0)\n"
         "  --rto-ms MS           the retransmission timeout, doubled per loss (default 200)\n"
         "  --clock-step-ms MS    each node's clock steps by up to +-MS (NTP corrections; default 0: none)\n"
         "  --clock-step-every-s S  ... on average every S seconds (default 60)\n"
         "  --offset-max-ms MS    node clock offsets uniform in +-MS (default 2000)\n"
         "  --drift-ppm PPM       node clock rate errors uniform in +-PPM (default 0)\n"
         "  --seed S              seed of every random choice (default: random, printed)\n"
         "  --connections C       MQTT connections shared by the nodes (default ceil(N/250), lean ceil(N/2500))\n"
         "  --client paho|lean    their MQTT client: Paho, as the node's firmware, or a lean one that costs\n"
         "                        a fraction of the CPU (plain tcp:// only; default paho)\n"
         "  --hb-period-s S       heartbeat period (default 5)\n"
         "  --phase-period-s S    phase report period, 0 = none (default 1)\n"
         "  --duration-s S        stop after S seconds, 0 = at SIGTERM / SIGINT (default 0)\n"
         "  --ledger FILE         one line per execution and per CONFLICT\n"
         "  --roster FILE         one line per node: cluster, class, clock, latency, failures\n"
         "  --job-ms MS           time a built-in job handler (echo, hash, sleep) takes (default 10)\n"
         "  --fail K=F,...        fractions of nodes failing: crash, slow, lying, badmac, diverge, paradox\n"
         "  --crash-after-s S     when crash nodes stop (default 10)\n"
         "  --jump ID:+MS@S       at S s, node ID's base latency changes by +MS or -MS (repeatable)\n"
         "See docs/SIM.md.\n";
}

}  // namespace kairos::sim

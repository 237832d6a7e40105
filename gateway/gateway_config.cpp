#include "gateway/gateway_config.h"

#include <set>

#include "common/core/config.h"
#include "common/core/topic.h"
#include "common/io/files.h"

namespace kairos::gw {

namespace {

// HOST:PORT, the host a name, an IPv4 address or a bracketed IPv6 one.
bool valid_listen(const std::string& v) {
  const auto colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == v.size() || v.size() - colon > 6) return false;
  const std::string host = v.substr(0, colon), port = v.substr(colon + 1);
  if (host.find_first_of(" \t/") != std::string::npos) return false;
  if (host.front() == '[' ? host.back() != ']' : host.find(':') != std::string::npos) return false;
  if (port.find_first_not_of("0123456789") != std::string::npos) return false;
  return std::stoi(port) <= 65535;
}

// An MQTT topic prefix of one of the bridges: levels without wildcards, not
// in Kairos's own signed namespace nor the broker's $ topics.
void check_prefix(Section& sec, const std::string& key, const std::string& v) {
  auto bad = [&](const std::string& why) { sec.fail(key, "'" + v + "' " + why); };
  if (v.empty()) bad("is empty");
  if (v.find_first_of("+#") != std::string::npos) bad("holds an MQTT wildcard (+ or #)");
  if (v.front() == '/' || v.back() == '/' || v.find("//") != std::string::npos) bad("has an empty topic level");
  if (v.front() == '$') bad("is a broker topic ($...)");
  if (v == "kairos" || v.rfind("kairos/", 0) == 0) bad("is under kairos/, where only signed frames go");
  if (v.size() > 128) bad("is longer than 128 characters");
}

void read_bridges(Section& root, GatewayConfig& g) {
  auto ha = root.section("homeassistant");
  auto& h = g.homeassistant;
  h.enabled = ha.boolean("enabled", false);
  h.discovery_prefix = ha.str("discovery_prefix", "homeassistant");
  check_prefix(ha, "discovery_prefix", h.discovery_prefix);
  h.state_prefix = ha.str("state_prefix", "kairos-ha/" + g.mesh);
  check_prefix(ha, "state_prefix", h.state_prefix);
  if (h.state_prefix == h.discovery_prefix || h.state_prefix.rfind(h.discovery_prefix + "/", 0) == 0)
    ha.fail("state_prefix", "must not be under discovery_prefix: Home Assistant would read its states as configs");
  h.allow_commands = ha.boolean("allow_commands", false);
  h.state_interval_s = ha.num("state_interval_s", 1.0, 0.1, 3600);
  h.hold_ms = static_cast<std::uint32_t>(ha.integer("hold_ms", 60'000, 1, 86'400'000));
  h.max_messages_per_s = ha.num("max_messages_per_s", 1000, 10, 1'000'000);

  auto sp = root.section("sparkplug");
  g.sparkplug.enabled = sp.boolean("enabled", false);
  g.sparkplug.group_id = sp.str("group_id", g.mesh);
  if (!valid_name(g.sparkplug.group_id))
    sp.fail("group_id", "'" + g.sparkplug.group_id + "' is not a Sparkplug group id here (" + std::string(kNameRule) + ")");
  g.sparkplug.data_interval_s = sp.num("data_interval_s", 1.0, 0.05, 3600);
  g.sparkplug.max_messages_per_s = sp.num("max_messages_per_s", 1000, 10, 1'000'000);
}

}  // namespace

const char* to_string(GatewayConfig::Role role) {
  switch (role) {
    case GatewayConfig::Role::sector: return "sector";
    case GatewayConfig::Role::root: return "root";
    default: return "standalone";
  }
}

GatewayConfig load_gateway_config(const std::string& path) {
  GatewayConfig g;
  g.path = path;
  Config cfg(read_config_file(path), path);
  auto root = cfg.root();

  auto gw = root.section("gateway");
  g.id = gw.name("id");
  g.mesh = gw.name("mesh");
  g.keys_dir = gw.str("keys_dir");
  g.database = gw.str("database");
  // Written by the gateway, so beside its database (/var/lib/kairos under
  // systemd) rather than in keys_dir, which it may only read.
  g.rotated_keys_dir = gw.str("rotated_keys_dir", "");
  if (g.rotated_keys_dir.empty()) {
    auto slash = g.database.rfind('/');
    const std::string dir = slash == std::string::npos ? std::string(".") : g.database.substr(0, slash);
    g.rotated_keys_dir = dir + "/rotated-keys";
  }
  if (g.rotated_keys_dir == g.keys_dir)
    gw.fail("rotated_keys_dir", "must not be gateway.keys_dir: rotations would overwrite the provisioned keys");
  g.log_level = gw.choice("log_level", "info", {"debug", "info", "warn", "error"});
  g.ingest_client = gw.choice("ingest_client", "lean", {"lean", "paho"});

  g.broker = read_broker(root.section("broker"), 10000);

  auto live = root.section("liveness");
  g.heartbeat_period_s = live.num("heartbeat_period_s", 5.0, 0.05, 3600);
  g.missed_heartbeats = static_cast<int>(live.integer("missed_heartbeats", 3, 1, 100));
  g.rebirth_after_s = live.num("rebirth_after_s", 2 * g.heartbeat_period_s, 0.1, 3600);

  auto sync = root.section("sync");
  g.sync_period_s = sync.num("period_ms", 100, 10, 60'000) / 1000.0;
  g.unified_enter = sync.num("unified_enter", 0.75, 0, 1);
  g.unified_leave = sync.num("unified_leave", 0.70, 0, 1);
  if (g.unified_leave > g.unified_enter) sync.fail("unified_leave", "must not exceed unified_enter");
  g.stale_after_s = sync.num("stale_after_s", 3 * g.heartbeat_period_s, 0.01, 86400);
  g.mesh_publish_s = sync.num("publish_interval_s", 1.0, 0.05, 60);
  auto weights = sync.section("class_weight");
  const char* classes[] = {"A", "B", "C", "D", "E", "F"};
  for (int i = 0; i < 6; ++i) g.class_weight[static_cast<std::size_t>(i)] = weights.num(classes[i], 1.0, 0, 1000);

  auto clock = root.section("clock");
  g.ping_period_s = clock.num("ping_period_s", 10.0, 0.1, 3600);
  g.fast_ping_period_s = clock.num("fast_ping_period_s", 2.0, 0.05, 3600);
  g.ping_timeout_s = clock.num("ping_timeout_s", 5.0, 0.1, 600);
  g.max_pings_in_flight = static_cast<std::size_t>(clock.integer("max_pings_in_flight", 512, 1, 100'000));
  g.ping_share = clock.num("ping_share", 0.08, 0.001, 10);
  g.min_ping_rate = clock.num("min_ping_rate", 1000, 1, 1'000'000);
  auto schedule = root.section("schedule");
  g.send_rate = schedule.num("send_rate", 4'000, 10, 10'000'000);
  g.lead_quantile = schedule.num("lead_quantile", 0.999, 0.5, 0.99999);

  auto jobs = root.section("jobs");
  g.job_backoff_s = jobs.num("backoff_ms", 200, 1, 600'000) / 1000.0;
  g.job_backoff_max_s = jobs.num("backoff_max_ms", 5000, 1, 3'600'000) / 1000.0;
  g.job_grace_s = jobs.num("grace_ms", 1000, 0, 600'000) / 1000.0;
  g.job_per_node = static_cast<int>(jobs.integer("per_node", 4, 1, 1000));
  g.job_timeout_ms = static_cast<std::uint32_t>(jobs.integer("timeout_ms", 10'000, 1, 3'600'000));
  g.job_retries = static_cast<int>(jobs.integer("retries", 3, 0, 100));
  g.jobs_in_memory = static_cast<std::size_t>(jobs.integer("in_memory", 10'000, 100, 10'000'000));

  auto br = root.section("breakers");
  g.breaker_window_s = br.num("window_s", 60, 0.1, 86400);
  g.cluster_failures = static_cast<int>(br.integer("cluster_failures", 5, 0, 1'000'000));
  g.sector_failures = static_cast<int>(br.integer("sector_failures", 50, 0, 1'000'000));
  g.global_sectors = static_cast<int>(br.integer("global_sectors", 10, 0, 100'000));
  g.breaker_open_s = br.num("open_s", 30, 0.05, 86400);
  g.breaker_healthy_s = br.num("healthy_s", 60, 0.05, 86400);
  std::map<std::string, std::string> owner;  // cluster -> sector
  for (auto& [name, sec] : root.sections("sectors")) {
    if (!valid_name(name)) root.section("sectors").fail(name, "a sector name uses letters, digits, '-' and '_'");
    auto clusters = sec.strings("clusters", 10'000);
    if (clusters.empty()) sec.fail("clusters", "a sector names at least one cluster");
    for (const auto& c : clusters) {
      if (!valid_name(c)) sec.fail("clusters", "'" + c + "' is not a cluster name");
      if (auto [it, fresh] = owner.emplace(c, name); !fresh)
        sec.fail("clusters", "cluster '" + c + "' is already in sector '" + it->second + "'");
    }
    g.sectors[name] = clusters;
  }

  auto alerts = root.section("alerts");
  g.alert_hook = alerts.strings("hook", 32);
  if (!g.alert_hook.empty() && (g.alert_hook[0].empty() || g.alert_hook[0][0] != '/'))
    alerts.fail("hook", "the hook's first word is an absolute path (no shell, no PATH lookup)");
  g.alert_hook_timeout_s = alerts.num("hook_timeout_s", 10, 0.1, 600);

  auto ball = root.section("ball");
  g.ball_retry_s = ball.num("retry_s", 30, 0.1, 3600);
  g.ball_retry_max_s = ball.num("retry_max_s", 600, 0.1, 86400);
  if (g.ball_retry_max_s < g.ball_retry_s) ball.fail("retry_max_s", "must be at least ball.retry_s");

  auto ctl = root.section("control");
  g.ctl_max_age_s = ctl.num("max_age_s", 60, 1, 3600);

  auto hier = root.section("hierarchy");
  const std::string role = hier.choice("role", "standalone", {"standalone", "sector", "root"});
  g.role = role == "sector" ? GatewayConfig::Role::sector
           : role == "root" ? GatewayConfig::Role::root
                            : GatewayConfig::Role::standalone;
  g.summary_period_s = hier.num("summary_period_s", 5, 0.1, 3600);
  g.stale_periods = static_cast<int>(hier.integer("stale_periods", 3, 1, 100));
  g.sector = hier.str("sector", "");
  auto sectors = hier.strings("sectors", 10'000);
  if (g.role == GatewayConfig::Role::sector) {
    if (g.sector.empty()) hier.fail("sector", "a gateway with role = \"sector\" names the sector it runs");
    if (!valid_name(g.sector)) hier.fail("sector", "'" + g.sector + "' is not a sector name (" + std::string(kNameRule) + ")");
  } else if (!g.sector.empty()) {
    hier.fail("sector", "only a gateway with role = \"sector\" runs a sector");
  }
  if (g.role == GatewayConfig::Role::root) {
    if (sectors.empty()) hier.fail("sectors", "a root names the sectors it reads (at least one)");
    std::set<std::string> seen;
    for (const auto& s : sectors) {
      if (!valid_name(s)) hier.fail("sectors", "'" + s + "' is not a sector name (" + std::string(kNameRule) + ")");
      if (!seen.insert(s).second) hier.fail("sectors", "sector '" + s + "' is named twice");
    }
    g.root_sectors = std::move(sectors);
  } else if (!sectors.empty()) {
    hier.fail("sectors", "only a gateway with role = \"root\" reads sectors");
  }
  auto metrics = root.section("metrics");
  g.metrics_listen = metrics.str("listen", "");
  if (!g.metrics_listen.empty() && !valid_listen(g.metrics_listen))
    metrics.fail("listen", "'" + g.metrics_listen + "' is not HOST:PORT (like 127.0.0.1:9464; port 0..65535)");
  auto web = root.section("web");
  g.web.listen = web.str("listen", "");
  if (!g.web.listen.empty() && !valid_listen(g.web.listen))
    web.fail("listen", "'" + g.web.listen + "' is not HOST:PORT (like 127.0.0.1:8080; port 0..65535)");
  g.web.static_dir = web.str("static_dir", KAIROS_WEB_DIR);
  g.web.max_clients = static_cast<std::size_t>(web.integer("max_clients", 16, 1, 256));
  g.web.hosts = web.strings("hosts", 32);
  for (const auto& h : g.web.hosts)
    if (h.empty() || h.size() > 253 || h.find_first_of(" /:@[]") != std::string::npos)
      web.fail("hosts", "'" + h + "' is not a host name (like gw.example.lan; no port)");
  read_bridges(root, g);
  cfg.finish();
  return g;
}

}  // namespace kairos::gw

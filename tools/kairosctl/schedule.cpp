#include "tools/kairosctl/schedule.h"

#include <cmath>
#include <cstdio>
#include <ctime>

#include "common/core/frame.h"
#include "common/core/json.h"

namespace kairos::ctl {

namespace {

bool to_number(const std::string& s, double& out) {
  try {
    std::size_t used = 0;
    out = std::stod(s, &used);
    return used == s.size() && std::isfinite(out);
  } catch (...) {
    return false;
  }
}

bool to_ms(const std::string& s, std::uint32_t max, std::uint32_t& out) {
  double v = 0;
  if (!to_number(s, v) || v < 0 || v > max || v != std::floor(v)) return false;
  out = static_cast<std::uint32_t>(v);
  return true;
}

}  // namespace

std::int64_t parse_time_us(const std::string& s) {
  double secs = 0;
  if (to_number(s, secs)) return secs > 0 ? static_cast<std::int64_t>(std::llround(secs * 1e6)) : -1;
  std::tm tm{};
  int year, mon, day, hour, min;
  double sec;
  char z = 0;
  int used = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%lf%c%n", &year, &mon, &day, &hour, &min, &sec, &z, &used) != 7 ||
      z != 'Z' || static_cast<std::size_t>(used) != s.size() || sec < 0 || sec >= 61)
    return -1;
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = 0;
  std::time_t t = timegm(&tm);
  if (t < 0) return -1;
  return static_cast<std::int64_t>(t) * 1'000'000 + static_cast<std::int64_t>(std::llround(sec * 1e6));
}

std::string format_time_us(std::int64_t us) {
  std::time_t t = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[80];
  std::snprintf(b, sizeof b, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>((us % 1'000'000) / 1000));
  return b;
}

std::string parse_schedule_args(const std::vector<std::string>& args, kairos_v1_ScheduleRequest& req,
                                std::int64_t now_us) {
  req = kairos_v1_ScheduleRequest_init_zero;
  req.has_command = true;
  auto& cmd = req.command;
  if (args.empty()) return "schedule needs a command: freeze, thaw, heal, rebirth, set_output or config_reload";
  const std::string& what = args[0];
  if (what == "freeze") {
    cmd.which_action = kairos_v1_Command_freeze_tag;
    cmd.action.freeze = true;
  } else if (what == "thaw") {
    cmd.which_action = kairos_v1_Command_thaw_tag;
    cmd.action.thaw = true;
  } else if (what == "heal") {
    cmd.which_action = kairos_v1_Command_heal_tag;
    cmd.action.heal = true;
  } else if (what == "rebirth") {
    cmd.which_action = kairos_v1_Command_rebirth_tag;
    cmd.action.rebirth = true;
  } else if (what == "config_reload") {
    cmd.which_action = kairos_v1_Command_config_reload_tag;
    cmd.action.config_reload = true;
  } else if (what == "set_output") {
    cmd.which_action = kairos_v1_Command_set_output_tag;
    cmd.action.set_output.has_z = true;
    cmd.action.set_output.z.re = 1;
    cmd.action.set_output.c = 1;
  } else {
    return "schedule: unknown command '" + what + "' (freeze, thaw, heal, rebirth, set_output, config_reload)";
  }
  bool when = false;
  set_string(req.targets, "all");
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--mandatory") {
      cmd.mandatory = true;
      continue;
    }
    if (a == "--confirm") {
      req.confirm = true;  // a mesh-wide operation in DEGRADED_SEVERE, anything in EMERGENCY
      continue;
    }
    if (i + 1 >= args.size()) return "schedule: " + a + " needs a value";
    const std::string& v = args[++i];
    if (a == "--at") {
      std::int64_t t = parse_time_us(v);
      if (t < 0) return "schedule: --at takes epoch seconds or UTC ISO 8601 (2026-11-23T18:30:00.250Z), not '" + v + "'";
      if (t <= now_us) return "schedule: --at " + v + " is in the past";
      req.at_us = t;
      when = true;
    } else if (a == "--in") {
      if (!to_ms(v, 3'600'000, req.in_ms) || req.in_ms == 0) return "schedule: --in takes 1 to 3600000 ms";
      when = true;
    } else if (a == "--targets") {
      if (v.empty() || v.size() >= sizeof req.targets) return "schedule: --targets takes a selector of at most 1024 characters";
      set_string(req.targets, v);
    } else if (a == "--strategy") {
      if (v != "parallel" && v != "wave" && v != "priority_first" && v != "naive")
        return "schedule: --strategy takes parallel, wave, priority_first or naive";
      set_string(req.strategy, v);
    } else if (a == "--lead") {
      if (v != "tail" && v != "jitter") return "schedule: --lead takes tail or jitter";
      set_string(req.lead, v);
    } else if (a == "--window") {
      if (!to_ms(v, 600'000, req.window_ms) || req.window_ms == 0) return "schedule: --window takes 1 to 600000 ms";
    } else if (a == "--tolerance") {
      if (!to_ms(v, 60'000, req.late_tolerance_ms)) return "schedule: --tolerance takes 0 to 60000 ms";
    } else if (a == "--hit") {
      if (!to_ms(v, 60'000, req.hit_ms) || req.hit_ms == 0) return "schedule: --hit takes 1 to 60000 ms";
    } else if (a == "--quorum" || a == "--conflict-max" || a == "--transit-wait") {
      double q = 0;
      if (!to_number(v, q) || q <= 0 || q > 1) return "schedule: " + a + " takes a fraction in (0, 1]";
      (a == "--quorum" ? req.ready_quorum : a == "--conflict-max" ? req.conflict_max : req.transit_wait) =
          static_cast<float>(q);
    } else if (a == "--extensions") {
      if (!to_ms(v, 10, req.max_extensions)) return "schedule: --extensions takes 0 to 10";
    } else if (what == "set_output" && a == "--output") {
      if (v.empty() || v.size() >= sizeof cmd.action.set_output.output) return "schedule: --output takes an output name";
      set_string(cmd.action.set_output.output, v);
    } else if (what == "set_output" && a == "--value") {
      double re, im, c;
      char tail;
      if (std::sscanf(v.c_str(), "%lf,%lf,%lf%c", &re, &im, &c, &tail) != 3 || c < 0 || c > 1)
        return "schedule: --value takes re,im,c (c in 0..1)";
      cmd.action.set_output.z.re = static_cast<float>(re);
      cmd.action.set_output.z.im = static_cast<float>(im);
      cmd.action.set_output.c = static_cast<float>(c);
    } else if (what == "set_output" && a == "--hold") {
      if (!to_ms(v, 3'600'000, cmd.action.set_output.hold_ms)) return "schedule: --hold takes 0 to 3600000 ms";
    } else {
      return "schedule: unknown argument '" + a + "'";
    }
  }
  bool naive = std::string(req.strategy) == "naive";
  if (!when && !naive) return "schedule: say when, with --at TIME or --in MS";
  if (what == "set_output" && cmd.action.set_output.output[0] == 0) return "schedule: set_output needs --output NAME";
  return "";
}

int schedule_wait_ms(const kairos_v1_ScheduleRequest& req, std::int64_t now_us, int timeout_ms) {
  std::int64_t t = req.at_us ? req.at_us : now_us + static_cast<std::int64_t>(req.in_ms) * 1000;
  std::int64_t window = req.window_ms ? req.window_ms : 1000;
  std::int64_t ext = req.max_extensions ? req.max_extensions : 1;
  std::int64_t ms = (t - now_us) / 1000 + window * (1 + ext) + timeout_ms;
  // A wave cascade plans each later wave after the one before: allow for them.
  if (std::string(req.strategy) == "wave" || std::string(req.strategy) == "priority_first") ms += 6 * (window * (1 + ext) + 1000);
  return static_cast<int>(std::min<std::int64_t>(ms, 24LL * 3600 * 1000));
}

int print_schedule(const kairos_v1_ScheduleReply& r, bool json) {
  const bool proceed = std::string(r.verdict) == "PROCEED";
  if (json) {
    Json j;
    j.begin_object().key("schedule_id").integer(r.schedule_id).key("strategy").str(r.strategy);
    j.key("at").str(format_time_us(r.at_us)).key("at_us").integer(static_cast<unsigned long long>(r.at_us));
    j.key("verdict").str(r.verdict).key("targets").integer(r.targets).key("sent").integer(r.sent);
    j.key("skipped").integer(r.skipped).key("ready").integer(r.ready).key("conflicts").integer(r.conflicts);
    j.key("stragglers").integer(r.stragglers).key("not_sent").integer(r.not_sent).key("hits").integer(r.hits);
    j.key("hit_ms").integer(r.hit_ms).key("hit_rate").num(r.hit_rate);
    j.key("spread_ms").begin_object().key("p50").num(r.spread_p50_ms).key("p95").num(r.spread_p95_ms);
    j.key("max").num(r.spread_max_ms).key("mean_error").num(r.error_mean_ms).end_object();
    j.key("window_ms").integer(r.window_ms).key("acks_in_ms").integer(r.acks_in_ms);
    j.key("acks_p95_after_t_ms").num(static_cast<double>(r.acks_p95_after_t_ms));
    j.key("waves").begin_array();
    for (pb_size_t i = 0; i < r.waves_count; ++i) {
      const auto& w = r.waves[i];
      j.begin_object().key("name").str(w.name).key("verdict").str(w.verdict).key("threshold").num(w.threshold);
      j.key("at").str(format_time_us(w.at_us)).key("targets").integer(w.targets).key("ready").integer(w.ready);
      j.key("extensions").integer(w.extensions).end_object();
    }
    j.end_array();
    j.key("outcomes_total").integer(r.outcomes_total).key("outcomes").begin_array();
    for (pb_size_t i = 0; i < r.outcomes_count; ++i) {
      const auto& o = r.outcomes[i];
      j.begin_object().key("node").str(o.node).key("outcome").str(o.outcome);
      if (std::string(o.outcome) == "SKIP") j.key("would_need_ms").num(o.would_need_ms).key("available_ms").num(o.available_ms);
      if (std::string(o.outcome) == "MISS") j.key("error_ms").num(o.error_ms);
      j.key("detail").str(o.detail).end_object();
    }
    j.end_array().key("classes").begin_array();
    for (pb_size_t i = 0; i < r.classes_count; ++i) {
      const auto& c = r.classes[i];
      j.begin_object().key("class").str(c.device_class).key("sent").integer(c.sent).key("observed").integer(c.observed);
      j.key("late").integer(c.late).key("lead_p50_ms").num(c.lead_p50_ms).key("lead_max_ms").num(c.lead_max_ms);
      j.key("delay_p50_ms").num(c.delay_p50_ms).key("delay_p99_ms").num(c.delay_p99_ms);
      j.key("delay_max_ms").num(c.delay_max_ms).end_object();
    }
    j.end_array().end_object();
    std::printf("%s\n", j.text().c_str());
    return proceed ? 0 : 3;
  }
  std::printf("schedule %llu (%s) at %s: %s\n", static_cast<unsigned long long>(r.schedule_id), r.strategy,
              format_time_us(r.at_us).c_str(), r.verdict);
  std::printf("  targets     %u: sent %u, ready %u, skipped %u, conflicts %u, stragglers %u%s\n", r.targets, r.sent,
              r.ready, r.skipped, r.conflicts, r.stragglers,
              r.not_sent ? (", not sent " + std::to_string(r.not_sent)).c_str() : "");
  std::printf("  on time     %u of %u within +-%u ms of T (%.1f %%)\n", r.hits, r.targets, r.hit_ms,
              100.0 * static_cast<double>(r.hit_rate));
  std::printf("  spread      |executed - T| p50 %.2f ms, p95 %.2f ms, max %.2f ms (mean error %+.2f ms)\n",
              static_cast<double>(r.spread_p50_ms), static_cast<double>(r.spread_p95_ms),
              static_cast<double>(r.spread_max_ms), static_cast<double>(r.error_mean_ms));
  std::printf("  acks in     %u ms after the call (window %u ms); 95 %% of the final ones %d ms after T\n",
              r.acks_in_ms, r.window_ms, static_cast<int>(r.acks_p95_after_t_ms));
  if (r.waves_count > 1)
    for (pb_size_t i = 0; i < r.waves_count; ++i) {
      const auto& w = r.waves[i];
      std::printf("  wave        %-12s %-17s %u/%u ready (quorum %.2f) at %s\n", w.name, w.verdict, w.ready, w.targets,
                  static_cast<double>(w.threshold), format_time_us(w.at_us).c_str());
    }
  for (pb_size_t i = 0; i < r.classes_count; ++i) {
    const auto& c = r.classes[i];
    std::printf("  class %-5s %u sent, lead p50 %.1f max %.1f ms; delay p50 %.1f p99 %.1f max %.1f ms (%u seen), %u late\n",
                c.device_class, c.sent, static_cast<double>(c.lead_p50_ms), static_cast<double>(c.lead_max_ms),
                static_cast<double>(c.delay_p50_ms), static_cast<double>(c.delay_p99_ms),
                static_cast<double>(c.delay_max_ms), c.observed, c.late);
  }
  if (r.outcomes_total)
    std::printf("  not on time (%u, %u shown):\n", r.outcomes_total, static_cast<unsigned>(r.outcomes_count));
  for (pb_size_t i = 0; i < r.outcomes_count; ++i) {
    const auto& o = r.outcomes[i];
    std::string what = o.detail;
    if (std::string(o.outcome) == "MISS") {
      char b[48];
      std::snprintf(b, sizeof b, "executed %+.2f ms from T", static_cast<double>(o.error_ms));
      what = b;
    }
    std::printf("    %-20s %-10s %s\n", o.node, o.outcome, what.c_str());
  }
  return proceed ? 0 : 3;
}

}  // namespace kairos::ctl

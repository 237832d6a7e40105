#include "tools/kairosctl/jobs.h"

#include <cstdio>
#include <fstream>
#include <iterator>

#include "common/core/frame.h"
#include "common/core/json.h"
#include "common/core/lists.h"
#include "common/core/topic.h"
#include "tools/kairosctl/args.h"
#include "tools/kairosctl/schedule.h"

namespace kairos::ctl {


std::string parse_delegate_args(const std::vector<std::string>& args, kairos_v1_DelegateRequest& req) {
  const char* use =
      "usage: kairosctl delegate <handler> [--payload TEXT | --payload-file FILE] [--to class:X|cluster:C|node:ID|CAPABILITY] "
      "[--needs CAP,CAP] [--timeout MS] [--redundancy R] [--retries N] [--wait] [--confirm]";
  if (args.empty() || args[0].empty() || args[0][0] == '-') return std::string("delegate needs a handler; ") + use;
  if (!valid_name(args[0]) || args[0].size() > 32) return "delegate: '" + args[0] + "' is not a handler name";
  set_string(req.handler, args[0]);
  std::string payload;
  bool have_payload = false;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= args.size()) return false;
      out = args[++i];
      return true;
    };
    std::string v;
    if (a == "--wait") {
      req.wait = true;
    } else if (a == "--confirm") {
      req.confirm = true;
    } else if (a == "--payload") {
      if (!value(payload)) return "delegate: --payload needs the text";
      have_payload = true;
    } else if (a == "--payload-file") {
      if (!value(v)) return "delegate: --payload-file needs a file";
      std::ifstream in(v, std::ios::binary);
      if (!in) return "delegate: cannot read " + v;
      payload.assign(std::istreambuf_iterator<char>(in), {});
      have_payload = true;
    } else if (a == "--to") {
      if (!value(v)) return "delegate: --to needs class:X, cluster:C or a capability";
      if (!valid_job_target(v) || v.empty()) return "delegate: --to '" + v + "': class:A..F, cluster:<name> or a capability";
      set_string(req.to, v);
    } else if (a == "--needs") {
      if (!value(v)) return "delegate: --needs takes capabilities separated by commas";
      for (const auto& cap : split_list(v)) {
        if (!valid_name(cap) || cap.size() > 32) return "delegate: --needs: '" + cap + "' is not a capability";
        if (req.needs_count >= 8) return "delegate: --needs takes at most 8 capabilities";
        set_string(req.needs[req.needs_count++], cap);
      }
    } else if (a == "--timeout") {
      if (!value(v) || !parse_whole(v, 1, 3'600'000, req.timeout_ms)) return "delegate: --timeout takes 1 to 3600000 ms";
    } else if (a == "--redundancy") {
      if (!value(v) || !parse_whole(v, 1, 8, req.redundancy)) return "delegate: --redundancy takes 1 to 8";
    } else if (a == "--retries") {
      if (!value(v) || !parse_whole(v, 0, 100, req.retries)) return "delegate: --retries takes 0 to 100";
      req.has_retries = true;
    } else {
      return "delegate: unknown argument '" + a + "'; " + use;
    }
  }
  if (have_payload) {
    if (payload.size() > sizeof req.payload.bytes)
      return "delegate: the payload is " + std::to_string(payload.size()) + " bytes; at most " +
             std::to_string(sizeof req.payload.bytes);
    req.payload.size = static_cast<pb_size_t>(payload.size());
    std::copy(payload.begin(), payload.end(), req.payload.bytes);
  }
  return "";
}

std::string parse_jobs_args(const std::vector<std::string>& args, kairos_v1_JobsRequest& req) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::uint32_t n = 0;
    if (args[i] == "--limit" && i + 1 < args.size()) {
      if (!parse_whole(args[++i], 1, 20, n)) return "jobs: --limit takes 1 to 20";
      req.limit = n;
    } else if (args[i].find_first_not_of("0123456789") == std::string::npos && args[i].size() < 19 && !args[i].empty()) {
      req.job_id = std::stoull(args[i]);
    } else {
      return "jobs: unknown argument '" + args[i] + "' (kairosctl jobs [ID] [--limit N])";
    }
  }
  return "";
}

int delegate_wait_ms(const kairos_v1_DelegateRequest& req, int timeout_ms) {
  if (!req.wait) return timeout_ms;
  // Every attempt may run to its timeout, plus backoff and transit.
  long per = static_cast<long>(req.timeout_ms ? req.timeout_ms : 10'000) + 2'000;
  long attempts = 1 + (req.has_retries ? req.retries : 3);
  return static_cast<int>(std::min(600'000L, timeout_ms + per * attempts));
}

int print_job(const kairos_v1_JobInfo& j, bool json) {
  const bool failed = std::string_view(j.state) == "FAILED";
  if (json) {
    Json o;
    o.begin_object().key("job").integer(j.job_id).key("handler").str(j.handler).key("state").str(j.state);
    o.key("error").str(j.error).key("output").str(printable_or_hex(j.output.bytes, j.output.size, true));
    o.key("exit_code").num(j.exit_code).key("redundancy").integer(j.redundancy).key("attempts").integer(j.attempts);
    o.key("retries").integer(j.retries).key("winners").begin_array();
    for (pb_size_t i = 0; i < j.winners_count; ++i) o.str(j.winners[i]);
    o.end_array().key("dissent").begin_array();
    for (pb_size_t i = 0; i < j.dissent_count; ++i) o.str(j.dissent[i]);
    o.end_array();
    o.key("created").str(j.created_us ? format_time_us(j.created_us) : "");
    o.key("finished").str(j.finished_us ? format_time_us(j.finished_us) : "");
    o.key("operator").str(j.asked_by).key("sector").str(j.sector).end_object();
    std::printf("%s\n", o.text().c_str());
    return failed ? 3 : 0;
  }
  std::printf("job %llu (%s): %s", static_cast<unsigned long long>(j.job_id), j.handler, j.state);
  if (j.error[0]) std::printf(": %s", j.error);
  std::printf("\n");
  std::printf("  copies   %u sent, %u retries, redundancy %u\n", j.attempts, j.retries, j.redundancy);
  if (j.asked_by[0]) std::printf("  asked by %s\n", j.asked_by);
  if (j.sector[0]) std::printf("  sector   %s\n", j.sector);
  if (j.winners_count) {
    std::printf("  result   from");
    for (pb_size_t i = 0; i < j.winners_count; ++i) std::printf(" %s", j.winners[i]);
    std::printf("\n");
  }
  if (j.dissent_count) {
    std::printf("  outvoted");
    for (pb_size_t i = 0; i < j.dissent_count; ++i) std::printf(" %s", j.dissent[i]);
    std::printf(" (DATA_CONTRADICTION logged: kairosctl conflicts)\n");
  }
  if (j.finished_us && j.created_us)
    std::printf("  took     %.3f s\n", static_cast<double>(j.finished_us - j.created_us) / 1e6);
  if (j.output.size) std::printf("  output   %s\n", printable_or_hex(j.output.bytes, j.output.size, true).c_str());
  if (!j.finished_us && !failed)
    std::printf("  kairosctl jobs %llu shows its progress\n", static_cast<unsigned long long>(j.job_id));
  if (failed && std::string_view(j.error) == "no_capable_node")
    std::fprintf(stderr, "kairosctl: no online node offers job:%s (kairosctl nodes; check [jobs.%s] in the node configs)\n",
                 j.handler, j.handler);
  return failed ? 3 : 0;
}

int print_jobs(const kairos_v1_JobList& l, bool json) {
  if (l.has_job) return print_job(l.job, json);
  if (json) {
    Json o;
    o.begin_object().key("queued").integer(l.queued).key("running").integer(l.running).key("done").integer(l.done);
    o.key("failed").integer(l.failed).key("retries").integer(l.retries).key("contradictions").integer(l.contradictions);
    o.key("recent").begin_array();
    for (pb_size_t i = 0; i < l.recent_count; ++i) {
      const auto& j = l.recent[i];
      o.begin_object().key("job").integer(j.job_id).key("handler").str(j.handler).key("state").str(j.state);
      o.key("error").str(j.error).key("attempts").integer(j.attempts).key("retries").integer(j.retries);
      o.key("operator").str(j.asked_by);
      if (j.sector[0]) o.key("sector").str(j.sector).key("finished").str(j.finished_us ? format_time_us(j.finished_us) : "");
      o.end_object();
    }
    o.end_array().end_object();
    std::printf("%s\n", o.text().c_str());
    return 0;
  }
  std::printf("jobs: %llu queued, %llu running, %llu done, %llu failed; %llu retries, %llu contradictions\n",
              static_cast<unsigned long long>(l.queued), static_cast<unsigned long long>(l.running),
              static_cast<unsigned long long>(l.done), static_cast<unsigned long long>(l.failed),
              static_cast<unsigned long long>(l.retries), static_cast<unsigned long long>(l.contradictions));
  if (l.recent_count)
    std::printf("%-10s %-16s %-8s %-8s %-7s %-16s %s\n", "JOB", "HANDLER", "STATE", "COPIES", "RETRIES", "OPERATOR", "ERROR");
  for (pb_size_t i = 0; i < l.recent_count; ++i) {
    const auto& j = l.recent[i];
    // A root's list: the job's id within its sector (sector/id).
    const std::string id = j.sector[0] ? std::string(j.sector) + "/" + std::to_string(j.job_id) : std::to_string(j.job_id);
    std::printf("%-10s %-16s %-8s %-8u %-7u %-16s %s\n", id.c_str(), j.handler, j.state, j.attempts, j.retries,
                j.asked_by[0] ? j.asked_by : "-", j.error);
  }
  return 0;
}

int print_breakers(const kairos_v1_BreakerList& l, bool json) {
  if (json) {
    Json o;
    o.begin_object().key("total").integer(l.total).key("open").integer(l.open).key("breakers").begin_array();
    for (pb_size_t i = 0; i < l.breakers_count; ++i) {
      const auto& b = l.breakers[i];
      o.begin_object().key("scope").str(b.scope).key("name").str(b.name).key("state").str(b.state);
      o.key("failures").integer(b.failures).key("wait_s").integer(b.wait_s).key("opened").integer(b.opened);
      o.key("held").boolean(b.held);
      o.key("probe_at").str(b.probe_at_us ? format_time_us(b.probe_at_us) : "").end_object();
    }
    o.end_array().end_object();
    std::printf("%s\n", o.text().c_str());
    return 0;
  }
  std::printf("%-8s %-20s %-10s %-9s %-7s %s\n", "SCOPE", "NAME", "STATE", "FAILURES", "OPENED", "PROBE");
  for (pb_size_t i = 0; i < l.breakers_count; ++i) {
    const auto& b = l.breakers[i];
    std::string probe = b.held          ? "held by an operator (kairosctl breakers release " + std::string(b.name) + ")"
                        : b.probe_at_us ? format_time_us(b.probe_at_us) + " (wait " + std::to_string(b.wait_s) + " s)"
                                        : "-";
    std::printf("%-8s %-20s %-10s %-9u %-7u %s\n", b.scope, b.name, b.state, b.failures, b.opened, probe.c_str());
  }
  std::printf("%u breakers, %u not closed%s\n", l.total, l.open,
              l.total > l.breakers_count ? " (the first 40 shown)" : "");
  return 0;
}

}  // namespace kairos::ctl

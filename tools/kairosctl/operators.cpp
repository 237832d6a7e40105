#include "tools/kairosctl/operators.h"

#include <cstdio>
#include <string_view>

#include "common/core/frame.h"
#include "common/core/json.h"
#include "common/core/topic.h"
#include "tools/kairosctl/args.h"
#include "tools/kairosctl/schedule.h"

namespace kairos::ctl {

namespace {

constexpr const char* kUse =
    "usage: kairosctl operators [list] | operators revoke|restore NAME --confirm | operators log [NAME] [--limit N] "
    "[--before ID]";

std::string when(std::int64_t us) { return us ? format_time_us(us) : "never"; }

}  // namespace

std::string parse_operators_args(const std::vector<std::string>& args, kairos_v1_OperatorsRequest& req) {
  const std::string action = args.empty() ? "list" : args[0];
  std::vector<std::string> rest(args.begin() + (args.empty() ? 0 : 1), args.end());
  if (action == "list") {
    req.action = kairos_v1_OperatorsAction_OPERATORS_LIST;
    if (!rest.empty()) return std::string("operators list takes no arguments; ") + kUse;
    return "";
  }
  if (action == "revoke" || action == "restore") {
    req.action = action == "revoke" ? kairos_v1_OperatorsAction_OPERATORS_REVOKE
                                    : kairos_v1_OperatorsAction_OPERATORS_RESTORE;
    for (const auto& a : rest) {
      if (a == "--confirm") {
        req.confirm = true;
      } else if (!a.empty() && a[0] != '-' && !req.name[0]) {
        if (!valid_name(a)) return "operators " + action + ": '" + a + "' is not an operator name";
        set_string(req.name, a);
      } else {
        return "operators " + action + ": unknown argument '" + a + "'; " + kUse;
      }
    }
    if (!req.name[0]) return "operators " + action + " needs the operator's name; " + kUse;
    if (!req.confirm)
      return "operators " + action + " " + req.name + " needs --confirm" +
             (action == "revoke" ? " (its requests are refused from then on)" : "");
    return "";
  }
  if (action == "log") {
    req.action = kairos_v1_OperatorsAction_OPERATORS_LOG;
    for (std::size_t i = 0; i < rest.size(); ++i) {
      const std::string& a = rest[i];
      std::uint32_t n = 0;
      if (a == "--limit" && i + 1 < rest.size()) {
        if (!parse_whole(rest[++i], 1, 20, n)) return "operators log: --limit takes 1 to 20";
        req.limit = n;
      } else if (a == "--before" && i + 1 < rest.size()) {
        const std::string& v = rest[++i];
        if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos)
          return "operators log: --before takes an entry's ID";
        req.before_id = std::stoull(v);
      } else if (!a.empty() && a[0] != '-' && !req.name[0]) {
        if (!valid_name(a)) return "operators log: '" + a + "' is not an operator name";
        set_string(req.name, a);
      } else {
        return "operators log: unknown argument '" + a + "'; " + kUse;
      }
    }
    return "";
  }
  return "operators: unknown action '" + action + "'; " + kUse;
}

int print_operators(const kairos_v1_OperatorsRequest& req, const kairos_v1_OperatorsReply& r, bool json) {
  if (req.action == kairos_v1_OperatorsAction_OPERATORS_LOG) {
    if (json) {
      Json j;
      j.begin_object().key("you").str(r.you).key("log").begin_array();
      for (pb_size_t i = 0; i < r.log_count; ++i) {
        const auto& a = r.log[i];
        j.begin_object().key("id").integer(a.id).key("at").str(format_time_us(a.at_us)).key("operator").str(a.name);
        j.key("verb").str(a.verb).key("detail").str(a.detail).end_object();
      }
      j.end_array().end_object();
      std::printf("%s\n", j.text().c_str());
      return 0;
    }
    std::printf("%-8s %-24s %-16s %-10s %s\n", "ID", "AT", "OPERATOR", "VERB", "DETAIL");
    for (pb_size_t i = 0; i < r.log_count; ++i) {
      const auto& a = r.log[i];
      std::printf("%-8llu %-24s %-16s %-10s %s\n", static_cast<unsigned long long>(a.id), format_time_us(a.at_us).c_str(),
                  a.name, a.verb, a.detail);
    }
    std::printf("%u shown, newest first", static_cast<unsigned>(r.log_count));
    if (r.log_count && r.log[r.log_count - 1].id > 1)
      std::printf(" (older: kairosctl operators log%s%s --before %llu)", req.name[0] ? " " : "", req.name,
                  static_cast<unsigned long long>(r.log[r.log_count - 1].id));
    std::printf("\n");
    return 0;
  }
  unsigned active = 0;
  for (pb_size_t i = 0; i < r.operators_count; ++i)
    if (std::string_view(r.operators[i].state) == "active" && std::string_view(r.operators[i].key) != "missing") ++active;
  if (json) {
    Json j;
    j.begin_object().key("you").str(r.you).key("total").integer(r.total).key("operators").begin_array();
    for (pb_size_t i = 0; i < r.operators_count; ++i) {
      const auto& o = r.operators[i];
      j.begin_object().key("name").str(o.name).key("state").str(o.state).key("key").str(o.key);
      j.key("requests").integer(o.requests).key("last_request").str(o.last_request_us ? format_time_us(o.last_request_us) : "");
      j.key("changed_by").str(o.changed_by).key("changed").str(o.changed_us ? format_time_us(o.changed_us) : "");
      j.end_object();
    }
    j.end_array().end_object();
    std::printf("%s\n", j.text().c_str());
    return 0;
  }
  if (req.action != kairos_v1_OperatorsAction_OPERATORS_LIST) {
    const bool revoke = req.action == kairos_v1_OperatorsAction_OPERATORS_REVOKE;
    std::printf("operator %s %s; %u active operator%s\n", req.name,
                revoke ? "revoked: its requests are refused from now on" : "restored: its requests are taken again",
                active, active == 1 ? "" : "s");
    return 0;
  }
  std::printf("%-16s %-8s %-8s %-9s %-24s %s\n", "OPERATOR", "STATE", "KEY", "REQUESTS", "LAST REQUEST", "CHANGED");
  for (pb_size_t i = 0; i < r.operators_count; ++i) {
    const auto& o = r.operators[i];
    std::string changed = o.changed_by[0] ? std::string(std::string_view(o.state) == "revoked" ? "revoked" : "restored") +
                                                " by " + o.changed_by + " at " + format_time_us(o.changed_us)
                                          : "-";
    std::printf("%-16s %-8s %-8s %-9llu %-24s %s\n", o.name, o.state, o.key, static_cast<unsigned long long>(o.requests),
                when(o.last_request_us).c_str(), changed.c_str());
  }
  std::printf("%u operators, %u active%s; you are %s\n", r.total, active,
              r.total > r.operators_count ? " among those shown (the first 32)" : "", r.you);
  return 0;
}

}  // namespace kairos::ctl

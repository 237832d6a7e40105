#include "tools/kairosctl/ask_mesh.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <set>

namespace kairos::ctl {

namespace {

// A word as typed (ids keep their case) and as matched.
struct Word {
  std::string text, low;
};
using Words = std::vector<Word>;

const std::set<std::string> kStop = {
    "the", "a", "an", "please", "me", "us", "can", "could", "would", "you", "to", "of", "in", "on", "for", "is", "are",
    "was", "were", "what", "who", "which", "how", "show", "tell", "about", "with", "up", "do", "does", "doing", "going",
    "it", "its", "there", "any", "some", "my", "our", "now", "right", "just", "and", "or", "at", "by", "from", "whole",
    "entire", "that", "this", "these", "those", "them", "they", "be", "been", "being", "list", "give", "get", "let",
    "lets", "i", "we", "need", "want", "should", "be", "has", "have", "happening", "status", "state", "nodes", "node",
    "sector", "sectors", "cluster", "clusters", "group", "everything", "all", "mesh", "every", "everyone", "back", "out",
    "around", "using", "routing", "avoiding", "s", "seconds", "minutes", "hours"};

Words split(std::string_view text) {
  // Contractions first, so "what's" is two words; then anything but
  // letters, digits and : . _ - separates words.
  std::string t(text);
  for (auto& c : t)
    if (c == '\'' || c == '`') c = ' ';
  Words out;
  std::string cur;
  auto flush = [&] {
    while (!cur.empty() && (cur.back() == '.' || cur.back() == ':' || cur.back() == '-')) cur.pop_back();
    if (!cur.empty()) {
      std::string low = cur;
      for (auto& c : low) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.push_back({cur, low});
    }
    cur.clear();
  };
  for (char c : t) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == ':' || c == '.' || c == '_' || c == '-') cur += c;
    else flush();
  }
  flush();
  return out;
}

bool has(const Words& w, std::initializer_list<const char*> any) {
  for (const auto& x : w)
    for (const char* a : any)
      if (x.low == a) return true;
  return false;
}

// A word starting with one of the stems ("fail" matches failed, failing, failures).
bool has_stem(const Words& w, std::initializer_list<const char*> stems) {
  for (const auto& x : w)
    for (const char* s : stems)
      if (x.low.rfind(s, 0) == 0) return true;
  return false;
}

// Index of the phrase's first word, or -1.
int find(const Words& w, std::initializer_list<const char*> phrase) {
  const std::vector<std::string> p(phrase.begin(), phrase.end());
  for (std::size_t i = 0; i + p.size() <= w.size(); ++i) {
    bool ok = true;
    for (std::size_t k = 0; k < p.size() && ok; ++k) ok = w[i + k].low == p[k];
    if (ok) return static_cast<int>(i);
  }
  return -1;
}

bool valid_id(const std::string& s) {
  if (s.empty() || s.size() > 64 || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

bool is_time(const std::string& s) { return s.find(':') != std::string::npos; }

bool nameable(const Word& w) { return !kStop.count(w.low) && valid_id(w.text) && !is_time(w.text); }

// A cluster or sector the words name ("sector 7", "the east sector", "cluster east"); "" if none.
std::string group_of(const Words& w) {
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (w[i].low != "sector" && w[i].low != "cluster" && w[i].low != "group") continue;
    if (i + 1 < w.size() && nameable(w[i + 1])) return w[i + 1].text;
    if (i > 0 && nameable(w[i - 1])) return w[i - 1].text;
  }
  return "";
}

// A device class named ("class B nodes", "the class-c nodes"): "B", or "".
std::string class_of(const Words& w) {
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (w[i].low == "class" && i + 1 < w.size() && w[i + 1].low.size() == 1 && w[i + 1].low[0] >= 'a' &&
        w[i + 1].low[0] <= 'f')
      return std::string(1, static_cast<char>(std::toupper(static_cast<unsigned char>(w[i + 1].low[0]))));
    if (w[i].low.size() == 7 && w[i].low.rfind("class-", 0) == 0 && w[i].low[6] >= 'a' && w[i].low[6] <= 'f')
      return std::string(1, static_cast<char>(std::toupper(static_cast<unsigned char>(w[i].low[6]))));
  }
  return "";
}

// The first nameable word after index `after` (a node id), or "".
std::string name_after(const Words& w, int after) {
  for (std::size_t i = static_cast<std::size_t>(after) + 1; i < w.size(); ++i) {
    if (w[i].low == "at" || (w[i].low == "in" && i + 1 < w.size() && std::isdigit(static_cast<unsigned char>(w[i + 1].low[0]))))
      break;  // a time follows
    if (nameable(w[i]) && w[i].low != "class") return w[i].text;
  }
  return "";
}

struct When {
  bool given = false;
  std::string flag, value;  // --at EPOCH or --in MS
  std::string said;         // as understood, for the explanation
  std::string error;
};

// "at 14:00", "at 2pm", "at 14", "in 5 minutes", "in 30 s".
When when_of(const Words& w, std::int64_t now_s, std::int64_t off_s) {
  When r;
  for (std::size_t i = 0; i + 1 < w.size(); ++i) {
    const std::string& v = w[i + 1].low;
    if (w[i].low == "at" && std::isdigit(static_cast<unsigned char>(v[0]))) {
      int h = 0, m = 0;
      char rest[8] = "";
      const int n = std::sscanf(v.c_str(), "%d:%d%7s", &h, &m, rest);
      std::string suffix = n == 3 ? rest : (n < 2 && v.find_first_not_of("0123456789") != std::string::npos
                                                ? v.substr(v.find_first_not_of("0123456789"))
                                                : "");
      if (suffix.empty() && i + 2 < w.size() && (w[i + 2].low == "pm" || w[i + 2].low == "am")) suffix = w[i + 2].low;
      if (n < 1 || (!suffix.empty() && suffix != "am" && suffix != "pm")) continue;
      if (suffix == "pm" && h < 12) h += 12;
      if (suffix == "am" && h == 12) h = 0;
      if (h > 23 || m > 59 || m < 0 || h < 0) {
        r.given = true;
        r.error = "'" + w[i + 1].text + "' is no time of day";
        return r;
      }
      const std::int64_t local = now_s + off_s, day = local - ((local % 86400) + 86400) % 86400;
      std::int64_t t = day + h * 3600 + m * 60 - off_s;
      if (t <= now_s) t += 86400;
      char said[32];
      std::snprintf(said, sizeof said, "%02d:%02d local time", h, m);
      return {true, "--at", std::to_string(t), said, ""};
    }
    if (w[i].low == "in" && std::isdigit(static_cast<unsigned char>(v[0]))) {
      const double n = std::atof(v.c_str());
      const auto unit_at = v.find_first_not_of("0123456789.");
      std::string unit = unit_at == std::string::npos ? "" : v.substr(unit_at);
      if (unit.empty() && i + 2 < w.size()) unit = w[i + 2].low;
      double ms = 0;
      if (unit == "ms" || unit.rfind("milli", 0) == 0) ms = n;
      else if (unit == "s" || unit.rfind("sec", 0) == 0) ms = n * 1000;
      else if (unit == "m" || unit.rfind("min", 0) == 0) ms = n * 60'000;
      else if (unit == "h" || unit.rfind("hour", 0) == 0) ms = n * 3'600'000;
      else continue;
      return {true, "--in", std::to_string(static_cast<long long>(ms)), "in " + w[i + 1].text +
                                                                          (unit == w[i + 1].low ? "" : " " + unit), ""};
    }
  }
  return r;
}

// The targets the words name: a cluster, a class, a node, or all.
std::string targets_of(const Words& w, int verb_at) {
  if (auto g = group_of(w); !g.empty()) return "cluster:" + g;
  if (auto c = class_of(w); !c.empty()) return "class:" + c;
  if (has(w, {"everything", "all", "mesh", "everyone", "every"})) return "all";
  if (auto n = name_after(w, verb_at); !n.empty()) return n;
  return "all";
}

std::string described(const std::string& targets) {
  if (targets == "all") return "every node";
  if (targets.rfind("cluster:", 0) == 0) return "cluster " + targets.substr(8);
  if (targets.rfind("class:", 0) == 0) return "the class " + targets.substr(6) + " nodes";
  return "node " + targets;
}

AskPlan make(std::vector<std::string> run, bool writes, std::string explain) {
  AskPlan p;
  p.run = std::move(run);
  p.writes = writes;
  p.explain = std::move(explain);
  return p;
}

// freeze / thaw, now or at a time.
AskPlan freeze_plan(const Words& w, bool thaw, int at, std::int64_t now_s, std::int64_t off_s) {
  const std::string targets = targets_of(w, at), verb = thaw ? "thaw" : "freeze";
  const When when = when_of(w, now_s, off_s);
  if (!when.error.empty()) return make({}, false, when.error);
  if (when.given)
    return make({"schedule", verb, when.flag, when.value, "--targets", targets, "--confirm"}, true,
                verb + " " + described(targets) + " " + (when.flag == "--at" ? "at " : "") + when.said);
  if (thaw) return make({"thaw", targets, "--confirm"}, true, "thaw " + described(targets) + " now");
  return make({"freeze", targets}, true, "freeze " + described(targets) + " now (a snapshot is written first)");
}

std::size_t distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t prev = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cur = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1)});
      prev = cur;
    }
  }
  return row[b.size()];
}

// What the console understands, for suggestions: a verb, its words, an example.
struct Known {
  const char* verb;
  std::initializer_list<const char*> words;
  const char* example;
};
const Known kKnown[] = {
    {"status", {"status", "happening", "overview", "health", "healthy", "summary"}, "what's happening?"},
    {"nodes --cluster C", {"sector", "cluster", "group"}, "what's happening in sector 7?"},
    {"node ID", {"node"}, "how is node pi-3?"},
    {"conflicts", {"failed", "failures", "errors", "problems", "conflicts", "wrong", "issues"}, "what failed recently?"},
    {"nodes --slowest 10", {"slow", "slowest", "lagging", "latency", "late"}, "who is slow?"},
    {"nodes --state offline", {"offline", "down", "dead", "missing", "unreachable"}, "which nodes are offline?"},
    {"quarantine ID / breakers hold C", {"route", "around", "avoid", "isolate", "quarantine", "bypass"}, "route around pi-3"},
    {"heal ID / breakers release C", {"heal", "release", "bring", "unquarantine"}, "bring pi-3 back"},
    {"freeze", {"freeze", "halt", "pause", "stop"}, "freeze the east sector at 14:00"},
    {"thaw", {"thaw", "unfreeze", "resume"}, "thaw everything"},
    {"breakers", {"breakers", "breaker", "tripped"}, "show the breakers"},
    {"mode", {"mode", "degraded"}, "what mode are we in?"},
    {"kpi", {"kpi", "kpis", "performance", "availability"}, "how well are we doing?"},
    {"jobs", {"jobs", "job", "running", "queue"}, "what jobs are running?"},
    {"ball show S", {"ball", "play", "holds"}, "who holds the ball in kitchen?"},
    {"resolve TASK", {"resolve", "task", "close"}, "resolve task 12: recalibrated"},
    {"operators log", {"audit", "log", "operators"}, "who froze the mesh?"},
};

// A word that is a known verb's word misspelt ("brekers"), not a node's id.
bool misspelt_keyword(const std::string& low) {
  if (low.size() < 5 || low.find_first_of("0123456789-_.") != std::string::npos) return false;
  for (const auto& k : kKnown)
    for (const char* kw : k.words)
      if (low != kw && distance(low, kw) <= 2) return true;
  return false;
}

std::vector<std::string> suggestions(const Words& w) {
  std::vector<std::pair<std::size_t, std::size_t>> score;  // (score, index)
  for (std::size_t k = 0; k < std::size(kKnown); ++k) {
    std::size_t s = 0;
    for (const auto& x : w) {
      if (x.low.size() < 3) continue;
      for (const char* kw : kKnown[k].words) {
        const std::size_t d = distance(x.low, kw);
        if (d <= (x.low.size() > 5 ? 2u : 1u)) s += 3 - d;
      }
    }
    if (s) score.push_back({s, k});
  }
  std::stable_sort(score.begin(), score.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (std::size_t i = 0; i < score.size() && i < 3; ++i)
    out.push_back(std::string(kKnown[score[i].second].verb) + "  (\"" + kKnown[score[i].second].example + "\")");
  if (out.empty())
    for (std::size_t k : {0, 3, 5}) out.push_back(std::string(kKnown[k].verb) + "  (\"" + kKnown[k].example + "\")");
  return out;
}

}  // namespace

AskPlan plan_intent(std::string_view text, std::int64_t now_s, std::int64_t utc_offset_s) {
  const Words w = split(text);
  AskPlan none;
  if (w.empty()) {
    none.explain = "nothing asked";
    none.suggestions = suggestions(w);
    return none;
  }
  const std::string group = group_of(w);
  // Routing around, and back: a node is quarantined (healed), a cluster's breaker held OPEN (released).
  int back = find(w, {"stop", "routing", "around"});
  if (back < 0) back = find(w, {"stop", "avoiding"});
  for (const char* v : {"heal", "unquarantine", "release", "readmit", "reinstate"})
    if (back < 0) back = find(w, {v});
  if (back < 0 && has(w, {"bring", "let", "put"}) && has(w, {"back"})) back = find(w, {w[0].low.c_str()});
  if (back >= 0) {
    if (!group.empty()) return make({"breakers", "release", group}, true, "stop routing around cluster " + group);
    if (auto n = name_after(w, back); !n.empty()) return make({"heal", n}, true, "stop routing around node " + n + " (heal)");
  }
  int around = find(w, {"route", "around"});
  for (const char* v : {"avoid", "isolate", "quarantine", "bypass", "exclude", "sideline"})
    if (around < 0) around = find(w, {v});
  if (around < 0) around = find(w, {"stop", "using"});
  if (around < 0) around = find(w, {"take"});
  if (around < 0) around = find(w, {"cut", "off"});
  if (around >= 0 && (around != find(w, {"take"}) || has(w, {"out", "offline"}))) {
    if (!group.empty())
      return make({"breakers", "hold", group}, true, "route around cluster " + group + " (its breaker held OPEN)");
    if (auto n = name_after(w, around); !n.empty())
      return make({"quarantine", n, "--reason", "routed around from the console"}, true,
                  "route around node " + n + " (quarantined until healed)");
  }
  for (const char* v : {"thaw", "unfreeze", "resume", "unpause"})
    if (int at = find(w, {v}); at >= 0) return freeze_plan(w, true, at, now_s, utc_offset_s);
  for (const char* v : {"freeze", "halt", "pause"})
    if (int at = find(w, {v}); at >= 0) return freeze_plan(w, false, at, now_s, utc_offset_s);
  if (int at = find(w, {"emergency", "stop"}); at >= 0) return freeze_plan(w, false, at + 1, now_s, utc_offset_s);
  if (int at = find(w, {"stop", "everything"}); at >= 0) return freeze_plan(w, false, at, now_s, utc_offset_s);
  if (int at = find(w, {"resolve"}); at >= 0 || find(w, {"close", "task"}) >= 0) {
    for (std::size_t i = 0; i < w.size(); ++i) {
      if (w[i].low.find_first_not_of("0123456789") != std::string::npos || w[i].low.empty()) continue;
      std::string note;
      for (std::size_t k = i + 1; k < w.size(); ++k) {
        if (note.empty() && (w[k].low == "because" || w[k].low == "note" || w[k].low == "as" || w[k].low == "with"))
          continue;
        note += (note.empty() ? "" : " ") + w[k].text;
      }
      std::vector<std::string> run{"resolve", w[i].text};
      if (!note.empty()) run.insert(run.end(), {"--note", note});
      return make(run, true, "close resolution task " + w[i].text + (note.empty() ? "" : " noting \"" + note + "\""));
    }
  }
  if (has(w, {"ball", "play", "plays", "huddle"})) {
    for (const char* kw : {"in", "play", "session", "of"}) {
      int at = find(w, {kw});
      if (at < 0) continue;
      for (std::size_t i = static_cast<std::size_t>(at) + 1; i < w.size(); ++i)
        if (nameable(w[i]) && w[i].low != "ball" && w[i].low != "play")
          return make({"ball", "show", w[i].text}, false, "the Ball's play in session " + w[i].text);
    }
    return make({"ball", "list"}, false, "the newest Ball plays");
  }
  if (has(w, {"audit"}) || find(w, {"who", "did"}) >= 0 || find(w, {"who", "froze"}) >= 0 ||
      find(w, {"who", "changed"}) >= 0 || find(w, {"operators", "log"}) >= 0 || find(w, {"operator", "log"}) >= 0)
    return make({"operators", "log"}, false, "the operators' audit log");
  if (has(w, {"breaker", "breakers", "tripped"}))
    return make({"breakers"}, false, "the circuit breakers");
  if (has(w, {"mode", "degraded", "degradation"})) return make({"mode"}, false, "the degradation mode");
  if (has(w, {"kpi", "kpis", "performance", "availability"}) || find(w, {"how", "well"}) >= 0 ||
      find(w, {"hit", "rate"}) >= 0)
    return make({"kpi"}, false, "the mesh's seven KPIs");
  if (has(w, {"job", "jobs", "queue", "queued", "running", "workload"}))
    return make({"jobs"}, false, "the jobs: counts and the newest");
  if (has_stem(w, {"fail", "error", "problem", "conflict", "issue", "broke", "wrong", "contradict", "paradox"})) {
    if (has(w, {"open", "unresolved", "tasks", "pending"}))
      return make({"conflicts", "--queue"}, false, "the open resolution tasks, highest priority first");
    return make({"conflicts"}, false, "the newest conflicts (what failed)");
  }
  auto in_group = [&](std::vector<std::string> run) {
    if (!group.empty()) run.insert(run.end(), {"--cluster", group});
    return run;
  };
  const std::string where = group.empty() ? "" : " in cluster " + group;
  if (has(w, {"slow", "slowest", "slower", "lagging", "lag", "laggy", "late", "sluggish", "latency", "latencies"}))
    return make(in_group({"nodes", "--slowest", "10"}), false, "the 10 slowest nodes" + where + " (highest impedance)");
  if (has(w, {"offline", "down", "dead", "missing", "unreachable", "lost", "gone", "disconnected"}))
    return make(in_group({"nodes", "--state", "offline"}), false, "the nodes offline" + where);
  if (has(w, {"online", "alive", "connected", "reachable"}))
    return make(in_group({"nodes", "--state", "online"}), false, "the nodes online" + where);
  if (group.empty() && has(w, {"sectors"})) return make({"sectors"}, false, "a root gateway's sectors");
  if (!group.empty()) return make({"nodes", "--cluster", group}, false, "the nodes of cluster " + group);
  for (auto phrase : {std::initializer_list<const char*>{"node"}, {"how", "is"}, {"about"}, {"status", "of"},
                      {"with"}, {"show"}, {"check"}})
    if (int at = find(w, phrase); at >= 0)
      if (auto n = name_after(w, at + static_cast<int>(phrase.size()) - 1); !n.empty() && !misspelt_keyword(n))
        return make({"node", n}, false, "node " + n + ": clock, impedance, reliability");
  if (has(w, {"status", "happening", "overview", "ok", "okay", "fine", "healthy", "health", "summary", "mesh",
              "everything", "going", "doing", "up"}))
    return make({"status"}, false, "the mesh at a glance");
  none.explain = "not understood";
  none.suggestions = suggestions(w);
  return none;
}

std::string shell_line(const std::vector<std::string>& run) {
  std::string line = "kairosctl";
  for (const auto& a : run) {
    const bool plain = !a.empty() && std::all_of(a.begin(), a.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("-_.:,/=").find(c) != std::string_view::npos;
    });
    if (plain) {
      line += " " + a;
      continue;
    }
    line += " '";
    for (char c : a) line += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += "'";
  }
  return line;
}

}  // namespace kairos::ctl

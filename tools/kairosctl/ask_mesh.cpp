#include "tools/kairosctl/ask_mesh.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
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

bool group_word(const std::string& low) { return low == "sector" || low == "cluster" || low == "group"; }

// A cluster or sector the words from `from` on name ("sector 7", "the east sector", "cluster east"); "" if none.
std::string group_of(const Words& w, std::size_t from = 0) {
  for (std::size_t i = from; i < w.size(); ++i) {
    if (!group_word(w[i].low)) continue;
    if (i + 1 < w.size() && nameable(w[i + 1])) return w[i + 1].text;
    if (i > from && nameable(w[i - 1])) return w[i - 1].text;
  }
  return "";
}

// A device class the words in [from, to) name ("class B nodes", "the class-c nodes"): "B", or "".
std::string class_of(const Words& w, std::size_t from = 0, std::size_t to = SIZE_MAX) {
  to = std::min(to, w.size());
  for (std::size_t i = from; i < to; ++i) {
    if (w[i].low == "class" && i + 1 < to && w[i + 1].low.size() == 1 && w[i + 1].low[0] >= 'a' &&
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
  std::string error;        // a time was said but not read: the order is refused, never run at once
};

// "at 14:00", "at 2pm", "at 2 p.m.", "at noon", "in 5 minutes", "in 30 s".
When when_of(const Words& w, std::int64_t now_s, std::int64_t off_s) {
  When r;
  for (std::size_t i = 0; i + 1 < w.size(); ++i) {
    const std::string& v = w[i + 1].low;
    const bool digit = std::isdigit(static_cast<unsigned char>(v[0])) != 0;
    if (w[i].low == "at" && (digit || v == "noon" || v == "midnight")) {
      int h = v == "noon" ? 12 : 0, m = 0, used = 0;
      if (digit && std::sscanf(v.c_str(), "%2d%n:%2d%n", &h, &used, &m, &used) < 1) h = -1;
      std::string suffix = digit ? v.substr(static_cast<std::size_t>(used)) : "";
      std::size_t k = i + 2;
      if (k + 1 < w.size() && w[k].low == "o" && w[k + 1].low == "clock") k += 2;  // "at 7 o'clock pm"
      if (suffix.empty() && k < w.size()) {
        const std::string& next = w[k].low;
        if (next == "pm" || next == "am" || next == "p.m" || next == "a.m") suffix = next;
      }
      if (suffix == "p.m") suffix = "pm";
      if (suffix == "a.m") suffix = "am";
      if (!suffix.empty() && suffix != "am" && suffix != "pm") h = -1;
      if (digit && suffix.empty() && v.find(':') == std::string::npos && h >= 1 && h <= 12) {
        r.given = true;  // "at 7": morning or evening?
        r.error = "'at " + w[i + 1].text + "' could be morning or evening, so it is no time I read: say at " +
                  (h < 10 ? "0" : "") + std::to_string(h) + ":00, at " + std::to_string(h == 12 ? 0 : h + 12) +
                  ":00 or at " + std::to_string(h) + "pm";
        return r;
      }
      if (suffix == "pm" && h >= 1 && h < 12) h += 12;
      if (suffix == "am" && h == 12) h = 0;
      if (h < 0 || h > 23 || m < 0 || m > 59 || (!suffix.empty() && (h > 23))) {
        r.given = true;
        r.error = "'at " + w[i + 1].text + "' is no time of day I read (say at 14:00, at 2pm or at noon)";
        return r;
      }
      const std::int64_t local = now_s + off_s, day = local - ((local % 86400) + 86400) % 86400;
      std::int64_t t = day + h * 3600 + m * 60 - off_s;
      if (t <= now_s) t += 86400;
      char said[32];
      std::snprintf(said, sizeof said, "%02d:%02d local time", h, m);
      return {true, "--at", std::to_string(t), said, ""};
    }
    if (w[i].low == "in" && digit) {
      const double n = std::atof(v.c_str());
      const auto unit_at = v.find_first_not_of("0123456789.");
      std::string unit = unit_at == std::string::npos ? "" : v.substr(unit_at);
      if (unit.empty() && i + 2 < w.size()) unit = w[i + 2].low;
      double ms = -1;
      if (unit == "ms" || unit.rfind("milli", 0) == 0) ms = n;
      else if (unit == "s" || unit.rfind("sec", 0) == 0) ms = n * 1000;
      else if (unit == "m" || unit.rfind("min", 0) == 0) ms = n * 60'000;
      else if (unit == "h" || unit.rfind("hour", 0) == 0) ms = n * 3'600'000;
      const std::string said = "in " + w[i + 1].text + (unit_at == std::string::npos ? " " + unit : "");
      if (ms < 0 || n > 1e6 || ms > 86'400'000.0) {
        r.given = true;
        r.error = "'" + said + "' is no delay I read (say in 30 s, in 5 minutes, in 2 hours; at most a day)";
        return r;
      }
      // schedule --in takes up to an hour; later is an instant (--at, epoch seconds).
      if (ms > 3'600'000) return {true, "--at", std::to_string(now_s + static_cast<std::int64_t>(ms / 1000)), said, ""};
      return {true, "--in", std::to_string(static_cast<long long>(ms)), said, ""};
    }
  }
  return r;
}

// What an order acts on, read from the words right after its verb: the
// first target named wins ("route around pi-3 in the east cluster" is pi-3).
struct Target {
  enum Kind { none, all, group, cls, node } kind = none;
  std::string value;
  std::size_t end = 0;  // the word after it
};

Target target_at(const Words& w, std::size_t i) {
  static const std::set<std::string> skip = {"the", "node", "nodes", "device", "board", "whole", "entire", "of"};
  while (i < w.size() && skip.count(w[i].low)) ++i;
  Target t;
  t.end = i;
  if (i >= w.size()) return t;
  const std::string& low = w[i].low;
  if (low == "everything" || low == "all" || low == "everyone" || low == "every" || low == "mesh") {
    // "all nodes in cluster east" names the cluster.
    if (auto g = group_of(w, i); !g.empty()) return {Target::group, g, w.size()};
    return {Target::all, "all", i + 1};
  }
  if (group_word(low) && i + 1 < w.size() && nameable(w[i + 1])) return {Target::group, w[i + 1].text, i + 2};
  if (auto c = class_of(w, i, i + 2); !c.empty())
    return {Target::cls, c, low == "class" ? i + 2 : i + 1};
  if (nameable(w[i])) {
    if (i + 1 < w.size() && group_word(w[i + 1].low)) return {Target::group, w[i].text, i + 2};
    return {Target::node, w[i].text, i + 1};
  }
  return t;
}

std::string selector(const Target& t) {
  switch (t.kind) {
    case Target::group: return "cluster:" + t.value;
    case Target::cls: return "class:" + t.value;
    case Target::node: return t.value;
    default: return "all";
  }
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
// freeze / thaw, now or at a time; `after`: the word after the verb.
AskPlan freeze_plan(const Words& w, bool thaw, std::size_t after, std::int64_t now_s, std::int64_t off_s) {
  const std::string targets = selector(target_at(w, after)), verb = thaw ? "thaw" : "freeze";
  const When when = when_of(w, now_s, off_s);
  if (!when.error.empty()) return make({}, false, when.error);
  if (when.given)
    return make({"schedule", verb, when.flag, when.value, "--targets", targets, "--confirm"}, true,
                verb + " " + described(targets) + " " + (when.flag == "--at" && when.said.rfind("in ", 0) != 0 ? "at " : "") +
                    when.said);
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

// An order is a sentence that starts with its verb (after "please", "can
// you" and the like): "did the freeze reach all nodes?" orders nothing.
// Nothing understood: an empty plan and no explanation.
AskPlan order_of(const Words& w, std::int64_t now_s, std::int64_t off_s) {
  static const std::set<std::string> lead = {"please", "pls", "ok", "okay", "now", "then", "so", "and", "hey",
                                             "kairos", "just", "can", "could", "would", "will", "you"};
  std::size_t s = 0;
  while (s < w.size() && lead.count(w[s].low)) ++s;
  auto at = [&](std::initializer_list<const char*> phrase) -> std::size_t {  // the word after the phrase, or 0
    std::size_t i = s;
    for (const char* p : phrase) {
      if (i >= w.size() || w[i].low != p) return 0;
      ++i;
    }
    return i;
  };
  auto first = [&](std::initializer_list<std::initializer_list<const char*>> phrases) -> std::size_t {
    for (auto p : phrases)
      if (std::size_t after = at(p)) return after;
    return 0;
  };
  // Routing around, and back: a node is quarantined (healed), a cluster's breaker held OPEN (released).
  if (std::size_t after = first({{"stop", "routing", "around"}, {"stop", "avoiding"}, {"heal"}, {"unquarantine"},
                                 {"release"}, {"readmit"}, {"reinstate"}, {"bring"}, {"let"}, {"put"}})) {
    const bool needs_back = at({"bring"}) || at({"let"}) || at({"put"});
    const Target t = target_at(w, after);
    if (!needs_back || (t.end < w.size() && w[t.end].low == "back")) {
      if (t.kind == Target::group) return make({"breakers", "release", t.value}, true, "stop routing around cluster " + t.value);
      if (t.kind == Target::node) return make({"heal", t.value}, true, "stop routing around node " + t.value + " (heal)");
    }
  }
  if (std::size_t after = first({{"route", "around"}, {"avoid"}, {"isolate"}, {"quarantine"}, {"bypass"},
                                 {"exclude"}, {"sideline"}, {"stop", "using"}, {"cut", "off"}, {"take"}})) {
    const Target t = target_at(w, after);
    const bool take = at({"take"}) != 0;
    if (!take || (t.end < w.size() && (w[t.end].low == "out" || w[t.end].low == "offline"))) {
      if (t.kind == Target::group)
        return make({"breakers", "hold", t.value}, true, "route around cluster " + t.value + " (its breaker held OPEN)");
      if (t.kind == Target::node)
        return make({"quarantine", t.value, "--reason", "routed around from the console"}, true,
                    "route around node " + t.value + " (quarantined until healed)");
    }
  }
  if (std::size_t after = first({{"thaw"}, {"unfreeze"}, {"resume"}, {"unpause"}}))
    return freeze_plan(w, true, after, now_s, off_s);
  if (std::size_t after = first({{"freeze"}, {"halt"}, {"pause"}, {"emergency", "stop"}, {"stop", "everything"},
                                 {"stop", "all"}, {"stop", "the", "mesh"}}))
    return freeze_plan(w, false, after, now_s, off_s);
  // resolve [task] N [because|note|:] TEXT, close task N ...
  if (std::size_t after = first({{"resolve", "task"}, {"resolve"}, {"close", "task"}})) {
    if (after < w.size() && w[after].low == "#") ++after;
    if (after < w.size() && w[after].low.find_first_not_of("0123456789") == std::string::npos) {
      std::string note;
      for (std::size_t k = after + 1; k < w.size(); ++k) {
        if (note.empty() && (w[k].low == "because" || w[k].low == "note" || w[k].low == "as" || w[k].low == "with"))
          continue;
        note += (note.empty() ? "" : " ") + w[k].text;
      }
      std::vector<std::string> run{"resolve", w[after].text};
      if (!note.empty()) run.insert(run.end(), {"--note", note});
      return make(run, true, "close resolution task " + w[after].text + (note.empty() ? "" : " noting \"" + note + "\""));
    }
  }
  return {};
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
  if (auto order = order_of(w, now_s, utc_offset_s); order.understood() || !order.explain.empty()) return order;
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

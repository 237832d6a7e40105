#include "tools/kairosctl/ball.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string_view>

#include "common/core/ball.h"
#include "common/core/frame.h"
#include "common/core/lists.h"
#include "common/core/topic.h"
#include "tools/kairosctl/args.h"

namespace kairos::ctl {

namespace {

static_assert(static_cast<int>(ball::AckLevel::read) == kairos_v1_BallAck_ACK_READ &&
                  static_cast<int>(ball::AckLevel::implement) == kairos_v1_BallAck_ACK_IMPLEMENT,
              "ball::AckLevel and BallAck are numbered alike");

struct Verb {
  const char* name;
  kairos_v1_BallVerb verb;  // the request it sends (listen sends none)
  std::size_t min_words, max_words;  // after the verb, options not counted
  std::vector<std::string_view> options;  // each takes a value
  const char* use;
};

const std::vector<Verb>& verbs() {
  static const std::vector<Verb> v = {
      {"hut", kairos_v1_BallVerb_BALL_HUT, 1, 1, {"--peers", "--objective", "--as"},
       "kairosctl ball hut <session> --peers A,B,node-1 --objective TEXT [--objective TEXT ...] [--as NAME]"},
      {"say", kairos_v1_BallVerb_BALL_SAY, 1, 2, {"--as", "--to"},
       "kairosctl ball say <session> --as NAME [--to PEER] [TEXT | -]"},
      {"ack", kairos_v1_BallVerb_BALL_ACK, 3, 3, {"--as"},
       "kairosctl ball ack <session> <seq> <read|ack|understood|concur|implement> --as NAME"},
      {"done", kairos_v1_BallVerb_BALL_DONE, 2, 2, {"--as"},
       "kairosctl ball done <session> <objective-number> --as NAME"},
      {"show", kairos_v1_BallVerb_BALL_SHOW, 1, 1, {"--ball"}, "kairosctl ball show <session> [--ball ID]"},
      {"verify", kairos_v1_BallVerb_BALL_SHOW, 1, 1, {}, "kairosctl ball verify <session>"},
      {"list", kairos_v1_BallVerb_BALL_LIST, 0, 0, {}, "kairosctl ball list"},
      {"listen", kairos_v1_BallVerb_BALL_UNSPECIFIED, 1, 1, {"--as", "--count"},
       "kairosctl ball listen <session> --as NAME [--count N]"},
  };
  return v;
}

std::string all_uses() {
  std::string s = "usage:";
  for (const auto& v : verbs()) s += std::string("\n  ") + v.use;
  return s;
}

// All of in, but at most limit + 1 bytes: enough to tell that it is too long.
std::string read_all(std::FILE* in, std::size_t limit) {
  std::string s;
  char buf[4096];
  std::size_t n = 0;
  while (s.size() <= limit && (n = std::fread(buf, 1, sizeof buf, in)) > 0) s.append(buf, n);
  return s;
}

std::string parse_say_text(const std::string& verb, const std::vector<std::string>& words, std::FILE* in,
                           kairos_v1_BallRequest& req) {
  std::string text;
  if (words.size() == 2 && words[1] != "-") {
    text = words[1];
  } else {
    if (isatty(fileno(in))) std::fprintf(stderr, "kairosctl: reading the text from stdin; end it with Ctrl-D\n");
    text = read_all(in, ball::kMaxInput);
    if (std::ferror(in)) return verb + ": cannot read the text from stdin";
  }
  if (text.size() > ball::kMaxInput)
    return verb + ": the text is longer than " + std::to_string(ball::kMaxInput) +
           " bytes: split it into several inputs";
  if (text.find('\0') != std::string::npos) return verb + ": the text holds a NUL byte";
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return verb + ": the text is empty";
  const bool ball_mode = text.rfind("MM:", 0) == 0;
  if (!ball_mode && !req.to[0])
    return verb + ": conversational input (not starting with MM:) goes to one peer: add --to PEER, or start "
                  "the text with MM: to append it to the lineage";
  if (ball_mode && req.to[0])
    return verb + ": a ball-mode entry (MM:) goes to every peer: drop --to (a last line '->Name' passes the Ball)";
  set_string(req.text, text);
  return "";
}

}  // namespace

std::string parse_ball_args(const std::vector<std::string>& args, BallArgs& a, std::FILE* in) {
  if (args.empty()) return "ball needs a verb; " + all_uses();
  const auto& table = verbs();
  auto v = std::find_if(table.begin(), table.end(), [&](const Verb& x) { return args[0] == x.name; });
  if (v == table.end()) return "ball: unknown verb '" + args[0] + "'; " + all_uses();
  a.verb = v->name;
  a.req = kairos_v1_BallRequest_init_zero;
  a.req.verb = v->verb;
  const std::string verb = "ball " + a.verb;
  const std::string use = std::string("usage: ") + v->use;

  // Options may stand anywhere after the verb; "--" ends them.
  std::vector<std::string> words;
  std::map<std::string, std::vector<std::string>, std::less<>> opts;
  bool only_words = false;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& w = args[i];
    if (only_words || w.empty() || w == "-" || w[0] != '-') {
      words.push_back(w);
    } else if (w == "--") {
      only_words = true;
    } else if (std::find(v->options.begin(), v->options.end(), w) == v->options.end()) {
      return verb + ": unknown option '" + w + "'; " + use;
    } else if (i + 1 >= args.size()) {
      return verb + ": " + w + " needs a value; " + use;
    } else if (!opts[w].empty() && w != "--objective") {
      return verb + ": " + w + " given twice; " + use;
    } else {
      opts[w].push_back(args[++i]);
    }
  }
  if (words.size() < v->min_words) return verb + ": missing arguments; " + use;
  if (words.size() > v->max_words)
    return verb + ": unexpected argument '" + words[v->max_words] + "'" +
           (a.verb == "say" ? " (quote a text with spaces)" : "") + "; " + use;
  auto one = [&](std::string_view name) -> const std::string* {
    auto it = opts.find(name);
    return it == opts.end() ? nullptr : &it->second.front();
  };
  if (v->min_words > 0) {
    if (!valid_name(words[0]))
      return verb + ": '" + words[0] + "' is not a session name (" + std::string(kNameRule) + ")";
    set_string(a.req.session, words[0]);
  }
  const bool needs_as = a.verb == "say" || a.verb == "ack" || a.verb == "done" || a.verb == "listen";
  if (const auto* as = one("--as")) {
    if (!valid_name(*as)) return verb + ": --as '" + *as + "' is not a name (" + std::string(kNameRule) + ")";
    set_string(a.req.as, *as);
  } else if (needs_as) {
    return verb + " needs --as NAME: the peer you speak as; " + use;
  }

  if (a.verb == "hut") {
    const auto* peers = one("--peers");
    if (!peers) return verb + " needs --peers A,B,...: the first holds the Ball; " + use;
    const auto it = opts.find("--objective");
    if (it == opts.end()) return verb + " needs at least one --objective TEXT; " + use;
    // The gateway's own rules, checked here first to say what to fix.
    const auto names = split_list(*peers);
    auto objectives = it->second;
    if (auto why = ball::check_hut(names, objectives); !why.empty()) return verb + ": " + why;
    static_assert(sizeof a.req.peers / sizeof a.req.peers[0] == ball::kMaxPeers);
    static_assert(sizeof a.req.objectives / sizeof a.req.objectives[0] == ball::kMaxObjectives);
    static_assert(sizeof a.req.objectives[0] == ball::kMaxObjective + 1);
    for (const auto& p : names) set_string(a.req.peers[a.req.peers_count++], p);
    for (const auto& o : objectives) set_string(a.req.objectives[a.req.objectives_count++], o);
  } else if (a.verb == "say") {
    if (const auto* to = one("--to")) {
      if (!valid_name(*to)) return verb + ": --to '" + *to + "' is not a peer name (" + std::string(kNameRule) + ")";
      set_string(a.req.to, *to);
    }
    return parse_say_text(verb, words, in, a.req);
  } else if (a.verb == "ack") {
    std::uint32_t seq = 0;
    if (!parse_whole(words[1], 0, 999'999'999, seq))
      return verb + ": '" + words[1] + "' is not an entry number (kairosctl ball show lists them)";
    a.req.seq = seq;
    const auto level = ball::parse_ack(words[2]);
    if (!level) return verb + ": '" + words[2] + "' is not a level: read, ack, understood, concur or implement";
    a.req.level = static_cast<kairos_v1_BallAck>(*level);
  } else if (a.verb == "done") {
    if (!parse_whole(words[1], 1, ball::kMaxObjectives, a.req.objective))
      return verb + ": '" + words[1] + "' is not an objective number, 1 to " + std::to_string(ball::kMaxObjectives) +
             " (kairosctl ball show lists them)";
  } else if (a.verb == "show") {
    if (const auto* id = one("--ball")) {
      if (!valid_name(*id) || id->size() >= sizeof a.req.ball_id)
        return verb + ": --ball '" + *id + "' is not a ball id (kairosctl ball list shows them)";
      set_string(a.req.ball_id, *id);
    }
  } else if (a.verb == "listen") {
    if (const auto* n = one("--count"); n && !parse_whole(*n, 1, 1'000'000, a.count))
      return verb + ": --count takes 1 to 1000000 deliveries";
  }
  return "";
}

}  // namespace kairos::ctl

#include "common/core/ball.h"

#include <algorithm>
#include <cctype>

#include "common/core/bytes.h"
#include "common/core/lists.h"
#include "common/core/topic.h"

namespace kairos::ball {

namespace {

std::string_view rtrim(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string_view trim(std::string_view s) {
  s = rtrim(s);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    out.push_back(rtrim(text.substr(start, end - start)));
    start = end + 1;
  }
  while (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Routing in words instead of a handoff line.
bool vague_routing(std::string_view line) {
  const std::string l = lower(line);
  for (const char* p : {"send this to ", "send it to ", "pass this to ", "pass it to ", "hand this to ", "hand it to ",
                        "forward this to ", "forward to ", "give this to ", "over to ", "route this to ", "handoff to ",
                        "hand off to ", "-> "})
    if (l.find(p) != std::string::npos) return true;
  return false;
}

bool is_null_peer(std::string_view name) {
  return name.empty() || name == "\xC3\x98" || name == "\xE2\x88\x85" || name == "0" || lower(name) == "null" ||
         lower(name) == "nobody" || lower(name) == "none";
}

std::string peer_list(const std::vector<std::string>& peers) {
  std::string s;
  for (const auto& p : peers) s += (s.empty() ? "" : ", ") + p;
  return s;
}

}  // namespace

const char* to_string(Ending e) {
  switch (e) {
    case Ending::none: return "none";
    case Ending::questions: return "questions";
    case Ending::action_items: return "action_items";
    case Ending::handoff: return "handoff";
    case Ending::touchdown: return "touchdown";
  }
  return "?";
}

Parsed parse_input(std::string_view input, const std::vector<std::string>& peers) {
  Parsed out;
  if (input.size() > kMaxInput) {
    out.error = "input of " + std::to_string(input.size()) + " bytes: at most " + std::to_string(kMaxInput);
    return out;
  }
  if (input.find('\0') != std::string_view::npos) {
    out.error = "input holds a NUL byte";
    return out;
  }
  Input in;
  if (input.substr(0, 3) != "MM:") {
    in.text = std::string(input);
    if (trim(input).empty()) {
      out.error = "empty input";
      return out;
    }
    out.input = std::move(in);
    return out;
  }
  in.ball_mode = true;
  in.text = std::string(input.substr(3));
  const auto lines = lines_of(in.text);
  if (lines.empty() || std::all_of(lines.begin(), lines.end(), [](std::string_view l) { return trim(l).empty(); })) {
    out.error = "an empty ball-mode entry";
    return out;
  }
  const std::string_view last = lines.back();
  // Block headers, left-aligned, anywhere in the entry.
  std::optional<std::size_t> questions, actions;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i] == "Questions:") questions = i;
    if (lines[i] == "Action Items:") actions = i;
  }
  for (std::size_t i = 0; i + 1 < lines.size(); ++i)
    if (lines[i].substr(0, 2) == "->") {
      out.error = "a handoff must be the last line (line " + std::to_string(i + 1) + " hands off before the end)";
      return out;
    }
  if (last == "TOUCHDOWN!") {
    in.ending = Ending::touchdown;
  } else if (last.substr(0, 2) == "->") {
    const std::string_view name = trim(last.substr(2));
    if (is_null_peer(name)) {
      out.error = "->\xC3\x98 is always refused: the Ball must go to a peer by name (peers: " + peer_list(peers) + ")";
      return out;
    }
    if (std::find(peers.begin(), peers.end(), name) == peers.end()) {
      out.error = "'" + std::string(name) + "' is not a peer of this session (peers: " + peer_list(peers) + ")";
      return out;
    }
    if (questions || actions) {
      out.error = "the entry ends with a handoff and also has a " +
                  std::string(questions ? "Questions:" : "Action Items:") + " block: end with exactly one";
      return out;
    }
    in.ending = Ending::handoff;
    in.handoff_to = std::string(name);
  } else if (trim(last).substr(0, 2) == "->") {
    out.error = "a handoff must start at the left margin: '->Name' with nothing before it";
    return out;
  } else if (questions || actions) {
    if (questions && actions) {
      out.error = "the entry has both a Questions: and an Action Items: block: end with exactly one";
      return out;
    }
    const std::size_t header = questions ? *questions : *actions;
    if (header + 1 >= lines.size()) {
      out.error = std::string(questions ? "Questions:" : "Action Items:") + " ends the entry with nothing under it";
      return out;
    }
    in.ending = questions ? Ending::questions : Ending::action_items;
  } else if (vague_routing(last)) {
    out.error = "vague routing ('" + std::string(trim(last)).substr(0, 60) +
                "'): pass the Ball with a last line '->Name' at the left margin, naming a peer";
    return out;
  } else {
    out.error = "a ball-mode entry must end with a Questions: block, an Action Items: block, or a last line "
                "'->Name' handing the Ball to a peer";
    return out;
  }
  out.input = std::move(in);
  return out;
}

const char* to_string(AckLevel a) {
  switch (a) {
    case AckLevel::none: return "none";
    case AckLevel::read: return "read";
    case AckLevel::ack: return "ack";
    case AckLevel::understood: return "understood";
    case AckLevel::concur: return "concur";
    case AckLevel::implement: return "implement";
  }
  return "?";
}

std::optional<AckLevel> parse_ack(std::string_view s) {
  for (auto a : {AckLevel::read, AckLevel::ack, AckLevel::understood, AckLevel::concur, AckLevel::implement})
    if (lower(s) == to_string(a)) return a;
  return std::nullopt;
}

std::string ack_step_error(AckLevel from, AckLevel to) {
  if (to == AckLevel::none) return "not an acknowledgement";
  if (static_cast<int>(to) <= static_cast<int>(from))
    return std::string("already at ") + to_string(from) + ": acknowledgements only go forward (read, ack, understood, "
                                                            "concur, implement)";
  return "";
}

std::string canonical(const Entry& e) {
  std::string s;
  s.reserve(e.text.size() + 128);
  auto line = [&](const char* key, const std::string& value) {
    s.append(key).append("=").append(value).append("\n");
  };
  line("seq", std::to_string(e.seq));
  line("session", e.session);
  line("kind", e.kind);
  line("author", e.author);
  line("at_us", std::to_string(e.at_us));
  line("len", std::to_string(e.text.size()));
  s += e.text;
  return s;
}

Digest chain_hash(const Digest& prev, const Entry& e) {
  const std::string c = canonical(e);
  Bytes b(prev.begin(), prev.end());
  b.insert(b.end(), c.begin(), c.end());
  return sha256(b);
}

std::optional<Break> verify(const std::vector<Entry>& entries, std::uint64_t head_seq, const Digest& head_hash) {
  Digest prev{};
  if (entries.empty()) return Break{0, "no genesis entry"};
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (e.seq != i) {
      return Break{i, "entry " + std::to_string(i) + " is missing or out of order (found seq " + std::to_string(e.seq) +
                          ")"};
    }
    if (i == 0 && e.kind != "genesis") return Break{0, "the first entry is not the genesis entry"};
    const Digest h = chain_hash(prev, e);
    if (h != e.hash)
      return Break{e.seq, "entry " + std::to_string(e.seq) + " does not match its hash: it was altered (or an earlier "
                                                              "entry was)"};
    prev = h;
  }
  const std::uint64_t last = entries.back().seq;
  if (last < head_seq)
    return Break{last + 1, "the lineage ends at " + std::to_string(last) + " but its signed head is at " +
                               std::to_string(head_seq) + ": entries " + std::to_string(last + 1) + ".." +
                               std::to_string(head_seq) + " were removed"};
  if (last > head_seq) return Break{head_seq + 1, "entries after the signed head " + std::to_string(head_seq)};
  if (prev != head_hash) return Break{last, "the last entry's hash differs from the signed head"};
  return std::nullopt;
}

}  // namespace kairos::ball

namespace kairos::ball {

Session::Session(std::string session, std::string ball_id, std::vector<std::string> peers,
                 std::vector<std::string> objectives, std::string author, std::int64_t at_us)
    : id_(std::move(session)),
      ball_id_(std::move(ball_id)),
      peers_(std::move(peers)),
      objectives_(std::move(objectives)),
      done_(objectives_.size()) {
  holder_ = peers_.empty() ? author : peers_.front();
  std::string text = "ball=" + ball_id_ + "\npeers=" + join_list(peers_) + "\n";
  for (const auto& o : objectives_) text.append("objective=").append(o).append("\n");
  Entry g;
  g.seq = 0;
  g.session = id_;
  g.kind = "genesis";
  g.author = author;
  g.at_us = at_us;
  g.text = std::move(text);
  g.hash = chain_hash(Digest{}, g);
  lineage_.push_back(std::move(g));
}

bool Session::is_peer(const std::string& name) const {
  return std::find(peers_.begin(), peers_.end(), name) != peers_.end();
}

Session::Outcome Session::append(const std::string& kind, const std::string& author, std::string text,
                                 std::int64_t at_us) {
  Entry e;
  e.seq = lineage_.back().seq + 1;
  e.session = id_;
  e.kind = kind;
  e.author = author;
  e.at_us = at_us;
  e.text = std::move(text);
  e.hash = chain_hash(lineage_.back().hash, e);
  lineage_.push_back(e);
  Outcome o;
  o.appended = std::move(e);
  return o;
}

std::string check_hut(const std::vector<std::string>& peers, std::vector<std::string>& objectives) {
  for (const auto& p : peers) {
    if (!valid_name(p)) return "peer '" + p + "' is not a name (" + std::string(kNameRule) + ")";
    if (std::count(peers.begin(), peers.end(), p) > 1) return "peer '" + p + "' is named twice";
  }
  if (peers.size() < 2 || peers.size() > kMaxPeers) return "a play has 2 to " + std::to_string(kMaxPeers) + " peers";
  for (std::size_t i = 0; i < objectives.size(); ++i) {
    auto& o = objectives[i];
    o = std::string(trim(o));
    if (o.empty() || o.size() > kMaxObjective || o.find_first_of("\r\n") != std::string::npos)
      return "objective " + std::to_string(i + 1) + " must be one line of 1 to " + std::to_string(kMaxObjective) +
             " characters";
  }
  if (objectives.empty() || objectives.size() > kMaxObjectives)
    return "a play has 1 to " + std::to_string(kMaxObjectives) + " objectives";
  return "";
}

std::string check_node_peers(const std::vector<std::string>& peers,
                             const std::map<std::string, std::vector<std::string>>& node_caps) {
  for (const auto& p : peers) {
    auto it = node_caps.find(p);
    if (it == node_caps.end() || std::count(it->second.begin(), it->second.end(), "job:ball")) continue;
    return "peer '" + p + "' is a node that does not advertise job:ball, so it could not answer: add a [jobs.ball] " +
           "table to " + p + "'s config (docs/BALL.md, \"A node as a peer\") and restart it, or leave " + p +
           " out of the play";
  }
  return "";
}

std::int64_t AskSchedule::after_failure(std::int64_t now_us, int failures) const {
  std::int64_t wait = retry_us;
  for (int i = 1; i < failures && wait < max_us; ++i) wait *= 2;
  return now_us + std::min(wait, max_us);
}

std::optional<Session> Session::replay(const std::vector<Entry>& entries, Break& why) {
  if (entries.empty()) {
    why = {0, "no genesis entry"};
    return std::nullopt;
  }
  if (auto b = verify(entries, entries.back().seq, entries.back().hash)) {
    why = *b;
    return std::nullopt;
  }
  const Entry& g = entries.front();
  std::string ball;
  std::vector<std::string> peers, objectives;
  for (std::string_view line : lines_of(g.text)) {
    if (line.substr(0, 5) == "ball=") ball = std::string(line.substr(5));
    else if (line.substr(0, 6) == "peers=") peers = split_list(line.substr(6));
    else if (line.substr(0, 10) == "objective=") objectives.emplace_back(line.substr(10));
  }
  Session s(g.session, ball, peers, objectives, g.author, g.at_us);
  if (s.lineage_.front().hash != g.hash) {
    why = {0, "the genesis entry does not replay to its hash"};
    return std::nullopt;
  }
  auto field = [](const std::string& text, std::string_view key) -> std::uint64_t {
    for (std::string_view line : lines_of(text))
      if (line.substr(0, key.size()) == key) {
        std::uint64_t v = 0;
        for (char c : line.substr(key.size())) {
          if (c < '0' || c > '9' || v > 1'000'000'000'000ULL) return 0;
          v = v * 10 + static_cast<std::uint64_t>(c - '0');
        }
        return v;
      }
    return 0;
  };
  for (std::size_t i = 1; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    Outcome o;
    if (e.kind == "entry" || e.kind == "touchdown") {
      o = s.say(e.author, "MM:" + e.text, e.at_us);
    } else if (e.kind == "ack") {
      std::string_view text = e.text;
      auto at = text.find("level=");
      auto level = at == std::string_view::npos ? std::nullopt : parse_ack(trim(text.substr(at + 6)));
      o = level ? s.ack(e.author, field(e.text, "entry="), *level, e.at_us) : Outcome::refused("no level");
    } else if (e.kind == "done") {
      o = s.done(e.author, static_cast<std::size_t>(field(e.text, "objective=")), e.at_us);
    } else {
      o = Outcome::refused("unknown kind '" + e.kind + "'");
    }
    if (!o.appended || o.appended->hash != e.hash) {
      why = {e.seq, "entry " + std::to_string(e.seq) + " does not replay" + (o.error.empty() ? "" : ": " + o.error)};
      return std::nullopt;
    }
  }
  return s;
}

AckLevel Session::level(std::uint64_t seq, const std::string& peer) const {
  auto it = acks_.find({seq, peer});
  return it == acks_.end() ? AckLevel::none : it->second;
}

std::vector<std::uint64_t> Session::pending(const std::string& peer) const {
  std::vector<std::uint64_t> out;
  for (auto seq : says_) {
    if (lineage_[static_cast<std::size_t>(seq)].author == peer) continue;
    if (static_cast<int>(level(seq, peer)) < static_cast<int>(AckLevel::concur)) out.push_back(seq);
  }
  return out;
}

std::string Session::missing() const {
  std::string out;
  for (std::size_t i = 0; i < objectives_.size(); ++i)
    if (!done_[i]) out += (out.empty() ? "" : "; ") + std::string("objective ") + std::to_string(i + 1) + " '" +
                          objectives_[i] + "' is not done";
  for (auto seq : says_)
    for (const auto& p : peers_) {
      if (p == lineage_[static_cast<std::size_t>(seq)].author) continue;
      const AckLevel at = level(seq, p);
      if (static_cast<int>(at) < static_cast<int>(AckLevel::concur))
        out += (out.empty() ? "" : "; ") + p + " is at " + to_string(at) + " on entry " + std::to_string(seq) +
               " (needs concur)";
    }
  return out;
}

std::string Session::gate(const std::string& peer) const {
  if (closed_) return "the play is closed (TOUCHDOWN!): nothing more is appended; hut starts a new one";
  if (!is_peer(peer)) return "'" + peer + "' is not a peer of this session";
  return "";
}

Session::Outcome Session::say(const std::string& author, std::string_view input, std::int64_t at_us) {
  if (auto why = gate(author); !why.empty()) return Outcome::refused(why);
  auto p = parse_input(input, peers_);
  if (!p.input) return Outcome::refused(p.error);
  if (!p.input->ball_mode) {
    Outcome o;
    o.conversational = true;
    return o;
  }
  if (author != holder_)
    return Outcome::refused(holder_ + " holds the Ball: only the holder may append (wait for a ->" + author +
                            " handoff)");
  if (p.input->ending == Ending::handoff && p.input->handoff_to == author)
    return Outcome::refused("a handoff passes the Ball to another peer (->" + author + " is yourself)");
  if (p.input->ending == Ending::touchdown)
    if (auto why = missing(); !why.empty()) return Outcome::refused("TOUCHDOWN! refused: " + why);
  Outcome o = append(p.input->ending == Ending::touchdown ? "touchdown" : "entry", author, p.input->text, at_us);
  says_.push_back(o.appended->seq);
  if (p.input->ending == Ending::handoff) holder_ = p.input->handoff_to;
  if (p.input->ending == Ending::touchdown) {
    closed_ = true;
    o.closed = true;
  }
  return o;
}

Session::Outcome Session::ack(const std::string& peer, std::uint64_t seq, AckLevel level, std::int64_t at_us) {
  if (auto why = gate(peer); !why.empty()) return Outcome::refused(why);
  if (std::find(says_.begin(), says_.end(), seq) == says_.end())
    return Outcome::refused("entry " + std::to_string(seq) + " is not a ball-mode entry of this session");
  if (lineage_[static_cast<std::size_t>(seq)].author == peer)
    return Outcome::refused("a peer does not acknowledge its own entry");
  if (auto why = ack_step_error(this->level(seq, peer), level); !why.empty()) return Outcome::refused(why);
  acks_[{seq, peer}] = level;
  return append("ack", peer, "entry=" + std::to_string(seq) + "\nlevel=" + to_string(level), at_us);
}

Session::Outcome Session::done(const std::string& peer, std::size_t objective, std::int64_t at_us) {
  if (auto why = gate(peer); !why.empty()) return Outcome::refused(why);
  if (objective == 0 || objective > objectives_.size())
    return Outcome::refused("no objective " + std::to_string(objective) + " (1.." +
                            std::to_string(objectives_.size()) + ")");
  if (done_[objective - 1]) return Outcome::refused("objective " + std::to_string(objective) + " is already done");
  done_[objective - 1] = true;
  return append("done", peer, "objective=" + std::to_string(objective), at_us);
}

}  // namespace kairos::ball

// The Ball protocol at the gateway (docs/DESIGN.md 6, docs/BALL.md): plays are held in
// memory as ball::Session, their lineage is appended to SQLite before anyone
// hears of it, the signed head is published retained, ball-mode entries are
// delivered to every peer (people on _ball/<session>/to/<person>, nodes as a
// `ball` job that may answer), conversational input to the addressed peer only.
#include <algorithm>

#include "common/core/lists.h"
#include "common/io/clock.h"
#include "common/io/log.h"
#include "gateway/ball/plays.h"

namespace kairos::gw {

namespace {

constexpr std::size_t kPayloadMax = 2048;  // a job's payload
constexpr int kAnswerTries = 3;            // a node's refused answers before it is left to the people

std::string one_line(std::string s, std::size_t max) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s.substr(0, max);
}

template <class Field>
void set_digest(Field& dst, const Digest& d) {
  dst.size = static_cast<pb_size_t>(d.size());
  std::copy(d.begin(), d.end(), dst.bytes);
}

void fill_entry(const ball::Entry& e, kairos_v1_BallEntry& o) {
  o.seq = e.seq;
  set_string(o.kind, e.kind);
  set_string(o.author, e.author);
  o.at_us = e.at_us;
  set_string(o.text, e.text);
  set_digest(o.hash, e.hash);
  set_string(o.asked_by, e.asked_by);
}

// A play that a later hut of its session replaced.
void fill_superseded(const StoredPlay& sp, kairos_v1_BallPlay& o) {
  set_string(o.session, sp.session);
  set_string(o.ball_id, sp.ball_id);
  o.started_us = sp.started_wall_us;
  set_string(o.broken, "superseded by a newer hut");
}

std::string seq_list(const std::vector<std::uint64_t>& v, std::size_t max) {
  std::vector<std::string> parts;
  for (std::size_t i = 0; i < v.size() && i < max; ++i) parts.push_back(std::to_string(v[i]));
  return join_list(parts);
}

}  // namespace

Plays::Plays(const GatewayConfig& config, const Registry& registry, Escalation& escalation, Outbox& outbox, JobDesk& jobs,
             Ports ports)
    : config_(config), registry_(registry), escalation_(escalation), outbox_(outbox), jobs_(jobs), ports_(std::move(ports)) {
  outbox_.add(log_);
  outbox_.on_committed([this] {
    if (!dispatch_.empty()) send_jobs();
  });
}

void Plays::on_connected(std::int64_t now_us) {
  connected_at_us_ = now_us;
  for (auto& [name, p] : plays_) p.head_seen = false;
}

void Plays::restore() {
  for (const auto& sp : outbox_.store().current_ball_plays()) {
    Play p;
    p.ball_id = sp.ball_id;
    p.started_wall_us = sp.started_wall_us;
    ball::Break why;
    p.s = ball::Session::replay(outbox_.store().ball_entries(sp.ball_id, 0, SIZE_MAX >> 2), why);
    auto& play = plays_[sp.session] = std::move(p);
    if (!play.s) {
      broken(sp.session, play, "it does not replay from the database: entry " + std::to_string(why.seq) + ": " +
                                        why.reason);
    } else if (!play.s->closed() && is_node(play.s->holder())) {
      play.ask_again_us = 0;  // the job that asked it went with the old gateway
    }
  }
  if (!plays_.empty()) log::info("ball", "restored " + std::to_string(plays_.size()) + " plays");
}

void Plays::broken(const std::string& name, Play& p, const std::string& why) {
  if (!p.broken.empty()) return;
  p.broken = why;
  p.ask_again_us.reset();
  escalation_.conflict("BALL_LINEAGE_BROKEN", 4, "ball:" + name, "play " + name + " (" + p.ball_id + "): " + why, wall_us(), false);
  log::error("ball", "play " + name + " (" + p.ball_id + ") is broken: " + why +
                         "; it takes no input until a new hut (kairosctl ball verify " + name + ")");
}

void Plays::on_head(const kairos_v1_BallHead& h) {
  auto it = plays_.find(h.session);
  if (it == plays_.end() || it->second.ball_id != h.ball_id || !it->second.live()) return;  // another play's head
  Play& p = it->second;
  p.head_seen = true;
  const auto& lineage = p.s->lineage();
  Digest hash{};
  std::copy_n(h.hash.bytes, hash.size(), hash.begin());
  // Our own heads come back too, possibly behind the play: the signed
  // sequence must be in the lineage, with the hash signed for it.
  if (h.seq > lineage.back().seq)
    return broken(h.session, p, "its signed head is at " + std::to_string(h.seq) + " but the stored lineage ends at " +
                                         std::to_string(lineage.back().seq) + ": entries were removed");
  if (lineage[static_cast<std::size_t>(h.seq)].hash != hash)
    return broken(h.session, p, "entry " + std::to_string(h.seq) + " differs from its signed head: the lineage was "
                                     "altered");
}

void Plays::service(std::int64_t now_us) {
  if (now_us < next_service_us_) return;
  next_service_us_ = now_us + 1'000'000;
  if (!ports_.ready()) return;
  for (auto& [name, p] : plays_) {
    if (!p.live()) continue;
    // The broker lost its copy of the head (a broker without persistence): sign it again.
    if (!p.head_seen && now_us - connected_at_us_ > 3'000'000) {
      publish_head(name, p);
      p.head_seen = true;
    }
    const std::string& holder = p.s->holder();
    const NodeEntry* n = registry_.find(holder);
    if (!p.ask_again_us || p.s->closed() || !n || !n->online || now_us < *p.ask_again_us) continue;
    // Ask the holder again about the entry that handed it the Ball.
    const auto& lineage = p.s->lineage();
    std::uint64_t entry = 0;
    for (auto e = lineage.rbegin(); e != lineage.rend(); ++e)
      if (e->kind == "entry" || e->kind == "genesis") {
        entry = e->seq;
        break;
      }
    p.ask_again_us.reset();
    dispatch_.push_back({name, holder, entry, "", "", "", 0});
    log::info("ball", "play " + name + ": asking " + holder + " again (entry " + std::to_string(entry) + ")");
  }
}

void Plays::fill_play(const std::string& name, const Play& p, kairos_v1_BallPlay& o) const {
  set_string(o.session, name);
  set_string(o.ball_id, p.ball_id);
  o.started_us = p.started_wall_us;
  set_string(o.broken, p.broken);
  if (!p.s) return;
  set_string(o.holder, p.s->holder());
  o.closed = p.s->closed();
  o.head_seq = p.s->lineage().back().seq;
  set_digest(o.head_hash, p.s->lineage().back().hash);
}

void Plays::publish_head(const std::string& name, const Play& p) {
  if (!p.live()) return;  // a broken play keeps the head the broker holds
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_ball_head_tag;
  auto& h = env->message.ball_head;
  set_string(h.session, name);
  set_string(h.ball_id, p.ball_id);
  h.seq = p.s->lineage().back().seq;
  set_digest(h.hash, p.s->lineage().back().hash);
  set_string(h.holder, p.s->holder());
  h.closed = p.s->closed();
  const auto t = ball_head_topic(config_.mesh, name);
  outbox_.publish(t, ports_.seal(t, *env), true);
}

void Plays::deliver(const std::string& name, const Play& p, const std::string& person, const std::string& from,
                           const ball::Entry* entry, const std::string& text) {
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_ball_delivery_tag;
  auto& d = env->message.ball_delivery;
  set_string(d.session, name);
  set_string(d.ball_id, p.ball_id);
  set_string(d.from, from);
  if (entry) {
    d.has_entry = true;
    fill_entry(*entry, d.entry);
  }
  set_string(d.text, text);
  if (p.s) set_string(d.holder, p.s->holder());
  const auto t = ball_to_topic(config_.mesh, name, person);
  outbox_.publish(t, ports_.seal(t, *env), false);
}

std::string Plays::record(const std::string& name, Play& p, const std::string& author, const ball::Session::Outcome& o,
                          const std::string& by) {
  if (!o.error.empty()) {
    // Every refusal is on record: a Ball holder's rules are the point.
    escalation_.conflict("BALL_REFUSAL", 1, author, "play " + name + ": " + o.error, wall_us(), false);
    return o.error;
  }
  if (!o.appended) return "";
  const ball::Entry& e = *o.appended;
  log_.entry(p.ball_id, e, by);
  publish_head(name, p);
  if (e.kind == "ack" || e.kind == "done") return "";
  // A ball-mode entry (or the genesis) is mandatory context for every peer.
  for (const auto& peer : p.s->peers()) {
    if (!is_node(peer)) deliver(name, p, peer, e.author, &e, "");
    else if (peer != e.author) dispatch_.push_back({name, peer, e.seq, "", e.author, "", 0});
  }
  return "";
}

void Plays::send_jobs() {
  auto dispatch = std::move(dispatch_);
  dispatch_.clear();
  for (const auto& d : dispatch) {
    auto it = plays_.find(d.session);
    if (it == plays_.end() || !it->second.live()) continue;
    const Play& p = it->second;
    const ball::Session& s = *p.s;
    if (d.entry >= s.lineage().size()) continue;
    const ball::Entry& e = s.lineage()[static_cast<std::size_t>(d.entry)];
    std::vector<std::string> people;
    std::vector<std::uint64_t> open;
    for (const auto& peer : s.peers())
      if (!is_node(peer)) people.push_back(peer);
    for (std::size_t i = 0; i < s.objectives().size(); ++i)
      if (!s.done_flags()[i]) open.push_back(i + 1);
    std::string head = "session=" + d.session + "\nball=" + p.ball_id + "\nyou=" + d.node + "\nholder=" + s.holder() +
                       "\npeople=" + join_list(people) + "\nentry=" + std::to_string(e.seq) + "\nkind=" + e.kind +
                       "\nauthor=" + e.author + "\npending=" + seq_list(s.pending(d.node), 32) +
                       "\nopen=" + seq_list(open, ball::kMaxObjectives) + "\n";
    if (!d.refused.empty()) head += "refused=" + one_line(d.refused, 200) + "\n";
    if (!d.conversation.empty()) head += "conversation=1\nfrom=" + d.from + "\n";
    head += "\n";
    std::string body = d.conversation.empty() ? e.text : d.conversation;
    const std::size_t room = kPayloadMax > head.size() + 8 ? kPayloadMax - head.size() - 8 : 0;
    // The end of a text carries its ending (the handoff): keep the tail.
    if (body.size() > room) body = "[cut]\n" + body.substr(body.size() - room);
    JobSpec spec;
    spec.handler = "ball";
    spec.to = "node:" + d.node;
    const std::string payload = head + body;
    spec.payload.assign(payload.begin(), payload.end());
    spec.timeout_ms = config_.job_timeout_ms;
    spec.retries = 1;
    spec.private_data = !d.conversation.empty();  // conversation is never logged
    const Job& job = jobs_.submit(std::move(spec));
    asked_[job.id] = {d.session, p.ball_id, d.node, e.seq, d.tries};
  }
  jobs_.service();
}

void Plays::answer(const BallJob& b, const Job& job) {
  auto it = plays_.find(b.session);
  if (it == plays_.end() || it->second.ball_id != b.ball_id || !it->second.live()) return;  // a new hut since, or broken
  Play& p = it->second;
  ball::Session& s = *p.s;
  if (job.state != JobState::done || job.status != kairos_v1_JobStatus_JOB_OK) {
    std::string next;
    if (s.holder() == b.node && !s.closed()) {
      // Asked again once it is back (offline: ball_service waits for it), or
      // after a pause that doubles with each failure in a row (a node that
      // fails at once, e.g. without a ball handler, is not asked in a loop).
      const NodeEntry* n = registry_.find(b.node);
      const std::int64_t now = mono_us();
      if (!n || !n->online) {
        p.ask_again_us = now;
        next = "; asked again once it is back online";
      } else {
        p.ask_again_us = ask_schedule().after_failure(now, ++p.ask_failures);
        char in[32];
        std::snprintf(in, sizeof in, "%.1f", static_cast<double>(*p.ask_again_us - now) / 1e6);
        next = "; asked again in " + std::string(in) + " s (failure " + std::to_string(p.ask_failures) + " in a row)";
      }
    }
    log::warn("ball", "play " + b.session + ": " + b.node + " did not answer (job " + std::to_string(job.id) + ": " +
                          (job.error.empty() ? "handler failed" : job.error) + ")" + next);
    return;
  }
  p.ask_failures = 0;
  // The answer: "ack <seq> <level>" and "done <n>" lines, then optionally
  // "to <peer>" and conversational text, or a ball-mode entry ("MM:...").
  const std::string out(job.output.begin(), job.output.end());
  std::size_t pos = 0;
  std::string to;
  while (pos < out.size()) {
    const std::size_t end = std::min(out.find('\n', pos), out.size());
    const std::string line = out.substr(pos, end - pos);
    char word[65] = {};
    unsigned long long seq = 0;
    char level[16] = {};
    int used = 0;
    if (line.empty()) {
    } else if (std::sscanf(line.c_str(), "ack %llu %15s%n", &seq, level, &used) == 2 &&
               static_cast<std::size_t>(used) == line.size()) {
      auto l = ball::parse_ack(level);
      // Two questions in flight may both ask for the same entry: a level
      // already reached is no news, not a refusal.
      if (l && static_cast<int>(s.level(seq, b.node)) >= static_cast<int>(*l)) {
        pos = end + 1;
        continue;
      }
      // One refusal per answer is enough on record: the rest is not read.
      if (!record(b.session, p, b.node,
                       l ? s.ack(b.node, seq, *l, wall_us())
                         : ball::Session::Outcome::refused("'" + std::string(level) + "' is no acknowledgement level"))
               .empty())
        return;
    } else if (std::sscanf(line.c_str(), "done %llu%n", &seq, &used) == 1 &&
               static_cast<std::size_t>(used) == line.size()) {
      if (!record(b.session, p, b.node, s.done(b.node, static_cast<std::size_t>(seq), wall_us())).empty()) return;
    } else if (std::sscanf(line.c_str(), "to %64s%n", word, &used) == 1 && static_cast<std::size_t>(used) == line.size() &&
               line.size() <= 3 + 64) {
      to = line.substr(3);
      pos = end + 1;
      break;  // the rest is the conversational text
    } else {
      break;
    }
    pos = end + 1;
  }
  if (pos >= out.size()) return;
  const std::string rest = out.substr(pos);
  if (!to.empty()) {
    if (!s.is_peer(to) || to == b.node) {
      record(b.session, p, b.node, ball::Session::Outcome::refused("'" + to + "' is no other peer of this play"));
    } else if (is_node(to)) {
      dispatch_.push_back({b.session, to, s.lineage().back().seq, rest, b.node, "", 0});
    } else {
      deliver(b.session, p, to, b.node, nullptr, rest);
    }
    return;
  }
  if (rest.rfind("MM:", 0) != 0) {
    record(b.session, p, b.node,
                ball::Session::Outcome::refused(
                    "a node answers with ack/done lines, then 'to <peer>' and text, or a ball-mode entry (MM:)"));
    return;
  }
  const bool held = s.holder() == b.node;
  auto o = s.say(b.node, rest, wall_us());
  if (auto why = record(b.session, p, b.node, o); !why.empty()) {
    // The holder is asked again about the same entry, with the reason, a
    // few times; then the play waits (kairosctl ball show says who holds it).
    if (held && b.tries + 1 < kAnswerTries) dispatch_.push_back({b.session, b.node, b.entry, "", "", why, b.tries + 1});
  }
}

void Plays::verb(const ReplyTo& to, std::uint64_t request_id, const kairos_v1_BallRequest& req) {
  auto resp = new_response(request_id);
  resp->which_reply = kairos_v1_ControlResponse_ball_tag;
  auto& r = resp->reply.ball;
  auto reply = [&] {
    outbox_.after(answer_later(ports_.answer, to, std::move(resp)));
    outbox_.commit(mono_us());  // entries and conflicts are on disk before the answer
  };
  auto refuse = [&](const std::string& why) {
    resp->ok = false;
    set_string(resp->error, "ball: " + why);
    set_string(r.refusal, why);
    reply();
  };
  const std::string name = req.session;
  if (req.verb == kairos_v1_BallVerb_BALL_LIST) {
    resp->ok = true;
    r.which_more = kairos_v1_BallReply_list_tag;
    auto& l = r.more.list;
    for (const auto& sp : outbox_.store().ball_plays(10)) {
      auto& o = l.plays[l.plays_count++];
      auto it = plays_.find(sp.session);
      if (it != plays_.end() && it->second.ball_id == sp.ball_id) fill_play(sp.session, it->second, o);
      else fill_superseded(sp, o);
    }
    return reply();
  }
  if (!valid_name(name)) return refuse("'" + name + "' is not a session name (" + std::string(kNameRule) + ")");

  if (req.verb == kairos_v1_BallVerb_BALL_HUT) {
    std::vector<std::string> peers(req.peers, req.peers + req.peers_count);
    std::vector<std::string> objectives(req.objectives, req.objectives + req.objectives_count);
    if (auto why = ball::check_hut(peers, objectives); !why.empty()) return refuse(why);
    // A registered node is a node peer, online or not (its last birth
    // counts); any other name is a person.
    std::map<std::string, std::vector<std::string>> node_caps;
    for (const auto& peer : peers)
      if (const NodeEntry* n = registry_.find(peer)) node_caps[peer] = split_list(n->capabilities);
    if (auto why = ball::check_node_peers(peers, node_caps); !why.empty()) return refuse(why);
    // Without --as, the asking operator opens the play.
    const std::string author = req.as[0] ? std::string(req.as) : to.by;
    if (!valid_name(author)) return refuse("--as '" + author + "' is not a name");
    char id[17];
    std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(random_u64()));
    Play p;
    p.ball_id = id;
    p.started_wall_us = wall_us();
    p.s.emplace(name, p.ball_id, peers, objectives, author, p.started_wall_us);
    if (plays_.count(name))
      log::info("ball", "hut: play " + name + " starts again (" + plays_[name].ball_id + " -> " + p.ball_id + ")");
    auto& play = plays_[name] = std::move(p);
    log_.play(name, play.ball_id);
    ball::Session::Outcome genesis;
    genesis.appended = play.s->lineage().front();
    record(name, play, author, genesis, to.by);
    log::info("ball", "hut: play " + name + " (" + play.ball_id + "), " + std::to_string(peers.size()) + " peers, " +
                          play.s->holder() + " holds the Ball");
    resp->ok = true;
    r.has_play = true;
    fill_play(name, play, r.play);
    return reply();
  }

  auto it = plays_.find(name);
  if (it == plays_.end()) return refuse("no play '" + name + "' (kairosctl ball hut " + name + " --peers ... starts one)");
  Play& p = it->second;

  if (req.verb == kairos_v1_BallVerb_BALL_SHOW) {
    const std::string ball_id = req.ball_id[0] ? std::string(req.ball_id) : p.ball_id;
    std::optional<StoredPlay> earlier;
    if (ball_id != p.ball_id) {
      earlier = outbox_.store().ball_play(ball_id);
      if (!earlier || earlier->session != name)
        return refuse("no play " + ball_id + " of session " + name + " (kairosctl ball list)");
    }
    resp->ok = true;
    if (ball_id == p.ball_id) {
      r.has_play = true;
      fill_play(name, p, r.play);
      if (p.s) {
        for (const auto& peer : p.s->peers())
          if (r.peers_count < ball::kMaxPeers) set_string(r.peers[r.peers_count++], peer);
        for (std::size_t i = 0; i < p.s->objectives().size() && r.objectives_count < ball::kMaxObjectives; ++i) {
          set_string(r.objectives[r.objectives_count++], p.s->objectives()[i]);
          r.done[r.done_count++] = p.s->done_flags()[i];
        }
        std::string missing = p.s->missing();
        if (missing.size() > sizeof r.missing - 1) missing = missing.substr(0, sizeof r.missing - 5) + " ...";
        set_string(r.missing, missing);
      }
    } else {
      // An earlier play: its head is its last stored entry.
      r.has_play = true;
      fill_superseded(*earlier, r.play);
      if (auto last = outbox_.store().last_ball_entry(ball_id)) {
        r.play.head_seq = last->seq;
        set_digest(r.play.head_hash, last->hash);
        r.play.closed = last->kind == "touchdown";
      }
    }
    // The page is read from the database as it is now: verify checks it.
    r.which_more = kairos_v1_BallReply_page_tag;
    auto& page = r.more.page;
    auto rows = outbox_.store().ball_entries(ball_id, req.from_seq, 3);
    for (std::size_t i = 0; i < rows.size() && i < 2; ++i) fill_entry(rows[i], page.entries[page.entries_count++]);
    page.next_seq = rows.size() > 2 ? rows[2].seq : 0;
    return reply();
  }

  if (!p.live())
    return refuse("play " + name + " is broken (" + p.broken + "): kairosctl ball hut " + name + " starts again");
  ball::Session& s = *p.s;
  const std::string as = req.as;
  if (!valid_name(as)) return refuse("--as names the person speaking (" + std::string(kNameRule) + ")");
  if (!s.is_peer(as)) return refuse("'" + as + "' is not a peer of play " + name);
  if (is_node(as)) return refuse("'" + as + "' is a node: it speaks through its ball job, not through kairosctl");

  ball::Session::Outcome o;
  switch (req.verb) {
    case kairos_v1_BallVerb_BALL_SAY: {
      const std::string peer = req.to;
      const std::string text = req.text;
      const bool ball_mode = text.rfind("MM:", 0) == 0;
      if (!ball_mode && peer.empty()) return refuse("conversational input is for one peer: name it with --to");
      if (ball_mode && !peer.empty()) return refuse("ball-mode input (MM:) goes to every peer: drop --to");
      if (!peer.empty() && (!s.is_peer(peer) || peer == as)) return refuse("--to '" + peer + "' is no other peer of play " + name);
      o = s.say(as, text, wall_us());
      if (o.conversational) {
        if (is_node(peer)) dispatch_.push_back({name, peer, s.lineage().back().seq, text, as, "", 0});
        else deliver(name, p, peer, as, nullptr, text);
        r.conversational = true;
      }
      break;
    }
    case kairos_v1_BallVerb_BALL_ACK: {
      const int level = static_cast<int>(req.level);
      if (level < static_cast<int>(ball::AckLevel::read) || level > static_cast<int>(ball::AckLevel::implement))
        return refuse("an acknowledgement is read, ack, understood, concur or implement");
      o = s.ack(as, req.seq, static_cast<ball::AckLevel>(level), wall_us());
      break;
    }
    case kairos_v1_BallVerb_BALL_DONE:
      o = s.done(as, req.objective, wall_us());
      break;
    default:
      return refuse("unknown ball verb: this gateway does not support it (upgrade the gateway)");
  }
  if (auto why = record(name, p, as, o, to.by); !why.empty()) return refuse(why);
  if (o.closed) log::info("ball", "play " + name + ": TOUCHDOWN! by " + as);
  resp->ok = true;
  r.has_play = true;
  fill_play(name, p, r.play);
  if (o.appended) {
    r.appended_seq = o.appended->seq;
    set_digest(r.appended_hash, o.appended->hash);
  }
  reply();
}

void Plays::job_finished(const Job& job) {
  auto b = asked_.find(job.id);
  if (b == asked_.end()) return;
  const BallJob bj = b->second;
  asked_.erase(b);
  answer(bj, job);
}

std::vector<Plays::View> Plays::views() const {
  std::vector<View> out;
  for (const auto& [session, p] : plays_) {
    View v;
    v.session = session;
    v.ball_id = p.ball_id;
    v.broken = p.broken;
    if (p.s) {
      v.holder = p.s->holder();
      v.closed = p.s->closed();
      v.peers = p.s->peers();
      v.lineage = &p.s->lineage();
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace kairos::gw

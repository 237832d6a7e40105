#include "tools/kairosctl/ball.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <string_view>

#include "common/core/ball.h"
#include "common/core/frame.h"
#include "common/core/json.h"
#include "common/core/topic.h"
#include "common/io/clock.h"
#include "tools/kairosctl/args.h"
#include "tools/kairosctl/schedule.h"

namespace kairos::ctl {

namespace {

template <typename PbBytes>
std::string hex(const PbBytes& b) {
  return to_hex(ByteView(b.bytes, b.size));
}
template <typename PbBytes>
std::string hex16(const PbBytes& b) {
  return hex(b).substr(0, 16);
}

struct Answer {
  std::unique_ptr<kairos_v1_ControlResponse> resp;  // set when the gateway took the request
  int status = 0;                                   // else the exit status, the failure printed
};

// One BallRequest to the gateway; a refusal prints its whole reason.
Answer call(const BallLink& l, const kairos_v1_BallRequest& b) {
  auto req = std::make_unique<kairos_v1_ControlRequest>();
  *req = kairos_v1_ControlRequest_init_zero;
  req->which_verb = kairos_v1_ControlRequest_ball_tag;
  req->verb.ball = b;
  Answer a;
  std::string why;
  auto resp = l.client.call(*req, l.timeout_ms, why);
  if (!resp) {
    a.status = l.no_answer(l.timeout_ms, why);
    return a;
  }
  const bool has_ball = resp->which_reply == kairos_v1_ControlResponse_ball_tag;
  if (!resp->ok) {
    // error is cut at 256 characters; refusal holds the whole reason.
    const char* reason = has_ball && resp->reply.ball.refusal[0] ? resp->reply.ball.refusal : resp->error;
    a.status = fail(std::string("refused: ") + reason);
    return a;
  }
  if (!has_ball) {
    a.status = fail("the gateway's answer holds no Ball reply: does it run the Ball protocol?");
    return a;
  }
  a.resp = std::move(resp);
  return a;
}

struct Lineage {
  kairos_v1_BallReply reply = kairos_v1_BallReply_init_zero;  // the last page's: play, peers, objectives, missing
  std::vector<kairos_v1_BallEntry> entries;                    // oldest first
};

// The whole stored lineage of a play, page by page; the exit status.
int fetch_lineage(const BallLink& l, kairos_v1_BallRequest show, Lineage& out) {
  show.verb = kairos_v1_BallVerb_BALL_SHOW;
  show.from_seq = 0;
  for (;;) {
    auto a = call(l, show);
    if (!a.resp) return a.status;
    const auto& r = a.resp->reply.ball;
    out.reply = r;
    if (!r.has_play || r.which_more != kairos_v1_BallReply_page_tag)
      return fail("the gateway's answer to show holds no play or no page of its lineage");
    const auto& page = r.more.page;
    out.entries.insert(out.entries.end(), page.entries, page.entries + page.entries_count);
    if (page.next_seq == 0) return 0;
    if (page.next_seq <= show.from_seq)
      return fail("the gateway's pages do not advance (from " + std::to_string(show.from_seq) + " the next is " +
                  std::to_string(page.next_seq) + ")");
    // The later pages of the same play, even if a hut starts a new one meanwhile.
    if (!show.ball_id[0]) set_string(show.ball_id, r.play.ball_id);
    show.from_seq = page.next_seq;
  }
}

const char* state_of(const kairos_v1_BallPlay& p) { return p.closed ? "closed" : "open"; }

void play_json(Json& j, const kairos_v1_BallPlay& p) {
  j.begin_object().key("session").str(p.session).key("ball_id").str(p.ball_id).key("holder").str(p.holder);
  j.key("closed").boolean(p.closed).key("head_seq").integer(p.head_seq).key("head_hash").str(hex(p.head_hash));
  j.key("started").str(p.started_us ? format_time_us(p.started_us) : "").key("broken").str(p.broken).end_object();
}

void entry_json(Json& j, const kairos_v1_BallEntry& e) {
  j.begin_object().key("seq").integer(e.seq).key("kind").str(e.kind).key("author").str(e.author);
  j.key("at").str(format_time_us(e.at_us)).key("at_us").integer(static_cast<unsigned long long>(e.at_us));
  j.key("text").str(e.text).key("hash").str(hex(e.hash)).key("operator").str(e.asked_by).end_object();
}

// Every line of text after indent; the first line after first when given.
void print_lines(const std::string& text, const char* indent, const char* first = nullptr) {
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::printf("%s%.*s\n", first && start == 0 ? first : indent, static_cast<int>(end - start), text.data() + start);
    start = end + 1;
  }
}

void print_entry(const kairos_v1_BallEntry& e) {
  std::printf("#%llu %s by %s at %s%s%s%s\n", static_cast<unsigned long long>(e.seq), e.kind, e.author,
              format_time_us(e.at_us).c_str(), e.asked_by[0] ? " (operator " : "", e.asked_by,
              e.asked_by[0] ? ")" : "");
  // Control characters (a terminal's escape sequences) are shown as hex.
  print_lines(printable_or_hex(reinterpret_cast<const std::uint8_t*>(e.text), std::strlen(e.text), true), "    ");
}

// hut, say, ack and done: what was appended (or delivered) and who holds the Ball.
int print_outcome(const BallArgs& a, const kairos_v1_BallReply& r, bool json) {
  const auto& p = r.play;
  if (json) {
    Json j;
    j.begin_object().key("session").str(p.session).key("ball_id").str(p.ball_id).key("holder").str(p.holder);
    j.key("closed").boolean(p.closed).key("head_seq").integer(p.head_seq).key("head_hash").str(hex(p.head_hash));
    j.key("conversational").boolean(r.conversational);
    j.key("appended_seq").integer(r.appended_seq).key("appended_hash").str(hex(r.appended_hash));
    j.key("missing").str(r.missing).end_object();
    std::printf("%s\n", j.text().c_str());
    return 0;
  }
  if (r.conversational)
    std::printf("delivered to %s only (conversational, not logged); Ball: %s\n", a.req.to, p.holder);
  else if (a.verb == "hut")
    std::printf("play %s: ball %s, genesis #0 %s; Ball: %s\n", p.session, p.ball_id, hex16(p.head_hash).c_str(),
                p.holder);
  else
    std::printf("#%llu appended (%s); Ball: %s%s\n", static_cast<unsigned long long>(r.appended_seq),
                hex16(r.appended_hash).c_str(), p.holder, p.closed ? "; TOUCHDOWN! the play is closed" : "");
  // What an acknowledgement or a done objective leaves before TOUCHDOWN!.
  if ((a.verb == "ack" || a.verb == "done") && r.missing[0] && !p.closed)
    print_lines(r.missing, "              ", "still missing ");
  return 0;
}

int print_show(const Lineage& lin, bool json) {
  const auto& r = lin.reply;
  const auto& p = r.play;
  if (json) {
    Json j;
    j.begin_object().key("play");
    play_json(j, p);
    j.key("peers").begin_array();
    for (pb_size_t i = 0; i < r.peers_count; ++i) j.str(r.peers[i]);
    j.end_array().key("objectives").begin_array();
    for (pb_size_t i = 0; i < r.objectives_count; ++i) j.str(r.objectives[i]);
    j.end_array().key("done").begin_array();
    for (pb_size_t i = 0; i < r.done_count; ++i) j.boolean(r.done[i]);
    j.end_array().key("missing").str(r.missing).key("entries").begin_array();
    for (const auto& e : lin.entries) entry_json(j, e);
    j.end_array().end_object();
    std::printf("%s\n", j.text().c_str());
    return 0;
  }
  std::printf("play %s, ball %s: %s\n", p.session, p.ball_id, p.closed ? "closed (TOUCHDOWN!)" : "open");
  std::printf("  Ball        %s\n", p.holder);
  std::printf("  head        #%llu %s\n", static_cast<unsigned long long>(p.head_seq), hex16(p.head_hash).c_str());
  if (p.started_us) std::printf("  started     %s\n", format_time_us(p.started_us).c_str());
  std::printf("  peers       ");
  for (pb_size_t i = 0; i < r.peers_count; ++i) std::printf("%s%s", i ? ", " : "", r.peers[i]);
  std::printf("\n  objectives\n");
  for (pb_size_t i = 0; i < r.objectives_count; ++i)
    std::printf("    [%c] %u. %s\n", i < r.done_count && r.done[i] ? 'x' : ' ', static_cast<unsigned>(i + 1),
                r.objectives[i]);
  if (!p.closed && r.missing[0])
    print_lines(r.missing, "              ", "  missing     ");
  else if (!p.closed)
    std::printf("  missing     nothing: the holder may write TOUCHDOWN!\n");
  if (p.broken[0]) std::printf("  BROKEN      %s\n", p.broken);
  std::printf("\n");
  for (const auto& e : lin.entries) print_entry(e);
  std::printf("%zu entr%s\n", lin.entries.size(), lin.entries.size() == 1 ? "y" : "ies");
  return 0;
}

int print_list(const kairos_v1_BallList& l, bool json) {
  if (json) {
    Json j;
    j.begin_object().key("plays").begin_array();
    for (pb_size_t i = 0; i < l.plays_count; ++i) play_json(j, l.plays[i]);
    j.end_array().end_object();
    std::printf("%s\n", j.text().c_str());
    return 0;
  }
  std::printf("%-20s %-16s %-16s %-6s %s\n", "SESSION", "BALL", "HOLDER", "STATE", "HEAD");
  for (pb_size_t i = 0; i < l.plays_count; ++i) {
    const auto& p = l.plays[i];
    std::printf("%-20s %-16s %-16s %-6s #%llu%s%s\n", p.session, p.ball_id, p.holder, state_of(p),
                static_cast<unsigned long long>(p.head_seq), p.broken[0] ? "  BROKEN: " : "", p.broken);
  }
  std::printf("%u play%s (newest first)\n", static_cast<unsigned>(l.plays_count), l.plays_count == 1 ? "" : "s");
  return 0;
}

// A subscription on a connection of its own: CtlClient takes only its responses.
class Feed {
 public:
  // Starts connecting at once (see BallLink::connect).
  Feed(const BallLink& l, const std::string& topic) : topic_(topic), explain_(l.broker_failure), link_(options(l)) {
    link_.add_subscription(topic, 1);
    link_.service(mono_us());
  }
  const std::string& topic() const { return topic_; }
  // Waits until the link is up; false (with why) at the deadline (monotonic us).
  bool connect(std::int64_t deadline_us, std::string& why) {
    while (!link_.connected()) {
      if (!pump(deadline_us) || connect_is_final(code_)) {
        why = explain_(code_) + " (for " + topic_ + ")";
        return false;
      }
    }
    return true;
  }
  // The next message before the deadline (monotonic us); nothing when none came.
  std::optional<Inbound> next(std::int64_t deadline_us) {
    while (queue_.empty())
      if (!pump(deadline_us)) return std::nullopt;
    Inbound m = std::move(queue_.front());
    queue_.pop_front();
    return m;
  }

 private:
  static MqttOptions options(const BallLink& l) {
    MqttOptions o = l.options;
    o.client_id = l.mesh + "-" + l.client.client_id() + "-ball";
    return o;
  }
  // One round of the link; false at the deadline.
  bool pump(std::int64_t deadline_us) {
    const std::int64_t now = mono_us();
    if (now >= deadline_us) return false;
    link_.service(now);
    for (auto& ev : link_.wait(std::min(deadline_us, now + 50'000))) {
      if (ev.type == LinkEvent::Type::message) queue_.push_back(std::move(ev.msg));
      else if (ev.type == LinkEvent::Type::connect_failed) code_ = ev.code;
    }
    return true;
  }
  std::string topic_;
  std::function<std::string(int)> explain_;
  MqttLink link_;
  std::deque<Inbound> queue_;
  int code_ = 0;  // of the last failed connect
};

// A frame on a Ball topic, opened with the operator key; nothing (and why) if
// its MAC or its message kind is wrong.
EnvelopePtr open_ball_frame(const Inbound& m, const Key& key, pb_size_t tag, const char* what,
                                          std::string& why) {
  auto opened = open(m.topic, m.payload, key);
  if (!opened) {
    why = "the frame on " + m.topic + " does not open with the operator key: " + std::string(to_string(*opened.drop)) +
          " (" + opened.detail + ")";
    return nullptr;
  }
  if (opened.env->which_message != tag) {
    why = "the frame on " + m.topic + " holds no " + what;
    return nullptr;
  }
  return std::move(opened.env);
}

// The next signed head; nothing at the deadline (why empty) or for a bad frame (why says it).
std::optional<kairos_v1_BallHead> next_head(Feed& feed, const Key& key, std::int64_t deadline_us, std::string& why) {
  auto m = feed.next(deadline_us);
  if (!m) return std::nullopt;
  auto env = open_ball_frame(*m, key, kairos_v1_Envelope_ball_head_tag, "BallHead", why);
  if (!env) return std::nullopt;
  if (env->message.ball_head.hash.size != sizeof(Digest)) {
    why = "the signed head on " + m->topic + " holds a hash of " + std::to_string(env->message.ball_head.hash.size) +
          " bytes";
    return std::nullopt;
  }
  return env->message.ball_head;
}

int verify(const BallArgs& a, const BallLink& l) {
  const std::string session = a.req.session;
  const auto timeout_from_now = [&] { return mono_us() + std::int64_t{l.timeout_ms} * 1000; };
  // The signed head first, then the lineage: the lineage can only have grown since.
  Feed feed(l, ball_head_topic(l.mesh, session));
  if (int status = l.connect()) return status;
  std::string why;
  if (!feed.connect(timeout_from_now(), why)) return fail(why);
  auto head = next_head(feed, l.key, timeout_from_now(), why);
  if (!head && !why.empty()) return fail(why);
  Lineage lin;
  if (!head) {
    // The gateway's refusal says more when there is no such play.
    if (int status = fetch_lineage(l, a.req, lin)) return status;
    return fail("no signed head on " + feed.topic() + " within " + std::to_string(l.timeout_ms) +
                " ms, though the gateway has a play of '" + session + "': does the broker let this operator read " +
                "_ball/# (its ACL)?");
  }
  if (session != head->session)
    return fail("the signed head on " + feed.topic() + " names session '" + head->session + "'");

  if (int status = fetch_lineage(l, a.req, lin)) return status;
  const auto& play = lin.reply.play;
  const std::uint64_t last = lin.entries.empty() ? 0 : lin.entries.back().seq;
  // Appends while the pages came in publish newer heads: take the newest the
  // pages reach. Entries past every signed head wait here for the timeout.
  const auto deadline = timeout_from_now();
  while (std::string_view(head->ball_id) != play.ball_id || head->seq < last) {
    auto h = next_head(feed, l.key, deadline, why);
    if (!h && !why.empty()) return fail(why);
    if (!h) break;
    if (std::string_view(h->ball_id) == play.ball_id && h->seq <= last) head = h;
  }
  if (std::string_view(head->ball_id) != play.ball_id)
    return fail("the signed head is of ball " + std::string(head->ball_id) + " but the gateway shows ball " +
                play.ball_id + " of '" + session + "': run verify again after a hut; if this stays, the gateway does "
                "not serve the play it signed");

  std::vector<ball::Entry> entries;
  entries.reserve(lin.entries.size());
  for (const auto& e : lin.entries) {
    ball::Entry b;
    b.seq = e.seq;
    b.session = session;  // the canonical form names the session, not the ball id
    b.kind = e.kind;
    b.author = e.author;
    b.at_us = e.at_us;
    b.text = e.text;
    std::copy_n(e.hash.bytes, std::min<std::size_t>(e.hash.size, b.hash.size()), b.hash.begin());
    entries.push_back(std::move(b));
  }
  Digest head_hash{};
  std::copy_n(head->hash.bytes, head_hash.size(), head_hash.begin());
  const auto broken = ball::verify(entries, head->seq, head_hash);
  const bool differs = play.head_seq != head->seq || hex(play.head_hash) != hex(head->hash);

  if (l.json) {
    Json j;
    j.begin_object().key("ok").boolean(!broken).key("entries").integer(entries.size());
    j.key("head_seq").integer(head->seq).key("head_hash").str(hex(head->hash));
    // Json writes a number that is not finite as null: no break.
    j.key("break_seq").num(broken ? static_cast<double>(broken->seq) : std::numeric_limits<double>::quiet_NaN());
    j.key("reason").str(broken ? broken->reason : "");
    j.key("gateway_head_seq").integer(play.head_seq).key("gateway_head_hash").str(hex(play.head_hash));
    j.key("gateway_head_differs").boolean(differs).key("gateway_broken").str(play.broken).end_object();
    std::printf("%s\n", j.text().c_str());
  } else {
    if (broken)
      std::printf("broken at entry %llu: %s\n", static_cast<unsigned long long>(broken->seq), broken->reason.c_str());
    else
      std::printf("ok: %zu entries, head %llu %s\n", entries.size(), static_cast<unsigned long long>(head->seq),
                  hex16(head->hash).c_str());
    if (differs)
      std::printf("the gateway reports head %llu %s, the signed head is %llu %s\n",
                  static_cast<unsigned long long>(play.head_seq), hex16(play.head_hash).c_str(),
                  static_cast<unsigned long long>(head->seq), hex16(head->hash).c_str());
    if (play.broken[0]) std::printf("the gateway reports the stored lineage broken: %s\n", play.broken);
  }
  return broken ? 3 : 0;
}

void print_delivery(const kairos_v1_BallDelivery& d, bool json) {
  if (json) {
    Json j;
    j.begin_object().key("session").str(d.session).key("ball_id").str(d.ball_id).key("from").str(d.from);
    if (d.has_entry) {
      j.key("entry");
      entry_json(j, d.entry);
    } else {
      j.key("text").str(d.text);
    }
    j.key("holder").str(d.holder).end_object();
    std::printf("%s\n", j.text().c_str());
    return;
  }
  if (d.has_entry)
    print_entry(d.entry);
  else
    print_lines(printable_or_hex(reinterpret_cast<const std::uint8_t*>(d.text), std::strlen(d.text), true), "    ",
                (std::string(d.from) + " (to you): ").c_str());
  std::printf("Ball: %s\n", d.holder);
}

// Ctrl-C ends listen by the default action, as it ends watch.
int listen(const BallArgs& a, const BallLink& l) {
  Feed feed(l, ball_to_topic(l.mesh, a.req.session, a.req.as));
  std::string why;
  if (!feed.connect(mono_us() + std::int64_t{l.timeout_ms} * 1000, why)) return fail(why);
  std::fprintf(stderr, "kairosctl: listening on %s\n", feed.topic().c_str());
  for (std::uint32_t n = 0; a.count == 0 || n < a.count;) {
    auto m = feed.next(std::numeric_limits<std::int64_t>::max());
    if (!m) continue;
    auto env = open_ball_frame(*m, l.key, kairos_v1_Envelope_ball_delivery_tag, "BallDelivery", why);
    if (!env) {
      fail(why + ": skipped");
      continue;
    }
    print_delivery(env->message.ball_delivery, l.json);
    std::fflush(stdout);
    ++n;
  }
  return 0;
}

}  // namespace

int run_ball(const BallArgs& a, const BallLink& l) {
  if (a.verb == "verify") return verify(a, l);
  if (a.verb == "listen") return listen(a, l);
  if (a.verb == "show") {
    if (int status = l.connect()) return status;
    Lineage lin;
    if (int status = fetch_lineage(l, a.req, lin)) return status;
    return print_show(lin, l.json);
  }
  if (int status = l.connect()) return status;
  auto answer = call(l, a.req);
  if (!answer.resp) return answer.status;
  const auto& r = answer.resp->reply.ball;
  if (a.verb == "list") {
    if (r.which_more != kairos_v1_BallReply_list_tag) return fail("the gateway's answer to list holds no list");
    return print_list(r.more.list, l.json);
  }
  return print_outcome(a, r, l.json);
}

}  // namespace kairos::ctl

#include "gateway/web/web.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/core/frame.h"
#include "common/core/json.h"
#include "common/io/clock.h"
#include "common/io/keygen.h"
#include "common/io/log.h"
#include "common/core/utf8.h"

namespace kairos::gw {

namespace {

using nlohmann::json;

constexpr std::size_t kMaxBody = 4096;  // bytes of a sign-in or an action
// A snapshot at most this often; larger meshes less often (its cost is per node).
constexpr std::int64_t kMinPeriodUs = 250'000;
constexpr std::int64_t kPeriodPerNodeUs = 40;
// A page's interest in the snapshot (GET /api/snapshot) lasts this long.
constexpr std::int64_t kInterestUs = 5'000'000;
// The plot's points: one a second, the last 5 minutes.
constexpr std::int64_t kHistoryStepUs = 1'000'000;
constexpr std::size_t kHistoryPoints = 300;
// An action's answer is waited for this long (a freeze gathers acks for 2 s).
constexpr auto kAnswerWait = std::chrono::seconds(20);

HttpResponse json_response(int status, std::string body) {
  return {status, "application/json; charset=utf-8", std::move(body), {}};
}

std::string error_text(const std::string& why) {
  Json j;
  j.begin_object().key("ok").boolean(false).key("error").str(why).end_object();
  return j.text();
}

HttpResponse error(int status, const std::string& why) { return json_response(status, error_text(why)); }

// A string member of o, at most max bytes; nullopt when absent or not a string.
std::optional<std::string> text_of(const json& o, const char* key, std::size_t max) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_string()) return std::nullopt;
  auto s = it->get<std::string>();
  if (s.size() > max) return std::nullopt;
  return s;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("web.static_dir: cannot read " + path + " (is the gateway package installed whole?)");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string response_json(const kairos_v1_ControlResponse& r) {
  Json j;
  j.begin_object();
  j.key("ok").boolean(r.ok);
  if (r.error[0]) j.key("error").str(r.error);
  if (r.which_reply == kairos_v1_ControlResponse_command_tag) {
    const auto& c = r.reply.command;
    j.key("verb").str(c.verb);
    j.key("targets").integer(c.targets);
    j.key("sent").integer(c.sent);
    j.key("ready").integer(c.ready);
    j.key("conflicts").integer(c.conflicts);
    j.key("silent").integer(c.silent);
    if (c.snapshot_id) j.key("snapshot").integer(c.snapshot_id);
    j.key("not_ready").begin_array();
    for (pb_size_t i = 0; i < c.not_ready_count; ++i) j.str(c.not_ready[i]);
    j.end_array();
  } else if (r.which_reply == kairos_v1_ControlResponse_heal_tag) {
    j.key("node").str(r.reply.heal.node);
    j.key("was_quarantined").boolean(r.reply.heal.was_quarantined);
    j.key("sent").boolean(r.reply.heal.sent);
  }
  j.end_object();
  return j.text();
}

// The action a signed act names, as a control request; error set when it is not one.
std::optional<kairos_v1_ControlRequest> request_of(const std::string& act, std::string& error) {
  const json a = json::parse(act, nullptr, false);
  if (a.is_discarded() || !a.is_object()) {
    error = "act is not a JSON object";
    return std::nullopt;
  }
  const auto verb = text_of(a, "verb", 16);
  kairos_v1_ControlRequest req = kairos_v1_ControlRequest_init_zero;
  if (verb == "freeze" || verb == "thaw") {
    auto scope = a.contains("scope") ? text_of(a, "scope", sizeof req.verb.freeze.scope - 1) : std::string();
    if (!scope) {
      error = "scope: a selector of at most " + std::to_string(sizeof req.verb.freeze.scope - 1) + " bytes";
      return std::nullopt;
    }
    req.which_verb = kairos_v1_ControlRequest_freeze_tag;
    set_string(req.verb.freeze.scope, *scope == "all" ? "" : *scope);
    req.verb.freeze.thaw = verb == "thaw";
    const auto confirm = a.find("confirm");
    if (confirm != a.end() && !confirm->is_boolean()) {
      error = "confirm: true or false";
      return std::nullopt;
    }
    req.verb.freeze.confirm = confirm != a.end() && confirm->get<bool>();
    req.verb.freeze.window_ms = 2000;
  } else if (verb == "heal") {
    auto node = text_of(a, "node", sizeof req.verb.heal.node - 1);
    if (!node || node->empty()) {
      error = "node: the node to heal";
      return std::nullopt;
    }
    req.which_verb = kairos_v1_ControlRequest_heal_tag;
    set_string(req.verb.heal.node, *node);
  } else if (verb == "resolve") {
    auto task = a.find("task");
    auto note = a.contains("note") ? text_of(a, "note", sizeof req.verb.resolve.note - 1) : std::string();
    if (task == a.end() || !task->is_number_unsigned() || task->get<std::uint64_t>() == 0 || !note) {
      error = "resolve takes task (a number) and note (text)";
      return std::nullopt;
    }
    req.which_verb = kairos_v1_ControlRequest_resolve_tag;
    req.verb.resolve.task = task->get<std::uint64_t>();
    set_string(req.verb.resolve.note, *note);
  } else {
    error = "verb: one of freeze, thaw, heal, resolve, signout";
    return std::nullopt;
  }
  return req;
}

Key random_key() {
  Key k;
  const Bytes r = random_bytes(k.bytes.size());
  std::copy(r.begin(), r.end(), k.bytes.begin());
  return k;
}

}  // namespace

Web::Web(Settings settings, LoopCalls& calls, Ports ports)
    : settings_(std::move(settings)), calls_(calls), ports_(std::move(ports)), auth_(random_key()) {
  const std::pair<const char*, const char*> files[] = {{"index.html", "text/html; charset=utf-8"},
                                                       {"app.js", "text/javascript; charset=utf-8"},
                                                       {"style.css", "text/css; charset=utf-8"}};
  for (const auto& [name, type] : files) files_["/" + std::string(name)] = {type, read_file(settings_.static_dir + "/" + name)};
  files_["/"] = files_["/index.html"];
}

HttpSite Web::site() {
  HttpSite s{"web.listen", settings_.listen, "/", {}, {}, settings_.hosts};
  for (const auto& [path, file] : files_)
    s.routes[path] = {[type = file.first, body = file.second](const HttpRequest&) {
      return HttpResponse{200, type, body, {}};
    }, false, 0, true};
  s.routes["/api/snapshot"] = {[this](const HttpRequest&) { return snapshot(); }, false, 0, true};
  s.routes["/api/challenge"] = {[this](const HttpRequest&) { return challenge(); }, false, 0, true};
  s.routes["/api/signin"] = {[this](const HttpRequest& r) { return sign_in(r); }, true, kMaxBody, true};
  s.routes["/api/act"] = {[this](const HttpRequest& r) { return act(r); }, true, kMaxBody, true};
  s.sockets["/ws"] = {&feed_, settings_.max_clients, 1024};
  return s;
}

void Web::service(std::int64_t now_us) {
  if (now_us < next_us_) return;
  const bool wanted = (server_ && server_->socket_clients() > 0) || now_us - wanted_us_.load() < kInterestUs;
  if (!wanted) return;
  render(now_us);
  next_us_ = now_us + std::max<std::int64_t>(kMinPeriodUs, static_cast<std::int64_t>(ports_.nodes()) * kPeriodPerNodeUs);
}

void Web::sample(std::int64_t wall_us, double c, double a) {
  if (!history_.empty() && wall_us - history_.back().wall_us < kHistoryStepUs) return;
  history_.push_back({wall_us, c, a});
  while (history_.size() > kHistoryPoints) history_.pop_front();
}

HttpResponse Web::on_loop(std::function<HttpResponse()> fn, const char* late) {
  auto r = calls_.call(std::move(fn), std::chrono::seconds(5));
  return r ? std::move(*r) : error(503, late);
}

std::string Web::render(std::int64_t now_us) {
  feed_.publish(ports_.render());
  published_us_ = now_us;
  return *feed_.latest();
}

HttpResponse Web::snapshot() {
  const std::int64_t now = mono_us();
  wanted_us_ = now;
  // A fresh one as it is; one left from pages gone a while ago is rendered again, on the loop.
  if (auto f = feed_.latest(); f && now - published_us_.load() < kInterestUs) return json_response(200, *f);
  return on_loop([this] { return json_response(200, render(mono_us())); });
}

HttpResponse Web::challenge() {
  return on_loop([this] {
    Json j;
    j.begin_object().key("nonce").str(auth_.challenge(random_bytes(8), mono_us())).key("expires_s").integer(60);
    return json_response(200, j.end_object().text());
  });
}

HttpResponse Web::sign_in(const HttpRequest& r) {
  const json body = json::parse(r.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return error(400, "the body is not a JSON object");
  auto name = text_of(body, "operator", 64), nonce = text_of(body, "nonce", 64), mac = text_of(body, "mac", 64);
  if (!name || !nonce || !mac) return error(400, "sign-in takes operator, nonce and mac (strings)");
  // By value: the loop may run it after this thread has given up waiting.
  return on_loop([this, name = *name, nonce = *nonce, mac = *mac] {
    auto o = auth_.sign_in(name, nonce, mac, ports_.key_of, random_bytes(16), mono_us());
    if (!o.error.empty()) {
      log::warn("web", "sign-in as " + log_safe(name, 64) + " refused: " + o.detail);
      return error(403, o.error);
    }
    log::info("web", "operator " + o.name + " signed in to the live page");
    Json j;
    j.begin_object().key("ok").boolean(true).key("operator").str(o.name).key("session").str(o.session).end_object();
    return json_response(200, j.text());
  });
}

HttpResponse Web::act(const HttpRequest& r) {
  const json body = json::parse(r.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return error(400, "the body is not a JSON object");
  auto session = text_of(body, "session", 64), act = text_of(body, "act", 1024), mac = text_of(body, "mac", 64);
  auto seq = body.find("seq");
  if (!session || !act || !mac || seq == body.end() || !seq->is_number_unsigned())
    return error(400, "an action takes session, seq (a number), act and mac");
  if (const json a = json::parse(*act, nullptr, false); a.is_object() && a.value("verb", json()) == "signout") {
    return on_loop([this, session = *session, seq = seq->get<std::uint64_t>(), act = *act, mac = *mac] {
      auto o = auth_.check(session, seq, act, mac, ports_.key_of, mono_us());
      if (!o.error.empty()) return error(403, o.error);
      auth_.sign_out(session);
      return json_response(200, R"({"ok":true})");
    });
  }
  std::string why;
  auto req = request_of(*act, why);
  if (!req) return error(400, why);
  const std::uint64_t id = next_id_++;
  req->request_id = id;
  {
    std::lock_guard lock(mu_);
    answers_[id];
  }
  // Status 0: started; its answer comes through answered().
  const HttpResponse started = on_loop(
      [this, id, session = *session, seq = seq->get<std::uint64_t>(), act = *act, mac = *mac, req = *req] {
        auto o = auth_.check(session, seq, act, mac, ports_.key_of, mono_us());
        if (!o.error.empty()) return error(403, o.error);
        ports_.act(o.name, req, ReplyTo{std::string(kReplyPrefix) + std::to_string(id), {}, o.name});
        return HttpResponse{0, "", "", {}};
      },
      "the gateway's loop did not take the action within 5 s; it may still run: watch the page");
  std::unique_lock lock(mu_);
  std::optional<std::string> answer;
  if (started.status == 0 &&
      answered_cv_.wait_for(lock, kAnswerWait, [&] { return stopping_ || answers_[id].has_value(); }))
    answer = answers_[id];
  answers_.erase(id);
  lock.unlock();
  if (started.status != 0) return started;
  if (!answer) return error(504, "no answer within 20 s (the action may still complete: see the page)");
  return json_response(200, std::move(*answer));
}

void Web::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  answered_cv_.notify_all();
  feed_.close();
}

void Web::answered(const ReplyTo& to, const kairos_v1_ControlResponse& resp) {
  const std::uint64_t id = std::strtoull(to.topic.c_str() + kReplyPrefix.size(), nullptr, 10);
  {
    std::lock_guard lock(mu_);
    auto it = answers_.find(id);
    if (it == answers_.end()) return;  // its asker gave up waiting
    it->second = response_json(resp);
  }
  answered_cv_.notify_all();
}

}  // namespace kairos::gw

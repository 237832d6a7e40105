#include "tools/kairosctl/session.h"

#include <unistd.h>

#include <exception>

#include "common/core/config.h"
#include "common/core/topic.h"
#include "common/io/files.h"
#include "tools/kairosctl/args.h"
#include "tools/kairosctl/ctl_config.h"

namespace kairos::ctl {

int Session::setup() {
  mesh_ = o_.mesh;
  key_file_ = o_.key_file;
  operator_name_ = o_.operator_name;
  shared_key_file_ = o_.shared_key_file;
  timeout_ms_ = o_.timeout_ms;
  std::string cfg_path = o_.config_given ? o_.config : (access(kDefaultConfig, R_OK) == 0 ? kDefaultConfig : "");
  if (!cfg_path.empty()) {
    try {
      auto c = parse_ctl_config(read_config_file(cfg_path), cfg_path);
      broker_ = c.broker;
      if (mesh_.empty()) mesh_ = c.mesh;
      // An operator goes with its key: the file's operator is kept only
      // with the file's key, and --operator takes the file's key only when
      // the file is that operator's.
      if (key_file_.empty() && (operator_name_.empty() || operator_name_ == c.operator_name)) key_file_ = c.key_file;
      if (operator_name_.empty() && (o_.key_file.empty() || o_.key_file == c.key_file)) operator_name_ = c.operator_name;
      if (shared_key_file_.empty()) shared_key_file_ = c.shared_key_file;
      if (!o_.timeout_given) timeout_ms_ = c.timeout_ms;
    } catch (const ConfigError& e) {
      return fail(std::string("config error: ") + e.what(), 2);
    }
  }
  if (!o_.broker.empty()) broker_.uri = o_.broker;
  if (!o_.username.empty()) broker_.username = o_.username;
  if (!o_.password_file.empty()) broker_.password_file = o_.password_file;
  origin_ = origin_of(broker_, cfg_path);
  origin_.console = true;
  if (mesh_.empty()) mesh_ = "default";
  if (!valid_name(mesh_)) return fail("mesh name '" + mesh_ + "' is not valid", 2);
  if (key_file_.empty())
    return fail(operator_name_.empty()
                    ? "no operator key: give --key FILE (with --operator NAME for a named operator) or ctl.key_file in " +
                          std::string(kDefaultConfig)
                    : "--operator " + operator_name_ + " needs that operator's key: give --key FILE",
                2);
  if (!operator_name_.empty() && (!valid_name(operator_name_) || operator_name_ == kSharedOperator))
    return fail("--operator '" + operator_name_ + "' is not an operator name ('operator' is the shared key's: leave "
                "--operator out)", 2);
  try {
    key_ = load_key_file(key_file_);
  } catch (const std::exception& e) {
    return fail(e.what(), 2);
  }
  return 0;
}

int Session::open() {
  try {
    mqtt_ = mqtt_options(broker_, "");
  } catch (const std::exception& e) {
    return fail(e.what(), 2);
  }
  mqtt_.reconnect_min_s = 0.2;
  client_ = std::make_unique<CtlClient>(mqtt_, mesh_, key_, operator_name_);
  return 0;
}

int Session::reach() {
  if (int status = open()) return status;
  return connect();
}

int Session::connect() {
  if (client_->connect(timeout_ms_, why_)) return 0;
  return fail(broker_failure(client_->connect_code()));
}

std::string Session::broker_failure(int code) const {
  return code ? connect_failure(broker_.uri, code) + ": " + connect_hint(code, origin_)
              : "cannot reach the broker at " + broker_.uri + ": " + connect_hint(-1, origin_);
}

int Session::no_answer(int waited_ms) {
  return fail(why_ + " within " + std::to_string(waited_ms) + " ms on mesh '" + mesh_ +
              (operator_name_.empty() ? "': is kairos-gateway running, on this mesh, with the same operator key?"
                                      : "': is kairos-gateway running, on this mesh, with operator " + operator_name_ +
                                            "'s key (keys/operators/" + operator_name_ + ".key)?"));
}

std::unique_ptr<kairos_v1_ControlResponse> Session::try_call(kairos_v1_ControlRequest& req, int wait_ms) {
  return client_->call(req, wait_ms, why_);
}

std::string Session::take_why() {
  std::string why;
  why.swap(why_);
  return why;
}

std::unique_ptr<kairos_v1_ControlResponse> Session::call(kairos_v1_ControlRequest& req, int wait_ms, int& status) {
  auto resp = try_call(req, wait_ms);
  if (!resp) {
    status = no_answer(wait_ms);
  } else if (!resp->ok) {
    status = fail(resp->error);
    resp.reset();
  }
  return resp;
}

int Session::answer(kairos_v1_ControlRequest& req, int wait_ms,
                    const std::function<int(const kairos_v1_ControlResponse&)>& print) {
  if (int status = reach()) return status;
  int status = 0;
  auto resp = call(req, wait_ms, status);
  return resp ? print(*resp) : status;
}

int Session::shared_key(Key& out) const {
  out = key_;
  if (shared_key_file_.empty() || shared_key_file_ == key_file_) return 0;
  try {
    out = load_key_file(shared_key_file_);
  } catch (const std::exception& e) {
    return fail(e.what(), 2);
  }
  return 0;
}

BallLink Session::ball_link(const Key& shared) {
  auto silent = [this](int waited_ms, const std::string& why) {
    why_ = why;
    return no_answer(waited_ms);
  };
  return {*client_, mqtt_, mesh_, shared, timeout_ms_, o_.json, [this] { return connect(); }, silent,
          [this](int code) { return broker_failure(code); }};
}

}  // namespace kairos::ctl

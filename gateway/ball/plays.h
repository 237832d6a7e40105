#pragma once
// The Ball protocol at the gateway (docs/DESIGN.md 6, docs/BALL.md): plays are
// held in memory as ball::Session, their lineage is appended to SQLite
// (through the outbox) before anyone hears of it, the signed head is
// published retained and checked against what the broker holds, ball-mode
// entries are delivered to every peer (people on _ball/<session>/to/<person>,
// nodes as a `ball` job that may answer), conversational input to the
// addressed peer only. It answers the ball verb. It asks nodes through the
// job desk; the job desk knows nothing of it.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/core/ball.h"
#include "common/core/frame.h"
#include "gateway/ball/ball_log.h"
#include "gateway/escalation/escalation.h"
#include "gateway/gateway_config.h"
#include "gateway/jobs/desk.h"
#include "gateway/link/reply.h"
#include "gateway/registry/registry.h"
#include "gateway/store/outbox.h"

namespace kairos::gw {

class Plays {
 public:
  struct Ports {
    // Signs a head or a delivery for its topic.
    std::function<Bytes(const std::string& topic, Envelope& env)> seal;
    Answer answer;
    // The link is up and the registry has settled since the start.
    std::function<bool()> ready;
  };
  Plays(const GatewayConfig& config, const Registry& registry, Escalation& escalation, Outbox& outbox, JobDesk& jobs,
        Ports ports);
  // Every session's newest play from the database, replayed; one that does not replay is broken.
  void restore();
  // The broker's retained heads come again after a connect, and are checked.
  void on_connected(std::int64_t now_us);
  // The broker's signed head of a play (retained, or the echo of ours):
  // a lineage that does not reach it, or differs from it, is broken.
  void on_head(const kairos_v1_BallHead& h);
  void verb(const ReplyTo& to, std::uint64_t request_id, const kairos_v1_BallRequest& req);
  // Stalled node holders asked again; heads the broker lost published again.
  void service(std::int64_t now_us);
  // A job ended: the answer of a play's node, if it was one.
  void job_finished(const Job& job);
  std::size_t size() const { return plays_.size(); }
  // A play as the live page shows it (docs/WEB.md).
  struct View {
    std::string session, ball_id, holder, broken;
    bool closed = false;
    std::vector<std::string> peers;
    const std::vector<ball::Entry>* lineage = nullptr;  // null when it did not replay
  };
  std::vector<View> views() const;

 private:
  struct Play {
    std::optional<ball::Session> s;  // empty when the stored lineage did not replay
    std::string ball_id;
    std::int64_t started_wall_us = 0;
    std::string broken;  // the lineage does not hold (replay, or against the signed head): why; no input then
    bool head_seen = false;  // the broker's head of this play was heard since the last connect
    // The holder is a node whose answer is still owed (offline, failed,
    // or a gateway restart lost its job): asked again from then on (monotonic).
    std::optional<std::int64_t> ask_again_us;
    int ask_failures = 0;  // jobs to the holder in a row that failed while it was online (AskSchedule)
    bool live() const { return s && broken.empty(); }  // takes input, is carried and signed
  };
  struct BallJob {
    std::string session, ball_id, node;
    std::uint64_t entry = 0;
    int tries = 0;  // answers of this node to this entry refused so far
  };
  struct Dispatch {
    std::string session, node;
    std::uint64_t entry = 0;    // the entry it is about
    std::string conversation;   // conversational input for the node (not logged)
    std::string from;           // who said it
    std::string refused;        // why the node's last answer was refused
    int tries = 0;
  };
  ball::AskSchedule ask_schedule() const {
    return {static_cast<std::int64_t>(config_.ball_retry_s * 1e6),
            static_cast<std::int64_t>(config_.ball_retry_max_s * 1e6)};
  }
  // A play's outcome: a refusal is logged as a conflict (and returned), a
  // new entry stored, delivered and its head published after the commit.
  // by: the operator whose request it was ("" for a node's answer).
  std::string record(const std::string& name, Play& p, const std::string& author, const ball::Session::Outcome& o,
                     const std::string& by = "");
  void deliver(const std::string& name, const Play& p, const std::string& person, const std::string& from,
               const ball::Entry* entry, const std::string& text);
  void publish_head(const std::string& name, const Play& p);
  bool is_node(const std::string& peer) const { return registry_.find(peer) != nullptr; }
  void send_jobs();  // after each commit
  void answer(const BallJob& b, const Job& job);
  void broken(const std::string& name, Play& p, const std::string& why);
  void fill_play(const std::string& name, const Play& p, kairos_v1_BallPlay& o) const;

  const GatewayConfig& config_;
  const Registry& registry_;
  Escalation& escalation_;
  Outbox& outbox_;
  JobDesk& jobs_;
  Ports ports_;
  BallLog log_;
  std::map<std::string, Play> plays_;        // session name -> its current play
  std::map<std::uint64_t, BallJob> asked_;    // job id -> the play it asks a node about
  std::vector<Dispatch> dispatch_;           // sent after the next commit
  std::int64_t next_service_us_ = 0;
  std::int64_t connected_at_us_ = 0;
};

}  // namespace kairos::gw

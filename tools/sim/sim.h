#pragma once
// kairos-sim (docs/DESIGN.md 7): many simulated nodes in one process, each with its
// own identity, key, session, seq counter and topics, speaking the node
// protocol through the node's own code (Signer, CommandIntake, make_ack, the
// report and job result builders, SyntheticInput, KairosFilter) over a few
// shared MQTT connections. The network between each node and the broker is
// modelled (latency.h); the broker, the gateway and the host clock are real. docs/SIM.md.
#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/core/frame.h"
#include "common/core/kairos.h"
#include "common/core/ratelimit.h"
#include "common/io/mqtt.h"
#include "tools/sim/sim_link.h"
#include "firmware/drivers/synthetic.h"
#include "firmware/intake.h"
#include "firmware/reports.h"
#include "tools/sim/latency.h"
#include "tools/sim/options.h"

namespace kairos::sim {

class Simulator {
 public:
  // Loads (or makes) every node's key, draws the nodes from the seed and
  // writes the roster. Throws std::runtime_error.
  explicit Simulator(SimOptions options);
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // Runs until SIGTERM / SIGINT or --duration-s, then publishes every live
  // node's offline state and closes the connections; returns the exit status.
  int run();

 private:
  // No frame is handed to the MQTT client this close before a held execution:
  // a publish may wait for Paho's lock while its threads work through a burst
  // (a thousand acks), and the execution behind it would run late. Real nodes
  // have a client each; the simulator's shared one must not set their timing.
  static constexpr std::int64_t kQuietUs = 15'000;
  // Heartbeats and phase reports are made and sent on this grid (us): see push, queue_out.
  static constexpr std::int64_t kBatchUs = 5'000;
  // The first point of the kBatchUs grid at or after t.
  static constexpr std::int64_t on_grid(std::int64_t t) { return (t + kBatchUs - 1) / kBatchUs * kBatchUs; }
  // A report that would leave later than this (us) is dropped: see shed().
  static constexpr std::int64_t kShedAfterUs = 1'000'000;
  // Inputs are sampled at 10 Hz (in catch-up batches at each phase report).
  static constexpr std::int64_t kSamplePeriodUs = 100'000;

  // The synthetic input and its KAIROS loop, only while phase reports are on.
  struct Phases {
    node::SyntheticInput input;
    KairosFilter filter;
    std::int64_t next_sample_us = 0;  // monotonic
  };

  // One simulated node. Kept small: 30,000 of them share the process.
  struct Node {
    Node(const std::string& node_id, const Key& node_key, std::uint64_t session)
        : id(node_id), key(node_key), signer(node_id, session), intake(node_id, node_key, session) {}
    std::string id;
    Key key;
    Signer signer;
    node::CommandIntake intake;
    NodeClock clock;
    DelayLine in, out;   // broker -> node, node -> broker
    Rng steps;           // when and how far its clock steps (--clock-step-ms)
    double base_ms = 0;  // current base one-way latency (class, slow, jumps)
    std::unique_ptr<Phases> phases;
    std::uint64_t will_seq = 0;  // seq of the offline state, armed per connection as node.cpp does
    std::uint64_t sent = 0;      // frames handed to the broker
    std::uint64_t samples = 0;
    float processing_ms = 0;  // EMA of the time spent on one inbound frame
    std::uint32_t link = 0;
    std::uint16_t cluster = 0;  // index into cluster_names_
    std::uint8_t cls = 0;       // 0..5: A..F
    bool crash = false, slow = false, lying = false, badmac = false, diverge = false, paradox = false;
    bool crashed = false, announced = false, frozen = false;
  };

  enum class Ev : std::uint8_t { deliver, publish, heartbeat, phase, crash, jump, job, step };
  struct Timer {
    std::int64_t due;     // monotonic us
    std::uint64_t order;  // FIFO among equal times
    std::uint32_t node;
    std::uint32_t arg;  // slot in frames_ (deliver, publish) or index into jumps (jump)
    Ev kind;
  };
  struct Later {
    template <class T>
    bool operator()(const T& a, const T& b) const {
      return a.due != b.due ? a.due > b.due : a.order > b.order;
    }
  };
  // A command held until its execute_at.
  struct Held {
    std::int64_t due;  // monotonic us, for sleeping
    std::uint64_t order;
    std::uint32_t node;
    std::int64_t target_wall;  // true wall us at which the node's clock reads execute_at
  };
  // When and where a command reached its node: true wall us and node clock us.
  struct Received {
    std::int64_t true_us = 0;
    std::int64_t node_us = 0;
  };
  // An ack whose seq and times are fixed but which is signed only when it
  // leaves, so that signing never delays the commands before an instant.
  struct AckDraft {
    std::uint64_t command_id = 0;
    int state = 0;
    std::string detail;
    std::int64_t received_us = 0;  // node clock
    std::int64_t executed_us = 0;  // node clock
    std::uint64_t seq = 0;
    std::int64_t sent_at_us = 0;  // node clock
  };
  // A frame on its way through a delay line.
  struct Frame {
    Frame() = default;
    Frame(std::string t, Bytes p, TopicKind k, int q, bool r)
        : topic(std::move(t)), payload(std::move(p)), kind(k), qos(static_cast<std::uint8_t>(q)), retain(r) {}
    std::string topic;
    Bytes payload;
    TopicKind kind = TopicKind::cmd;
    std::uint8_t qos = 0;
    bool retain = false;
    std::int64_t due = 0;           // monotonic us it should reach the broker (outbound)
    std::optional<AckDraft> draft;  // an ack not signed yet (payload empty)
  };
  // How late the loop was against the model: the simulator's own overload.
  struct Lateness {
    std::int64_t max_us = 0;
    std::uint64_t over_1ms = 0;
    void add(std::int64_t late_us) {
      max_us = std::max(max_us, late_us);
      if (late_us > 1000) ++over_1ms;
    }
  };
  struct Stats {
    std::array<std::uint64_t, 16> sent{};  // by TopicKind
    std::uint64_t offline_states = 0;      // of sent[state]: offline (crash or exit)
    std::uint64_t not_sent = 0;            // QoS 0 frames while the connection was down
    std::uint64_t shed = 0;                // QoS 0 frames dropped: the loop fell behind
    std::uint64_t deferred = 0;            // frames the MQTT client could not take at once
    std::uint64_t received = 0;            // frames from the broker
    std::uint64_t unrouted = 0;            // on no node's command topic
    std::uint64_t to_crashed = 0;
    DropCounters drops;                   // refused by a node's CommandIntake
    std::array<std::uint64_t, 3> acks{};  // CONFLICT, TRANSIT, READY
    std::uint64_t pings = 0;
    std::uint64_t executed_now = 0;   // commands without execute_at
    std::uint64_t executed_held = 0;  // scheduled commands run at execute_at
    double held_error_sum_us = 0;     // |true execution - target| over executed_held
    std::int64_t held_error_max_us = 0;
    std::uint64_t crashed = 0;
    std::uint64_t jobs = 0;          // job results sent
    std::uint64_t jobs_refused = 0;
    Lateness late_in;   // commands handed to their node after the modelled instant
    Lateness late_out;  // frames handed to the MQTT client after the modelled instant
  };

  void start_timers();
  void poll_links();
  void wait_until(std::int64_t deadline_mono);
  void run_held();
  void finish_execution(std::uint32_t i, std::int64_t exec_wall);
  void run_timers();
  void shutdown();
  void print_summary(double seconds) const;

  void on_link_up(std::uint32_t k);
  void on_inbound(std::uint32_t k, Inbound& msg);
  void deliver(std::uint32_t i, std::uint32_t slot, std::int64_t due);
  void perform(std::uint32_t i, const Envelope& env, Received rx, std::int64_t exec_wall);
  void crash(std::uint32_t i, std::int64_t now);
  // A job (docs/DESIGN.md 5.5) with one of the built-in handlers: echo, hash, sleep.
  void start_job(std::uint32_t i, const kairos_v1_Command& cmd, Received rx, std::int64_t exec_mono);
  void finish_job(std::uint32_t i, std::uint32_t slot, std::int64_t now);
  void heartbeat(std::uint32_t i, std::int64_t due);
  void report_phase(std::uint32_t i, std::int64_t due);

  void publish_birth(std::uint32_t i, std::int64_t at_mono);
  void ack(std::uint32_t i, const kairos_v1_Command& cmd, int state, const std::string& detail,
           std::int64_t received_us, std::int64_t executed_us, std::int64_t at_mono);
  // Seals env as node i's next frame at at_mono and sends it through the node's delay line.
  void send(std::uint32_t i, TopicKind kind, Envelope& env, int qos, bool retain, std::int64_t at_mono);
  void queue_out(std::uint32_t i, Frame f, std::int64_t at_mono);
  void publish_now(std::uint32_t i, std::uint32_t slot);
  // Hands connection k's waiting frames to the MQTT client, in order; false
  // when some must wait (the pace of flush(), or the client's buffer is full).
  bool flush(std::uint32_t k);
  Bytes state_frame(std::uint32_t i, bool online, std::uint64_t seq, std::int64_t at_mono);
  std::string topic(const Node& n, TopicKind kind) const;

  void push(std::int64_t due, Ev kind, std::uint32_t node, std::uint32_t arg = 0);
  std::uint32_t store(Frame f);
  Frame take(std::uint32_t slot);
  void note_announced();
  void shed();  // counts a report dropped because the loop fell behind
  // Whether connection k's frames wait so long that new reports are not worth making.
  bool congested(std::uint32_t k, std::int64_t now) const;
  void ledger_exec(const Node& n, std::uint64_t command_id, std::int64_t exec_wall, std::int64_t node_exec,
                   std::int64_t received_wall, std::int64_t execute_at);
  void ledger_conflict(const Node& n, std::uint64_t command_id, std::int64_t wall, const std::string& detail);
  std::int64_t node_now(const Node& n, std::int64_t mono) const { return n.clock.node_us(mono + wall_off_); }

  const SimOptions opt_;
  const std::uint64_t seed_;
  std::vector<Node> nodes_;
  std::unordered_map<std::string, std::uint32_t> by_id_;
  std::vector<std::string> cluster_names_;
  std::array<double, 4> taus_s_{};
  Digest context_hash_{};
  Digest divergent_hash_{};  // the context hash of `diverge` nodes
  node::BirthInfo birth_;    // every node's, but its cluster, class and context hash
  std::size_t keys_made_ = 0;

  std::priority_queue<Timer, std::vector<Timer>, Later> inbound_;  // deliveries: before any other timer
  std::priority_queue<Timer, std::vector<Timer>, Later> timers_;
  std::priority_queue<Held, std::vector<Held>, Later> held_;
  std::map<std::pair<std::uint32_t, std::uint64_t>, Received> held_rx_;  // (node, command id)
  std::deque<std::pair<std::uint32_t, std::int64_t>> executed_;    // (node, true wall us): run, not yet acknowledged
  std::vector<std::deque<std::pair<std::uint32_t, Frame>>> outq_;  // per connection: (node, frame) due out
  struct Pace {
    std::int64_t window_start = 0;  // monotonic us
    int frames = 0;                 // frames handed to the client in this millisecond
  };
  Pace pace_all_;           // every frame
  std::vector<Pace> pace_;  // per connection: QoS 1 frames
  std::uint32_t rr_ = 0;    // connection flushed first in this turn
  struct RunningJob {
    std::uint64_t job_id = 0;
    std::uint32_t attempt = 0;
    std::string handler;
    Bytes payload;
  };
  std::vector<RunningJob> jobs_;
  std::vector<std::uint32_t> free_jobs_;
  std::vector<Frame> frames_;
  std::vector<std::uint32_t> free_slots_;
  std::uint64_t order_ = 0;

  std::int64_t start_mono_ = 0;
  std::int64_t start_wall_ = 0;
  std::int64_t wall_off_ = 0;  // wall_us() - mono_us(), refreshed every loop turn

  std::size_t announced_ = 0;
  std::size_t gone_unannounced_ = 0;  // crashed before their birth went out
  bool all_announced_ = false;
  bool stopping_ = false;  // in shutdown(): inbound frames are ignored
  Stats stats_;
  RateLimiter log_limit_{1.0, 5.0};
  std::FILE* ledger_ = nullptr;

  // Paho's threads signal here (MqttOptions::on_event); the loop sleeps on it.
  LinkWaker waker_;  // the links' Paho threads wake the loop
  // Declared last: destroyed first, before what their callbacks touch.
  std::vector<std::unique_ptr<SimLink>> links_;
};

}  // namespace kairos::sim

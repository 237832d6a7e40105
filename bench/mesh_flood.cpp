// A load driver for the gateway that is not itself the bottleneck
// (docs/BENCHMARKS.md, "Mesh load"): N nodes' births, heartbeats and phase
// reports, each signed as the node signs it (Signer, seal) when it is due,
// published at QoS 0 over a few plain MQTT 3.1.1 connections with many
// PUBLISH packets per write(). kairos-sim models each node (its network,
// clock and KAIROS loop) and speaks through Paho, whose C client sends every
// connection's messages from one thread per process: it sheds reports
// before 30,000 nodes at a report a second. This driver models nothing but
// a fixed clock offset per node (within +-100 ms); it sends what a mesh
// sends, on time, and with --answer-pings 1 answers the gateway's clock
// pings as a node does (a signed ack stamped with its receipt and reply
// times on the node's clock), reporting how soon each node had 8 answered.
// Usage: mesh_flood --port P --mesh M --keys-dir DIR [--nodes N] [--prefix P]
//        [--clusters K] [--phase-s S] [--hb-s S] [--duration-s S] [--connections C]
//        [--answer-pings 0|1]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <unordered_map>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "common/io/clock.h"
#include "common/io/files.h"
#include "common/io/keygen.h"
#include "common/io/process.h"
#include "firmware/intake.h"

using namespace kairos;

namespace {

struct Options {
  int port = 1883;
  std::string mesh, keys_dir, prefix = "flood";
  int nodes = 1000, clusters = 4, connections = 0;
  double phase_s = 1, hb_s = 5, duration_s = 0;
  bool answer_pings = false;
};

struct Node {
  std::string id, cluster;
  Key key;
  Signer signer;
  std::string phase_topic, hb_topic, ack_topic;
  int conn;
  std::int64_t offset_us = 0;  // its clock against the machine's
  int pings = 0;               // answered
  std::int64_t eighth_us = 0;  // when its 8th ping was answered (monotonic)
};

void put_length(std::string& out, std::size_t n) {
  do {
    auto b = static_cast<unsigned char>(n % 128);
    n /= 128;
    if (n) b |= 0x80;
    out.push_back(static_cast<char>(b));
  } while (n);
}

void put_string(std::string& out, std::string_view s) {
  out.push_back(static_cast<char>(s.size() >> 8));
  out.push_back(static_cast<char>(s.size() & 0xff));
  out.append(s);
}

// One QoS 0 PUBLISH packet appended to out.
void put_publish(std::string& out, std::string_view topic, const Bytes& payload, bool retain) {
  out.push_back(static_cast<char>(0x30 | (retain ? 1 : 0)));
  put_length(out, 2 + topic.size() + payload.size());
  put_string(out, topic);
  out.append(reinterpret_cast<const char*>(payload.data()), payload.size());
}

class Connection {
 public:
  Connection(int port, const std::string& client_id) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("connect 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::string body;
    put_string(body, "MQTT");
    body.push_back(4);     // 3.1.1
    body.push_back(0x02);  // clean session
    body.push_back(0);
    body.push_back(60);  // keepalive s
    put_string(body, client_id);
    std::string pkt(1, static_cast<char>(0x10));
    put_length(pkt, body.size());
    pkt += body;
    write_all(pkt);
    unsigned char ack[4];
    std::size_t got = 0;
    while (got < 4) {
      ssize_t r = ::read(fd_, ack + got, 4 - got);
      if (r <= 0) throw std::runtime_error("no CONNACK from the broker");
      got += static_cast<std::size_t>(r);
    }
    if (ack[0] != 0x20 || ack[3] != 0) throw std::runtime_error("the broker refused the connection");
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  }
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  std::string out;
  // Writes what is queued (blocking until the kernel took it), and reads
  // whatever the broker sent (PINGRESP) so its buffer never fills.
  void flush() {
    flush_out();
    char sink[4096];
    while (read_some(sink, sizeof sink) > 0) {
    }
  }
  void ping() { out.append("\xc0\x00", 2); }
  // Subscribes to filter at QoS 0 (the SUBACK is read with the rest).
  void subscribe(std::string_view filter) {
    std::string body("\x00\x01", 2);  // packet id 1
    put_string(body, filter);
    body.push_back(0);
    std::string pkt(1, static_cast<char>(0x82));
    put_length(pkt, body.size());
    out += pkt + body;
    flush_out();
  }
  void flush_out() {
    write_all(out);
    out.clear();
  }
  int fd() const { return fd_; }
  // Reads what the broker sent into in; then takes each whole PUBLISH
  // (QoS 0) out of it: on_publish(topic, payload).
  template <typename F>
  void receive(F&& on_publish) {
    char buf[65536];
    ssize_t r;
    while ((r = read_some(buf, sizeof buf)) > 0) in_.append(buf, static_cast<std::size_t>(r));
    std::size_t pos = 0;
    while (in_.size() - pos >= 2) {
      std::size_t len = 0, shift = 0, i = pos + 1;
      bool whole = false;
      while (i < in_.size()) {
        auto b = static_cast<unsigned char>(in_[i++]);
        len |= static_cast<std::size_t>(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) {
          whole = true;
          break;
        }
      }
      if (!whole || in_.size() - i < len) break;
      if ((static_cast<unsigned char>(in_[pos]) & 0xf0) == 0x30 && len >= 2) {
        const std::size_t tlen = (static_cast<unsigned char>(in_[i]) << 8) | static_cast<unsigned char>(in_[i + 1]);
        if (2 + tlen <= len)
          on_publish(std::string_view(in_).substr(i + 2, tlen),
                     ByteView(reinterpret_cast<const std::uint8_t*>(in_.data()) + i + 2 + tlen, len - 2 - tlen));
      }
      pos = i + len;
    }
    in_.erase(0, pos);
  }

 private:
  // What the socket has now (0: nothing yet); the broker closing it is an error.
  ssize_t read_some(char* buf, std::size_t size) {
    const ssize_t r = ::read(fd_, buf, size);
    if (r == 0) throw std::runtime_error("the broker closed the connection");
    return r < 0 ? 0 : r;
  }
  void write_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t w = ::write(fd_, data.data(), data.size());
      if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
        fd_set set;
        FD_ZERO(&set);
        FD_SET(fd_, &set);
        ::select(fd_ + 1, nullptr, &set, nullptr, nullptr);
        continue;
      }
      if (w <= 0) throw std::runtime_error("write to the broker: " + std::string(std::strerror(errno)));
      data.remove_prefix(static_cast<std::size_t>(w));
    }
  }
  int fd_ = -1;
  std::string in_;
};

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--port") o.port = std::stoi(v);
    else if (k == "--mesh") o.mesh = v;
    else if (k == "--keys-dir") o.keys_dir = v;
    else if (k == "--prefix") o.prefix = v;
    else if (k == "--nodes") o.nodes = std::stoi(v);
    else if (k == "--clusters") o.clusters = std::stoi(v);
    else if (k == "--connections") o.connections = std::stoi(v);
    else if (k == "--phase-s") o.phase_s = std::stod(v);
    else if (k == "--hb-s") o.hb_s = std::stod(v);
    else if (k == "--duration-s") o.duration_s = std::stod(v);
    else if (k == "--answer-pings") o.answer_pings = v == "1";
    else return false;
  }
  return (argc % 2) == 1 && !o.mesh.empty() && !o.keys_dir.empty() && o.nodes > 0 && o.phase_s > 0 && o.hb_s > 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr,
                 "usage: mesh_flood --port P --mesh M --keys-dir DIR [--nodes N] [--prefix P] [--clusters K]\n"
                 "                  [--phase-s S] [--hb-s S] [--duration-s S] [--connections C] [--answer-pings 0|1]\n");
    return 2;
  }
  install_stop_signals();
  try {
    const int conns = o.connections ? o.connections : std::max(1, o.nodes / 2500);
    std::filesystem::create_directories(o.keys_dir + "/nodes");
    const auto session = static_cast<std::uint64_t>(wall_us());
    std::vector<Node> nodes;
    nodes.reserve(static_cast<std::size_t>(o.nodes));
    RandomSource random("kairos-mesh-flood");
    for (int i = 0; i < o.nodes; ++i) {
      char id[80];
      std::snprintf(id, sizeof id, "%s-%05d", o.prefix.c_str(), i + 1);
      const std::string path = o.keys_dir + "/nodes/" + id + ".key";
      Key key;
      if (std::filesystem::exists(path)) {
        key = load_key_file(path);
      } else {
        random.fill(key.bytes.data(), key.bytes.size());
        write_file_atomic(path, to_hex(key.bytes) + "\n", 0600);
      }
      std::string cluster = "c" + std::to_string(1 + i % o.clusters);
      nodes.push_back({id, cluster, key, Signer(id, session), node_topic(o.mesh, cluster, id, TopicKind::phase),
                       node_topic(o.mesh, cluster, id, TopicKind::hb), node_topic(o.mesh, cluster, id, TopicKind::ack),
                       i % conns,
                       static_cast<std::int64_t>((i * 7919) % 201 - 100) * 1000});
    }
    std::vector<std::unique_ptr<Connection>> links;
    for (int k = 0; k < conns; ++k)
      links.push_back(std::make_unique<Connection>(o.port, o.mesh + "-flood-" + o.prefix + "-" + std::to_string(k)));
    for (auto& n : nodes) {
      auto env = make_envelope("", 0, 0, 0);
      env->which_message = kairos_v1_Envelope_birth_tag;
      auto& b = env->message.birth;
      set_string(b.cluster, n.cluster);
      set_string(b.board, "flood");
      set_string(b.firmware_version, "0.1.0");
      b.capabilities_count = 1;
      set_string(b.capabilities[0], "in:synthetic");
      b.device_class = kairos_v1_DeviceClass_CLASS_C;
      b.heartbeat_period_ms = static_cast<std::uint32_t>(o.hb_s * 1000);
      auto t = node_topic(o.mesh, n.cluster, n.id, TopicKind::birth);
      put_publish(links[static_cast<std::size_t>(n.conn)]->out, t, n.signer.seal(t, *env, n.key, wall_us()), true);
    }
    for (auto& l : links) l->flush();
    // The clock pings, on a connection of their own, answered as they come.
    std::unique_ptr<Connection> cmds;
    std::unordered_map<std::string_view, std::size_t> index;  // views of the nodes' ids
    std::uint64_t answered = 0, refused = 0;
    std::int64_t first_ping_us = 0;
    if (o.answer_pings) {
      for (std::size_t i = 0; i < nodes.size(); ++i) index.emplace(nodes[i].id, i);
      cmds = std::make_unique<Connection>(o.port, o.mesh + "-flood-" + o.prefix + "-cmd");
      cmds->subscribe(node_filter(o.mesh, TopicKind::cmd));
    }
    auto answer = [&] {
      cmds->receive([&](std::string_view topic, ByteView payload) {
        auto t = parse_topic(topic);
        auto it = t ? index.find(t->name) : index.end();
        if (it == index.end()) return;
        Node& n = nodes[it->second];
        const std::int64_t received = wall_us() + n.offset_us;
        auto opened = open(topic, payload, n.key);
        if (!opened || opened.env->which_message != kairos_v1_Envelope_command_tag ||
            opened.env->message.command.which_action != kairos_v1_Command_ping_tag) {
          ++refused;
          return;
        }
        // As the node answers a ping (firmware/intake.h).
        const std::int64_t executed = wall_us() + n.offset_us;
        auto ack = node::make_ack(opened.env->message.command, node::kAckReady, "pong", received, executed);
        put_publish(cmds->out, n.ack_topic, n.signer.seal(n.ack_topic, *ack, n.key, executed), false);
        const std::int64_t now = mono_us();
        if (!first_ping_us) first_ping_us = now;
        if (++n.pings == 8) n.eighth_us = now;
        ++answered;
      });
      if (!cmds->out.empty()) cmds->flush_out();
    };
    auto ping_report = [&](const char* when) {
      if (!cmds) return;
      std::vector<double> eighth;
      for (const auto& n : nodes)
        if (n.eighth_us) eighth.push_back(static_cast<double>(n.eighth_us - first_ping_us) / 1e6);
      std::sort(eighth.begin(), eighth.end());
      const auto in_2min = std::upper_bound(eighth.begin(), eighth.end(), 120.0) - eighth.begin();
      const double span = first_ping_us ? static_cast<double>(mono_us() - first_ping_us) / 1e6 : 0;
      std::printf("mesh_flood: pings %s: %llu answered (%.0f/s since the first), %llu refused; %zu of %zu nodes with 8 "
                  "answered (%td within 120 s of the first ping), the 8th after it p50 %.1f s p95 %.1f s max %.1f s\n",
                  when, static_cast<unsigned long long>(answered), span > 0 ? static_cast<double>(answered) / span : 0.0,
                  static_cast<unsigned long long>(refused), eighth.size(), nodes.size(), in_2min,
                  eighth.empty() ? 0.0 : eighth[eighth.size() / 2],
                  eighth.empty() ? 0.0 : eighth[eighth.size() * 95 / 100], eighth.empty() ? 0.0 : eighth.back());
      std::fflush(stdout);
    };
    std::int64_t next_report = mono_us() + 10'000'000;
    std::printf("mesh_flood: all %d nodes announced on %d connections\n", o.nodes, conns);
    std::fflush(stdout);

    // Node i's reports fall at i/N of each period: an even stream, 10 ms at a time.
    constexpr std::int64_t kTickUs = 10'000;
    const auto phase_us = static_cast<std::int64_t>(o.phase_s * 1e6), hb_us = static_cast<std::int64_t>(o.hb_s * 1e6);
    const std::int64_t start = mono_us();
    std::int64_t done_until = start, next_ping = start + 30'000'000, late_ticks = 0, ticks = 0;
    std::uint64_t phases = 0, hbs = 0;
    auto env = make_envelope("", 0, 0, 0);
    while (!stop_requested() && (o.duration_s <= 0 || done_until - start < static_cast<std::int64_t>(o.duration_s * 1e6))) {
      const std::int64_t until = done_until + kTickUs;
      // Node i reports at start + i*period/N + k*period (k >= 0): one in [from, to)?
      auto due_in = [&](std::int64_t period, std::size_t i, std::int64_t from, std::int64_t to) {
        const std::int64_t offset = static_cast<std::int64_t>(i) * period / o.nodes;
        auto before = [&](std::int64_t t) {  // instants earlier than t
          const std::int64_t v = t - start - offset;
          return v <= 0 ? 0 : (v - 1) / period + 1;
        };
        return before(to) > before(from);
      };
      for (std::size_t i = 0; i < nodes.size(); ++i) {
        auto& n = nodes[i];
        auto& out = links[static_cast<std::size_t>(n.conn)]->out;
        if (due_in(phase_us, i, done_until, until)) {
          *env = kairos_v1_Envelope_init_zero;
          env->which_message = kairos_v1_Envelope_phase_tag;
          auto& p = env->message.phase;
          p.inputs_count = 1;
          set_string(p.inputs[0].input, "synthetic");
          p.inputs[0].scales_count = 3;
          const float angle = static_cast<float>((until - start) % 10'000'000) / 1e7f * 6.2832f;
          for (int k = 0; k < 3; ++k) {
            p.inputs[0].scales[k].has_z = true;
            p.inputs[0].scales[k].z.re = std::cos(angle);
            p.inputs[0].scales[k].z.im = std::sin(angle);
            p.inputs[0].scales[k].c = 0.9f;
          }
          p.has_node_z = true;
          p.node_z.re = std::cos(angle);
          p.node_z.im = std::sin(angle);
          p.node_c = 0.9f;
          p.valid = true;
          put_publish(out, n.phase_topic, n.signer.seal(n.phase_topic, *env, n.key, wall_us()), false);
          ++phases;
        }
        if (due_in(hb_us, i, done_until, until)) {
          *env = kairos_v1_Envelope_init_zero;
          env->which_message = kairos_v1_Envelope_heartbeat_tag;
          env->message.heartbeat.status = kairos_v1_NodeStatus_COMPLIANT;
          env->message.heartbeat.processing_ms = 0.3f;
          env->message.heartbeat.uptime_ms = static_cast<std::uint64_t>((until - start) / 1000);
          put_publish(out, n.hb_topic, n.signer.seal(n.hb_topic, *env, n.key, wall_us()), false);
          ++hbs;
        }
      }
      if (until >= next_ping) {
        for (auto& l : links) l->ping();
        if (cmds) {
          cmds->ping();
          cmds->flush_out();
        }
        next_ping += 30'000'000;
      }
      for (auto& l : links) l->flush();
      done_until = until;
      ++ticks;
      const std::int64_t now = mono_us();
      if (now > until + kTickUs) ++late_ticks;  // more than a tick behind
      if (!cmds) {
        if (now < until) ::usleep(static_cast<useconds_t>(until - now));
        continue;
      }
      // Until the next tick, pings are answered as they arrive.
      for (std::int64_t t = now;; t = mono_us()) {
        pollfd p{cmds->fd(), POLLIN, 0};
        const int wait_ms = t < until ? static_cast<int>((until - t + 999) / 1000) : 0;
        if (::poll(&p, 1, wait_ms) > 0) answer();
        if (mono_us() >= until) break;
      }
      if (mono_us() >= next_report) {
        ping_report("so far");
        next_report += 10'000'000;
      }
    }
    ping_report("in all");
    const double span = static_cast<double>(mono_us() - start) / 1e6;
    std::printf("mesh_flood: %.1f s, %llu phase reports and %llu heartbeats sent (%.0f frames/s), %lld of %lld ticks late\n",
                span, static_cast<unsigned long long>(phases), static_cast<unsigned long long>(hbs),
                static_cast<double>(phases + hbs) / span, static_cast<long long>(late_ticks), static_cast<long long>(ticks));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mesh_flood: %s\n", e.what());
    return 1;
  }
}

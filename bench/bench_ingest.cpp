// What the gateway spends per node frame (docs/DESIGN.md 4, 5.1): a stream of
// pre-signed frames from many nodes (a heartbeat every 5 s and a phase report
// every second each) through the gateway's own ingest path, in process and
// without a broker: topic, key lookup, MAC, decode, validation, replay
// window, registry, and the once-a-second work the loop does beside it
// (SQLite flush, mesh figures). The reference in the same run is open()
// alone (MAC, decode, validation) over the same frames: the work any
// receiver must do. Heap allocations per frame are counted.
// docs/BENCHMARKS.md, "Ingest".
#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <atomic>
#include <chrono>
#include <thread>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <optional>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "common/io/clock.h"
#include "common/io/log.h"
#include "gateway/gateway.h"

using namespace kairos;

namespace {

std::atomic<bool> g_counting{false};
std::atomic<std::uint64_t> g_allocs{0};

}  // namespace

// Counts heap allocations while g_counting is on (malloc and free underneath).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

constexpr const char* kMesh = "bench";
constexpr int kSeconds = 4;  // simulated seconds of traffic, pre-signed

struct Fleet {
  std::filesystem::path dir;
  std::vector<Key> keys;
  std::vector<std::string> ids, clusters;
  std::vector<Inbound> births;
  std::vector<std::vector<Inbound>> seconds;  // the frames of each simulated second, interleaved across nodes
  std::vector<std::size_t> owner;             // frame index within a second -> node
};

Key key_for(int i) {
  Key k{};
  for (std::size_t b = 0; b < k.bytes.size(); ++b) k.bytes[b] = static_cast<std::uint8_t>(i * 31 + b * 7 + 1);
  return k;
}

void write_key(const std::filesystem::path& p, const Key& k) {
  std::string hex;
  char h[3];
  for (auto b : k.bytes) {
    std::snprintf(h, sizeof h, "%02x", b);
    hex += h;
  }
  std::ofstream(p) << hex << "\n";
  std::filesystem::permissions(p, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

Inbound inbound(std::string topic, Bytes payload) {
  Inbound m;
  m.topic = std::move(topic);
  m.payload = std::move(payload);
  return m;
}

Fleet make_fleet(int nodes) {
  Fleet f;
  f.dir = std::filesystem::temp_directory_path() / ("kairos-bench-ingest-" + std::to_string(::getpid()));
  std::filesystem::create_directories(f.dir / "keys" / "nodes");
  write_key(f.dir / "keys" / "broadcast.key", key_for(-1));
  write_key(f.dir / "keys" / "operator.key", key_for(-2));
  const std::uint64_t session = static_cast<std::uint64_t>(wall_us());
  for (int i = 0; i < nodes; ++i) {
    char id[16], cluster[16];
    std::snprintf(id, sizeof id, "n%05d", i);
    std::snprintf(cluster, sizeof cluster, "c%03d", i / 100);
    f.ids.emplace_back(id);
    f.clusters.emplace_back(cluster);
    f.keys.push_back(key_for(i));
    write_key(f.dir / "keys" / "nodes" / (std::string(id) + ".key"), f.keys.back());
  }
  std::vector<Signer> signers;
  for (int i = 0; i < nodes; ++i) signers.emplace_back(f.ids[i], session);
  for (int i = 0; i < nodes; ++i) {
    auto env = make_envelope("", 0, 0, 0);
    env->which_message = kairos_v1_Envelope_birth_tag;
    auto& b = env->message.birth;
    set_string(b.cluster, f.clusters[i]);
    set_string(b.board, "pi-zero-w");
    set_string(b.firmware_version, "0.1.0");
    b.capabilities_count = 2;
    set_string(b.capabilities[0], "in:temperature");
    set_string(b.capabilities[1], "out:led");
    b.device_class = kairos_v1_DeviceClass_CLASS_C;
    b.heartbeat_period_ms = 5000;
    b.inputs_count = 1;  // what the bridges show of it
    set_string(b.inputs[0].name, "temperature");
    set_string(b.inputs[0].kind, "iio");
    b.outputs_count = 1;
    set_string(b.outputs[0].name, "led");
    set_string(b.outputs[0].kind, "text");
    auto t = node_topic(kMesh, f.clusters[i], f.ids[i], TopicKind::birth);
    f.births.push_back(inbound(t, signers[i].seal(t, *env, f.keys[i], wall_us())));
  }
  for (int s = 0; s < kSeconds; ++s) {
    std::vector<Inbound> frames;
    for (int i = 0; i < nodes; ++i) {
      auto env = make_envelope("", 0, 0, 0);
      env->which_message = kairos_v1_Envelope_phase_tag;
      auto& p = env->message.phase;
      p.inputs_count = 1;
      set_string(p.inputs[0].input, "temperature");
      p.inputs[0].scales_count = 3;
      for (int k = 0; k < 3; ++k) {
        p.inputs[0].scales[k].has_z = true;
        p.inputs[0].scales[k].z.re = 0.8f;
        p.inputs[0].scales[k].z.im = 0.6f;
        p.inputs[0].scales[k].c = 0.9f;
      }
      p.has_node_z = true;
      p.node_z.re = 0.8f;
      p.node_z.im = 0.6f;
      p.node_c = 0.9f;
      p.valid = true;
      auto t = node_topic(kMesh, f.clusters[i], f.ids[i], TopicKind::phase);
      frames.push_back(inbound(t, signers[i].seal(t, *env, f.keys[i], wall_us())));
      if (s == 0) f.owner.push_back(static_cast<std::size_t>(i));
      if ((i + s) % 5 == 0) {  // a heartbeat every 5 s, spread over the seconds
        auto hb = make_envelope("", 0, 0, 0);
        hb->which_message = kairos_v1_Envelope_heartbeat_tag;
        hb->message.heartbeat.status = kairos_v1_NodeStatus_COMPLIANT;
        hb->message.heartbeat.processing_ms = 0.4f;
        hb->message.heartbeat.uptime_ms = 60'000;
        auto th = node_topic(kMesh, f.clusters[i], f.ids[i], TopicKind::hb);
        frames.push_back(inbound(th, signers[i].seal(th, *hb, f.keys[i], wall_us())));
      }
    }
    f.seconds.push_back(std::move(frames));
  }
  return f;
}

gw::GatewayConfig config_for(const Fleet& f) {
  gw::GatewayConfig c;
  c.id = "gw";
  c.mesh = kMesh;
  c.keys_dir = (f.dir / "keys").string();
  c.database = (f.dir / "gateway.db").string();
  c.rotated_keys_dir = (f.dir / "rotated").string();
  c.broker.uri = "tcp://127.0.0.1:1";  // never connected: the bench feeds the ingest path itself
  return c;
}

// A Prometheus scraping the gateway's /metrics every 100 ms of wall time
// while the ingest runs (more often than once per simulated second of
// traffic, where Prometheus would scrape every 15 s): what the integrations
// cost the frames beside them.
class Scraper {
 public:
  explicit Scraper(int port) : thread_([this, port] {
    while (!stop_) {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<std::uint16_t>(port));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        const char req[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if (::write(fd, req, sizeof req - 1) > 0) {
          char buf[16384];
          std::size_t got = 0;
          for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) got += static_cast<std::size_t>(n);
          if (got > 1000) ++scrapes_;
        }
      }
      ::close(fd);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }) {}
  ~Scraper() {
    stop_ = true;
    thread_.join();
  }
  int scrapes() const { return scrapes_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> scrapes_{0};
  std::thread thread_;
};

// A private Mosquitto on a free loopback port for the bridges (Home
// Assistant, Sparkplug B) to publish to, on the other core; nobody
// subscribes, so what it costs the broker is the least it can be.
class BenchBroker {
 public:
  explicit BenchBroker(const std::filesystem::path& dir) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::close(fd);
    const auto conf = dir / "mosquitto.conf";
    std::ofstream(conf) << "listener " << port_ << " 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\n";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execlp("mosquitto", "mosquitto", "-c", conf.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~BenchBroker() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_ = 0;
  pid_t pid_ = -1;
};

// Node id of a frame's topic, for the reference's key lookup.
std::size_t node_of(const Inbound& m) {
  auto t = parse_topic(m.topic);
  return static_cast<std::size_t>(std::stoi(t->name.substr(1)));
}

void BM_GatewayIngest(benchmark::State& state) {
  log::set_level(log::Level::warn);
  const int nodes = static_cast<int>(state.range(0));
  // range(1): which integrations are on, a bit each: 1 [metrics] (scraped
  // every 100 ms), 2 [homeassistant] (with commands), 4 [sparkplug]; the
  // bridges connected to a private broker. 0: all off.
  const int on = static_cast<int>(state.range(1));
  const bool metrics = on & 1, bridges = on & 6;
  Fleet f = make_fleet(nodes);
  {
    gw::GatewayConfig config = config_for(f);
    std::optional<BenchBroker> broker;
    if (bridges) {
      broker.emplace(f.dir);
      config.broker.uri = broker->uri();  // the bridges' connections; the reports' link is never serviced
    }
    if (metrics) config.metrics_listen = "127.0.0.1:0";
    if (on & 2) {
      config.homeassistant.enabled = true;
      config.homeassistant.allow_commands = true;
      config.homeassistant.state_prefix = std::string("kairos-ha/") + kMesh;
    }
    if (on & 4) {
      config.sparkplug.enabled = true;
      config.sparkplug.group_id = kMesh;
    }
    gw::Gateway g(config);
    std::optional<Scraper> scraper;
    // Simulated time: each pre-signed second of traffic is spread over one
    // second of the gateway's clock, whatever it takes to run, so the
    // once-a-second work (flush, mesh figures) comes as often as it would.
    std::int64_t now = mono_us();
    for (auto& b : f.births) {
      b.received_mono_us = now;
      g.ingest(b);
    }
    g.service(now);  // the births' nodes written (the first flush), before the clock starts
    if (bridges) {
      // Connected before the clock starts; what they then have to send
      // (every node's configs, births) goes within the timed seconds, at
      // their message budgets.
      for (int i = 0; i < 1000 && !g.bridges_connected(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        now = std::max(now, mono_us());
        g.service(now);
      }
      if (!g.bridges_connected()) {
        state.SkipWithError("the bridges did not connect to the bench's Mosquitto");
        return;
      }
    }
    if (metrics) scraper.emplace(g.metrics_port());
    std::size_t frames = 0;
    std::uint64_t allocs = 0;
    int second = 0;
    for (auto _ : state) {
      auto& batch = f.seconds[static_cast<std::size_t>(second++ % kSeconds)];
      if (second > kSeconds) {  // replays from here on: re-seal is not what is measured
        state.SkipWithError("more iterations than pre-signed seconds");
        break;
      }
      g_allocs = 0;
      g_counting = true;
      std::size_t i = 0;
      const std::int64_t start = now;
      for (auto& m : batch) {
        now = start + static_cast<std::int64_t>(i * 1'000'000 / batch.size());
        m.received_mono_us = now;
        g.ingest(m);
        if (++i % 512 == 0) g.service(now);  // the loop's turn beside a batch
      }
      now = start + 1'000'000;
      g.service(now);
      g_counting = false;
      allocs += g_allocs;
      frames += batch.size();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(frames));
    state.counters["allocs_per_frame"] = frames ? static_cast<double>(allocs) / static_cast<double>(frames) : 0;
    state.counters["accepted"] = static_cast<double>(g.accepted());
    state.counters["dropped"] = static_cast<double>(g.dropped());
    if (scraper) state.counters["scrapes"] = scraper->scrapes();
    if (bridges) state.counters["bridge_msgs"] = static_cast<double>(g.bridge_messages());
  }
  std::filesystem::remove_all(f.dir);
}
BENCHMARK(BM_GatewayIngest)
    ->ArgNames({"nodes", "integrations"})
    ->Args({30'000, 0})
    ->Args({30'000, 7})
    ->Args({30'000, 1})
    ->Args({30'000, 2})
    ->Args({30'000, 4})
    ->Iterations(kSeconds)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The reference: open() (MAC, decode, validate) of the same frames, keys at hand.
void BM_OpenOnly(benchmark::State& state) {
  const int nodes = static_cast<int>(state.range(0));
  Fleet f = make_fleet(nodes);
  std::vector<std::vector<std::size_t>> owners;
  for (const auto& s : f.seconds) {
    owners.emplace_back();
    for (const auto& m : s) owners.back().push_back(node_of(m));
  }
  std::size_t frames = 0;
  std::uint64_t allocs = 0;
  int second = 0;
  for (auto _ : state) {
    const auto idx = static_cast<std::size_t>(second++ % kSeconds);
    const auto& batch = f.seconds[idx];
    g_allocs = 0;
    g_counting = true;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto o = open(batch[i].topic, batch[i].payload, f.keys[owners[idx][i]]);
      benchmark::DoNotOptimize(o.env);
    }
    g_counting = false;
    allocs += g_allocs;
    frames += batch.size();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(frames));
  state.counters["allocs_per_frame"] = frames ? static_cast<double>(allocs) / static_cast<double>(frames) : 0;
  std::filesystem::remove_all(f.dir);
}
BENCHMARK(BM_OpenOnly)->Arg(30'000)->Iterations(kSeconds)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();

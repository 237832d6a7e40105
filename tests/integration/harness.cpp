#include "tests/integration/harness.h"

#include <sqlite3.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/io/clock.h"
#include "common/io/files.h"

namespace kairos::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::string base = std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp";
  std::string tmpl = base + "/kairos-test-XXXXXX";
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (!std::getenv("KAIROS_KEEP_TMP")) {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
}

void TempDir::write(const std::string& name, const std::string& text, unsigned mode) const {
  fs::create_directories(fs::path(file(name)).parent_path());
  write_file_atomic(file(name), text, mode);
  chmod(file(name).c_str(), mode);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

static sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  return a;
}

HttpReply http_request(int port, const std::string& method, const std::string& path, const std::string& body,
                       const std::string& headers) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string got;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    std::string req = method + " " + path + " HTTP/1.1\r\n" +
                      (headers.find("Host:") == std::string::npos ? "Host: 127.0.0.1\r\n" : "") +
                      "Connection: close\r\n" + headers;
    if (!body.empty() || method == "POST") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[8192];
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  HttpReply r;
  const auto end = got.find("\r\n\r\n");
  if (got.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return r;
  r.status = std::atoi(got.c_str() + 9);
  r.head = got.substr(0, end);
  r.body = got.substr(end + 4);
  return r;
}

int free_port() {
  // Below the kernel's ephemeral range (32768+), so that no outgoing
  // connection of a concurrently running test can take the port meanwhile.
  for (int attempt = 0; attempt < 200; ++attempt) {
    int port = 20000 + static_cast<int>(random_u64() % 12000);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a = loopback(port);
    bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    if (ok) return port;
  }
  throw std::runtime_error("no free port");
}

static bool port_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = loopback(port);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

Process::Process(std::vector<std::string> argv, std::string log_path) : log_(std::move(log_path)) {
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    setpgid(0, 0);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
}

Process::~Process() {
  if (!status_) {
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(5));
  }
}

void Process::signal(int sig) const { ::kill(pid_, sig); }

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool Process::running() { return !wait(std::chrono::milliseconds(0)); }

RunResult run_command(const std::vector<std::string>& argv, const std::string& dir,
                      std::chrono::milliseconds timeout) {
  static int counter = 0;
  std::string log = dir + "/run-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + ".log";
  Process p(argv, log);
  auto st = p.wait(timeout);
  if (!st) {
    p.signal(SIGKILL);
    p.wait(std::chrono::seconds(5));
    return {-1, p.output()};
  }
  return {*st, p.output()};
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::vector<std::int16_t> read_wav(const std::string& path, std::uint32_t& rate) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), {});
  if (raw.size() < 44) return {};
  std::memcpy(&rate, raw.data() + 24, 4);
  std::uint32_t data_bytes = 0;
  std::memcpy(&data_bytes, raw.data() + 40, 4);
  std::vector<std::int16_t> s(std::min<std::size_t>(data_bytes, raw.size() - 44) / 2);
  if (!s.empty()) std::memcpy(s.data(), raw.data() + 44, s.size() * 2);
  return s;
}

std::string bin(const std::string& name) {
  if (name == "kairos-node") return KAIROS_NODE_BIN;
  if (name == "kairos-gateway") return KAIROS_GATEWAY_BIN;
  if (name == "kairosctl") return KAIROSCTL_BIN;
  if (name == "kairos-sim") return KAIROS_SIM_BIN;
  if (name == "kairos-mcp") return KAIROS_MCP_BIN;
  throw std::runtime_error("unknown binary " + name);
}

Key write_key(const std::string& path) {
  Key k;
  for (std::size_t i = 0; i < 32; i += 8) {
    auto r = random_u64();
    for (std::size_t j = 0; j < 8; ++j) k.bytes[i + j] = static_cast<std::uint8_t>(r >> (8 * j));
  }
  fs::create_directories(fs::path(path).parent_path());
  write_file_atomic(path, to_hex(k.bytes) + "\n", 0600);
  chmod(path.c_str(), 0600);
  return k;
}

Broker::Broker(const TempDir& dir, int port, bool limited, std::string extra)
    : dir_(dir), port_(port ? port : free_port()), limited_(limited), extra_(std::move(extra)) {
  start();
}

Broker::~Broker() { proc_.reset(); }

void Broker::start() {
  std::string name = "mosquitto-" + std::to_string(port_);
  dir_.write(name + ".conf", "listener " + std::to_string(port_) +
                                 " 127.0.0.1\nallow_anonymous true\npersistence false\n"
                                 "max_queued_messages 100000\nmax_inflight_messages 0\nset_tcp_nodelay true\n" +
                                 (limited_ ? "max_packet_size " + std::to_string(kMaxPacket) + "\n" : std::string()) +
                                 extra_);
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::string log = dir_.file(name + "-" + std::to_string(attempt) + ".log");
    proc_ = std::make_unique<Process>(std::vector<std::string>{"mosquitto", "-c", dir_.file(name + ".conf")}, log);
    // Ours is up when it says so; an open port alone could be another broker's.
    bool up = eventually([&] {
      return !proc_->running() || read_text(log).find(" running") != std::string::npos;
    }, std::chrono::seconds(10));
    if (up && proc_->running() && port_open(port_)) return;
    proc_->signal(SIGKILL);
    proc_->wait(std::chrono::seconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * (attempt + 1)));  // TIME_WAIT after a restart
  }
  throw std::runtime_error("mosquitto did not start on port " + std::to_string(port_));
}

void Broker::kill() {
  proc_->signal(SIGKILL);
  proc_->wait(std::chrono::seconds(5));
}

Mesh::Mesh(const TempDir& dir, const Broker& broker, std::string mesh)
    : dir_(dir), broker_(broker), mesh_(mesh.empty() ? "t" + std::to_string(random_u64() % 100'000'000) : std::move(mesh)) {
  broadcast_ = write_key(keys_dir() + "/broadcast.key");
  operator_ = write_key(keys_dir() + "/operator.key");
}

Key Mesh::node_key(const std::string& id) {
  auto it = node_keys_.find(id);
  if (it != node_keys_.end()) return it->second;
  Key k = write_key(keys_dir() + "/nodes/" + id + ".key");
  node_keys_[id] = k;
  return k;
}

std::string Mesh::gateway_config(const std::string& extra) const {
  return "[gateway]\nid = \"gw1\"\nmesh = \"" + mesh_ + "\"\nkeys_dir = \"" + keys_dir() + "\"\ndatabase = \"" +
         dir_.file("gateway.db") + "\"\n" + "[broker]\nuri = \"" + broker_.uri() + "\"\n" + extra;
}

Process& Mesh::start_gateway(const std::string& extra) {
  dir_.write("gateway.toml", gateway_config(extra));
  gateway_ = std::make_unique<Process>(
      std::vector<std::string>{bin("kairos-gateway"), "--config", dir_.file("gateway.toml")}, dir_.file("gateway.log"));
  // Its control subscription is made last: an answer means every
  // subscription is in place.
  if (!eventually([&] { return status().has_value() || !gateway_->running(); }) || !gateway_->running())
    throw std::runtime_error("gateway did not come up: " + gateway_->output());
  return *gateway_;
}

std::string Mesh::node_config(const std::string& id, const std::string& cluster, const std::string& input,
                              const std::string& node_extra, const std::string& broker_extra) {
  node_key(id);
  return "[node]\nid = \"" + id + "\"\ncluster = \"" + cluster + "\"\nmesh = \"" + mesh_ + "\"\nkey_file = \"" +
         keys_dir() + "/nodes/" + id + ".key\"\nboards_dir = \"" + boards_dir_ + "\"\n" +
         (node_extra.find("state_file") == std::string::npos ? "state_file = \"" + dir_.file(id + ".session") + "\"\n"
                                                              : std::string()) +
         node_extra +
         "\n[broker]\nuri = \"" + broker_.uri() + "\"\nreconnect_max_s = 2\n" + broker_extra + "\n\n[inputs.main]\n" +
         (input.find("kind =") == std::string::npos ? "kind = \"synthetic\"\n" : "") + input + "\n";
}

std::uint64_t Mesh::node_session(const std::string& id) const {
  std::string text = read_text(dir_.file(id + ".session"));
  return text.rfind("session ", 0) == 0 ? std::stoull(text.substr(8)) : 0;
}

Process& Mesh::start_node(const std::string& id, const std::string& cluster, const std::string& input,
                          const std::string& node_extra, const std::string& broker_extra) {
  dir_.write(id + ".toml", node_config(id, cluster, input, node_extra, broker_extra));
  auto p = std::make_unique<Process>(std::vector<std::string>{bin("kairos-node"), "--config", dir_.file(id + ".toml")},
                                     dir_.file(id + ".log"));
  auto& ref = *p;
  nodes_[id] = std::move(p);
  return ref;
}

std::unique_ptr<kairos_v1_ControlResponse> Mesh::ctl(kairos_v1_ControlRequest& req) {
  std::string why;
  if (!ctl_) {
    MqttOptions mo;
    mo.uri = broker_.uri();
    mo.reconnect_min_s = 0.1;
    mo.reconnect_max_s = 1;
    ctl_ = std::make_unique<CtlClient>(mo, mesh_, operator_);
  }
  if (!ctl_->connect(5000, why)) return nullptr;
  return ctl_->call(req, 2000, why);
}

std::vector<kairos_v1_NodeInfo> Mesh::nodes() {
  std::vector<kairos_v1_NodeInfo> out;
  kairos_v1_ControlRequest req = kairos_v1_ControlRequest_init_zero;
  req.which_verb = kairos_v1_ControlRequest_nodes_tag;
  while (true) {
    // By the cursor as kairosctl pages (a root pages its sectors so), and the offset for good measure.
    req.verb.nodes.offset = static_cast<std::uint32_t>(out.size());
    if (!out.empty()) std::snprintf(req.verb.nodes.after, sizeof req.verb.nodes.after, "%s", out.back().id);
    auto r = ctl(req);
    if (!r || !r->ok) return out;
    out.insert(out.end(), r->reply.nodes.nodes, r->reply.nodes.nodes + r->reply.nodes.nodes_count);
    if (r->reply.nodes.nodes_count == 0 || out.size() >= r->reply.nodes.total) return out;
  }
}

std::optional<kairos_v1_NodeInfo> Mesh::node_info(const std::string& id) {
  for (const auto& n : nodes())
    if (id == n.id) return n;
  return std::nullopt;
}

std::optional<kairos_v1_StatusReply> Mesh::status() {
  kairos_v1_ControlRequest req = kairos_v1_ControlRequest_init_zero;
  req.which_verb = kairos_v1_ControlRequest_status_tag;
  auto r = ctl(req);
  if (!r || !r->ok) return std::nullopt;
  return r->reply.status;
}

std::vector<std::string> Mesh::sim_argv(const std::vector<std::string>& more) const {
  std::vector<std::string> argv{bin("kairos-sim"), "--broker", broker_.uri(), "--mesh", mesh_, "--keys-dir", keys_dir()};
  argv.insert(argv.end(), more.begin(), more.end());
  return argv;
}

std::vector<std::vector<std::string>> query_db(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    throw std::runtime_error("cannot open " + path);
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    std::string why = sqlite3_errmsg(db);
    sqlite3_close(db);
    throw std::runtime_error(why + " in " + sql);
  }
  std::vector<std::vector<std::string>> rows;
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int c = 0; c < sqlite3_column_count(st); ++c) {
      const auto* t = sqlite3_column_text(st, c);
      row.emplace_back(t ? reinterpret_cast<const char*>(t) : "");
    }
    rows.push_back(std::move(row));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

void exec_db(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    throw std::runtime_error("cannot open " + path);
  }
  sqlite3_busy_timeout(db, 10'000);
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "error";
    sqlite3_free(err);
    sqlite3_close(db);
    throw std::runtime_error(why + " in " + sql);
  }
  sqlite3_close(db);
}

std::vector<std::string> Mesh::kairosctl_argv(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{bin("kairosctl"), "--broker", broker_.uri(), "--mesh", mesh_, "--key",
                                keys_dir() + "/operator.key", "--timeout", "10000"};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

RunResult Mesh::kairosctl(const std::vector<std::string>& args, std::chrono::milliseconds timeout) const {
  return run_command(kairosctl_argv(args), dir_.path(), timeout);
}

std::uint64_t Mesh::drops(const std::string& reason) {
  auto s = status();
  if (!s) return ~0ULL;
  for (pb_size_t i = 0; i < s->drops_count; ++i)
    if (reason == s->drops[i].reason) return s->drops[i].count;
  return 0;
}

static MqttOptions client_options(const std::string& uri) {
  MqttOptions o;
  o.uri = uri;
  o.client_id = "test-" + std::to_string(random_u64() % 1000000000);
  o.reconnect_min_s = 0.1;
  o.reconnect_max_s = 1;
  return o;
}

Client::Client(const std::string& uri) : link_(client_options(uri)) {
  auto deadline = mono_us() + 10'000'000;
  while (!link_.connected() && mono_us() < deadline) pump(mono_us() + 50'000);
  if (!link_.connected()) throw std::runtime_error("test client cannot connect to " + uri);
}

void Client::pump(std::int64_t until_us) {
  link_.service(mono_us());
  for (auto& ev : link_.wait(until_us))
    if (ev.type == LinkEvent::Type::message) seen_.push_back(std::move(ev.msg));
}

void Client::subscribe(const std::string& filter) {
  link_.add_subscription(filter, 1);
  // a round trip through the broker makes sure the subscription is in place
  std::string probe = "kairos-test/probe/" + std::to_string(random_u64());
  link_.add_subscription(probe, 1);
  link_.publish(probe, Bytes{1}, 1, false);
  wait_for_topic(probe);
}

std::vector<std::shared_ptr<const Envelope>> Client::frames(const std::string& topic, const Key& key,
                                                           pb_size_t which) const {
  std::vector<std::shared_ptr<const Envelope>> out;
  for (const auto& m : seen_) {
    if (m.topic != topic) continue;
    auto opened = open(m.topic, m.payload, key);
    if (opened && opened.env->which_message == which) out.push_back(std::move(opened.env));
  }
  return out;
}

std::optional<Inbound> Client::last_on(const std::string& topic) const {
  for (auto it = seen_.rbegin(); it != seen_.rend(); ++it)
    if (it->topic == topic) return *it;
  return std::nullopt;
}

bool Client::wait_for_topic(const std::string& topic, std::chrono::milliseconds timeout) {
  return wait_for([&](const std::vector<Inbound>&) { return last_on(topic).has_value(); }, timeout);
}

void Client::publish(const std::string& topic, const Bytes& payload, int qos, bool retain, const PublishProps& props) {
  link_.publish(topic, payload, qos, retain, props);
}

bool Client::wait_for(const std::function<bool(const std::vector<Inbound>&)>& pred, std::chrono::milliseconds timeout) {
  auto deadline = mono_us() + std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
  while (true) {
    if (pred(seen_)) return true;
    auto now = mono_us();
    if (now >= deadline) return false;
    pump(std::min(deadline, now + 50'000));
  }
}

double json_number(const std::string& json, const std::string& key) {
  auto at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return NAN;
  return std::strtod(json.c_str() + at + key.size() + 3, nullptr);
}

std::vector<LedgerExec> ledger_execs(const std::string& path, std::size_t from) {
  std::vector<LedgerExec> out;
  std::istringstream in(read_text(path));
  std::string line;
  for (std::size_t n = 0; std::getline(in, line); ++n) {
    if (n < from || line.rfind("exec ", 0) != 0) continue;
    std::istringstream f(line);
    std::string kind, node, id, cls;
    long long true_exec = 0;
    f >> kind >> node >> id >> cls >> true_exec;
    out.push_back({node, true_exec});
  }
  return out;
}

std::size_t line_count(const std::string& path) {
  auto t = read_text(path);
  return static_cast<std::size_t>(std::count(t.begin(), t.end(), '\n'));
}

}  // namespace kairos::test


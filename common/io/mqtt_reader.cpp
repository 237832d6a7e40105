#include "common/io/mqtt_reader.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/core/broker.h"
#include "common/core/mqtt_wire.h"
#include "common/io/clock.h"
#include "common/io/log.h"

namespace kairos {

namespace {

constexpr std::size_t kReadBuffer = 256 * 1024;
constexpr std::size_t kDefaultMaxPacket = 1024 * 1024;  // told to the broker when the owner sets none
constexpr std::size_t kMaxPending = 4 * 1024 * 1024;    // answers not yet taken by the socket
constexpr std::int64_t kStableLinkUs = 10'000'000;
constexpr int kFlappingLinks = 3;
// Above this many frames a second the socket is read at most every
// kGatherUs: a read then takes dozens of packets, not one or two, and the
// thread and the loop it wakes are woken a few thousand times a second
// rather than once per frame. A frame's arrival is then stamped up to
// kGatherUs late; below the rate, every frame is read as it comes.
constexpr std::uint64_t kBusyFramesPerS = 5'000;
constexpr std::int64_t kGatherUs = 500;

// A plain TCP broker URI ("tcp://host:port", "mqtt://[::1]"): its host and port (1883 when it names none).
bool split_uri(const std::string& uri, std::string& host, std::string& port) {
  if (uri.rfind("tcp://", 0) != 0 && uri.rfind("mqtt://", 0) != 0) return false;
  host = uri_host(uri);
  port = uri_port(uri);
  if (port.empty()) port = "1883";
  return !host.empty() && port.find_first_not_of("0123456789") == std::string::npos;
}

void close_socket(int fd) {
  std::lock_guard walk(fd_walk_mutex());  // see fd_walk_mutex in mqtt.h
  ::close(fd);
}

double jitter() { return 0.5 + 0.5 * static_cast<double>(random_u64() % 1000) / 1000.0; }

}  // namespace

bool MqttReader::usable(const std::string& uri) {
  std::string host, port;
  return split_uri(uri, host, port);
}

MqttReader::MqttReader(MqttOptions options) : opt_(std::move(options)) {
  if (!split_uri(opt_.uri, host_, port_))
    throw std::invalid_argument("the ingest connection takes a tcp:// or mqtt:// broker URI, not " + opt_.uri);
  keepalive_s_ = static_cast<std::uint16_t>(std::clamp(opt_.keepalive_s, 0, 65535));
  max_packet_ = opt_.max_packet_size > 0 ? opt_.max_packet_size : kDefaultMaxPacket;
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  kick_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0 || kick_fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
}

MqttReader::~MqttReader() {
  stopping_ = true;
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(stop_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  ::close(stop_fd_);
  ::close(kick_fd_);
}

void MqttReader::add_subscription(std::string filter, int qos) {
  if (thread_.joinable()) throw std::logic_error("MqttReader: subscriptions are set before start()");
  subs_.emplace_back(std::move(filter), qos);
}

void MqttReader::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

std::vector<LinkEvent> MqttReader::wait(std::int64_t deadline_us) {
  std::vector<LinkEvent> out;
  std::unique_lock lock(mu_);
  auto now = mono_us();
  if (events_.empty() && deadline_us > now)
    cv_.wait_for(lock, std::chrono::microseconds(deadline_us - now), [this] { return !events_.empty(); });
  out.swap(events_);
  queued_messages_ = 0;
  counters_ = shared_;
  return out;
}

bool MqttReader::publish(std::string_view topic, ByteView payload, int qos, bool retain, bool wake_thread) {
  Outgoing o{mqttw::publish_packet(topic, payload, qos, retain), qos ? mqttw::publish_id_at(topic, payload.size()) : 0};
  bool was_empty;
  {
    std::lock_guard lock(mu_);
    if (qos == 0 && !connected_) {
      ++shared_.offline_dropped;
      return false;
    }
    if (qos != 0 && outbox_.size() + unacked_count_ >= opt_.backlog_limit) {
      ++shared_.backlog_dropped;
      return false;
    }
    ++shared_.published;
    was_empty = outbox_.empty();
    outbox_.push_back(std::move(o));
    outbox_waiting_ = true;
  }
  if (was_empty && wake_thread) wake();
  return true;
}

void MqttReader::wake() {
  if (!outbox_waiting_) return;
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(kick_fd_, &one, sizeof one);
}

std::size_t MqttReader::unsent() {
  std::lock_guard lock(mu_);
  return outbox_.size() + unacked_count_;
}

bool MqttReader::flush(std::int64_t deadline_us) {
  std::unique_lock lock(mu_);
  auto now = mono_us();
  if (deadline_us > now)
    drained_.wait_for(lock, std::chrono::microseconds(deadline_us - now),
                      [this] { return outbox_.empty() && unacked_count_ == 0; });
  return outbox_.empty() && unacked_count_ == 0;
}

void MqttReader::take_publishes(std::string& out) {
  constexpr std::size_t kWriteAhead = 256 * 1024;  // bytes handed to the socket at once
  std::lock_guard lock(mu_);
  while (!outbox_.empty() && out.size() < kWriteAhead) {
    Outgoing& o = outbox_.front();
    if (o.id_at) {
      if (unacked_.size() >= receive_max_) break;
      // The next id not awaiting its PUBACK (0 is not an id).
      do next_id_ = static_cast<std::uint16_t>(next_id_ + 1);
      while (next_id_ == 0 || ids_in_use_[next_id_]);
      ids_in_use_[next_id_] = true;
      mqttw::set_publish_id(o.packet, o.id_at, next_id_);
      out += o.packet;
      unacked_.emplace_back(next_id_, std::move(o));
      ++unacked_count_;
    } else {
      out += o.packet;
    }
    outbox_.pop_front();
  }
  outbox_waiting_ = !outbox_.empty();
  if (outbox_.empty() && unacked_count_ == 0) drained_.notify_all();
}

void MqttReader::acked(std::uint16_t packet_id, std::uint8_t reason, std::size_t& count, std::size_t& refused) {
  // PUBACKs come in the order sent, but need not.
  auto it = std::find_if(unacked_.begin(), unacked_.end(), [&](const auto& u) { return u.first == packet_id; });
  if (it == unacked_.end()) return;  // not ours (a broker's mistake): nothing waits for it
  ids_in_use_[packet_id] = false;
  unacked_.erase(it);
  ++count;
  refused += reason >= 0x80;
}

void MqttReader::requeue_unacked() {
  std::lock_guard lock(mu_);
  for (auto it = unacked_.rbegin(); it != unacked_.rend(); ++it) outbox_.push_front(std::move(it->second));
  unacked_.clear();
  ids_in_use_.reset();
  unacked_count_ = 0;
  outbox_waiting_ = !outbox_.empty();
}

ReaderCounters MqttReader::counters_now() {
  std::lock_guard lock(mu_);
  return shared_;
}

void MqttReader::push(std::vector<LinkEvent>& batch) {
  if (batch.empty()) return;
  bool was_empty;
  {
    std::lock_guard lock(mu_);
    was_empty = events_.empty();
    for (auto& ev : batch) {
      if (ev.type == LinkEvent::Type::message) {
        ++shared_.received;
        if (queued_messages_ >= opt_.inbound_limit) {
          ++shared_.inbound_dropped;
          continue;
        }
        ++queued_messages_;
      }
      events_.push_back(std::move(ev));
    }
  }
  batch.clear();
  // The owner sleeps only on an empty queue and takes all of it at once: one wake per batch.
  if (!was_empty) return;
  cv_.notify_one();
  if (opt_.on_event) opt_.on_event();
}

bool MqttReader::pause_until(std::int64_t deadline_us) {
  while (!stopping_) {
    auto now = mono_us();
    if (now >= deadline_us) return true;
    pollfd p{stop_fd_, POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>((deadline_us - now) / 1000 + 1, 1000)));
  }
  return false;
}

int MqttReader::open(int& code, std::string& why) {
  code = -1;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host_.c_str(), port_.c_str(), &hints, &found); rc != 0) {
    why = connect_failure(opt_.uri, -1) + ": " + ::gai_strerror(rc);
    return -1;
  }
  const std::int64_t deadline = mono_us() + kConnectTimeoutS * 1'000'000LL;
  int fd = -1;
  std::string last = "no address";
  for (addrinfo* a = found; a && fd < 0 && !stopping_; a = a->ai_next) {
    {
      std::lock_guard walk(fd_walk_mutex());
      fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    }
    if (fd < 0) continue;
    int err = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      pollfd p[2] = {{fd, POLLOUT, 0}, {stop_fd_, POLLIN, 0}};
      int ms = static_cast<int>(std::max<std::int64_t>(0, (deadline - mono_us()) / 1000));
      err = ETIMEDOUT;
      if (::poll(p, 2, ms) > 0 && (p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      }
    }
    if (err != 0) {
      last = std::strerror(err);
      close_socket(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) {
    why = connect_failure(opt_.uri, -1) + ": " + last;
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // answers go out at once
  return fd;
}

void MqttReader::run() {
  ::pthread_setname_np(::pthread_self(), "kairos-ingest");  // as top and perf show it
  double backoff_s = opt_.reconnect_min_s, takeover_s = 0;
  int short_links = 0;  // links lost within kStableLinkUs, in a row
  while (!stopping_) {
    const std::int64_t opened = mono_us();
    Ended end;
    if (int fd = open(end.code, end.why); fd >= 0) {
      end = session(fd);
      close_socket(fd);
      requeue_unacked();
    }
    connected_ = false;
    if (end.stop || stopping_) break;
    // The backoff starts over only after a link that held for a while:
    // two clients fighting over one client id must not flap at full speed.
    const std::int64_t now = mono_us();
    if (end.held && now - opened >= kStableLinkUs) backoff_s = opt_.reconnect_min_s;
    if (end.held && now - opened >= 10 * kStableLinkUs) takeover_s = 0;
    double wait_s = backoff_s * jitter();
    backoff_s = std::min(opt_.reconnect_max_s, backoff_s * 2);
    if (end.held) short_links = now - opened < kStableLinkUs ? short_links + 1 : 0;
    if (end.taken_over || short_links >= kFlappingLinks) {
      // Two clients with one id take the connection from each other (a
      // broker says so in MQTT v5, or Mosquitto just closes the older
      // one): the one that lost it waits minutes, not seconds.
      if (!end.taken_over)
        end.why += " (the " + std::to_string(short_links) +
                   "th time in a row right after connecting: is another client using this client id, the same id "
                   "running twice?)";
      takeover_s = takeover_s == 0 ? opt_.takeover_min_s : std::min(opt_.takeover_max_s, takeover_s * 2);
      wait_s = std::max(wait_s, takeover_s);
      end.why += "; reconnecting in " + std::to_string(static_cast<int>(takeover_s)) + " s";
    }
    std::vector<LinkEvent> batch;
    batch.emplace_back(end.held ? LinkEvent::Type::lost : LinkEvent::Type::connect_failed, end.why,
                       end.held ? 0 : end.code);
    batch.back().taken_over = end.taken_over;
    push(batch);
    if (!pause_until(now + static_cast<std::int64_t>(wait_s * 1e6))) break;
  }
  connected_ = false;
}

MqttReader::Ended MqttReader::session(int fd) {
  Ended end;
  std::vector<std::uint8_t> in(std::max(kReadBuffer, max_packet_ + 16));
  std::size_t have = 0;
  std::string out = mqttw::connect_packet({opt_.client_id, opt_.username, opt_.password, keepalive_s_,
                                           static_cast<std::uint32_t>(max_packet_)});
  std::int64_t now = mono_us();
  const std::int64_t connack_by = now + kConnectTimeoutS * 1'000'000LL;
  std::int64_t last_tx = now, last_rx = now, ping_at = 0;
  std::uint16_t keepalive_s = keepalive_s_;
  std::vector<LinkEvent> batch;
  auto said_connected = [&] {
    connected_ = true;
    {
      std::lock_guard lock(mu_);
      if (ever_connected_) ++shared_.reconnects;
    }
    ever_connected_ = true;
    batch.emplace_back(LinkEvent::Type::connected);
  };
  std::int64_t rate_since = now;
  std::uint64_t frames_since = 0;
  std::size_t acks = 0, refused_pubs = 0;  // PUBACKs read since the counts were last updated
  bool busy = false;  // the last second's frames came faster than kBusyFramesPerS
  auto fail = [&](std::string why) {
    end.why = std::move(why);
    return end;
  };
  // A packet the broker should never send: said, counted, and the connection dropped.
  auto refuse = [&](std::uint8_t reason, const std::string& what) {
    std::string bye = mqttw::disconnect_packet(reason);
    [[maybe_unused]] auto n = ::send(fd, bye.data(), bye.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    {
      std::lock_guard lock(mu_);
      ++shared_.protocol_errors;
    }
    push(batch);  // what came before it stands
    return fail("dropped the connection: " + what);
  };
  for (;;) {
    if (connected_ && outbox_waiting_) take_publishes(out);
    if (!out.empty()) {
      ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return fail(std::string("connection lost: ") + std::strerror(errno));
      if (n > 0) {
        out.erase(0, static_cast<std::size_t>(n));
        last_tx = mono_us();
      }
      if (out.size() > kMaxPending) return fail("connection lost: the broker has taken nothing from it for long");
    }
    now = mono_us();
    std::int64_t due;
    if (!end.held) {
      if (now >= connack_by) return fail(connect_failure(opt_.uri, -1) + ": no CONNACK within " +
                                         std::to_string(kConnectTimeoutS) + " s");
      due = connack_by;
    } else if (keepalive_s == 0) {
      due = now + 1'000'000;
    } else {
      const std::int64_t keepalive_us = keepalive_s * 1'000'000LL;
      if (ping_at != 0 && now - ping_at >= keepalive_us && now - last_rx >= keepalive_us)
        return fail("connection lost: nothing from the broker within " + std::to_string(keepalive_s) +
                    " s of a ping");
      // A PINGREQ at half the keep-alive of silence, whether or not the last
      // is answered: the broker hears from us in time even while its answer
      // waits behind the frames it sends.
      if (out.empty() && now - last_tx >= keepalive_us / 2) {
        out += mqttw::pingreq_packet();
        if (ping_at == 0) ping_at = now;
        continue;
      }
      due = out.empty() ? last_tx + keepalive_us / 2 : now + 100'000;
      if (ping_at != 0) due = std::min(due, std::max(ping_at, last_rx) + keepalive_us);
    }
    pollfd p[3] = {{fd, static_cast<short>(POLLIN | (out.empty() ? 0 : POLLOUT)), 0}, {stop_fd_, POLLIN, 0},
                   {kick_fd_, POLLIN, 0}};
    int ms = static_cast<int>(std::clamp<std::int64_t>((due - now + 999) / 1000, 0, 1000));
    if (::poll(p, 3, ms) < 0 && errno != EINTR) return fail(std::string("poll: ") + std::strerror(errno));
    if (p[2].revents & POLLIN) {
      std::uint64_t kicks;
      [[maybe_unused]] auto k = ::read(kick_fd_, &kicks, sizeof kicks);
    }
    if (p[1].revents & POLLIN) {
      if (end.held) {
        std::string bye = mqttw::disconnect_packet(mqttw::kReasonNormal);
        [[maybe_unused]] auto n = ::send(fd, bye.data(), bye.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      end.stop = true;
      return end;
    }
    if (!(p[0].revents & (POLLIN | POLLERR | POLLHUP))) continue;
    ssize_t n = ::recv(fd, in.data() + have, in.size() - have, MSG_DONTWAIT);
    if (n == 0) return fail(end.held ? "connection lost: the broker closed it"
                                     : connect_failure(opt_.uri, -1) + ": the broker closed the connection");
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      return fail(std::string("connection lost: ") + std::strerror(errno));
    }
    have += static_cast<std::size_t>(n);
    const std::int64_t stamp = mono_us();
    last_rx = stamp;
    std::size_t off = 0;
    for (;;) {
      auto f = mqttw::next_frame({in.data() + off, have - off}, max_packet_);
      if (f.status == mqttw::Frame::Status::need_more) break;
      if (f.status == mqttw::Frame::Status::malformed)
        return refuse(mqttw::kReasonMalformed, "a packet length of more than four bytes");
      if (f.status == mqttw::Frame::Status::too_large)
        return refuse(mqttw::kReasonPacketTooLarge, "a packet of " + std::to_string(f.wanted) +
                                                        " bytes, where this client said it takes " +
                                                        std::to_string(max_packet_));
      off += f.size;
      std::string why;
      if (!end.held) {
        if (f.type != mqttw::kConnack) return refuse(mqttw::kReasonProtocolError, "a packet before CONNACK");
        auto ack = mqttw::read_connack(f, why);
        if (!ack) return refuse(mqttw::kReasonMalformed, why);
        if (ack->reason >= 0x80) {
          end.code = ack->reason;
          return fail(connect_failure(opt_.uri, ack->reason));
        }
        if (ack->server_keepalive_s != 0) keepalive_s = ack->server_keepalive_s;
        receive_max_ = ack->receive_max;
        end.held = true;
        // Connected for the owner once its subscriptions are in place (the
        // SUBACK): from then on nothing published to them is missed.
        if (subs_.empty()) said_connected();  // MQTT: a SUBSCRIBE names at least one filter
        else out += mqttw::subscribe_packet(1, subs_);
        continue;
      }
      switch (f.type) {
        case mqttw::kPublish: {
          auto pub = mqttw::read_publish(f, why);
          if (!pub) return refuse(mqttw::kReasonProtocolError, why);
          LinkEvent ev{LinkEvent::Type::message};
          ev.msg.topic.assign(pub->topic);
          // An oversized payload is kept only as far as its drop needs.
          std::size_t keep = std::min(pub->payload.size(), opt_.max_payload == SIZE_MAX ? SIZE_MAX : opt_.max_payload + 1);
          ev.msg.payload.assign(pub->payload.begin(), pub->payload.begin() + static_cast<std::ptrdiff_t>(keep));
          ev.msg.retained = pub->retain;
          ev.msg.response_topic.assign(pub->response_topic);
          ev.msg.correlation.assign(pub->correlation.begin(), pub->correlation.end());
          ev.msg.received_mono_us = stamp;
          batch.push_back(std::move(ev));
          if (pub->qos == 1) out += mqttw::puback_packet(pub->packet_id);
          break;
        }
        case mqttw::kSuback: {
          auto ack = mqttw::read_suback(f, why);
          if (!ack) return refuse(mqttw::kReasonMalformed, why);
          for (std::size_t i = 0; i < ack->reasons.size() && i < subs_.size(); ++i)
            if (ack->reasons[i] >= 0x80)
              log::error("mqtt", "the broker refused the subscription to " + subs_[i].first + " (" +
                                     std::string(mqttw::reason_name(ack->reasons[i])) + ", reason " +
                                     std::to_string(ack->reasons[i]) + "): check its ACL for " + opt_.client_id);
          if (!connected_) said_connected();
          break;
        }
        case mqttw::kPuback: {
          auto ack = mqttw::read_puback(f, why);
          if (!ack) return refuse(mqttw::kReasonMalformed, why);
          acked(ack->packet_id, ack->reason, acks, refused_pubs);
          break;
        }
        case mqttw::kPingresp: ping_at = 0; break;
        case mqttw::kDisconnect: {
          auto reason = mqttw::read_disconnect(f, why);
          if (!reason) return refuse(mqttw::kReasonMalformed, why);
          push(batch);
          end.taken_over = *reason == mqttw::kReasonSessionTakenOver;
          return fail(end.taken_over ? "the broker gave this client id to another connection (session taken over): "
                                       "is the same id running twice?"
                                     : "the broker disconnected: " + std::string(mqttw::reason_name(*reason)) +
                                           " (reason " + std::to_string(*reason) + ")");
        }
        default:
          return refuse(mqttw::kReasonProtocolError, "packet type " + std::to_string(f.type) +
                                                         ", which a subscriber at QoS 1 never gets");
      }
    }
    std::memmove(in.data(), in.data() + off, have - off);
    have -= off;
    if (acks) {
      std::lock_guard lock(mu_);
      unacked_count_ -= acks;
      shared_.publish_failures += refused_pubs;
      if (outbox_.empty() && unacked_count_ == 0) drained_.notify_all();
      acks = refused_pubs = 0;
    }
    frames_since += batch.size();
    push(batch);
    if (stamp - rate_since >= 1'000'000) {
      busy = frames_since * 1'000'000 / static_cast<std::uint64_t>(stamp - rate_since) >= kBusyFramesPerS;
      rate_since = stamp;
      frames_since = 0;
    }
    if (busy && static_cast<std::size_t>(n) < kReadBuffer / 4) {
      // Let more arrive before the next read (the stop's eventfd ends the wait).
      pollfd sp{stop_fd_, POLLIN, 0};
      timespec gather{0, kGatherUs * 1000};
      ::ppoll(&sp, 1, &gather, nullptr);
    }
  }
}

}  // namespace kairos

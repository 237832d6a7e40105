#pragma once
// One outbox (docs/DESIGN.md 5.7): what must be durable before anyone hears
// of it (jobs and their events, conflicts, quarantine, Ball entries) is
// written in one transaction, and only then do the replies and
// publications that waited for it go out. While the database cannot be
// written nothing is lost: the writes stay queued, and the answers with
// them, and a write is tried again every 5 s.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/core/bytes.h"
#include "gateway/store/store.h"

namespace kairos::gw {

// A module's writes waiting for the next commit.
class Writer {
 public:
  virtual ~Writer() = default;
  virtual bool pending() const = 0;
  virtual void write(Store& store) = 0;  // inside the transaction
  virtual void written() = 0;            // committed: forget them
};

class Outbox {
 public:
  using Publish = std::function<void(const std::string& topic, const Bytes& frame, bool retained)>;
  // failed(why): the database has just stopped being writable.
  Outbox(Store& store, std::string database, std::function<void(const std::string& why)> failed)
      : store_(store), database_(std::move(database)), failed_(std::move(failed)) {}
  // Writers are written in the order they were added, in one transaction.
  void add(Writer& w) { writers_.push_back(&w); }
  // Where publications go; until it is set they wait (the gateway is still starting).
  void set_publish(Publish p) { publish_ = std::move(p); }
  // Runs after every commit (and while nothing needed one).
  void on_committed(std::function<void()> f) { committed_.push_back(std::move(f)); }

  // After the next commit: an answer, a publication (QoS 1).
  void after(std::function<void()> send) { after_.push_back(std::move(send)); }
  void publish(std::string topic, Bytes frame, bool retained = false) {
    publications_.push_back({std::move(topic), std::move(frame), retained});
  }
  // Writes what is pending, then sends what waited for it. Nothing is sent
  // while the database is failing and something is pending.
  void commit(std::int64_t now_us);
  // fn inside one transaction of its own; false (rolled back, counted as a
  // storage failure) when it throws.
  bool transaction(const std::function<void(Store&)>& fn, std::int64_t now_us);

  // Why the database cannot be written; empty when it can.
  const std::string& error() const { return error_; }
  // Within 5 s of a failure: nothing is tried.
  bool paused(std::int64_t now_us) const { return !error_.empty() && now_us < retry_us_; }
  Store& store() { return store_; }

 private:
  void failed(const std::string& why, std::int64_t now_us);
  void recovered();
  struct Publication {
    std::string topic;
    Bytes frame;
    bool retained;
  };
  Store& store_;
  const std::string database_;  // its path, for the log
  std::function<void(const std::string&)> failed_;
  Publish publish_;
  std::vector<Writer*> writers_;
  std::vector<std::function<void()>> committed_;
  std::vector<std::function<void()>> after_;
  std::vector<Publication> publications_;
  std::string error_;
  std::int64_t retry_us_ = 0;
};

}  // namespace kairos::gw

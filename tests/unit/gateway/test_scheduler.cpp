// Impedance-matched scheduling (docs/DESIGN.md 5.4): planning, the timer wheel,
// scatter-gather, the quorum rule and the cascade strategies.
#include <gtest/gtest.h>

#include "gateway/schedule/scheduler.h"

using namespace kairos::gw;

TEST(TimerWheel, ReleasesByMillisecondBucketInOrder) {
  TimerWheel<int> w(8);  // a small ring: items beyond it wait their turn
  w.add(5'400, 2);
  w.add(5'100, 1);
  w.add(6'000, 3);
  w.add(30'000, 4);   // several turns of the ring ahead
  w.add(5'999, 5);
  EXPECT_EQ(w.next_due_us(), 5'000);
  std::vector<int> out;
  auto take = [&](int& i) { out.push_back(i); };
  w.advance(4'999, take);
  EXPECT_TRUE(out.empty());
  w.advance(5'000, take);  // bucket 5 ms: 5.1, 5.4 and 5.999 go together, in the order added
  EXPECT_EQ(out, (std::vector<int>{2, 1, 5}));
  EXPECT_EQ(w.next_due_us(), 6'000);
  w.advance(29'999, take);
  EXPECT_EQ(out, (std::vector<int>{2, 1, 5, 3}));
  w.add(1'000, 6);  // already past: released by the next advance
  w.advance(30'000, take);
  EXPECT_EQ(out, (std::vector<int>{2, 1, 5, 3, 6, 4}));
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(w.next_due_us(), INT64_MAX);
}

TEST(Quorum, Spec54) {
  Quorum q;
  EXPECT_EQ(quorum(100, 95, 0, 5, q), Verdict::proceed);
  EXPECT_EQ(quorum(20, 19, 0, 1, q), Verdict::proceed);
  EXPECT_EQ(quorum(100, 94, 11, 0, q), Verdict::wait);
  EXPECT_EQ(quorum(100, 80, 10, 10, q), Verdict::resolve_conflicts);
  EXPECT_EQ(quorum(100, 90, 5, 5, q), Verdict::retry);
  EXPECT_EQ(quorum(100, 96, 0, 4, {0.99, 0.05, 0.1}), Verdict::retry);  // per-call thresholds
  EXPECT_EQ(quorum(0, 0, 0, 0, q), Verdict::retry);
}

namespace {

// "<prefix><i>", built by appending (GCC 12 warns falsely, -Wrestrict, on
// a literal + std::to_string in some inlined ARM builds).
std::string nid(const char* prefix, int i) {
  std::string s = prefix;
  s += std::to_string(i);
  return s;
}

ScheduleSpec spec_at(std::int64_t T, Strategy strategy = Strategy::parallel) {
  ScheduleSpec s;
  s.at_us = T;
  s.strategy = strategy;
  return s;
}

struct Fixture {
  std::map<std::string, TargetView> views;
  struct Sent {
    std::string id;
    std::int64_t execute_at, at;
    std::uint64_t command;
  };
  std::vector<Sent> sent;
  std::vector<std::pair<std::string, double>> calibrations;  // id, error or lateness (us)
  std::vector<ScheduleResult> results;
  std::int64_t now = 1'000'000'000;
  std::uint64_t next_command = 100;
  Scheduler s{{[this](const std::string& id) -> std::optional<TargetView> {
                 auto it = views.find(id);
                 if (it == views.end()) return std::nullopt;
                 return it->second;
               },
               [this](const std::string& id, std::int64_t execute_at, std::uint32_t, std::uint64_t) {
                 sent.push_back({id, execute_at, now, next_command});
                 return next_command++;
               },
               [this](const std::string& id, const TargetResult& t, double late_us) {
                 calibrations.emplace_back(id, late_us > 0 ? late_us : t.error_us);
               },
               [this](const ScheduleResult& r) { results.push_back(r); },
               [this](const std::string& id, std::int64_t left, std::int64_t received) {
                 delays.emplace_back(id, static_cast<double>(received - left));
               }}};
  std::vector<std::pair<std::string, double>> delays;  // id, one-way delay seen from an ack (us)

  void node(const std::string& id, const std::string& cluster, int cls, double lead_ms, double offset_ms,
            bool online = true) {
    views[id] = {cluster, cls, online, false, true, lead_ms * 1000, offset_ms * 1000};
  }
  // Runs the scheduler's clock forward in 100 us steps.
  void run_until(std::int64_t t) {
    while (now < t) {
      now = std::min(t, now + 100);
      s.service(now);
    }
  }
  const Sent& sent_to(const std::string& id) {
    for (const auto& x : sent)
      if (x.id == id) return x;
    throw std::runtime_error("nothing sent to " + id);
  }
  // The node answers TRANSIT then READY, executing `late_us` after its execute_at.
  void execute(const std::string& id, std::int64_t late_us = 0) {
    const auto& x = sent_to(id);
    s.on_ack(id, x.command, 0, x.execute_at - 5'000, 0, "held", now);
    s.on_ack(id, x.command, 1, x.execute_at - 5'000, x.execute_at + late_us, "", now);
  }
};

}  // namespace

TEST(Scheduler, SendsEachTargetItsLeadBeforeTAndSkipsThoseThatCannotMakeIt) {
  Fixture f;
  f.node("fast", "c1", 1, 10, 2'000);     // 10 ms lead, clock 2 s ahead
  f.node("slow", "c1", 3, 250, -1'500);   // 250 ms lead
  f.node("far", "c1", 5, 900, 0);         // needs more than there is
  f.node("down", "c1", 1, 10, 0, false);  // offline
  const std::int64_t T = f.now + 500'000;
  f.s.start(spec_at(T), {"fast", "slow", "far", "down", "ghost", "fast"}, f.now);
  f.run_until(T - 250'001);
  EXPECT_TRUE(f.sent.empty()) << "nothing leaves before its send_at";
  f.run_until(T - 250'000 + 999);  // within the send_at's 1 ms bucket
  ASSERT_EQ(f.sent.size(), 1u);
  EXPECT_EQ(f.sent[0].id, "slow");
  EXPECT_EQ(f.sent[0].execute_at, T - 1'500'000) << "execute_at is T on the node's own clock";
  f.run_until(T - 10'000 + 999);
  ASSERT_EQ(f.sent.size(), 2u);
  EXPECT_EQ(f.sent[1].id, "fast");
  EXPECT_LE(f.sent[1].at, T - 10'000 + 999);
  EXPECT_EQ(f.sent[1].execute_at, T + 2'000'000);
  f.execute("fast", 300);
  f.execute("slow", -200);
  f.run_until(T + 1'000'000);  // the wave is settled before the window ends
  ASSERT_EQ(f.results.size(), 1u);
  const auto& r = f.results[0];
  EXPECT_EQ(r.targets.size(), 5u) << "duplicates are ignored";
  EXPECT_EQ(r.sent, 2u);
  EXPECT_EQ(r.ready, 2u);
  EXPECT_EQ(r.skipped, 3u);
  EXPECT_EQ(r.hits, 2u);
  EXPECT_DOUBLE_EQ(r.max_ms, 0.3);
  EXPECT_EQ(r.verdict, Verdict::retry) << "2 of 5 ready";
  const TargetResult* far = nullptr;
  for (const auto& t : r.targets)
    if (t.id == "far") far = &t;
  ASSERT_NE(far, nullptr);
  EXPECT_EQ(far->state, TargetState::skipped);
  EXPECT_DOUBLE_EQ(far->would_need_ms, 900);
  EXPECT_DOUBLE_EQ(far->available_ms, 500);
  ASSERT_EQ(f.calibrations.size(), 2u);
  EXPECT_DOUBLE_EQ(f.calibrations[0].second, 300);
}

TEST(Scheduler, GathersUntilTheWindowAndReportsSpreadConflictsAndStragglers) {
  Fixture f;
  for (int i = 0; i < 20; ++i) f.node(nid("n", i), "c1", 1, 20, i);
  const std::int64_t T = f.now + 100'000;
  ScheduleSpec spec = spec_at(T);
  spec.window_us = 300'000;
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(nid("n", i));
  f.s.start(spec, ids, f.now);
  f.run_until(T);
  ASSERT_EQ(f.sent.size(), 20u);
  for (int i = 0; i < 17; ++i) f.execute(nid("n", i), i * 1000);  // 0..16 ms late
  const auto& c = f.sent_to("n17");
  f.s.on_ack("n17", c.command, -1, c.execute_at + 30'000, 0, "late by 30.0 ms", f.now);
  const auto& h = f.sent_to("n18");
  f.s.on_ack("n18", h.command, 0, h.execute_at - 1'000, 0, "held", f.now);  // then silence
  // n19 never answers
  EXPECT_FALSE(f.s.on_ack("n5", 999999, 1, 0, 0, "", f.now)) << "an unknown command id";
  f.run_until(T + 300'000 - 100);
  EXPECT_TRUE(f.results.empty());
  f.run_until(T + 300'000);
  ASSERT_EQ(f.results.size(), 1u);
  const auto& r = f.results[0];
  EXPECT_EQ(r.ready, 17u);
  EXPECT_EQ(r.conflicts, 1u);
  EXPECT_EQ(r.stragglers, 2u);
  EXPECT_EQ(r.hits, 11u) << "0..10 ms late";
  EXPECT_DOUBLE_EQ(r.p50_ms, 8);
  EXPECT_DOUBLE_EQ(r.p95_ms, 16);
  EXPECT_DOUBLE_EQ(r.max_ms, 16);
  EXPECT_EQ(r.verdict, Verdict::retry);  // 85 % ready, 5 % conflict, 10 % in transit
  bool late_calibrated = false;
  for (auto& [id, v] : f.calibrations) late_calibrated |= id == "n17" && v == 30'000;
  EXPECT_TRUE(late_calibrated) << "a late arrival calibrates by its lateness";
}

TEST(Scheduler, WaitExtendsTheWindowOnce) {
  Fixture f;
  for (int i = 0; i < 10; ++i) f.node(nid("n", i), "c1", 1, 20, 0);
  const std::int64_t T = f.now + 100'000;
  ScheduleSpec spec = spec_at(T);
  spec.window_us = 200'000;
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(nid("n", i));
  f.s.start(spec, ids, f.now);
  f.run_until(T);
  for (int i = 0; i < 8; ++i) f.execute(nid("n", i));
  f.run_until(T + 200'000);
  EXPECT_TRUE(f.results.empty()) << "20 % still in transit: WAIT";
  f.execute("n8");
  f.execute("n9");
  f.run_until(T + 200'100);
  ASSERT_EQ(f.results.size(), 1u);
  EXPECT_EQ(f.results[0].verdict, Verdict::proceed);
  EXPECT_EQ(f.results[0].waves[0].extensions, 1);
}

TEST(Scheduler, WaveStrategyGoesClusterByClusterAndStopsWithoutQuorum) {
  Fixture f;
  for (int i = 0; i < 4; ++i) f.node(nid("a", i), "c1", 1, 20, 0);
  for (int i = 0; i < 4; ++i) f.node(nid("b", i), "c2", 1, 40, 0);
  for (int i = 0; i < 4; ++i) f.node(nid("z", i), "c3", 1, 20, 0);
  const std::int64_t T = f.now + 100'000;
  ScheduleSpec spec = spec_at(T, Strategy::wave);
  spec.window_us = 200'000;
  std::vector<std::string> ids;
  for (auto p : {"z", "b", "a"})
    for (int i = 0; i < 4; ++i) ids.push_back(nid(p, i));
  f.s.start(spec, ids, f.now);
  f.run_until(T);
  ASSERT_EQ(f.sent.size(), 4u);
  for (const auto& x : f.sent) EXPECT_EQ(x.id[0], 'a') << "cluster c1 first";
  for (int i = 0; i < 4; ++i) f.execute(nid("a", i));
  f.run_until(T + 1'000);
  // wave 2 (c2) is planned now: T2 = now + its lead + 10 ms headroom
  f.run_until(T + 60'000);
  ASSERT_EQ(f.sent.size(), 8u);
  for (int i = 0; i < 3; ++i) f.execute(nid("b", i));
  const auto& c = f.sent_to("b3");
  f.s.on_ack("b3", c.command, -1, c.execute_at, 0, "no output 'x' on this node", f.now);
  f.run_until(T + 100'000);
  ASSERT_EQ(f.results.size(), 1u);
  const auto& r = f.results[0];
  EXPECT_EQ(r.verdict, Verdict::resolve_conflicts);
  ASSERT_EQ(r.waves.size(), 3u);
  EXPECT_EQ(r.waves[0].verdict, Verdict::proceed);
  EXPECT_EQ(r.waves[1].verdict, Verdict::resolve_conflicts);
  EXPECT_EQ(r.not_sent, 4u) << "cluster c3 is never sent";
  EXPECT_EQ(f.sent.size(), 8u);
  EXPECT_GT(r.waves[1].at_us, r.waves[0].at_us);
}

TEST(Scheduler, PriorityFirstOrderAndThresholds) {
  std::vector<std::pair<std::string, TargetView>> t;
  for (int cls : {1, 2, 3, 4, 5, 5}) t.push_back({nid("n", static_cast<int>(t.size())), {"c", cls, true, false, true, 0, 0}});
  auto waves = make_waves(Strategy::priority_first, t, {});
  ASSERT_EQ(waves.size(), 5u);
  std::vector<std::string> names;
  std::vector<double> thresholds;
  for (const auto& w : waves) {
    names.push_back(w.name);
    thresholds.push_back(w.threshold);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"class D", "class C", "class B", "class A", "class E"}));
  EXPECT_EQ(thresholds, (std::vector<double>{0.99, 0.98, 0.95, 0.90, 0.85}));
  EXPECT_EQ(waves[4].members.size(), 2u);
}

TEST(Scheduler, NaiveSendsAtOnceAndMeasuresTheSpreadAroundTheMedian) {
  Fixture f;
  f.node("n0", "c1", 1, 10, 0);
  f.node("n1", "c1", 1, 10, 500);
  f.node("n2", "c1", 1, 10, 0);
  f.s.start(spec_at(0, Strategy::naive), {"n0", "n1", "n2"}, f.now);
  f.s.service(f.now);
  ASSERT_EQ(f.sent.size(), 3u);
  for (const auto& x : f.sent) EXPECT_EQ(x.execute_at, 0) << "execute on receipt";
  const std::int64_t t0 = f.now;
  f.s.on_ack("n0", f.sent[0].command, 1, t0 + 5'000, t0 + 5'000, "", f.now);
  f.s.on_ack("n1", f.sent[1].command, 1, t0 + 500'000 + 40'000, t0 + 500'000 + 40'000, "", f.now);
  f.s.on_ack("n2", f.sent[2].command, 1, t0 + 100'000, t0 + 100'000, "", f.now);
  f.s.service(f.now);
  ASSERT_EQ(f.results.size(), 1u);
  const auto& r = f.results[0];
  // executions at 5, 40 and 100 ms (n1's clock runs 500 ms ahead): the median is 40
  EXPECT_DOUBLE_EQ(r.p50_ms, 35);
  EXPECT_DOUBLE_EQ(r.max_ms, 60);
  EXPECT_EQ(r.hits, 1u);
  EXPECT_TRUE(f.calibrations.empty()) << "naive sends do not calibrate";
}

TEST(Scheduler, ABurstIsReleasedEarlyEnoughForItsLastSendToLeaveOnTime) {
  Fixture f;
  for (int i = 0; i < 100; ++i) f.node(nid("n", i), "c1", 1, 50, 0);  // all due in the same ms
  f.s.note_send_cost(1'000'020);  // about 50 ms per send after the EMA step: far from the default
  const double cost = f.s.send_cost_us();
  ASSERT_GT(cost, 1000);
  const std::int64_t T = f.now + 100'000'000;  // plenty of time
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(nid("n", i));
  f.s.start(spec_at(T), ids, f.now);
  f.run_until(T - 50'000);
  ASSERT_EQ(f.sent.size(), 100u);
  // The last send is released at its send_at; the first, 99 send costs earlier.
  std::int64_t first = f.sent.front().at, last = f.sent.back().at;
  EXPECT_LE(last, T - 50'000);
  EXPECT_NEAR(static_cast<double>(last - first), 99 * cost, 1000 + 100);
}

TEST(Scheduler, TheConfiguredSpacingHoldsWhenSendsAreCheap) {
  Fixture f;
  for (int i = 0; i < 11; ++i) f.node(nid("n", i), "c1", 1, 50, 0);
  f.s.set_min_send_spacing(1'000);  // 1,000 sends a second
  const std::int64_t T = f.now + 1'000'000;
  std::vector<std::string> ids;
  for (int i = 0; i < 11; ++i) ids.push_back(nid("n", i));
  f.s.start(spec_at(T), ids, f.now);
  f.run_until(T - 50'000);
  ASSERT_EQ(f.sent.size(), 11u);
  EXPECT_NEAR(static_cast<double>(f.sent.back().at - f.sent.front().at), 10'000, 200);
}

TEST(Scheduler, ExecuteAtFollowsTheNodesDriftUpToT) {
  Fixture f;
  f.node("fast", "c1", 1, 10, 1'000);
  f.node("still", "c1", 1, 10, 1'000);
  f.views["fast"].drift_ppm = 100;  // gains 100 us a second
  const std::int64_t T = f.now + 10'000'000;
  f.s.start(spec_at(T), {"fast", "still"}, f.now);
  f.run_until(T);
  // 10 s to T at 100 ppm: the offset at T is 1 ms more than now.
  EXPECT_EQ(f.sent_to("still").execute_at, T + 1'000'000);
  EXPECT_EQ(f.sent_to("fast").execute_at, T + 1'001'000);
}

TEST(Scheduler, ReportsPerClassTheLeadUsedAgainstTheDelaySeen) {
  Fixture f;
  f.node("a1", "c1", 1, 20, 0);
  f.node("a2", "c1", 1, 40, 0);
  f.node("d1", "c1", 4, 300, 500);
  const std::int64_t T = f.now + 1'000'000;
  f.s.start(spec_at(T), {"a1", "a2", "d1"}, f.now);
  f.run_until(T - 400'000);
  // a1's command arrives 12 ms after it left; a2's after 55 ms, past its
  // execute_at (sent 40 ms ahead); d1's after 250 ms (its clock 500 ms ahead).
  auto arrive = [&](const std::string& id, std::int64_t delay_us, double offset_ms) {
    const auto& x = f.sent_to(id);
    const std::int64_t received = x.at + delay_us + static_cast<std::int64_t>(offset_ms * 1000);
    f.s.on_ack(id, x.command, 1, received, x.execute_at, "", f.now);
  };
  f.run_until(T);
  arrive("a1", 12'000, 0);
  arrive("a2", 55'000, 0);
  arrive("d1", 250'000, 500);
  f.run_until(T + 1'100'000);
  ASSERT_EQ(f.results.size(), 1u);
  const auto& cls = f.results[0].classes;
  ASSERT_EQ(cls.size(), 2u);
  EXPECT_EQ(cls[0].device_class, 1);
  EXPECT_EQ(cls[0].sent, 2u);
  EXPECT_EQ(cls[0].observed, 2u);
  EXPECT_EQ(cls[0].late, 1u);
  EXPECT_DOUBLE_EQ(cls[0].lead_max_ms, 40);
  EXPECT_DOUBLE_EQ(cls[0].delay_max_ms, 55);
  EXPECT_DOUBLE_EQ(cls[0].delay_p50_ms, 12);
  EXPECT_EQ(cls[1].device_class, 4);
  EXPECT_EQ(cls[1].late, 0u);
  EXPECT_DOUBLE_EQ(cls[1].delay_p50_ms, 250);
  // Each arrival went to the hook once (they feed the node's sketch and floors): raw, through no offset.
  ASSERT_EQ(f.delays.size(), 3u);
  EXPECT_DOUBLE_EQ(f.delays[1].second, 55'000);
  EXPECT_DOUBLE_EQ(f.delays[2].second, 750'000);
}

TEST(Scheduler, TheModelBeforeTheTailsIsThereForComparison) {
  Fixture f;
  f.node("n", "c1", 1, 300, 1'000);
  auto& v = f.views["n"];
  v.drift_ppm = 100;
  v.jitter_lead_us = 20'000;
  v.filter_offset_us = 996'000;
  const std::int64_t T = f.now + 1'000'000;
  auto spec = spec_at(T);
  spec.lead_from_tail = false;
  f.s.start(spec, {"n"}, f.now);
  f.run_until(T);
  // Sent 20 ms ahead with the quickest round trip's offset, no drift.
  EXPECT_EQ(f.sent_to("n").execute_at, T + 996'000);
  EXPECT_GE(f.sent_to("n").at, T - 20'000 - 1'000);
}

TEST(Scheduler, ReportsWhenTheFinalAcksCameAfterTNotTheirReceipts) {
  Fixture f;
  for (int i = 0; i < 20; ++i) f.node(nid("n", i), "c1", 1, 20, 0);
  const std::int64_t T = f.now + 100'000;
  ScheduleSpec spec = spec_at(T);
  spec.window_us = 500'000;
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(nid("n", i));
  f.s.start(spec, ids, f.now);
  f.run_until(T);
  ASSERT_EQ(f.sent.size(), 20u);
  for (const auto& x : f.sent) f.s.on_ack(x.id, x.command, 0, x.execute_at - 30'000, 0, "held", f.now);
  // The final acks come 0, 10, ..., 190 ms after T; one is a CONFLICT.
  for (int i = 0; i < 20; ++i) {
    f.run_until(T + i * 10'000);
    const auto& x = f.sent_to(nid("n", i));
    if (i == 7) f.s.on_ack(x.id, x.command, -1, x.execute_at + 1'000, 0, "late by 1.0 ms", f.now);
    else f.s.on_ack(x.id, x.command, 1, x.execute_at - 30'000, x.execute_at, "", f.now);
  }
  f.run_until(T + 500'000);
  ASSERT_EQ(f.results.size(), 1u);
  EXPECT_DOUBLE_EQ(f.results[0].acks_p95_after_t_ms, 180);  // the 19th of 20
}

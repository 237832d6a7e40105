#pragma once

// Paho C's receive thread, after a second in which nothing arrived, sleeps
// 100 ms before it polls its sockets again (MQTTAsync_cycle: a poll that
// timed out is followed by MQTTAsync_sleep(100), in 1.3.12 and since). A
// command that reaches a quiet client in that window waits for the sleep to
// end: up to 100 ms, about one frame in ten on a node that hears nothing else
// for a second. This process defines usleep itself, so that sleep of that
// thread is cut to kPahoIdleSleepUs (unless KAIROS_PAHO_WAKE=0 is in the
// environment); every other usleep is as asked.
// docs/DESIGN.md 4, "Quiet links".

#include <cstdint>
#include <string_view>

namespace kairos {

inline constexpr std::uint32_t kPahoIdleSleepUs = 1000;

// What the process's usleep sleeps for a request of `us` microseconds from
// the thread named `thread`, `since_last_us` after that thread's previous
// such sleep ended. Only Paho's idle sleep after a poll that waited (its
// timeout is a second) is cut; one after a poll that returned at once (no
// socket yet, between connections) keeps its 100 ms, as it paces that loop.
// While the thread tears a client down (tearing_down), Paho's 100 ms
// sleep is 1 ms too: destroying a process's last client waits for Paho's
// threads to end, looking every 100 ms (MQTTAsync_stop), which made every
// short-lived client (kairosctl) take 100 ms longer to exit than its work.
std::uint32_t paho_sleep_us(std::uint32_t us, std::string_view thread, std::int64_t since_last_us,
                            bool tearing_down = false);

// Marks the calling thread as tearing Paho clients down while it lives.
class PahoTeardown {
 public:
  PahoTeardown();
  ~PahoTeardown();
  PahoTeardown(const PahoTeardown&) = delete;
  PahoTeardown& operator=(const PahoTeardown&) = delete;
};

// True when the usleep Paho's calls bind to is this process's (the link
// exported it); MqttLink checks it at start, tests check it stays so.
bool paho_wake_installed();

}  // namespace kairos

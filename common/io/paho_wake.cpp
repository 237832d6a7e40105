#include "common/io/paho_wake.h"

#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <ctime>

namespace kairos {

namespace {
// The thread Paho C names for its socket reads (Thread_set_name), and the
// sleep it takes after a poll that found nothing (MQTTAsync_sleep(100L)).
constexpr std::string_view kPahoReceiveThread = "MQTTAsync_rcv";
constexpr std::uint32_t kPahoIdleSleep = 100'000;
constexpr std::int64_t kPollWaitedUs = 500'000;

thread_local bool tearing_down = false;

std::int64_t now_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}
}  // namespace

std::uint32_t paho_sleep_us(std::uint32_t us, std::string_view thread, std::int64_t since_last_us,
                            bool tearing_down) {
  if (us == kPahoIdleSleep && tearing_down) return kPahoIdleSleepUs;
  if (us != kPahoIdleSleep || thread != kPahoReceiveThread) return us;
  return since_last_us >= kPollWaitedUs ? kPahoIdleSleepUs : us;
}

PahoTeardown::PahoTeardown() { tearing_down = true; }
PahoTeardown::~PahoTeardown() { tearing_down = false; }

bool paho_wake_installed() {
  // What a shared library's call to usleep binds to: the first definition in
  // the global scope, ours only if the link exported it.
  return ::dlsym(RTLD_DEFAULT, "usleep") == reinterpret_cast<void*>(&::usleep);
}

}  // namespace kairos

// Interposes the C library's usleep for the whole process (the executable's
// definition comes first in the dynamic linker's search, so Paho's calls come
// here; the link exports it, see common/CMakeLists.txt). Same contract: 0, or
// -1 with errno EINTR when a signal cut the sleep short.
extern "C" int usleep(useconds_t us) {
  // KAIROS_PAHO_WAKE=0 keeps Paho's sleep as it is (bench/quiet_link's reference).
  static const bool kept = [] {
    const char* v = std::getenv("KAIROS_PAHO_WAKE");
    return v && std::string_view(v) == "0";
  }();
  if (us == kairos::kPahoIdleSleep && !kept) {
    thread_local std::int64_t last_end_us = 0;  // this thread's previous idle sleep ended
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof name);
    const std::int64_t now = kairos::now_us();
    us = kairos::paho_sleep_us(us, name, last_end_us == 0 ? INT64_MAX : now - last_end_us, kairos::tearing_down);
    last_end_us = now + us;
  }
  timespec ts{static_cast<time_t>(us / 1'000'000), static_cast<long>(us % 1'000'000) * 1000};
  return ::nanosleep(&ts, nullptr);
}

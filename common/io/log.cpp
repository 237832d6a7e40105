#include "common/io/log.h"

#include <time.h>

#include <atomic>
#include <cstdio>
#include <mutex>

namespace kairos::log {

namespace {
std::atomic<Level> g_level{Level::info};
std::mutex g_mutex;
constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
}  // namespace

void set_level(Level l) { g_level = l; }
Level level() { return g_level; }

void write(Level l, std::string_view tag, std::string_view text) {
  if (l < g_level.load()) return;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%02d:%02d:%02d.%03ld", t.tm_hour, t.tm_min, t.tm_sec,
                ts.tv_nsec / 1'000'000);
  std::lock_guard lock(g_mutex);
  std::fprintf(stderr, "%s %-5s [%.*s] %.*s\n", stamp, kNames[static_cast<int>(l)],
               static_cast<int>(tag.size()), tag.data(), static_cast<int>(text.size()), text.data());
}

bool parse_level(std::string_view text, Level& out) {
  for (int i = 0; i < 4; ++i) {
    if (text == kNames[i]) {
      out = static_cast<Level>(i);
      return true;
    }
  }
  return false;
}

}  // namespace kairos::log

#include "common/core/broker.h"

namespace kairos {

BrokerConfig read_broker(Section broker, std::size_t default_backlog) {
  BrokerConfig b;
  b.uri = broker.str("uri", b.uri);
  bool scheme_ok = false;
  for (std::string_view s : {"tcp://", "ssl://", "mqtt://", "mqtts://"})
    if (b.uri.rfind(s, 0) == 0) scheme_ok = true;
  if (!scheme_ok) broker.fail("uri", "expected tcp://host:port or ssl://host:port");
  b.username = broker.str("username", "");
  b.password_file = broker.str("password_file", "");
  b.keepalive_s = static_cast<int>(broker.integer("keepalive_s", 10, 2, 600));
  b.reconnect_max_s = broker.num("reconnect_max_s", 30.0, 1.0, 300.0);
  b.backlog = static_cast<std::size_t>(
      broker.integer("backlog", static_cast<std::int64_t>(default_backlog), 10, 10'000'000));
  return b;
}

}  // namespace kairos

#include <gtest/gtest.h>

#include <set>

#include "common/core/broker.h"

using namespace kairos;

namespace {
bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
}  // namespace

// Every MQTT v5 CONNACK reason code and Paho C client code by name and cause.
TEST(ConnectCode, NamesEveryConnackReasonAndPahoCode) {
  struct Case {
    int code;
    const char* name;
    ConnectCause cause;
  };
  const Case cases[] = {
      {128, "unspecified error", ConnectCause::broker},
      {129, "malformed packet", ConnectCause::client},
      {130, "protocol error", ConnectCause::client},
      {131, "implementation specific error", ConnectCause::broker},
      {132, "unsupported protocol version", ConnectCause::client},
      {133, "client identifier not valid", ConnectCause::client},
      {134, "bad user name or password", ConnectCause::credentials},
      {135, "not authorized", ConnectCause::credentials},
      {136, "server unavailable", ConnectCause::broker},
      {137, "server busy", ConnectCause::broker},
      {138, "banned", ConnectCause::broker},
      {140, "bad authentication method", ConnectCause::broker},
      {149, "packet too large", ConnectCause::client},
      {151, "quota exceeded", ConnectCause::broker},
      {153, "payload format invalid", ConnectCause::client},
      {156, "use another server", ConnectCause::broker},
      {157, "server moved", ConnectCause::broker},
      {159, "connection rate exceeded", ConnectCause::broker},
      {-1, "no connection", ConnectCause::unreachable},
      {-3, "disconnected", ConnectCause::unreachable},
      {-5, "bad UTF-8 string", ConnectCause::client},
      {-6, "invalid parameter", ConnectCause::client},
      {-13, "TLS not supported", ConnectCause::client},
      {-14, "bad protocol scheme", ConnectCause::client},
      {-16, "wrong MQTT version", ConnectCause::client},
      {139, "unknown code", ConnectCause::broker},
      {-99, "unknown code", ConnectCause::client},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.code);
    const ConnectCode got = connect_code(c.code);
    EXPECT_EQ(got.code, c.code);
    EXPECT_EQ(got.name, c.name);
    EXPECT_EQ(got.cause, c.cause);
  }
  // Every negative code of MQTTAsync.h (-1..-19) has a name of its own.
  for (int code = -1; code >= -19; --code) EXPECT_NE(connect_code(code).name, "unknown code") << code;
}

TEST(ConnectCode, FailureNamesTheUriTheReasonAndItsNumber) {
  EXPECT_EQ(connect_failure("tcp://h:1883", 135), "connect to tcp://h:1883 refused: not authorized (MQTT reason 135)");
  EXPECT_EQ(connect_failure("tcp://h:1883", 134),
            "connect to tcp://h:1883 refused: bad user name or password (MQTT reason 134)");
  EXPECT_EQ(connect_failure("tcp://h:1883", -1),
            "connect to tcp://h:1883 failed: no MQTT answer: refused, timed out or host unknown (Paho code -1)");
  EXPECT_EQ(connect_failure("tcp://h:1883", -6), "connect to tcp://h:1883 failed: invalid parameter (Paho code -6)");
  EXPECT_EQ(connect_failure("tcp://h:1883", 250), "connect to tcp://h:1883 refused: unknown code (MQTT reason 250)");
}

TEST(ConnectCode, OnlyRefusedCredentialsAndClientErrorsAreFinal) {
  EXPECT_TRUE(connect_is_final(135));
  EXPECT_TRUE(connect_is_final(134));
  EXPECT_TRUE(connect_is_final(133));
  EXPECT_FALSE(connect_is_final(-1));   // the broker may come up
  EXPECT_FALSE(connect_is_final(137));  // busy now, maybe not later
  EXPECT_FALSE(connect_is_final(0));
}

TEST(ConnectHint, RefusedCredentialsNameTheKeysThePasswordFileAndTheBrokersFiles) {
  BrokerOrigin node{"tcp://h:1883", "barn-1", "/etc/kairos/broker.password", "/etc/kairos/node.toml", false};
  for (int code : {134, 135}) {
    SCOPED_TRACE(code);
    const std::string h = connect_hint(code, node);
    EXPECT_TRUE(has(h, "does not accept user 'barn-1' with the password in /etc/kairos/broker.password")) << h;
    EXPECT_TRUE(has(h, "check broker.username and broker.password_file in /etc/kairos/node.toml")) << h;
    EXPECT_TRUE(has(h, "passwd has a 'barn-1:' line")) << h;
    EXPECT_TRUE(has(h, "its ACL a 'user barn-1' block")) << h;
    EXPECT_TRUE(has(h, "kairos-provision/mosquitto/passwd")) << h;
    EXPECT_TRUE(has(h, "reload mosquitto")) << h;
    EXPECT_FALSE(has(h, "--username")) << "a daemon has no such flag: " << h;
  }
  BrokerOrigin anonymous{"tcp://h:1883", "", "", "/etc/kairos/gateway.toml", false};
  const std::string h = connect_hint(135, anonymous);
  EXPECT_TRUE(has(h, "no client without a user name and password")) << h;
  EXPECT_TRUE(has(h, "set broker.username and broker.password_file in /etc/kairos/gateway.toml")) << h;
  BrokerOrigin no_password{"tcp://h:1883", "gw1", "", "/etc/kairos/gateway.toml", false};
  EXPECT_TRUE(has(connect_hint(134, no_password), "user 'gw1' without a password")) << connect_hint(134, no_password);
}

TEST(ConnectHint, TheConsoleNamesItsFlagsAndTheConfigItReadOrThatItReadNone) {
  BrokerOrigin none{"tcp://h:1883", "", "", "", true};
  std::string h = connect_hint(135, none);
  EXPECT_TRUE(has(h, "--username NAME and --password-file FILE")) << h;
  EXPECT_TRUE(has(h, "broker.username and broker.password_file in a console config (--config FILE; none was read)"))
      << h;
  BrokerOrigin read{"tcp://h:1883", "alice", "/etc/kairos/broker.password", "/etc/kairos/kairosctl.toml", true};
  h = connect_hint(135, read);
  EXPECT_TRUE(has(h, "--username NAME and --password-file FILE, or broker.username and broker.password_file in "
                     "/etc/kairos/kairosctl.toml"))
      << h;
  EXPECT_TRUE(has(h, "'alice:' line")) << h;
  // Unreachable: the console's message stays what it was.
  EXPECT_TRUE(has(connect_hint(-1, none), "is the broker running? (check --broker")) << connect_hint(-1, none);
}

TEST(ConnectHint, EveryOtherCodeSaysWhatToDo) {
  BrokerOrigin node{"tcp://h:1883", "n1", "/p", "/etc/kairos/node.toml", false};
  EXPECT_TRUE(has(connect_hint(-1, node), "listens at tcp://h:1883 (broker.uri in /etc/kairos/node.toml)"))
      << connect_hint(-1, node);
  EXPECT_TRUE(has(connect_hint(156, node), "change broker.uri in /etc/kairos/node.toml")) << connect_hint(156, node);
  EXPECT_TRUE(has(connect_hint(157, node), "change broker.uri")) << connect_hint(157, node);
  EXPECT_TRUE(has(connect_hint(132, node), "MQTT v5")) << connect_hint(132, node);
  EXPECT_TRUE(has(connect_hint(137, node), "try again later")) << connect_hint(137, node);
  EXPECT_TRUE(has(connect_hint(149, node), "max_packet_size")) << connect_hint(149, node);
  std::set<int> codes{128, 129, 130, 131, 132, 133, 136, 137, 138, 140, 149, 151, 153, 156, 157, 159};
  for (int code = -1; code >= -19; --code) codes.insert(code);
  for (int code : codes) EXPECT_FALSE(connect_hint(code, node).empty()) << code;
}

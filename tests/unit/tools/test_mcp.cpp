// kairos-mcp's protocol logic (tools/mcp/mcp.h) with a recording runner:
// the words each tool gives kairosctl, what is refused before any run.
#include <gtest/gtest.h>

#include "tools/mcp/mcp.h"

using namespace kairos::mcp;
using nlohmann::json;

namespace {

struct Rig {
  std::vector<std::vector<std::string>> runs;
  kairos::mcp::Run next{0, "{\"ok\":true}", ""};
  Server server{[this](const std::vector<std::string>& w) {
                  runs.push_back(w);
                  return next;
                },
                true};
  json call(const std::string& tool, json args) {
    json req{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"}, {"params", {{"name", tool}, {"arguments", args}}}};
    return json::parse(*server.handle(req.dump()));
  }
};

}  // namespace

TEST(McpServer, EachToolGivesKairosctlTheWordsOfItsArguments) {
  Rig r;
  r.call("nodes", {{"cluster", "hall"}, {"state", "online"}});
  r.call("schedule", {{"command", "set_output"}, {"in_ms", 1500}, {"targets", "cluster:hall"}, {"output", "speaker"},
                      {"value", "0,1,0.8"}, {"strategy", "wave"}, {"confirm", true}});
  r.call("delegate", {{"handler", "hash"}, {"payload", "-not an option-"}, {"redundancy", 3}, {"wait", true}});
  r.call("ball_hut", {{"session", "roof"}, {"peers", {"Ana", "pi-attic"}}, {"objectives", {"check it"}}, {"as", "Ana"}});
  r.call("ball_say", {{"session", "roof"}, {"as", "Ana"}, {"text", "MM: hello\n->pi-attic"}});
  r.call("schedule", {{"command", "set_output"}, {"value", "-1,0,0.5"}});
  using W = std::vector<std::string>;
  ASSERT_EQ(r.runs.size(), 6u);
  EXPECT_EQ(r.runs[0], (W{"nodes", "--cluster", "hall", "--state", "online"}));
  EXPECT_EQ(r.runs[1], (W{"schedule", "set_output", "--in", "1500", "--targets", "cluster:hall", "--strategy", "wave",
                          "--output", "speaker", "--value", "0,1,0.8", "--confirm"}));
  // A payload is the value of --payload, whatever it starts with.
  EXPECT_EQ(r.runs[2], (W{"delegate", "hash", "--payload", "-not an option-", "--redundancy", "3", "--wait"}));
  EXPECT_EQ(r.runs[3], (W{"ball", "hut", "roof", "--peers", "Ana,pi-attic", "--objective", "check it", "--as", "Ana"}));
  EXPECT_EQ(r.runs[4], (W{"ball", "say", "roof", "--as", "Ana", "MM: hello\n->pi-attic"}));
  EXPECT_EQ(r.runs[5], (W{"schedule", "set_output", "--value", "-1,0,0.5"}));  // a negative real part is a value
}

TEST(McpServer, WhatDoesNotFitItsSchemaIsRefusedBeforeAnyRun) {
  Rig r;
  for (const auto& [tool, args] : std::vector<std::pair<std::string, json>>{
           {"node", json::object()},                           // required id missing
           {"node", {{"id", "--help"}}},                        // would read as an option
           {"nodes", {{"state", "sideways"}}},                 // not in the enum
           {"conflicts", {{"limit", 1000}}},                    // over its maximum
           {"conflicts", {{"limit", "5"}}},                     // not an integer
           {"status", {{"verbose", true}}},                     // unknown argument
           {"ball_hut", {{"session", "s"}, {"peers", {"a,b", "c"}}, {"objectives", {"o"}}}},  // a comma in a name
           // kairosctl reads its options anywhere on its line: free text never is one.
           {"delegate", {{"handler", "hash"}, {"payload", "--help"}}},
           {"ball_hut", {{"session", "s"}, {"peers", {"a", "b"}}, {"objectives", {"--config"}}}},
           {"ask", {{"question", "--key"}}},
           {"ball_say", {{"session", "s"}, {"as", "a"}, {"text", "-"}}},
           {"no_such_tool", json::object()}}) {
    const json resp = r.call(tool, args);
    EXPECT_EQ(resp["error"]["code"], -32602) << tool << " " << args << ": " << resp;
  }
  EXPECT_TRUE(r.runs.empty());
  // A failed run is a tool error carrying kairosctl's reason, not a protocol error.
  r.next = {1, "", "kairosctl: no answer from the gateway in 3000 ms"};
  const json resp = r.call("status", json::object());
  EXPECT_TRUE(resp["result"]["isError"].get<bool>());
  EXPECT_NE(resp["result"]["content"][0]["text"].get<std::string>().find("no answer"), std::string::npos);
}

TEST(McpServer, WriteToolsNeedAllowWriteAndTheProtocolAnswersWhatItMust) {
  std::vector<std::vector<std::string>> runs;
  Server ro([&](const std::vector<std::string>& w) {
    runs.push_back(w);
    return kairos::mcp::Run{0, "{}", ""};
  }, false);
  auto ask = [&](const std::string& line) { return json::parse(*ro.handle(line)); };
  auto frozen = ask(R"({"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"freeze","arguments":{}}})");
  EXPECT_TRUE(frozen["result"]["isError"].get<bool>());
  EXPECT_TRUE(runs.empty());
  auto init = ask(R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05"}})");
  EXPECT_EQ(init["result"]["protocolVersion"], "2024-11-05");  // a revision it speaks: kept
  init = ask(R"({"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"1999-01-01"}})");
  EXPECT_EQ(init["result"]["protocolVersion"], "2025-06-18");  // else its newest
  EXPECT_FALSE(ro.handle(R"({"jsonrpc":"2.0","method":"notifications/initialized"})").has_value());
  EXPECT_EQ(ask("{")["error"]["code"], -32700);
  EXPECT_EQ(ask("[]")["error"]["code"], -32600);
  EXPECT_EQ(ask(R"({"jsonrpc":"2.0","id":{"x":1},"method":"ping"})")["error"]["code"], -32600);
  EXPECT_EQ(ask(R"({"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"file:///etc/passwd"}})")["error"]["code"],
            -32602);
  EXPECT_EQ(Server::tools().size(), 15u);
}

TEST(McpServer, AskMeshReadsAtOnceAndRunsAnOrderOnlyConfirmedAndAllowed) {
  using W = std::vector<std::string>;
  const std::string read_plan = R"({"understood":true,"explain":"the 10 slowest nodes","run":["nodes","--slowest","10"],"writes":false,"suggestions":[]})";
  const std::string write_plan = R"({"understood":true,"explain":"freeze cluster east now","run":["freeze","cluster:east"],"writes":true,"suggestions":[]})";
  // A read: planned, then the question run as one word.
  {
    Rig r;
    r.next = {0, read_plan, ""};
    auto out = r.call("ask_mesh", {{"question", "who is slow?"}});
    ASSERT_EQ(r.runs.size(), 2u);
    EXPECT_EQ(r.runs[0], (W{"ask-mesh", "--plan", "who is slow?"}));
    EXPECT_EQ(r.runs[1], (W{"ask-mesh", "--yes", "who is slow?"}));
    EXPECT_FALSE(out["result"]["isError"].get<bool>());
  }
  // An order: described until confirmed; then run.
  {
    Rig r;
    r.next = {0, write_plan, ""};
    auto out = r.call("ask_mesh", {{"question", "freeze the east sector"}});
    ASSERT_EQ(r.runs.size(), 1u);
    EXPECT_FALSE(out["result"]["isError"].get<bool>());
    EXPECT_NE(out["result"]["content"][0]["text"].get<std::string>().find("'kairosctl freeze cluster:east'"),
              std::string::npos);
    EXPECT_NE(out["result"]["content"][0]["text"].get<std::string>().find("confirm: true"), std::string::npos);
    r.call("ask_mesh", {{"question", "freeze the east sector"}, {"confirm", true}});
    ASSERT_EQ(r.runs.size(), 3u);
    EXPECT_EQ(r.runs[2], (W{"ask-mesh", "--yes", "freeze the east sector"}));
  }
  // Read only: an order is refused even confirmed; nothing but the plan ran.
  {
    std::vector<W> runs;
    Server ro{[&](const W& w) {
                runs.push_back(w);
                return kairos::mcp::Run{0, write_plan, ""};
              },
              false};
    json req{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"},
             {"params", {{"name", "ask_mesh"}, {"arguments", {{"question", "freeze the east sector"}, {"confirm", true}}}}}};
    auto out = json::parse(*ro.handle(req.dump()));
    EXPECT_TRUE(out["result"]["isError"].get<bool>());
    EXPECT_NE(out["result"]["content"][0]["text"].get<std::string>().find("--allow-write"), std::string::npos);
    EXPECT_EQ(runs.size(), 1u);
  }
  // Not understood: kairosctl's suggestions, as a tool error.
  {
    Rig r;
    r.next = {2, R"({"understood":false,"explain":"not understood","run":[],"writes":false,"suggestions":["breakers"]})", ""};
    auto out = r.call("ask_mesh", {{"question", "brekers"}});
    EXPECT_TRUE(out["result"]["isError"].get<bool>());
    EXPECT_EQ(r.runs.size(), 1u);
  }
}

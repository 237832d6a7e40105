// kairos-mcp (docs/MCP.md) with the Model Context Protocol's own TypeScript
// SDK as its client (tests/npm, installed by tools/setup), against a live
// mesh: a real Mosquitto, the gateway and two nodes.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using nlohmann::json;

TEST(Mcp, TheSdkListsAndCallsEveryToolAndTheServerSurvivesMalformedRequests) {
  const std::string sdk = std::string(KAIROS_SOURCE_DIR) + "/tests/npm/node_modules/@modelcontextprotocol/sdk";
  ASSERT_TRUE(std::filesystem::exists(sdk)) << "the MCP SDK is not installed in tests/npm: run tools/setup";
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway();
  mesh.start_node("n1", "c1", "waveform = \"constant\"\noffset = 0.5\n", "heartbeat_period_s = 0.3\n");
  mesh.start_node("n2", "c1", "waveform = \"constant\"\noffset = 0.25\n", "heartbeat_period_s = 0.3\n");
  ASSERT_TRUE(eventually([&] { return mesh.nodes().size() == 2; }, std::chrono::seconds(20)));

  // kairos-mcp with this mesh's kairosctl options (the operator key), driven by the SDK.
  std::vector<std::string> argv{"node", std::string(KAIROS_SOURCE_DIR) + "/tests/integration/mcp_client.mjs",
                                bin("kairos-mcp"), "--kairosctl", bin("kairosctl")};
  auto ctl = mesh.kairosctl_argv({});
  argv.insert(argv.end(), ctl.begin() + 1, ctl.end());
  auto r = run_command(argv, dir.path(), std::chrono::seconds(90));
  ASSERT_EQ(r.status, 0) << r.output;
  const auto line = r.output.substr(r.output.find("{\"tools\""));
  const json out = json::parse(line.substr(0, line.find('\n')));

  // Every tool listed, each with an object schema; the writing ones not read-only.
  std::set<std::string> names;
  for (const auto& t : out["tools"]) {
    names.insert(t["name"]);
    EXPECT_EQ(t["schema"], "object") << t;
  }
  for (const char* n : {"status", "nodes", "node", "schedule", "delegate", "jobs", "ask", "conflicts", "freeze", "thaw",
                        "ball_hut", "ball_say", "ball_show", "ball_verify"})
    EXPECT_TRUE(names.count(n)) << n;
  EXPECT_TRUE(names.count("ask_mesh"));
  EXPECT_EQ(names.size(), 15u);

  // The read tools against the live mesh.
  const json& calls = out["calls"];
  for (const char* n : {"status", "nodes", "node", "conflicts", "jobs"}) {
    EXPECT_FALSE(calls[n]["isError"].get<bool>()) << n << ": " << calls[n];
    EXPECT_TRUE(calls[n]["structured"].get<bool>()) << n;
  }
  EXPECT_NE(calls["nodes"]["text"].get<std::string>().find("\"n2\""), std::string::npos) << calls["nodes"];
  EXPECT_NE(calls["node"]["text"].get<std::string>().find("\"n1\""), std::string::npos) << calls["node"];
  // A play that does not exist: the gateway's refusal, as a tool error, not a protocol one.
  EXPECT_TRUE(calls["ball_show"]["isError"].get<bool>()) << calls["ball_show"];
  // Writing without --allow-write: refused, nothing sent; bad arguments: JSON-RPC invalid params.
  // The conversational console: a read at once; an order refused read-only, described
  // until confirmed, then run (n2 quarantined, then healed).
  EXPECT_FALSE(calls["ask_slow"]["isError"].get<bool>()) << calls["ask_slow"];
  EXPECT_NE(calls["ask_slow"]["text"].get<std::string>().find("\"n2\""), std::string::npos) << calls["ask_slow"];
  EXPECT_TRUE(calls["ask_freeze_read_only"]["isError"].get<bool>());
  EXPECT_NE(calls["ask_freeze_read_only"]["text"].get<std::string>().find("kairosctl freeze cluster:c1"), std::string::npos)
      << calls["ask_freeze_read_only"];
  EXPECT_FALSE(calls["ask_route_unconfirmed"]["isError"].get<bool>());
  EXPECT_NE(calls["ask_route_unconfirmed"]["text"].get<std::string>().find("confirm: true"), std::string::npos);
  EXPECT_FALSE(calls["ask_route"]["isError"].get<bool>()) << calls["ask_route"];
  EXPECT_NE(calls["ask_route"]["text"].get<std::string>().find("\"quarantined\":\"n2\""), std::string::npos)
      << calls["ask_route"];
  EXPECT_FALSE(calls["ask_back"]["isError"].get<bool>()) << calls["ask_back"];
  EXPECT_TRUE(calls["freeze_read_only"]["isError"].get<bool>());
  EXPECT_NE(calls["freeze_read_only"]["text"].get<std::string>().find("--allow-write"), std::string::npos);
  EXPECT_EQ(calls["bad_argument"]["rpcError"], -32602) << calls["bad_argument"];
  EXPECT_EQ(calls["unknown_argument"]["rpcError"], -32602) << calls["unknown_argument"];
  // With --allow-write: the nodes froze and thawed, every one acknowledging.
  EXPECT_FALSE(calls["freeze"]["isError"].get<bool>()) << calls["freeze"];
  EXPECT_NE(calls["freeze"]["text"].get<std::string>().find("\"ready\":2"), std::string::npos) << calls["freeze"];
  EXPECT_FALSE(calls["thaw"]["isError"].get<bool>()) << calls["thaw"];

  // Resources: the mesh status and the node list; the status read back.
  EXPECT_EQ(out["resources"], json::array({"kairos://mesh/status", "kairos://mesh/nodes"}));
  EXPECT_EQ(out["status_resource"]["nodes_online"], 2) << out["status_resource"];

  // Malformed JSON-RPC: an error object for each, and the server still answers.
  const json& m = out["malformed"];
  ASSERT_EQ(m.size(), 6u) << m;
  EXPECT_EQ(m[0]["error"]["code"], -32700);
  EXPECT_EQ(m[1]["error"]["code"], -32600);
  EXPECT_EQ(m[2]["error"]["code"], -32600);
  EXPECT_EQ(m[3]["error"]["code"], -32601);
  EXPECT_EQ(m[4]["error"]["code"], -32602);  // "--help" as a node id: never a word of kairosctl
  EXPECT_EQ(m[5]["id"], 10);
  EXPECT_TRUE(m[5].contains("result"));
}

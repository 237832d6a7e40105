#pragma once
// kairos-mcp (docs/MCP.md): a Model Context Protocol server on stdio
// (JSON-RPC 2.0, one message per line) that lets an AI agent use the mesh.
// Every tool is a kairosctl verb run with --json: the same operator key,
// the same signed control RPC, the same checks as a person at the console.
// Tools that change the mesh need --allow-write at start. Pure logic: the
// verb runs through a port.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kairos::mcp {

// What a kairosctl run gave: its exit status and output.
struct Run {
  int status = 0;
  std::string out;  // stdout: the --json answer
  std::string err;  // stderr: the reason when it failed
};
// Runs kairosctl with these words after its global options (--json included).
using Runner = std::function<Run(const std::vector<std::string>& words)>;

class Server {
 public:
  Server(Runner run, bool allow_write) : run_(std::move(run)), allow_write_(allow_write) {}
  // One line from the client: the response line, or nullopt for a notification (or a response to us).
  std::optional<std::string> handle(const std::string& line);

  // The tools, each with its JSON Schema (for tools/list and the tests).
  static nlohmann::json tools();

 private:
  nlohmann::json dispatch(const nlohmann::json& msg);
  nlohmann::json call_tool(const nlohmann::json& params);
  nlohmann::json read_resource(const nlohmann::json& params);

  Runner run_;
  bool allow_write_;
  bool initialized_ = false;
};

}  // namespace kairos::mcp

#include "tools/mcp/mcp.h"

#include <set>

namespace kairos::mcp {

using nlohmann::json;

namespace {

constexpr const char* kVersion = "0.1.0";
// The protocol revisions this server speaks; the newest is offered when the client asks for another.
const std::set<std::string> kProtocols{"2024-11-05", "2025-03-26", "2025-06-18"};
constexpr const char* kNewest = "2025-06-18";

// JSON-RPC 2.0 error codes.
constexpr int kParseError = -32700, kInvalidRequest = -32600, kMethodNotFound = -32601, kInvalidParams = -32602;

struct Refusal {
  int code;
  std::string message;
};

// The words of a tool call, built from its arguments; a Refusal (invalid params) when they do not fit.
using Words = std::vector<std::string>;
struct Tool {
  const char* name;
  const char* description;
  bool writes;
  json schema;  // the arguments' JSON Schema
  std::function<Words(const json& args)> words;
  // Planned first (ask_mesh): reads run at once, an order once confirmed and allowed; never announced read-only.
  bool planned = false;
};

[[noreturn]] void refuse(const std::string& why) { throw Refusal{kInvalidParams, why}; }

// A string argument that becomes a word of kairosctl: never one that could read as an option.
std::string word(const json& args, const char* key) {
  const std::string v = args.at(key).get<std::string>();
  if (v.empty()) refuse(std::string(key) + " is empty");
  if (v.front() == '-') refuse(std::string(key) + " must not start with '-'");
  return v;
}

// A free text argument (a payload, an objective, a question, a set_output
// value such as -1,0,0.5): it may start with '-', but kairosctl reads its
// options anywhere on its line, so never one that is, or could be, one.
std::string text(const json& args, const char* key) {
  const std::string v = args.at(key).get<std::string>();
  if (v.empty()) refuse(std::string(key) + " is empty");
  if (v == "-" || v == "-h" || v.rfind("--", 0) == 0) refuse(std::string(key) + " must not be '-', '-h' or start with '--'");
  return v;
}

void option(Words& w, const json& args, const char* key, const char* flag) {
  if (!args.contains(key)) return;
  const json& v = args.at(key);
  w.push_back(flag);
  if (v.is_string()) w.push_back(word(args, key));
  else w.push_back(v.dump());  // integers
}

void flag(Words& w, const json& args, const char* key, const char* name) {
  if (args.contains(key) && args.at(key).get<bool>()) w.push_back(name);
}

json object(json properties, std::vector<std::string> required = {}) {
  json s{{"type", "object"}, {"properties", std::move(properties)}, {"additionalProperties", false}};
  if (!required.empty()) s["required"] = required;
  return s;
}

json str(const char* description) { return {{"type", "string"}, {"minLength", 1}, {"description", description}}; }
json integer(const char* description, long long min, long long max) {
  return {{"type", "integer"}, {"minimum", min}, {"maximum", max}, {"description", description}};
}
json boolean(const char* description) { return {{"type", "boolean"}, {"description", description}}; }

const char* const kSelector = "targets: all, cluster:C, class:A..F, or node ids separated by commas";

const std::vector<Tool>& table() {
  static const std::vector<Tool> t{
      {"status", "The mesh now: nodes online, mode, the global phase Z, coherence C and agreement A, conflicts, "
                 "breakers, jobs, frame counts and the seven KPIs.",
       false, object(json::object()), [](const json&) { return Words{"status"}; }},
      {"nodes", "The nodes the gateway knows: id, cluster, class, state, impedance, clock offset, reliability.", false,
       object({{"cluster", str("only this cluster")}, {"state", {{"enum", {"online", "offline"}}}}}),
       [](const json& a) {
         Words w{"nodes"};
         option(w, a, "cluster", "--cluster");
         if (a.contains("state")) w.insert(w.end(), {"--state", a.at("state").get<std::string>()});
         return w;
       }},
      {"node", "One node whole: its clock offset, round trip, jitter, impedance and reliability.", false,
       object({{"id", str("the node's id")}}, {"id"}), [](const json& a) { return Words{"node", word(a, "id")}; }},
      {"conflicts", "The newest entries of the append-only conflict log, or the open resolution tasks.", false,
       object({{"limit", integer("how many", 1, 100)}, {"queue", boolean("the open resolution tasks instead")}}),
       [](const json& a) {
         Words w{"conflicts"};
         option(w, a, "limit", "--limit");
         flag(w, a, "queue", "--queue");
         return w;
       }},
      {"jobs", "Job counts and the newest jobs, or one job whole.", false,
       object({{"id", integer("one job's id", 1, 9'007'199'254'740'991LL)}, {"limit", integer("how many", 1, 20)}}),
       [](const json& a) {
         Words w{"jobs"};
         if (a.contains("id")) w.push_back(a.at("id").dump());
         option(w, a, "limit", "--limit");
         return w;
       }},
      {"ball_show", "A Ball play's stored lineage: its entries, holder, objectives.", false,
       object({{"session", str("the play's session name")}}, {"session"}),
       [](const json& a) { return Words{"ball", "show", word(a, "session")}; }},
      {"ball_verify", "Re-checks a Ball play's whole lineage against its signed head.", false,
       object({{"session", str("the play's session name")}}, {"session"}),
       [](const json& a) { return Words{"ball", "verify", word(a, "session")}; }},
      {"schedule", "Schedules a command to land on every target at one instant T (impedance matched). Changes the mesh.",
       true,
       object({{"command", {{"enum", {"freeze", "thaw", "heal", "rebirth", "set_output", "config_reload"}}}},
               {"in_ms", integer("T, this many ms from now", 1, 3'600'000)},
               {"at", str("T as UTC ISO 8601 (2026-11-23T18:30:00.250Z) or epoch seconds")},
               {"targets", str(kSelector)},
               {"strategy", {{"enum", {"parallel", "wave", "priority_first", "naive"}}}},
               {"output", str("set_output: the output")},
               {"value", str("set_output: re,im,c (c in 0..1)")},
               {"hold_ms", integer("set_output: how long the value holds", 0, 3'600'000)},
               {"confirm", boolean("what a degraded mode asks for")}},
              {"command"}),
       [](const json& a) {
         Words w{"schedule", a.at("command").get<std::string>()};
         option(w, a, "in_ms", "--in");
         option(w, a, "at", "--at");
         option(w, a, "targets", "--targets");
         if (a.contains("strategy")) w.insert(w.end(), {"--strategy", a.at("strategy").get<std::string>()});
         option(w, a, "output", "--output");
         if (a.contains("value")) w.insert(w.end(), {"--value", text(a, "value")});
         option(w, a, "hold_ms", "--hold");
         flag(w, a, "confirm", "--confirm");
         return w;
       }},
      {"delegate", "A job to the capable nodes of lowest impedance; with wait, its voted result. Changes the mesh.", true,
       object({{"handler", str("the job handler (e.g. hash)")},
               {"payload", {{"type", "string"}, {"maxLength", 2048}, {"description", "the job's input"}}},
               {"to", str("class:X, cluster:C, node:ID or a capability")},
               {"redundancy", integer("copies, voted by hash", 1, 8)},
               {"timeout_ms", integer("the job's timeout", 1, 3'600'000)},
               {"wait", boolean("answer once the job has finished")},
               {"confirm", boolean("what a degraded mode asks for")}},
              {"handler"}),
       [](const json& a) {
         Words w{"delegate", word(a, "handler")};
         if (a.contains("payload")) w.insert(w.end(), {"--payload", text(a, "payload")});
         option(w, a, "to", "--to");
         option(w, a, "redundancy", "--redundancy");
         option(w, a, "timeout_ms", "--timeout");
         flag(w, a, "wait", "--wait");
         flag(w, a, "confirm", "--confirm");
         return w;
       }},
      {"ask", "One question (a job) to a random sample of nodes; identical answers grouped. Changes the mesh (runs jobs).",
       true,
       object({{"question", str("the question (the job's payload)")}, {"sample", integer("how many nodes", 1, 1000)},
               {"handler", str("the job handler (default read)")}, {"to", str("class:X, cluster:C or a capability")},
               {"confirm", boolean("what a degraded mode asks for")}},
              {"question"}),
       [](const json& a) {
         Words w{"ask", text(a, "question")};
         option(w, a, "sample", "--sample");
         option(w, a, "handler", "--handler");
         option(w, a, "to", "--to");
         flag(w, a, "confirm", "--confirm");
         return w;
       }},
      {"freeze", "Snapshot first, then every target's outputs to their safe state. Changes the mesh.", true,
       object({{"scope", str(kSelector)}, {"window_ms", integer("how long acks are gathered", 1, 600'000)}}),
       [](const json& a) {
         Words w{"freeze"};
         if (a.contains("scope")) w.push_back(word(a, "scope"));
         option(w, a, "window_ms", "--window");
         return w;
       }},
      {"thaw", "Outputs back to their sources. Changes the mesh.", true,
       object({{"scope", str(kSelector)}, {"window_ms", integer("how long acks are gathered", 1, 600'000)},
               {"confirm", boolean("what a degraded mode asks for")}}),
       [](const json& a) {
         Words w{"thaw"};
         if (a.contains("scope")) w.push_back(word(a, "scope"));
         option(w, a, "window_ms", "--window");
         flag(w, a, "confirm", "--confirm");
         return w;
       }},
      {"ball_hut", "Starts a Ball play: peers (people and nodes) and objectives; the first peer holds the Ball. Changes "
                   "the mesh's record.",
       true,
       object({{"session", str("the play's session name")},
               {"peers", {{"type", "array"}, {"items", {{"type", "string"}, {"minLength", 1}}}, {"minItems", 2},
                          {"maxItems", 16}}},
               {"objectives", {{"type", "array"}, {"items", {{"type", "string"}, {"minLength", 1}}}, {"minItems", 1},
                               {"maxItems", 16}}},
               {"as", str("who starts it")}},
              {"session", "peers", "objectives"}),
       [](const json& a) {
         Words w{"ball", "hut", word(a, "session")};
         std::string peers;
         for (const auto& p : a.at("peers")) {
           const std::string s = p.get<std::string>();
           if (s.find(',') != std::string::npos || s.front() == '-') refuse("a peer name holds ',' or starts with '-'");
           peers += (peers.empty() ? "" : ",") + s;
         }
         w.insert(w.end(), {"--peers", peers});
         for (std::size_t i = 0; i < a.at("objectives").size(); ++i)
           w.insert(w.end(), {"--objective", text(json{{"objective", a.at("objectives")[i]}}, "objective")});
         option(w, a, "as", "--as");
         return w;
       }},
      {"ball_say", "Input to a Ball play as one peer: 'MM:' appends to the lineage (the holder only), anything else "
                   "goes to one peer. Changes the mesh's record.",
       true,
       object({{"session", str("the play's session name")}, {"as", str("the peer speaking")},
               {"text", str("what is said")}, {"to", str("one peer, for conversational text")}},
              {"session", "as", "text"}),
       [](const json& a) {
         Words w{"ball", "say", word(a, "session"), "--as", word(a, "as")};
         option(w, a, "to", "--to");
         w.push_back(text(a, "text"));
         return w;
       }},
      // Its words are planned first (call_tool): what it runs depends on the question.
      {"ask_mesh",
       "A question or an order in plain English, mapped to a console verb by a fixed grammar (docs/CONSOLE.md): "
       "\"what's happening in sector 7?\", \"who is slow?\", \"route around pi-3\", \"freeze the east sector at "
       "14:00\". Reads run at once; an order that changes the mesh is only described until called again with "
       "confirm: true, and needs kairos-mcp started with --allow-write.",
       false,
       object({{"question", str("the question or order")},
               {"confirm", boolean("run an order that changes the mesh (after reading what it will run)")}},
              {"question"}),
       [](const json& a) { return Words{"ask-mesh", "--plan", text(a, "question")}; }, true},
  };
  return t;
}

json error(const json& id, int code, const std::string& message) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

// A tool's arguments against its schema: the types, ranges, enums, required and unknown keys.
void check(const json& schema, const json& args, const std::string& where) {
  if (!args.is_object()) refuse(where + " must be an object");
  const json& props = schema.at("properties");
  for (const auto& [key, v] : args.items()) {
    if (!props.contains(key)) refuse(where + ": unknown argument '" + key + "'");
    const json& p = props.at(key);
    const std::string at = where + "." + key;
    if (p.contains("enum")) {
      if (std::find(p["enum"].begin(), p["enum"].end(), v) == p["enum"].end()) refuse(at + " must be one of " + p["enum"].dump());
      continue;
    }
    const std::string type = p.at("type");
    if (type == "string") {
      if (!v.is_string()) refuse(at + " must be a string");
      const auto n = v.get<std::string>().size();
      if (p.contains("minLength") && n < p["minLength"].get<std::size_t>()) refuse(at + " is empty");
      if (p.contains("maxLength") && n > p["maxLength"].get<std::size_t>()) refuse(at + " is too long");
    } else if (type == "integer") {
      if (!v.is_number_integer()) refuse(at + " must be an integer");
      const long long n = v.get<long long>();
      if (n < p["minimum"].get<long long>() || n > p["maximum"].get<long long>())
        refuse(at + " must be from " + p["minimum"].dump() + " to " + p["maximum"].dump());
    } else if (type == "boolean") {
      if (!v.is_boolean()) refuse(at + " must be true or false");
    } else if (type == "array") {
      if (!v.is_array()) refuse(at + " must be an array");
      if (v.size() < p["minItems"].get<std::size_t>() || v.size() > p["maxItems"].get<std::size_t>())
        refuse(at + " must hold " + p["minItems"].dump() + " to " + p["maxItems"].dump() + " items");
      for (const auto& item : v)
        if (!item.is_string() || item.get<std::string>().empty()) refuse(at + " holds only non-empty strings");
    }
  }
  if (schema.contains("required"))
    for (const auto& r : schema["required"])
      if (!args.contains(r.get<std::string>())) refuse(where + ": '" + r.get<std::string>() + "' is required");
}

// What kairosctl said, as the tool's result: its JSON as structured content when it gave one.
json result_of(const Run& r) {
  json out;
  std::string text = r.out;
  json parsed = json::parse(r.out, nullptr, false);
  if (!parsed.is_discarded() && (parsed.is_object() || parsed.is_array()))
    out["structuredContent"] = parsed.is_object() ? parsed : json{{"items", parsed}};
  if (r.status != 0) {
    // 1: the broker or gateway refused or could not be reached; 2: a usage error; 3: the work did not succeed.
    text = (r.out.empty() ? "" : r.out + "\n") + r.err;
    if (text.empty()) text = "kairosctl exited with status " + std::to_string(r.status);
  }
  out["content"] = json::array({{{"type", "text"}, {"text", text}}});
  out["isError"] = r.status != 0;
  return out;
}

}  // namespace

json Server::tools() {
  json list = json::array();
  for (const Tool& t : table())
    list.push_back({{"name", t.name},
                    {"description", std::string(t.description) +
                                        (t.writes ? " Needs kairos-mcp started with --allow-write." : "")},
                    {"inputSchema", t.schema},
                    {"annotations", {{"readOnlyHint", !t.writes && !t.planned},
                                     {"destructiveHint", t.writes || t.planned}}}});
  return list;
}

json Server::call_tool(const json& params) {
  if (!params.is_object() || !params.contains("name") || !params["name"].is_string())
    throw Refusal{kInvalidParams, "tools/call needs params.name"};
  const std::string name = params["name"];
  const Tool* tool = nullptr;
  for (const Tool& t : table())
    if (name == t.name) tool = &t;
  if (!tool) throw Refusal{kInvalidParams, "no tool '" + name + "' (tools/list names them)"};
  const json args = params.contains("arguments") ? params["arguments"] : json::object();
  check(tool->schema, args, "arguments");
  auto refused = [](const std::string& why) {
    return json{{"content", json::array({{{"type", "text"}, {"text", why}}})}, {"isError", true}};
  };
  if (tool->writes && !allow_write_)
    return refused("'" + name + "' changes the mesh: kairos-mcp was started without --allow-write, so it only reads");
  if (!tool->planned) return result_of(run_(tool->words(args)));
  // The plan first: a read runs; an order is described, and runs only when confirmed and allowed.
  const Run planned = run_(tool->words(args));
  const json plan = json::parse(planned.out, nullptr, false);
  if (planned.status != 0 || plan.is_discarded() || !plan.value("understood", false)) return result_of(planned);
  std::string line = "kairosctl";
  for (const auto& w : plan["run"]) line += " " + w.get<std::string>();
  if (plan.value("writes", false)) {
    if (!allow_write_)
      return refused("'" + line + "' (" + plan.value("explain", "") +
                     ") changes the mesh: kairos-mcp was started without --allow-write, so it only reads");
    if (!args.value("confirm", false)) {
      json out{{"structuredContent", plan}, {"isError", false}};
      out["content"] = json::array({{{"type", "text"},
                                     {"text", "This would run '" + line + "': " + plan.value("explain", "") +
                                                  ". It changes the mesh: call ask_mesh again with confirm: true to "
                                                  "run it."}}});
      return out;
    }
  }
  return result_of(run_({"ask-mesh", "--yes", text(args, "question")}));
}

json Server::read_resource(const json& params) {
  if (!params.is_object() || !params.contains("uri") || !params["uri"].is_string())
    throw Refusal{kInvalidParams, "resources/read needs params.uri"};
  const std::string uri = params["uri"];
  Words w;
  if (uri == "kairos://mesh/status") w = {"status"};
  else if (uri == "kairos://mesh/nodes") w = {"nodes"};
  else throw Refusal{kInvalidParams, "no resource '" + uri + "' (resources/list names them)"};
  const Run r = run_(w);
  if (r.status != 0) throw Refusal{-32603, "kairosctl: " + (r.err.empty() ? r.out : r.err)};
  return {{"contents", json::array({{{"uri", uri}, {"mimeType", "application/json"}, {"text", r.out}}})}};
}

json Server::dispatch(const json& msg) {
  const json id = msg.contains("id") ? msg["id"] : json(nullptr);
  const std::string method = msg["method"];
  const json params = msg.contains("params") ? msg["params"] : json::object();
  try {
    json result;
    if (method == "initialize") {
      std::string asked = params.is_object() && params.contains("protocolVersion") && params["protocolVersion"].is_string()
                              ? params["protocolVersion"].get<std::string>()
                              : kNewest;
      initialized_ = true;
      result = {{"protocolVersion", kProtocols.count(asked) ? asked : kNewest},
                {"capabilities", {{"tools", {{"listChanged", false}}}, {"resources", {{"listChanged", false}}}}},
                {"serverInfo", {{"name", "kairos-mcp"}, {"version", kVersion}}},
                {"instructions", std::string("Kairos mesh tools over the operator-authenticated control RPC. ") +
                                     (allow_write_ ? "Write tools are allowed." : "Read only: started without --allow-write.")}};
    } else if (method == "ping") {
      result = json::object();
    } else if (method == "tools/list") {
      result = {{"tools", tools()}};
    } else if (method == "tools/call") {
      result = call_tool(params);
    } else if (method == "resources/list") {
      result = {{"resources",
                 json::array({{{"uri", "kairos://mesh/status"}, {"name", "mesh status"}, {"mimeType", "application/json"},
                               {"description", "kairosctl status: the mesh, its mode and KPIs"}},
                              {{"uri", "kairos://mesh/nodes"}, {"name", "node list"}, {"mimeType", "application/json"},
                               {"description", "kairosctl nodes: every node the gateway knows"}}})}};
    } else if (method == "resources/read") {
      result = read_resource(params);
    } else {
      return error(id, kMethodNotFound, "no method '" + method + "'");
    }
    return {{"jsonrpc", "2.0"}, {"id", id}, {"result", result}};
  } catch (const Refusal& r) {
    return error(id, r.code, r.message);
  } catch (const json::exception& e) {
    return error(id, kInvalidParams, std::string("bad params: ") + e.what());
  }
}

std::optional<std::string> Server::handle(const std::string& line) {
  json msg = json::parse(line, nullptr, false);
  if (msg.is_discarded()) return error(nullptr, kParseError, "not JSON").dump();
  if (msg.is_array()) return error(nullptr, kInvalidRequest, "batches are not taken").dump();
  if (!msg.is_object() || msg.value("jsonrpc", json()) != "2.0")
    return error(msg.is_object() && msg.contains("id") ? msg["id"] : json(nullptr), kInvalidRequest,
                 "not a JSON-RPC 2.0 message")
        .dump();
  const bool has_id = msg.contains("id");
  if (has_id && !(msg["id"].is_string() || msg["id"].is_number_integer()))
    return error(nullptr, kInvalidRequest, "id must be a string or an integer").dump();
  if (!msg.contains("method")) return std::nullopt;  // a response to a request of ours: none are sent
  if (!msg["method"].is_string()) return error(has_id ? msg["id"] : json(nullptr), kInvalidRequest, "method must be a string").dump();
  if (!has_id) return std::nullopt;  // a notification (notifications/initialized, cancelled): nothing to answer
  return dispatch(msg).dump();
}

}  // namespace kairos::mcp

// The Sparkplug B bridge (gateway/sparkplug) checked by an independent codec:
// Eclipse Tahu's JavaScript sparkplug-payload (tests/npm, installed by
// tools/setup) decodes a whole session as EdgeNode wrote it, through
// sparkplug_decode.js, and writes the NCMD that EdgeNode reads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstring>
#include <set>
#include <filesystem>
#include <sstream>

#include "gateway/sparkplug/edge.h"
#include "tests/integration/harness.h"

using namespace kairos::test;
using namespace std::chrono_literals;
namespace sp = kairos::gw::sparkplug;

namespace {

constexpr std::uint64_t kNow = 1'700'000'000'000;  // ms since the epoch

const std::string kNpm = std::string(KAIROS_SOURCE_DIR) + "/tests/npm";
const std::string kDecoder = std::string(KAIROS_SOURCE_DIR) + "/tests/integration/sparkplug_decode.js";

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64(const kairos::Bytes& b) {
  std::string out;
  for (std::size_t i = 0; i < b.size(); i += 3) {
    const std::uint32_t n = static_cast<std::uint32_t>(b[i]) << 16 | (i + 1 < b.size() ? b[i + 1] << 8 : 0) |
                            (i + 2 < b.size() ? b[i + 2] : 0);
    out += kB64[n >> 18 & 63];
    out += kB64[n >> 12 & 63];
    out += i + 1 < b.size() ? kB64[n >> 6 & 63] : '=';
    out += i + 2 < b.size() ? kB64[n & 63] : '=';
  }
  return out;
}

kairos::Bytes unbase64(const std::string& s) {
  kairos::Bytes out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    const char* at = std::strchr(kB64, c);
    if (c == '\0' || !at) continue;  // '=', line ends
    acc = acc << 6 | static_cast<std::uint32_t>(at - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>(acc >> bits & 0xff));
    }
  }
  return out;
}

// Fails the test (never skips it) when Tahu's codec is not installed.
bool tahu_installed() {
  if (std::filesystem::exists(kNpm + "/node_modules/sparkplug-payload/package.json")) return true;
  ADD_FAILURE() << "Eclipse Tahu's codec is not installed in " << kNpm
                << "/node_modules: run tools/setup (it runs npm install there)";
  return false;
}

// The decoder's output lines (JSON, one a message), stderr's lines left out.
std::vector<std::string> decode_with_tahu(const TempDir& dir, const std::vector<sp::Publication>& pubs, int& status,
                                          std::string& output) {
  std::string lines;
  for (const auto& p : pubs) lines += p.topic + "\t" + base64(p.payload) + "\n";
  dir.write("payloads.tsv", lines);
  auto r = run_command({"sh", "-c", "node " + kDecoder + " < " + dir.file("payloads.tsv")}, dir.path());
  status = r.status;
  output = r.output;
  std::vector<std::string> out;
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("{\"topic\":", 0) == 0) out.push_back(line);
  return out;
}

// The JSON object of the metric whose birth name is `born` in a message's line; empty when none.
std::string metric(const std::string& line, const std::string& born) {
  const auto at = line.find("{\"born\":\"" + born + "\"");
  if (at == std::string::npos) return "";
  int depth = 0;
  for (std::size_t i = at; i < line.size(); ++i) {
    if (line[i] == '{') ++depth;
    if (line[i] == '}' && --depth == 0) return line.substr(at, i - at + 1);
  }
  return "";
}

std::size_t metric_count(const std::string& line) {
  std::size_t n = 0;
  for (auto at = line.find("{\"born\":"); at != std::string::npos; at = line.find("{\"born\":", at + 1)) ++n;
  return n;
}

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

sp::MeshState mesh() { return {90.0, 0.9, 0.8, true, "FULL", 2, 3}; }
sp::DeviceState state(double temp) {
  return {"COMPLIANT", {{"temp", temp, 45.0, 0.95}, {"mic", std::nullopt, 10.0, 0.5}}, 120, 0.99};
}

}  // namespace

TEST(SparkplugTahu, TahuReadsAWholeSessionAsTheBridgeWroteIt) {
  if (!tahu_installed()) return;
  sp::EdgeNode edge({"farm", "gw1"}, 42);
  std::vector<sp::Publication> pubs;
  pubs.push_back(edge.birth(mesh(), kNow));
  pubs.push_back(
      *edge.device_birth({"pi-kitchen", "north", "rpi4", "0.1.0", {"temp", "mic"}, {"fan"}, 0, {}, 0}, state(21.5), kNow + 1));
  pubs.push_back(*edge.device_birth({"pi-shed", "south", "rpi3", "0.2.0", {"temp"}, {}, 0, {}, 0}, state(15), kNow + 1));
  pubs.push_back(*edge.device_data("pi-kitchen", state(22.25), kNow + 3, false, kNow + 2));
  pubs.push_back(*edge.device_data("pi-kitchen", state(18), kNow + 4, true, kNow - 60'000));
  sp::MeshState fewer = mesh();
  fewer.online = 1;
  pubs.push_back(*edge.node_data(fewer, kNow + 5));
  pubs.push_back(*edge.device_death("pi-shed", kNow + 6));
  pubs.push_back(edge.death());

  TempDir dir;
  int status = 0;
  std::string output;
  const auto lines = decode_with_tahu(dir, pubs, status, output);
  ASSERT_EQ(status, 0) << output;
  ASSERT_EQ(lines.size(), pubs.size()) << output;

  // What Tahu read, message by message: the line (metric: null) or one metric's object (by its birth name).
  struct Says {
    std::size_t line;
    const char* metric;
    const char* part;
  };
  const Says says[] = {
      // NBIRTH: seq 0, bdSeq, the Rebirth control and the mesh, each typed as written.
      {0, nullptr, "{\"topic\":\"spBv1.0/farm/NBIRTH/gw1\",\"seq\":0,\"timestamp\":1700000000000,"},
      {0, "bdSeq", "\"alias\":null,\"type\":\"UInt64\",\"bornType\":null,\"value\":42,"},
      {0, "Node Control/Rebirth", "\"alias\":1,\"type\":\"Boolean\",\"bornType\":\"Boolean\",\"value\":false,"},
      {0, "Mesh/Phase", "\"type\":\"Double\",\"bornType\":\"Double\",\"value\":90,\"isNull\":false,"},
      {0, "Mesh/Phase", "\"field\":\"doubleValue\",\"wire\":90,\"engUnit\":\"deg\"}"},
      {0, "Mesh/Coherence", "\"value\":0.9,"},
      {0, "Mesh/Unified", "\"type\":\"Boolean\",\"bornType\":\"Boolean\",\"value\":true,"},
      {0, "Mesh/Mode", "\"type\":\"String\",\"bornType\":\"String\",\"value\":\"FULL\","},
      {0, "Mesh/Nodes Online", "\"type\":\"Int32\",\"bornType\":\"Int32\",\"value\":2,"},
      {0, "Mesh/Nodes Online", "\"field\":\"intValue\",\"wire\":2,"},
      // DBIRTHs: seq 1 and 2, every metric named, aliased and typed; a missing sample is null.
      {1, nullptr, "{\"topic\":\"spBv1.0/farm/DBIRTH/gw1/pi-kitchen\",\"seq\":1,\"timestamp\":1700000000001,"},
      {1, "Properties/Board", "\"type\":\"String\",\"bornType\":\"String\",\"value\":\"rpi4\","},
      {1, "Properties/Cluster", "\"value\":\"north\","},
      {1, "Status", "\"value\":\"COMPLIANT\","},
      {1, "Impedance", "\"type\":\"Double\",\"bornType\":\"Double\",\"value\":120,"},
      {1, "Inputs/temp/Value", "{\"born\":\"Inputs/temp/Value\",\"name\":\"Inputs/temp/Value\","},
      {1, "Inputs/temp/Value", "\"type\":\"Double\",\"bornType\":\"Double\",\"value\":21.5,\"isNull\":false,"},
      {1, "Inputs/temp/Phase",
       "\"value\":45,\"isNull\":false,\"isHistorical\":false,\"timestamp\":null,\"field\":\"doubleValue\",\"wire\":45,"
       "\"engUnit\":\"deg\"}"},
      {1, "Inputs/mic/Value", "\"type\":\"Double\",\"bornType\":\"Double\",\"value\":null,\"isNull\":true,"},
      {1, "Inputs/mic/Value", "\"field\":null,\"wire\":null,"},
      {2, nullptr, "{\"topic\":\"spBv1.0/farm/DBIRTH/gw1/pi-shed\",\"seq\":2,"},
      {2, "Properties/Firmware", "\"value\":\"0.2.0\","},
      {2, "Inputs/temp/Value", "\"value\":15,"},
      // DDATA: seq 3, the changed temperature alone, by its birth's alias, no name nor datatype.
      {3, nullptr, "{\"topic\":\"spBv1.0/farm/DDATA/gw1/pi-kitchen\",\"seq\":3,\"timestamp\":1700000000003,"},
      {3, "Inputs/temp/Value", "\"name\":null,"},
      {3, "Inputs/temp/Value",
       "\"type\":null,\"bornType\":\"Double\",\"value\":22.25,\"isNull\":false,\"isHistorical\":false,"},
      {3, "Inputs/temp/Value", "\"timestamp\":1700000000002,\"field\":\"doubleValue\",\"wire\":22.25,"},
      // The historical DDATA: seq 4, every reading with a value, is_historical, at the sample's time.
      {4, nullptr, "\"seq\":4,"},
      {4, "Inputs/temp/Value", "\"value\":18,\"isNull\":false,\"isHistorical\":true,\"timestamp\":1699999940000,"},
      {4, "Status", "\"value\":\"COMPLIANT\","},
      // NDATA: seq 5, the online count alone.
      {5, nullptr, "{\"topic\":\"spBv1.0/farm/NDATA/gw1\",\"seq\":5,\"timestamp\":1700000000005,"},
      {5, "Mesh/Nodes Online", "\"name\":null,"},
      {5, "Mesh/Nodes Online", "\"bornType\":\"Int32\",\"value\":1,"},
      // DDEATH: seq 6, no metric. NDEATH: bdSeq as in the NBIRTH, no seq.
      {6, nullptr,
       "{\"topic\":\"spBv1.0/farm/DDEATH/gw1/pi-shed\",\"seq\":6,\"timestamp\":1700000000006,\"metrics\":[]}"},
      {7, nullptr, "{\"topic\":\"spBv1.0/farm/NDEATH/gw1\",\"seq\":null,\"timestamp\":null,"},
      {7, "bdSeq", "\"type\":\"UInt64\",\"bornType\":null,\"value\":42,"},
  };
  for (const Says& s : says) {
    const std::string text = s.metric ? metric(lines[s.line], s.metric) : lines[s.line];
    EXPECT_HAS(text, s.part) << "message " << s.line << " " << (s.metric ? s.metric : "");
  }
  const std::size_t counts[] = {9, 12, 9, 1, 8, 1, 0, 1};
  for (std::size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(metric_count(lines[i]), counts[i]) << lines[i];
  EXPECT_EQ(lines[4].find("\"isHistorical\":false"), std::string::npos) << lines[4];
  // The DDATA's alias is the kitchen's; the shed's metric of the same name has its own.
  const double temp = json_number(metric(lines[1], "Inputs/temp/Value"), "alias");
  EXPECT_EQ(json_number(metric(lines[3], "Inputs/temp/Value"), "alias"), temp);
  EXPECT_NE(json_number(metric(lines[2], "Inputs/temp/Value"), "alias"), temp);
}

TEST(SparkplugTahu, TheDecoderRefusesWhatTahuCannotRead) {
  if (!tahu_installed()) return;
  sp::EdgeNode edge({"farm", "gw1"}, 1);
  auto birth = edge.birth(mesh(), kNow);
  birth.payload.resize(birth.payload.size() - 3);  // cut inside the last metric
  TempDir dir;
  int status = 0;
  std::string output;
  decode_with_tahu(dir, {birth}, status, output);
  EXPECT_NE(status, 0);
  EXPECT_HAS(output, "line 1 (spBv1.0/farm/NBIRTH/gw1): Tahu cannot decode it");
}

TEST(SparkplugTahu, ATahuNcmdAsksForARebirth) {
  if (!tahu_installed()) return;
  TempDir dir;
  auto r = run_command({"node", kDecoder, "--encode-ncmd-rebirth"}, dir.path());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto payload = unbase64(r.output);
  ASSERT_GT(payload.size(), 20u) << r.output;
  const auto cmd = sp::EdgeNode::parse_ncmd(payload);
  EXPECT_EQ(cmd.error, "");
  EXPECT_TRUE(cmd.rebirth);
  // And it is what a rebirth answers to: NBIRTH at seq 0 again, the same bdSeq.
  sp::EdgeNode edge({"farm", "gw1"}, 9);
  edge.birth(mesh(), kNow);
  ASSERT_TRUE(edge.node_data(sp::MeshState{}, kNow + 1));
  int status = 0;
  std::string output;
  const auto lines = decode_with_tahu(dir, {edge.birth(mesh(), kNow + 2)}, status, output);
  ASSERT_EQ(status, 0) << output;
  ASSERT_EQ(lines.size(), 1u) << output;
  EXPECT_HAS(lines[0], "\"seq\":0,\"timestamp\":1700000000002,");
  EXPECT_HAS(metric(lines[0], "bdSeq"), "\"value\":9,");
}

// The bridge live: a real Mosquitto, the gateway with [sparkplug] and two
// real nodes; every message on spBv1.0/# decoded by Tahu, and the session's
// state machine checked: births before data, sequence continuity, a node's
// death, a rebirth on a host's NCMD (written by Tahu), and the NDEATH of a
// killed gateway carrying its NBIRTH's bdSeq.
TEST(SparkplugTahu, ALiveGatewaysSessionFollowsTheStateMachine) {
  if (!tahu_installed()) return;
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  Client c(broker.uri());
  c.subscribe("spBv1.0/#");
  mesh.start_gateway("[sparkplug]\nenabled = true\ngroup_id = \"plant\"\ndata_interval_s = 0.2\n");
  mesh.start_node("n1", "c1", "waveform = \"sine\"\nperiod_s = 1.0\n", "heartbeat_period_s = 0.3\n");
  auto& n2 = mesh.start_node("n2", "c1", "waveform = \"constant\"\noffset = 0.25\n", "heartbeat_period_s = 0.3\n");
  auto count = [&](const std::string& prefix) {
    return std::count_if(c.seen().begin(), c.seen().end(),
                         [&](const auto& m) { return m.topic.rfind(prefix, 0) == 0; });
  };
  const std::string base = "spBv1.0/plant/";
  ASSERT_TRUE(c.wait_for([&](const auto&) {
    return count(base + "DBIRTH/gw1/n1") >= 1 && count(base + "DBIRTH/gw1/n2") >= 1 && count(base + "DDATA/gw1/n1") >= 3;
  }, 30s)) << mesh.gateway().output();

  // A node dies: DDEATH.
  n2.signal(SIGKILL);
  ASSERT_TRUE(c.wait_for([&](const auto&) { return count(base + "DDEATH/gw1/n2") == 1; }, 20s)) << mesh.gateway().output();

  // A host asks for a rebirth, in Tahu's own encoding: NBIRTH again, and n1's DBIRTH.
  auto ncmd = run_command({"node", kDecoder, "--encode-ncmd-rebirth"}, dir.path());
  ASSERT_EQ(ncmd.status, 0) << ncmd.output;
  c.publish(base + "NCMD/gw1", unbase64(ncmd.output), 0, false);
  ASSERT_TRUE(c.wait_for([&](const auto&) { return count(base + "NBIRTH/gw1") == 2 && count(base + "DBIRTH/gw1/n1") == 2; },
                         20s)) << mesh.gateway().output();
  // Garbage on NCMD: refused, nothing reborn.
  c.publish(base + "NCMD/gw1", kairos::Bytes{0xff, 0x01, 0x02}, 0, false);
  ASSERT_TRUE(c.wait_for([&](const auto&) { return count(base + "DDATA/gw1/n1") >= 8; }, 20s));

  // The gateway is killed: the broker sends its Will, the NDEATH.
  kill(mesh.gateway().pid(), SIGKILL);
  ASSERT_TRUE(c.wait_for([&](const auto&) { return count(base + "NDEATH/gw1") == 1; }, 20s));
  EXPECT_EQ(count(base + "NBIRTH/gw1"), 2);
  EXPECT_NE(mesh.gateway().output().find("NCMD refused"), std::string::npos) << mesh.gateway().output();

  std::vector<sp::Publication> seen;
  for (const auto& m : c.seen())
    if (m.topic.rfind("spBv1.0/", 0) == 0 && m.topic.find("/NCMD/") == std::string::npos)  // the edge node's own
      seen.push_back({m.topic, m.payload, 0, m.retained});
  int status = 0;
  std::string output;
  const auto lines = decode_with_tahu(dir, seen, status, output);
  ASSERT_EQ(status, 0) << output;  // Tahu decodes every one
  ASSERT_EQ(lines.size(), seen.size()) << output;

  // The state machine, message by message.
  double bd_seq = -1;
  int expect_seq = -1;  // before the first NBIRTH
  std::set<std::string> born;
  std::size_t births = 0, ddata = 0;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    const std::string& topic = seen[i].topic;
    const std::string& line = lines[i];
    const auto type = topic.substr(base.size(), topic.find('/', base.size()) - base.size());
    const std::string device = std::count(topic.begin(), topic.end(), '/') == 4 ? topic.substr(topic.rfind('/') + 1) : "";
    SCOPED_TRACE(topic + " " + line.substr(0, 200));
    if (type == "NDEATH") {
      EXPECT_EQ(json_number(metric(line, "bdSeq"), "value"), bd_seq);  // the Will of the session that was born
      EXPECT_NE(line.find("\"seq\":null"), std::string::npos);          // no seq on NDEATH
      EXPECT_EQ(i + 1, seen.size());                                    // nothing after the death
      continue;
    }
    const int seq = static_cast<int>(json_number(line, "seq"));
    if (type == "NBIRTH") {
      EXPECT_EQ(seq, 0);
      const double bd = json_number(metric(line, "bdSeq"), "value");
      if (births++ > 0) {
        EXPECT_EQ(bd, bd_seq);  // a rebirth keeps its connection's bdSeq
      }
      bd_seq = bd;
      born.clear();
    } else {
      ASSERT_GE(expect_seq, 0) << "a message before the first NBIRTH";
      EXPECT_EQ(seq, expect_seq);  // continuous, wrapping at 256
    }
    expect_seq = (seq + 1) % 256;
    if (type == "DBIRTH") born.insert(device);
    if (type == "DDATA") {
      EXPECT_TRUE(born.count(device)) << "DDATA before its DBIRTH";
      ++ddata;
    }
    if (type == "DDEATH") {
      EXPECT_TRUE(born.erase(device)) << "DDEATH of a device not born";
    }
  }
  EXPECT_EQ(births, 2u);
  EXPECT_GE(ddata, 8u);
  EXPECT_GE(bd_seq, 0);
}

// Every connect carries a new bdSeq, kept across restarts: after the
// broker restarts, and after the gateway does, the NBIRTH's bdSeq is one
// more than the last, and a clean stop sends the NDEATH of the session that is ending.
TEST(SparkplugTahu, EveryConnectCarriesTheNextBdSeq) {
  if (!tahu_installed()) return;
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  const std::string gw = "[sparkplug]\nenabled = true\ngroup_id = \"plant\"\n";
  mesh.start_gateway(gw);
  Client c(broker.uri());
  c.subscribe("spBv1.0/#");
  // The bdSeq of each NBIRTH and NDEATH seen, decoded by Tahu, in order.
  auto bd_seqs = [&](const char* type) {
    std::vector<sp::Publication> pubs;
    for (const auto& m : c.seen())
      if (m.topic == std::string("spBv1.0/plant/") + type + "/gw1") pubs.push_back({m.topic, m.payload, 0, false});
    int status = 0;
    std::string output;
    std::vector<double> out;
    for (const auto& line : decode_with_tahu(dir, pubs, status, output))
      out.push_back(json_number(metric(line, "bdSeq"), "value"));
    EXPECT_EQ(status, 0) << output;
    return out;
  };
  auto nbirths = [&] { return std::count_if(c.seen().begin(), c.seen().end(), [](const auto& m) {
                         return m.topic == "spBv1.0/plant/NBIRTH/gw1";
                       }); };
  // A host asks for a rebirth to see the first session's NBIRTH (it may have gone before the subscription).
  auto ncmd = run_command({"node", kDecoder, "--encode-ncmd-rebirth"}, dir.path());
  ASSERT_EQ(ncmd.status, 0) << ncmd.output;
  c.publish("spBv1.0/plant/NCMD/gw1", unbase64(ncmd.output), 0, false);
  ASSERT_TRUE(c.wait_for([&](const auto&) { return nbirths() >= 1; }, 20s)) << mesh.gateway().output();

  const auto before = nbirths();
  broker.kill();
  broker.start();
  // The new session's NBIRTH may go before this client is back: a rebirth is
  // asked (QoS 1, kept while the client reconnects) until one is seen.
  for (int i = 0; i < 15 && nbirths() == before; ++i) {
    c.publish("spBv1.0/plant/NCMD/gw1", unbase64(ncmd.output), 1, false);
    c.wait_for([&](const auto&) { return nbirths() > before; }, 2s);
  }
  ASSERT_GT(nbirths(), before) << mesh.gateway().output();
  mesh.gateway().signal(SIGTERM);  // a clean stop: the NDEATH is published, not left to the Will
  ASSERT_TRUE(mesh.gateway().wait(10s).has_value());
  ASSERT_TRUE(c.wait_for([&](const auto&) {
    return std::any_of(c.seen().begin(), c.seen().end(), [](const auto& m) { return m.topic == "spBv1.0/plant/NDEATH/gw1"; });
  }, 10s));
  const auto at_stop = static_cast<std::size_t>(nbirths());  // every NBIRTH of the sessions before the stop
  mesh.start_gateway(gw);
  ASSERT_TRUE(c.wait_for([&](const auto&) { return static_cast<std::size_t>(nbirths()) > at_stop; }, 30s))
      << mesh.gateway().output();

  const auto births = bd_seqs("NBIRTH");
  const auto deaths = bd_seqs("NDEATH");
  ASSERT_GT(births.size(), at_stop);
  ASSERT_EQ(deaths.size(), 1u);
  // The last NBIRTH before the stop is the second session's; the next is the restarted gateway's.
  const double first = births[0], second = births[at_stop - 1], third = births[at_stop];
  EXPECT_EQ(second, first + 1);  // the broker's restart: the next connect, one more (failed attempts reuse it)
  EXPECT_EQ(deaths[0], second);  // the clean stop ended the session born second
  EXPECT_GT(third, second);  // and the restart goes on from there (kept in the database)
  for (const auto& m : c.seen())
    if (m.topic.find("/NDEATH/") != std::string::npos) {
      EXPECT_FALSE(m.retained);
    }
}

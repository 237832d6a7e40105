// Provisioning's pure parts: Debian's status and Depends formats, the
// architecture of an ELF header, Mosquitto's password hashes, ACL blocks.
#include <gtest/gtest.h>

#include <array>

#include "tools/kairosctl/debian.h"
#include "tools/kairosctl/broker_files.h"

using namespace kairos;
using namespace kairos::ctl;

TEST(DebStatus, StanzasRoundTripWithContinuationLines) {
  const std::string text =
      "Package: kairos-node\nStatus: install ok installed\nArchitecture: armhf\nConffiles:\n /etc/kairos/node.toml 0123\n"
      "Description: node\n first line\n .\n after a blank\n\nPackage: libc6\nStatus: install ok installed\n"
      "Multi-Arch: same\nArchitecture: armhf\nVersion: 2.36-9\n";
  auto s = deb::parse_stanzas(text);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].get("package"), "kairos-node");
  EXPECT_EQ(s[0].get("Conffiles"), "\n/etc/kairos/node.toml 0123");
  EXPECT_EQ(s[0].get("Description"), "node\nfirst line\n\nafter a blank");
  EXPECT_EQ(s[0].text() + "\n" + s[1].text(), text);
  EXPECT_TRUE(deb::is_installed(s[1]));
  EXPECT_EQ(deb::package_key(s[1]), "libc6:armhf");
  EXPECT_EQ(deb::package_key(s[0]), "kairos-node");
}

TEST(DebStatus, AStanzaReplacesItsPackageOrIsAppended) {
  std::string status = "Package: a\nStatus: install ok installed\nVersion: 1\n\nPackage: b\nVersion: 1\n";
  deb::Stanza a;
  a.set("Package", "a");
  a.set("Version", "2");
  auto out = deb::status_with(status, a);
  EXPECT_EQ(out, "Package: a\nVersion: 2\n\nPackage: b\nVersion: 1\n");
  deb::Stanza c;
  c.set("Package", "c");
  EXPECT_EQ(deb::status_with(out, c), out + "\nPackage: c\n");
  EXPECT_EQ(deb::status_with("", c), "Package: c\n");
}

TEST(DebDepends, ParsesGroupsAlternativesAndVersions) {
  auto d = deb::parse_depends("libc6 (>= 2.36), libstdc++6 (>= 12), libgpiod2 | libgpiod3:arm64, adduser,\n kairos-boards (= 0.1.0)");
  ASSERT_EQ(d.size(), 5u);
  EXPECT_EQ(d[0][0].name, "libc6");
  EXPECT_EQ(d[0][0].op, ">=");
  EXPECT_EQ(d[0][0].version, "2.36");
  ASSERT_EQ(d[2].size(), 2u);
  EXPECT_EQ(d[2][1].name, "libgpiod3");
  EXPECT_EQ(d[2][1].arch, "arm64");
  EXPECT_EQ(d[3][0].op, "");
  EXPECT_EQ(d[4][0].text(), "kairos-boards (= 0.1.0)");
  EXPECT_TRUE(deb::parse_depends("").empty());
  for (const char* bad : {"a (>= )", "a (~ 1)", "a, , b", "(>= 1)", "a (>= 1"}) {
    EXPECT_THROW(deb::parse_depends(bad), std::invalid_argument) << bad;
  }
}

TEST(DebElf, ArchitectureFromTheHeader) {
  auto header = [](std::uint8_t cls, std::uint16_t machine, std::uint32_t flags) {
    std::array<std::uint8_t, 52> h{0x7f, 'E', 'L', 'F', cls, 1};
    h[18] = static_cast<std::uint8_t>(machine);
    h[19] = static_cast<std::uint8_t>(machine >> 8);
    for (int i = 0; i < 4; ++i) h[36 + i] = static_cast<std::uint8_t>(flags >> (8 * i));
    return h;
  };
  struct Case { std::uint8_t cls; std::uint16_t machine; std::uint32_t flags; const char* arch; };
  for (const Case& c : {Case{2, 62, 0, "amd64"}, Case{2, 183, 0, "arm64"}, Case{1, 40, 0x05000400, "armhf"},
                        Case{1, 40, 0x05000200, "armel"}, Case{1, 40, 0x05000000, "armel"}, Case{1, 40, 0x04000000, ""},
                        Case{1, 62, 0, ""}, Case{1, 3, 0, "i386"}, Case{2, 8, 0, ""}}) {
    auto h = header(c.cls, c.machine, c.flags);
    EXPECT_EQ(deb::elf_debian_arch(h), c.arch) << c.machine << " " << c.flags;
  }
  std::array<std::uint8_t, 52> text{'#', '!', '/', 'b'};
  EXPECT_EQ(deb::elf_debian_arch(text), "");
  EXPECT_EQ(deb::elf_debian_arch(std::span<const std::uint8_t>(text.data(), 10)), "");
}

TEST(MosquittoPasswd, AHashMatchesItsPasswordOnly) {
  Bytes salt{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  auto h = mosquitto_hash("secret", salt);
  EXPECT_EQ(h.rfind("$7$101$", 0), 0u);
  EXPECT_TRUE(mosquitto_hash_matches(h, "secret"));
  EXPECT_FALSE(mosquitto_hash_matches(h, "Secret"));
  EXPECT_FALSE(mosquitto_hash_matches("$6$abc$def", "secret"));
  EXPECT_FALSE(mosquitto_hash_matches("$7$x$", "secret"));
  auto passwd = replace_password_line("a:$7$1$x$y\nb:$7$1$z$w\n", "b", h);
  EXPECT_EQ(password_hash_of(passwd, "b"), h);
  EXPECT_EQ(password_hash_of(passwd, "a"), "$7$1$x$y");
  EXPECT_EQ(password_hash_of(passwd, "c"), "");
}

TEST(ProvisionAcl, BlocksNameTheirKindAndMesh) {
  std::string acl = replace_acl_block("", "gateway", "gw1", acl_gateway("farm", "gw1"));
  acl = replace_acl_block(acl, "node", "n1", acl_node("farm", "barn", "n1", {"farm/n1/level"}, {"chat/in"}));
  EXPECT_EQ(acl_kind_of(acl, "n1"), "node");
  EXPECT_EQ(acl_kind_of(acl, "gw1"), "gateway");
  EXPECT_EQ(acl_kind_of(acl, "n"), "");
  EXPECT_EQ(acl_meshes(acl), std::vector<std::string>{"farm"});
  EXPECT_NE(acl.find("topic write farm/n1/level\n"), std::string::npos);
  EXPECT_NE(acl.find("topic read chat/in\n"), std::string::npos);
  acl = replace_acl_block(acl, "operator", "x", acl_operator("lab", "x"));
  EXPECT_EQ(acl_meshes(acl), (std::vector<std::string>{"farm", "lab"}));
  // An operator writes its own request topic only (docs/PROTOCOL.md, Operators).
  EXPECT_NE(acl.find("user x\ntopic write kairos/v1/lab/_ctl/req/x\ntopic read #\n"), std::string::npos) << acl;
  EXPECT_EQ(acl.find("_ctl/req\n"), std::string::npos) << acl;
}

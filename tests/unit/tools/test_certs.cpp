// The certificate writer (x509write) read back with Mbed TLS's parser and
// its chain verification: names, validity, usages, the chain to the CA.
#include <gtest/gtest.h>

#include <mbedtls/oid.h>
#include <mbedtls/x509_crt.h>

#include "common/core/x509.h"
#include "tools/kairosctl/certs.h"

using namespace kairos;
using namespace kairos::ctl;

namespace {

constexpr std::int64_t kNow = 1'796'300'000;  // 2026-12-03, s
constexpr std::int64_t kDay = 86400;

struct Chain {
  mbedtls_x509_crt ca, leaf;
  Chain(const std::string& ca_pem, const std::string& leaf_pem) {
    mbedtls_x509_crt_init(&ca);
    mbedtls_x509_crt_init(&leaf);
    EXPECT_EQ(mbedtls_x509_crt_parse(&ca, reinterpret_cast<const unsigned char*>(ca_pem.c_str()), ca_pem.size() + 1), 0);
    EXPECT_EQ(mbedtls_x509_crt_parse(&leaf, reinterpret_cast<const unsigned char*>(leaf_pem.c_str()), leaf_pem.size() + 1),
              0);
  }
  ~Chain() {
    mbedtls_x509_crt_free(&ca);
    mbedtls_x509_crt_free(&leaf);
  }
  // mbedtls_x509_crt_verify's flags for the leaf against the CA (and name, if any).
  std::uint32_t verify(const char* name = nullptr) {
    std::uint32_t flags = 0;
    mbedtls_x509_crt_verify(&leaf, &ca, nullptr, name, &flags, nullptr, nullptr);
    return flags;
  }
};

struct Mesh {
  std::string ca_key = new_ec_key();
  std::string ca;
  Mesh(std::int64_t from = kNow - 3600, std::int64_t to = kNow + 3650 * kDay) {
    CertSpec s;
    s.kind = CertSpec::Kind::ca;
    s.common_name = "Kairos mesh farm CA";
    s.organization = "Kairos mesh farm";
    s.not_before_s = from;
    s.not_after_s = to;
    ca = issue_cert(s, ca_key, "", "");
  }
  std::string issue(CertSpec s, const std::string& key) const { return issue_cert(s, key, ca, ca_key); }
};

CertSpec leaf(CertSpec::Kind kind, std::string cn, std::int64_t from = kNow - 3600, std::int64_t to = kNow + 730 * kDay) {
  CertSpec s;
  s.kind = kind;
  s.common_name = std::move(cn);
  s.not_before_s = from;
  s.not_after_s = to;
  return s;
}

}  // namespace

TEST(Certs, TheMeshCaSignsItselfForTenYears) {
  Mesh m;
  std::string why;
  auto ca = read_cert(m.ca, why);
  ASSERT_TRUE(ca) << why;
  EXPECT_TRUE(ca->is_ca);
  EXPECT_EQ(ca->common_name, "Kairos mesh farm CA");
  EXPECT_EQ(ca->subject, "CN=Kairos mesh farm CA, O=Kairos mesh farm");
  EXPECT_EQ(ca->issuer, ca->subject);
  EXPECT_EQ(ca->not_before_s, kNow - 3600);
  EXPECT_EQ(ca->not_after_s, kNow + 3650 * kDay);
  EXPECT_TRUE(key_fits_cert(m.ca, m.ca_key));
  EXPECT_TRUE(issued_by(m.ca, m.ca));
  EXPECT_TRUE(read_private_key(m.ca_key, why)) << why;
  EXPECT_NE(m.ca_key.find("-----BEGIN EC PRIVATE KEY-----"), std::string::npos);
  Chain chain(m.ca, m.ca);
  EXPECT_EQ(chain.verify(), 0u);
  EXPECT_EQ(chain.leaf.ca_istrue, 1);
  EXPECT_EQ(chain.leaf.max_pathlen, 1);  // Mbed TLS stores pathlen + 1: the CA signs only devices
  EXPECT_TRUE(chain.leaf.key_usage & MBEDTLS_X509_KU_KEY_CERT_SIGN);
}

TEST(Certs, TheBrokersCertificateNamesItsHostAndChainsToTheCa) {
  Mesh m;
  auto key = new_ec_key();
  auto spec = leaf(CertSpec::Kind::server, "gateway.local");
  spec.dns_names = {"gateway.local", "localhost"};
  spec.ip_addresses = {"127.0.0.1", "::1"};
  auto pem = m.issue(spec, key);
  std::string why;
  auto c = read_cert(pem, why);
  ASSERT_TRUE(c) << why;
  EXPECT_EQ(c->common_name, "gateway.local");
  EXPECT_EQ(c->issuer, "CN=Kairos mesh farm CA, O=Kairos mesh farm");
  EXPECT_EQ(c->dns_names, (std::vector<std::string>{"gateway.local", "localhost"}));
  EXPECT_EQ(c->ip_addresses, (std::vector<std::string>{"127.0.0.1", "0:0:0:0:0:0:0:1"}));
  EXPECT_FALSE(c->is_ca);
  EXPECT_EQ(c->not_after_s, kNow + 730 * kDay);
  EXPECT_TRUE(key_fits_cert(pem, key));
  EXPECT_FALSE(key_fits_cert(pem, m.ca_key));
  EXPECT_TRUE(issued_by(pem, m.ca));

  Chain chain(m.ca, pem);
  EXPECT_EQ(chain.verify("gateway.local"), 0u);
  EXPECT_EQ(chain.verify("localhost"), 0u);
  EXPECT_EQ(chain.verify("other.example") & MBEDTLS_X509_BADCERT_CN_MISMATCH, MBEDTLS_X509_BADCERT_CN_MISMATCH);
  EXPECT_EQ(mbedtls_x509_crt_check_extended_key_usage(&chain.leaf, MBEDTLS_OID_SERVER_AUTH,
                                                      MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)),
            0);
  EXPECT_NE(mbedtls_x509_crt_check_extended_key_usage(&chain.leaf, MBEDTLS_OID_CLIENT_AUTH,
                                                      MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)),
            0);
  EXPECT_EQ(mbedtls_x509_crt_check_key_usage(&chain.leaf, MBEDTLS_X509_KU_DIGITAL_SIGNATURE), 0);
}

TEST(Certs, ADeviceCertificateCarriesItsNameAndIsForClientsOnly) {
  Mesh m;
  auto key = new_ec_key();
  auto pem = m.issue(leaf(CertSpec::Kind::client, "barn-1"), key);
  std::string why;
  auto c = read_cert(pem, why);
  ASSERT_TRUE(c) << why;
  EXPECT_EQ(c->common_name, "barn-1");
  EXPECT_EQ(c->subject, "CN=barn-1");
  EXPECT_TRUE(c->dns_names.empty());
  EXPECT_EQ(validity_at(*c, kNow), Validity::valid);
  Chain chain(m.ca, pem);
  EXPECT_EQ(chain.verify(), 0u);
  EXPECT_EQ(chain.leaf.ca_istrue, 0);
  EXPECT_EQ(mbedtls_x509_crt_check_extended_key_usage(&chain.leaf, MBEDTLS_OID_CLIENT_AUTH,
                                                      MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH)),
            0);
  // Two certificates of one CA never share a serial.
  auto again = m.issue(leaf(CertSpec::Kind::client, "barn-1"), key);
  Chain other(m.ca, again);
  EXPECT_NE(mbedtls_x509_crt_check_extended_key_usage(&other.leaf, MBEDTLS_OID_SERVER_AUTH,
                                                      MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)),
            0);
  EXPECT_FALSE(chain.leaf.serial.len == other.leaf.serial.len &&
               std::equal(chain.leaf.serial.p, chain.leaf.serial.p + chain.leaf.serial.len, other.leaf.serial.p));
}

TEST(Certs, ValidityInThePastIsExpiredAndInTheFutureNotYetValid) {
  Mesh m;
  auto key = new_ec_key();
  auto old = m.issue(leaf(CertSpec::Kind::client, "n1", kNow - 30 * kDay, kNow - kDay), key);
  std::string why;
  auto c = read_cert(old, why);
  ASSERT_TRUE(c) << why;
  EXPECT_EQ(c->not_before_s, kNow - 30 * kDay);
  EXPECT_EQ(c->not_after_s, kNow - kDay);
  EXPECT_EQ(validity_at(*c, kNow), Validity::expired);
  EXPECT_EQ(validity_at(*c, kNow - 10 * kDay), Validity::valid);
  EXPECT_EQ(validity_at(*c, kNow - 31 * kDay), Validity::not_yet_valid);
  // The chain still holds (only the time is wrong), so issued_by says yes.
  EXPECT_TRUE(issued_by(old, m.ca));
  // Mbed TLS's own check reads the real clock: a certificate of 2019.
  auto older = m.issue(leaf(CertSpec::Kind::client, "n1", unix_time(2019, 1, 1, 0, 0, 0), unix_time(2019, 12, 31, 0, 0, 0)),
                       key);
  Chain chain(m.ca, older);
  EXPECT_EQ(chain.verify(), static_cast<std::uint32_t>(MBEDTLS_X509_BADCERT_EXPIRED));
}

TEST(Certs, AnotherCasCertificateDoesNotChain) {
  Mesh m, other;
  auto key = new_ec_key();
  auto pem = other.issue(leaf(CertSpec::Kind::client, "n1"), key);
  EXPECT_FALSE(issued_by(pem, m.ca));
  EXPECT_TRUE(issued_by(pem, other.ca));
  EXPECT_TRUE(issued_by(pem, m.ca + other.ca)) << "a CA file may hold several CAs";
  Chain chain(m.ca, pem);
  EXPECT_TRUE(chain.verify() & MBEDTLS_X509_BADCERT_NOT_TRUSTED);
  std::string why;
  EXPECT_EQ(count_certs(m.ca + other.ca, why), 2);
}

TEST(Certs, RefusesWhatCannotBeSignedOrRead) {
  Mesh m;
  auto key = new_ec_key();
  EXPECT_THROW(issue_cert(leaf(CertSpec::Kind::client, "n1"), key, "", ""), std::runtime_error)
      << "only a CA signs itself";
  auto spec = leaf(CertSpec::Kind::client, "a,b");
  EXPECT_THROW(m.issue(spec, key), std::runtime_error);
  spec = leaf(CertSpec::Kind::server, "h");
  spec.ip_addresses = {"not-an-ip"};
  EXPECT_THROW(m.issue(spec, key), std::runtime_error);
  // A CA key that is not the CA certificate's.
  EXPECT_THROW(issue_cert(leaf(CertSpec::Kind::client, "n1"), key, m.ca, new_ec_key()), std::runtime_error);
  std::string why;
  EXPECT_FALSE(read_cert("not a certificate", why));
  EXPECT_FALSE(why.empty());
  EXPECT_EQ(count_certs("", why), 0);
  EXPECT_FALSE(read_private_key("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", why));
}

TEST(X509Time, CalendarAndUnixTimeAgree) {
  EXPECT_EQ(unix_time(1970, 1, 1, 0, 0, 0), 0);
  EXPECT_EQ(unix_time(2000, 3, 1, 0, 0, 0), 951868800);
  EXPECT_EQ(unix_time(2036, 12, 31, 23, 59, 59), 2114380799);
  EXPECT_EQ(utc_text(951868800), "2000-03-01 00:00 UTC");
  EXPECT_EQ(utc_text(2114380799), "2036-12-31 23:59 UTC");
  EXPECT_EQ(utc_text(-1), "1969-12-31 23:59 UTC");
}

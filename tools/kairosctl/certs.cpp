#include "tools/kairosctl/certs.h"

#include <arpa/inet.h>

#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include <cstdio>
#include <stdexcept>

#include "common/core/mbedtls_owned.h"
#include "common/core/x509.h"
#include "common/io/keygen.h"

namespace kairos::ctl {

namespace {

void check(int rc, const char* what) {
  if (rc != 0) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s failed (Mbed TLS error -0x%04x)", what, static_cast<unsigned>(-rc));
    throw std::runtime_error(buf);
  }
}

using tls::Crt;
using tls::CrtWriter;
using tls::Mpi;
using tls::Pk;

void parse_key(Pk& pk, std::string_view pem, const char* what) { check(tls::parse_key(pk, pem), what); }

// One DER element: tag, definite length, content.
std::string der(unsigned char tag, std::string_view content) {
  std::string out(1, static_cast<char>(tag));
  const std::size_t n = content.size();
  if (n < 0x80) {
    out.push_back(static_cast<char>(n));
  } else {
    std::string len;
    for (std::size_t v = n; v; v >>= 8) len.insert(len.begin(), static_cast<char>(v & 0xff));
    out.push_back(static_cast<char>(0x80 | len.size()));
    out += len;
  }
  return out + std::string(content);
}

// "20261203120000" (UTC), as x509write takes validity.
std::string x509_time(std::int64_t unix_s) {
  // utc_text gives "YYYY-MM-DD hh:mm UTC"; seconds are kept as given.
  const std::string t = utc_text(unix_s);
  const std::int64_t secs = ((unix_s % 60) + 60) % 60;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02lld", static_cast<long long>(secs));
  return t.substr(0, 4) + t.substr(5, 2) + t.substr(8, 2) + t.substr(11, 2) + t.substr(14, 2) + buf;
}

std::string subject_name(const CertSpec& s) {
  // Names are checked by provisioning (letters, digits, '_', '-', spaces
  // in the CA's title); a comma or '=' would need escaping.
  for (char c : s.common_name + s.organization)
    if (c == ',' || c == '=' || c == '\\' || c == '"')
      throw std::runtime_error("certificate name '" + s.common_name + "': no ',', '=', '\\' or '\"' allowed");
  return "CN=" + s.common_name + (s.organization.empty() ? "" : ",O=" + s.organization);
}

std::string alt_names(const CertSpec& s) {
  std::string names;
  for (const auto& d : s.dns_names) names += der(0x82, d);  // [2] dNSName
  for (const auto& ip : s.ip_addresses) {
    unsigned char addr[16];
    const char* bytes = reinterpret_cast<const char*>(addr);
    if (inet_pton(AF_INET, ip.c_str(), addr) == 1) names += der(0x87, std::string_view(bytes, 4));
    else if (inet_pton(AF_INET6, ip.c_str(), addr) == 1) names += der(0x87, std::string_view(bytes, 16));
    else throw std::runtime_error("'" + ip + "' is not an IP address");
  }
  return der(0x30, names);
}

void add_extension(CrtWriter& w, const char* oid, std::size_t oid_len, bool critical, const std::string& value) {
  check(mbedtls_x509write_crt_set_extension(&w.v, oid, oid_len, critical ? 1 : 0,
                                            reinterpret_cast<const unsigned char*>(value.data()), value.size()),
        "adding a certificate extension");
}

}  // namespace

std::string new_ec_key() {
  RandomSource drbg("kairos-certs");
  Pk pk;
  check(mbedtls_pk_setup(&pk.v, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), "setting up an EC key");
  check(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk.v), &RandomSource::random, &drbg), "making an EC key");
  unsigned char buf[1024];
  check(mbedtls_pk_write_key_pem(&pk.v, buf, sizeof buf), "writing an EC key");
  return reinterpret_cast<const char*>(buf);
}

std::string issue_cert(const CertSpec& spec, std::string_view subject_key_pem, std::string_view issuer_cert_pem,
                       std::string_view issuer_key_pem) {
  const bool self_signed = issuer_cert_pem.empty();
  if (self_signed != (spec.kind == CertSpec::Kind::ca))
    throw std::runtime_error("a CA certificate signs itself; any other is signed by the CA");
  RandomSource drbg("kairos-certs");
  Pk subject_key, issuer_key;
  parse_key(subject_key, subject_key_pem, "reading the certificate's key");
  parse_key(issuer_key, self_signed ? subject_key_pem : issuer_key_pem, "reading the CA's key");

  std::string issuer_name = subject_name(spec);
  if (!self_signed) {
    Crt issuer;
    check(tls::parse_certs(issuer, issuer_cert_pem), "reading the CA's certificate");
    char name[512];
    if (mbedtls_x509_dn_gets(name, sizeof name, &issuer.v.subject) < 0)
      throw std::runtime_error("the CA's name is too long");
    issuer_name = name;
    if (mbedtls_pk_check_pair(&issuer.v.pk, &issuer_key.v) != 0)
      throw std::runtime_error("the CA's key is not the key of its certificate");
  }

  CrtWriter w;
  mbedtls_x509write_crt_set_version(&w.v, MBEDTLS_X509_CRT_VERSION_3);
  mbedtls_x509write_crt_set_md_alg(&w.v, MBEDTLS_MD_SHA256);
  mbedtls_x509write_crt_set_subject_key(&w.v, &subject_key.v);
  mbedtls_x509write_crt_set_issuer_key(&w.v, &issuer_key.v);
  check(mbedtls_x509write_crt_set_subject_name(&w.v, subject_name(spec).c_str()), "setting the subject name");
  check(mbedtls_x509write_crt_set_issuer_name(&w.v, issuer_name.c_str()), "setting the issuer name");
  // A random positive 127-bit serial (RFC 5280 4.1.2.2: unique per CA, at most 20 bytes).
  unsigned char serial_bytes[16];
  drbg.fill(serial_bytes, sizeof serial_bytes);
  serial_bytes[0] = static_cast<unsigned char>((serial_bytes[0] & 0x7f) | 0x01);
  Mpi serial;
  check(mbedtls_mpi_read_binary(&serial.v, serial_bytes, sizeof serial_bytes), "setting the serial number");
  check(mbedtls_x509write_crt_set_serial(&w.v, &serial.v), "setting the serial number");
  const std::string from = x509_time(spec.not_before_s), to = x509_time(spec.not_after_s);
  check(mbedtls_x509write_crt_set_validity(&w.v, from.c_str(), to.c_str()), "setting the validity");
  check(mbedtls_x509write_crt_set_subject_key_identifier(&w.v), "setting the subject key identifier");
  check(mbedtls_x509write_crt_set_authority_key_identifier(&w.v), "setting the authority key identifier");

  if (spec.kind == CertSpec::Kind::ca) {
    // pathlen 0: the mesh CA signs devices, never another CA.
    check(mbedtls_x509write_crt_set_basic_constraints(&w.v, 1, 0), "setting the basic constraints");
    check(mbedtls_x509write_crt_set_key_usage(&w.v, MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN),
          "setting the key usage");
  } else {
    check(mbedtls_x509write_crt_set_basic_constraints(&w.v, 0, -1), "setting the basic constraints");
    check(mbedtls_x509write_crt_set_key_usage(&w.v, MBEDTLS_X509_KU_DIGITAL_SIGNATURE), "setting the key usage");
    const bool server = spec.kind == CertSpec::Kind::server;
    const std::string usage = server ? std::string(MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH))
                                     : std::string(MBEDTLS_OID_CLIENT_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH));
    add_extension(w, MBEDTLS_OID_EXTENDED_KEY_USAGE, MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE), false,
                  der(0x30, der(0x06, usage)));
    if (!spec.dns_names.empty() || !spec.ip_addresses.empty())
      add_extension(w, MBEDTLS_OID_SUBJECT_ALT_NAME, MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), false,
                    alt_names(spec));
  }
  unsigned char pem[4096];
  check(mbedtls_x509write_crt_pem(&w.v, pem, sizeof pem, &RandomSource::random, &drbg), "signing the certificate");
  return reinterpret_cast<const char*>(pem);
}

}  // namespace kairos::ctl

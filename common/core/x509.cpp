#include "common/core/x509.h"

#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include <cstdio>
#include <cstring>

#include "common/core/mbedtls_owned.h"

namespace kairos {

namespace {

std::string error_text(int rc) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "Mbed TLS error -0x%04x", static_cast<unsigned>(-rc));
  return buf;
}

std::int64_t to_unix(const mbedtls_x509_time& t) { return unix_time(t.year, t.mon, t.day, t.hour, t.min, t.sec); }

std::string ip_text(const unsigned char* p, std::size_t n) {
  char buf[64];
  if (n == 4) {
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", p[0], p[1], p[2], p[3]);
    return buf;
  }
  std::string out;
  for (std::size_t i = 0; i + 1 < n; i += 2) {
    std::snprintf(buf, sizeof buf, "%s%x", i ? ":" : "", (p[i] << 8) | p[i + 1]);
    out += buf;
  }
  return out;
}

// The dNSName and iPAddress entries of the subjectAltName extension, read
// from the raw extensions: Mbed TLS 2.28 lists only dNSName and otherName.
void read_alt_names(const mbedtls_x509_buf& v3, CertFacts& f) {
  unsigned char* p = v3.p;
  const unsigned char* end = v3.p + v3.len;
  std::size_t len = 0;
  if (!p || mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0) return;
  end = p + len;
  while (p < end) {
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0) return;
    const unsigned char* ext_end = p + len;
    std::size_t oid_len = 0;
    if (mbedtls_asn1_get_tag(&p, ext_end, &oid_len, MBEDTLS_ASN1_OID) != 0) return;
    const bool san = oid_len == MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME) &&
                     std::memcmp(p, MBEDTLS_OID_SUBJECT_ALT_NAME, oid_len) == 0;
    p += oid_len;
    if (!san) {
      p = const_cast<unsigned char*>(ext_end);
      continue;
    }
    int critical = 0;
    mbedtls_asn1_get_bool(&p, ext_end, &critical);
    if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_OCTET_STRING) != 0) return;
    if (mbedtls_asn1_get_tag(&p, ext_end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0) return;
    const unsigned char* names_end = p + len;
    while (p < names_end) {
      const unsigned char tag = *p++;
      if (mbedtls_asn1_get_len(&p, names_end, &len) != 0) return;
      if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2)) f.dns_names.emplace_back(reinterpret_cast<const char*>(p), len);
      if (tag == (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7) && (len == 4 || len == 16))
        f.ip_addresses.push_back(ip_text(p, len));
      p += len;
    }
    return;
  }
}

}  // namespace

std::optional<CertFacts> read_cert(std::string_view pem, std::string& why) {
  tls::Crt crt;
  int rc = tls::parse_certs(crt, pem);
  if (rc < 0 || crt.v.raw.p == nullptr) {
    why = rc < 0 ? "not a certificate (" + error_text(rc) + ")" : "no certificate in it";
    return std::nullopt;
  }
  CertFacts f;
  char buf[512];
  if (mbedtls_x509_dn_gets(buf, sizeof buf, &crt.v.subject) > 0) f.subject = buf;
  if (mbedtls_x509_dn_gets(buf, sizeof buf, &crt.v.issuer) > 0) f.issuer = buf;
  for (const mbedtls_x509_name* n = &crt.v.subject; n; n = n->next)
    if (n->oid.p && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0)
      f.common_name.assign(reinterpret_cast<const char*>(n->val.p), n->val.len);
  f.not_before_s = to_unix(crt.v.valid_from);
  f.not_after_s = to_unix(crt.v.valid_to);
  f.is_ca = crt.v.ca_istrue != 0;
  read_alt_names(crt.v.v3_ext, f);
  return f;
}

int count_certs(std::string_view pem, std::string& why) {
  tls::Crt crt;
  int rc = tls::parse_certs(crt, pem);
  int n = 0;
  for (const mbedtls_x509_crt* c = &crt.v; c && c->raw.p; c = c->next) ++n;
  if (n == 0) why = rc < 0 ? "not a certificate (" + error_text(rc) + ")" : "no certificate in it";
  return n;
}

bool read_private_key(std::string_view key_pem, std::string& why) {
  tls::Pk pk;
  int rc = tls::parse_key(pk, key_pem);
  if (rc == MBEDTLS_ERR_PK_PASSWORD_REQUIRED) why = "the key is encrypted (give it without a passphrase)";
  else if (rc != 0) why = "not a private key (" + error_text(rc) + ")";
  return rc == 0;
}

bool key_fits_cert(std::string_view cert_pem, std::string_view key_pem) {
  tls::Crt crt;
  tls::Pk pk;
  if (tls::parse_certs(crt, cert_pem) < 0 || !crt.v.raw.p || tls::parse_key(pk, key_pem) != 0) return false;
  return mbedtls_pk_check_pair(&crt.v.pk, &pk.v) == 0;
}

bool issued_by(std::string_view cert_pem, std::string_view ca_pem) {
  tls::Crt crt, ca;
  if (tls::parse_certs(crt, cert_pem) < 0 || !crt.v.raw.p) return false;
  if (tls::parse_certs(ca, ca_pem) < 0 || !ca.v.raw.p) return false;
  // Only the chain counts: a certificate of the CA that has expired still
  // tells which CA issued it.
  std::uint32_t flags = 0;
  mbedtls_x509_crt_verify(&crt.v, &ca.v, nullptr, nullptr, &flags, nullptr, nullptr);
  constexpr std::uint32_t kTimes = MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE;
  return (flags & ~kTimes) == 0;
}

Validity validity_at(const CertFacts& cert, std::int64_t now_s) {
  if (now_s < cert.not_before_s) return Validity::not_yet_valid;
  if (now_s > cert.not_after_s) return Validity::expired;
  return Validity::valid;
}

std::int64_t unix_time(int year, int month, int day, int hour, int minute, int second) {
  // Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil).
  const int y = year - (month <= 2 ? 1 : 0);
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const std::int64_t days = static_cast<std::int64_t>(era) * 146097 + doe - 719468;
  return days * 86400 + hour * 3600 + minute * 60 + second;
}

std::string utc_text(std::int64_t unix_s) {
  // The inverse of unix_time (H. Hinnant's civil_from_days).
  std::int64_t days = unix_s >= 0 ? unix_s / 86400 : (unix_s - 86399) / 86400;
  std::int64_t secs = unix_s - days * 86400;
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const std::int64_t doe = days - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  char buf[128];
  std::snprintf(buf, sizeof buf, "%04lld-%02lld-%02lld %02lld:%02lld UTC", static_cast<long long>(y),
                static_cast<long long>(m), static_cast<long long>(d), static_cast<long long>(secs / 3600),
                static_cast<long long>(secs % 3600 / 60));
  return buf;
}

}  // namespace kairos

#pragma once
// What Kairos reads from X.509 certificates and keys (PEM text, Mbed TLS's
// parser): the facts a TLS connect failure is explained with, and that
// provisioning checks before it keeps a certificate. Pure code: text in,
// facts out; validity is compared with a time the caller passes.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kairos {

// One certificate's facts.
struct CertFacts {
  std::string subject;                    // "CN=n1, O=Kairos mesh farm"
  std::string common_name;                // "n1"
  std::string issuer;                     // the issuer's subject
  std::int64_t not_before_s = 0;          // Unix time, s
  std::int64_t not_after_s = 0;           // Unix time, s
  bool is_ca = false;                     // basicConstraints CA:TRUE
  std::vector<std::string> dns_names;     // subjectAltName dNSName entries
  std::vector<std::string> ip_addresses;  // subjectAltName iPAddress entries, as text ("127.0.0.1")
};

// The first certificate of PEM (or DER) text; nullopt with why.
std::optional<CertFacts> read_cert(std::string_view pem, std::string& why);
// How many certificates a PEM text (a CA file) holds; 0 with why.
int count_certs(std::string_view pem, std::string& why);
// Whether key_pem is an unencrypted private key that Mbed TLS reads; why when not.
bool read_private_key(std::string_view key_pem, std::string& why);
// Whether key_pem is the private key of the first certificate of cert_pem.
bool key_fits_cert(std::string_view cert_pem, std::string_view key_pem);
// Whether the first certificate of cert_pem is signed by one of the CA
// certificates in ca_pem (their validity times aside).
bool issued_by(std::string_view cert_pem, std::string_view ca_pem);

// Where now_s stands against a certificate's validity.
enum class Validity { valid, expired, not_yet_valid };
Validity validity_at(const CertFacts& cert, std::int64_t now_s);

// Unix time (s) as "2026-12-03 12:00 UTC".
std::string utc_text(std::int64_t unix_s);
// Unix time (s) of a UTC calendar time.
std::int64_t unix_time(int year, int month, int day, int hour, int minute, int second);

}  // namespace kairos

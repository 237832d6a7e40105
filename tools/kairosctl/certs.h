#pragma once
// The mesh's certificates for MQTT over TLS, written with Mbed TLS's
// x509write: a mesh CA, the broker's server certificate and one client
// certificate per device (docs/DESIGN.md 7). EC P-256 keys, ECDSA with
// SHA-256. Times come in as arguments.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kairos::ctl {

struct CertSpec {
  enum class Kind { ca, server, client };
  Kind kind = Kind::client;
  std::string common_name;              // the device or operator name; the CA's title
  std::string organization;             // "" for none
  std::vector<std::string> dns_names;   // server: subjectAltName dNSName
  std::vector<std::string> ip_addresses;  // server: subjectAltName iPAddress ("127.0.0.1", "::1")
  std::int64_t not_before_s = 0;        // Unix time, s
  std::int64_t not_after_s = 0;
};

// A new EC P-256 private key, PEM (SEC 1). Throws std::runtime_error.
std::string new_ec_key();

// A certificate for spec and the public half of subject_key_pem, signed by
// the issuer (its certificate and key, PEM); a CA signs itself when
// issuer_cert_pem is empty. PEM. Throws std::runtime_error.
std::string issue_cert(const CertSpec& spec, std::string_view subject_key_pem, std::string_view issuer_cert_pem,
                       std::string_view issuer_key_pem);

}  // namespace kairos::ctl

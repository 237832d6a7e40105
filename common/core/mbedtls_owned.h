#pragma once
// Mbed TLS contexts owned in C++ (init on construction, free on
// destruction), and its PEM/DER parsers given text: shared by the X.509
// reader (common/core/x509) and the certificate writer (kairosctl).
#include <mbedtls/bignum.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include <string>
#include <string_view>

namespace kairos::tls {

template <typename T, void (*Init)(T*), void (*Free)(T*)>
struct Owned {
  T v;
  Owned() { Init(&v); }
  ~Owned() { Free(&v); }
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
};

using Crt = Owned<mbedtls_x509_crt, mbedtls_x509_crt_init, mbedtls_x509_crt_free>;
using Pk = Owned<mbedtls_pk_context, mbedtls_pk_init, mbedtls_pk_free>;
using Mpi = Owned<mbedtls_mpi, mbedtls_mpi_init, mbedtls_mpi_free>;
using CrtWriter = Owned<mbedtls_x509write_cert, mbedtls_x509write_crt_init, mbedtls_x509write_crt_free>;

// Mbed TLS counts a PEM text's terminating NUL in its length, not a DER one's.
inline std::size_t parse_length(const std::string& buf) {
  return buf.find("-----BEGIN ") != std::string::npos ? buf.size() + 1 : buf.size();
}

// Every certificate of text appended to crt: Mbed TLS's return code.
inline int parse_certs(Crt& crt, std::string_view text) {
  std::string buf(text);
  return mbedtls_x509_crt_parse(&crt.v, reinterpret_cast<const unsigned char*>(buf.c_str()), parse_length(buf));
}

// An unencrypted private key: Mbed TLS's return code.
inline int parse_key(Pk& pk, std::string_view text) {
  std::string buf(text);
  return mbedtls_pk_parse_key(&pk.v, reinterpret_cast<const unsigned char*>(buf.c_str()), parse_length(buf), nullptr, 0);
}

}  // namespace kairos::tls

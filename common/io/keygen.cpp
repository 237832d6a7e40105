#include "common/io/keygen.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>

#include <stdexcept>

namespace kairos {

Bytes random_bytes(std::size_t n) {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_entropy_init(&entropy);
  mbedtls_ctr_drbg_init(&drbg);
  static constexpr unsigned char kPersonal[] = "kairos-keygen";
  Bytes out(n);
  int rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, kPersonal, sizeof kPersonal - 1);
  // The DRBG hands out at most MBEDTLS_CTR_DRBG_MAX_REQUEST bytes per call.
  for (std::size_t done = 0; rc == 0 && done < n;) {
    std::size_t chunk = std::min<std::size_t>(n - done, MBEDTLS_CTR_DRBG_MAX_REQUEST);
    rc = mbedtls_ctr_drbg_random(&drbg, out.data() + done, chunk);
    done += chunk;
  }
  mbedtls_ctr_drbg_free(&drbg);
  mbedtls_entropy_free(&entropy);
  if (rc != 0) throw std::runtime_error("random generator failed (Mbed TLS error " + std::to_string(rc) + ")");
  return out;
}

Key generate_key() {
  Key k;
  auto b = random_bytes(k.bytes.size());
  std::copy(b.begin(), b.end(), k.bytes.begin());
  return k;
}

std::string generate_password() {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  auto b = random_bytes(32);
  std::string out;
  for (auto byte : b) out.push_back(kAlphabet[byte & 63]);
  return out;
}

}  // namespace kairos

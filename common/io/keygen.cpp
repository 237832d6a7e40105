#include "common/io/keygen.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace kairos {

RandomSource::RandomSource(const char* personal) {
  mbedtls_entropy_init(&entropy_);
  mbedtls_ctr_drbg_init(&drbg_);
  int rc = mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, &entropy_, reinterpret_cast<const unsigned char*>(personal),
                                 std::strlen(personal));
  if (rc != 0) {
    mbedtls_ctr_drbg_free(&drbg_);
    mbedtls_entropy_free(&entropy_);
    throw std::runtime_error("seeding the random generator failed (Mbed TLS error " + std::to_string(rc) + ")");
  }
}

RandomSource::~RandomSource() {
  mbedtls_ctr_drbg_free(&drbg_);
  mbedtls_entropy_free(&entropy_);
}

int RandomSource::random(void* self, unsigned char* out, std::size_t len) {
  auto& drbg = static_cast<RandomSource*>(self)->drbg_;
  // The DRBG hands out at most MBEDTLS_CTR_DRBG_MAX_REQUEST bytes per call.
  for (std::size_t done = 0; done < len;) {
    std::size_t chunk = std::min<std::size_t>(len - done, MBEDTLS_CTR_DRBG_MAX_REQUEST);
    if (int rc = mbedtls_ctr_drbg_random(&drbg, out + done, chunk); rc != 0) return rc;
    done += chunk;
  }
  return 0;
}

void RandomSource::fill(unsigned char* out, std::size_t len) {
  if (int rc = random(this, out, len); rc != 0)
    throw std::runtime_error("random generator failed (Mbed TLS error " + std::to_string(rc) + ")");
}

Bytes random_bytes(std::size_t n) {
  Bytes out(n);
  RandomSource("kairos-keygen").fill(out.data(), n);
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

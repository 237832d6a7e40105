#pragma once
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>

#include <string>

#include "common/core/bytes.h"
#include "common/core/crypto.h"

namespace kairos {

// Mbed TLS's CTR-DRBG seeded from its entropy sources (the OS's getrandom /
// /dev/urandom), for Mbed TLS calls that take a generator (f_rng, p_rng).
// Throws std::runtime_error when it cannot be seeded.
class RandomSource {
 public:
  explicit RandomSource(const char* personal);
  ~RandomSource();
  RandomSource(const RandomSource&) = delete;
  RandomSource& operator=(const RandomSource&) = delete;
  // Mbed TLS's generator callback, with this as p_rng.
  static int random(void* self, unsigned char* out, std::size_t len);
  // Fills out; throws on failure.
  void fill(unsigned char* out, std::size_t len);

 private:
  mbedtls_entropy_context entropy_;
  mbedtls_ctr_drbg_context drbg_;
};

// Random bytes from Mbed TLS's CTR-DRBG seeded by its entropy sources
// (the OS's getrandom / /dev/urandom). Throws std::runtime_error.
Bytes random_bytes(std::size_t n);
// A new 256-bit key.
Key generate_key();
// A random broker password: 32 characters of base64url (192 bits).
std::string generate_password();

}  // namespace kairos

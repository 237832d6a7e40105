#pragma once
#include <string>

#include "common/core/bytes.h"
#include "common/core/crypto.h"

namespace kairos {

// Random bytes from Mbed TLS's CTR-DRBG seeded by its entropy sources
// (the OS's getrandom / /dev/urandom). Throws std::runtime_error.
Bytes random_bytes(std::size_t n);
// A new 256-bit key.
Key generate_key();
// A random broker password: 32 characters of base64url (192 bits).
std::string generate_password();

}  // namespace kairos

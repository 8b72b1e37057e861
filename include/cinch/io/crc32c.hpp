// CRC-32C (Castagnoli), the checksum of the cinch stream format.
//
// Polynomial 0x1EDC6F41 (0x82F63B78 bit-reflected), input and output
// reflected, initial value and final XOR 0xFFFFFFFF: the variant of iSCSI
// (RFC 3720), ext4 and the SSE4.2 crc32 instruction. It detects every burst
// error of up to 32 bits, so every single-bit flip.
// Check value: crc32c("123456789") == 0xE3069283.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace cinch::io {

// CRC-32C of `bytes`, continuing from `crc`, the CRC of the bytes before them
// (0 to start): crc32c(b, crc32c(a)) == crc32c(a followed by b).
[[nodiscard]] std::uint32_t crc32c(std::span<const std::byte> bytes, std::uint32_t crc = 0) noexcept;

}  // namespace cinch::io

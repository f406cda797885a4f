// ByteReader: bounds-checked little-endian reads from a byte span. Every read
// past the end throws ParseError(Truncated), so parsers of untrusted binaries
// never read out of bounds no matter what the offsets in the file say.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "symbols/result.h"

namespace goroscope {

class ByteReader {
 public:
  ByteReader() = default;
  ByteReader(std::span<const uint8_t> bytes, std::string what) : bytes_(bytes), what_(std::move(what)) {}

  size_t size() const { return bytes_.size(); }
  std::span<const uint8_t> bytes() const { return bytes_; }
  const std::string& what() const { return what_; }

  bool has(uint64_t off, uint64_t len) const { return off <= bytes_.size() && len <= bytes_.size() - off; }

  void require(uint64_t off, uint64_t len) const {
    if (!has(off, len)) [[unlikely]]
      fail_past_end(off, len);
  }

  uint8_t u8(uint64_t off) const {
    require(off, 1);
    return bytes_[off];
  }
  uint16_t u16(uint64_t off) const { return load<uint16_t>(off); }
  uint32_t u32(uint64_t off) const { return load<uint32_t>(off); }
  uint64_t u64(uint64_t off) const { return load<uint64_t>(off); }
  int32_t i32(uint64_t off) const { return static_cast<int32_t>(u32(off)); }
  uint64_t word(uint64_t off, unsigned ptr_size) const { return ptr_size == 8 ? u64(off) : u32(off); }

  // Unsigned LEB128 varint as Go's encoding/binary writes it; advances off.
  uint64_t uvarint(uint64_t& off) const {
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      uint8_t b = u8(off++);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw ParseError(ErrorKind::Corrupt, what_ + ": varint longer than 10 bytes at offset " + std::to_string(off));
  }

  // NUL-terminated string starting at off (the NUL must be inside the span).
  std::string_view cstring(uint64_t off) const {
    require(off, 1);
    const void* nul = std::memchr(bytes_.data() + off, 0, bytes_.size() - off);
    if (!nul) throw ParseError(ErrorKind::Truncated, what_ + ": truncated: unterminated string at offset " + std::to_string(off));
    return {reinterpret_cast<const char*>(bytes_.data() + off),
            static_cast<size_t>(static_cast<const uint8_t*>(nul) - (bytes_.data() + off))};
  }

  std::string_view str(uint64_t off, uint64_t len) const {
    require(off, len);
    return {reinterpret_cast<const char*>(bytes_.data() + off), static_cast<size_t>(len)};
  }

  ByteReader sub(uint64_t off, uint64_t len, std::string what) const {
    require(off, len);
    return ByteReader(bytes_.subspan(off, len), std::move(what));
  }
  ByteReader from(uint64_t off, std::string what) const {
    require(off, 0);
    return ByteReader(bytes_.subspan(off), std::move(what));
  }

 private:
  // Out of line and cold so that require() inlines to one compare on the hot
  // lookup paths (pclntab decoding).
  [[gnu::cold, gnu::noinline, noreturn]] void fail_past_end(uint64_t off, uint64_t len) const {
    throw ParseError(ErrorKind::Truncated, what_ + ": truncated: read of " + std::to_string(len) + " bytes at offset " +
                                               std::to_string(off) + " runs past its end (" +
                                               std::to_string(bytes_.size()) + " bytes)");
  }

  template <typename T>
  T load(uint64_t off) const {
    require(off, sizeof(T));
    T v;
    std::memcpy(&v, bytes_.data() + off, sizeof(T));
    return v;  // goroscope reads little-endian targets only (amd64, arm64)
  }

  std::span<const uint8_t> bytes_;
  std::string what_ = "input";
};

}  // namespace goroscope

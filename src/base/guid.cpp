#include "tributary/base/guid.h"

#include <chrono>
#include <mutex>
#include <random>

namespace tributary {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<Guid> Guid::Parse(std::string_view text) {
  if (text.size() == 38 && text.front() == '{' && text.back() == '}') text = text.substr(1, 36);
  if (text.size() != 36) return std::nullopt;
  std::array<uint8_t, 16> b{};
  size_t bi = 0;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    int hi = HexValue(text[i]);
    int lo = HexValue(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    b[bi++] = static_cast<uint8_t>(hi << 4 | lo);
    i += 2;
  }
  return Guid(b);
}

void Guid::AppendTo(std::string& out) const {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b_[i] >> 4]);
    out.push_back(kHex[b_[i] & 15]);
  }
}

std::string Guid::ToString() const {
  std::string s;
  s.reserve(36);
  AppendTo(s);
  return s;
}

namespace {

struct SequentialState {
  std::mutex mu;
  uint64_t last_ms = 0;
  uint64_t counter = 0;  // 42 bits used
  std::mt19937_64 rng{std::random_device{}()};
};

SequentialState& State() {
  static SequentialState s;
  return s;
}

}  // namespace

Guid GuidGenerator::NewSequential() {
  auto& s = State();
  uint64_t ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  uint64_t counter;
  uint64_t rand;
  {
    std::lock_guard lock(s.mu);
    if (ms > s.last_ms) {
      s.last_ms = ms;
      s.counter = s.rng() & ((uint64_t{1} << 40) - 1);  // random start leaves headroom
    } else {
      ms = s.last_ms;
      if (++s.counter >= (uint64_t{1} << 42)) {  // exhausted: borrow the next millisecond
        s.last_ms = ++ms;
        s.counter = 0;
      }
    }
    counter = s.counter;
    rand = s.rng();
  }
  std::array<uint8_t, 16> b{};
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(ms >> (40 - 8 * i));
  // version 7 nibble + 12 counter bits, variant bits + 30 counter bits, then 32 random bits.
  b[6] = static_cast<uint8_t>(0x70 | ((counter >> 38) & 0x0f));
  b[7] = static_cast<uint8_t>(counter >> 30);
  b[8] = static_cast<uint8_t>(0x80 | ((counter >> 24) & 0x3f));
  b[9] = static_cast<uint8_t>(counter >> 16);
  b[10] = static_cast<uint8_t>(counter >> 8);
  b[11] = static_cast<uint8_t>(counter);
  for (int i = 0; i < 4; ++i) b[12 + i] = static_cast<uint8_t>(rand >> (8 * i));
  return Guid(b);
}

Guid GuidGenerator::NewRandom() {
  auto& s = State();
  uint64_t a, c;
  {
    std::lock_guard lock(s.mu);
    a = s.rng();
    c = s.rng();
  }
  std::array<uint8_t, 16> b{};
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(a >> (8 * i));
  for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<uint8_t>(c >> (8 * i));
  b[6] = static_cast<uint8_t>(0x40 | (b[6] & 0x0f));
  b[8] = static_cast<uint8_t>(0x80 | (b[8] & 0x3f));
  return Guid(b);
}

}  // namespace tributary

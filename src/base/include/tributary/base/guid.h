#pragma once
// Guid: a 128-bit identifier written as 36 lowercase hex characters with dashes.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tributary {

class Guid {
 public:
  Guid() = default;  // the nil GUID
  explicit Guid(const std::array<uint8_t, 16>& bytes) : b_(bytes) {}

  // Accepts "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" in any case, optionally in braces.
  static std::optional<Guid> Parse(std::string_view text);
  // Lowercase canonical text form.
  std::string ToString() const;
  void AppendTo(std::string& out) const;

  bool IsNil() const { return b_ == std::array<uint8_t, 16>{}; }
  const std::array<uint8_t, 16>& bytes() const { return b_; }
  auto operator<=>(const Guid&) const = default;

 private:
  std::array<uint8_t, 16> b_{};
};

// Generates time-ordered GUIDs (UUID version 7 layout: 48-bit Unix milliseconds, then a counter and
// random bits), so that new keys append to the primary-key B-tree in text order as well as byte
// order. Monotonic within the process even when the clock stands still or steps back.
// Thread-safe.
class GuidGenerator {
 public:
  static Guid NewSequential();
  static Guid NewRandom();
};

}  // namespace tributary

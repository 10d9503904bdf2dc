#pragma once
// Time values and the clock seam.
//
// Timestamp: milliseconds since the Unix epoch, UTC. Dataverse shows date-times to the second
// ("2023-04-07T21:59:01Z"); we keep milliseconds so that ordering by createdon is stable.
// Date: days since the Unix epoch, for DateOnly columns ("2023-04-07").

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tributary {

struct Timestamp {
  int64_t ms = 0;
  auto operator<=>(const Timestamp&) const = default;
};

struct Date {
  int32_t days = 0;
  auto operator<=>(const Date&) const = default;
};

// "YYYY-MM-DDTHH:MM:SSZ" (no fractional seconds, as Dataverse writes them).
std::string FormatTimestamp(Timestamp t);
void AppendTimestamp(std::string& out, Timestamp t);
// Accepts "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.fff…]]" followed by "Z", "±hh:mm" or nothing (UTC).
std::optional<Timestamp> ParseTimestamp(std::string_view text);

std::string FormatDate(Date d);
// Accepts "YYYY-MM-DD" and, ignoring the time part, a full date-time.
std::optional<Date> ParseDate(std::string_view text);
Date DateOf(Timestamp t);

// Days since epoch for a civil date (proleptic Gregorian).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d);
// The civil date of a day number (the inverse of DaysFromCivil).
struct Civil {
  int64_t y;
  unsigned m, d;
};
Civil CivilFromDays(int64_t z);
// Days in month `m` (1–12) of year `y`.
unsigned DaysInMonth(int64_t y, unsigned m);

// The clock seam: production uses SystemClock; tests inject a manual clock.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Timestamp Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  Timestamp Now() const override;
  static const SystemClock& Get();
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(Timestamp t) : now_(t) {}
  Timestamp Now() const override { return now_; }
  void Advance(int64_t ms) { now_.ms += ms; }
  void Set(Timestamp t) { now_ = t; }

 private:
  Timestamp now_;
};

}  // namespace tributary

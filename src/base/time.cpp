#include "tributary/base/time.h"

#include <chrono>
#include <cstdio>

namespace tributary {
namespace {

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

bool Digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

bool ParseCivilDate(std::string_view s, int64_t& days) {
  int y, m, d;
  if (!Digits(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, m) || s[7] != '-' || !Digits(s, 8, 2, d))
    return false;
  if (m < 1 || m > 12 || d < 1 || static_cast<unsigned>(d) > DaysInMonth(y, m)) return false;
  days = DaysFromCivil(y, m, d);
  return true;
}

}  // namespace

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// Howard Hinnant's civil-from-days algorithm.
Civil CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2), m, d};
}


int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void AppendTimestamp(std::string& out, Timestamp t) {
  int64_t secs = FloorDiv(t.ms, 1000);
  int64_t days = FloorDiv(secs, 86400);
  int64_t rem = secs - days * 86400;
  Civil c = CivilFromDays(days);
  char buf[32];
  int n = std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02dZ", static_cast<long long>(c.y), c.m, c.d,
                        static_cast<int>(rem / 3600), static_cast<int>(rem / 60 % 60), static_cast<int>(rem % 60));
  out.append(buf, static_cast<size_t>(n));
}

std::string FormatTimestamp(Timestamp t) {
  std::string s;
  AppendTimestamp(s, t);
  return s;
}

std::optional<Timestamp> ParseTimestamp(std::string_view s) {
  int64_t days;
  if (!ParseCivilDate(s, days)) return std::nullopt;
  int64_t ms = days * 86400000;
  if (s.size() == 10) return Timestamp{ms};
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return std::nullopt;
  int hh, mm, ss = 0;
  if (!Digits(s, 11, 2, hh) || s.size() < 16 || s[13] != ':' || !Digits(s, 14, 2, mm)) return std::nullopt;
  size_t pos = 16;
  if (pos < s.size() && s[pos] == ':') {
    if (!Digits(s, pos + 1, 2, ss)) return std::nullopt;
    pos += 3;
    if (pos < s.size() && s[pos] == '.') {
      ++pos;
      int frac_ms = 0, digits = 0;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        if (digits < 3) frac_ms = frac_ms * 10 + (s[pos] - '0');
        ++digits;
        ++pos;
      }
      if (digits == 0) return std::nullopt;
      for (int i = digits; i < 3; ++i) frac_ms *= 10;
      ms += frac_ms;
    }
  }
  if (hh > 23 || mm > 59 || ss > 59) return std::nullopt;
  ms += (hh * 3600LL + mm * 60LL + ss) * 1000;
  if (pos == s.size()) return Timestamp{ms};
  if ((s[pos] == 'Z' || s[pos] == 'z') && pos + 1 == s.size()) return Timestamp{ms};
  if (s[pos] == '+' || s[pos] == '-') {
    int oh, om;
    if (!Digits(s, pos + 1, 2, oh) || pos + 6 != s.size() || s[pos + 3] != ':' || !Digits(s, pos + 4, 2, om))
      return std::nullopt;
    if (oh > 14 || om > 59) return std::nullopt;
    int64_t off = (oh * 60LL + om) * 60000;
    ms += s[pos] == '+' ? -off : off;
    return Timestamp{ms};
  }
  return std::nullopt;
}

std::string FormatDate(Date d) {
  Civil c = CivilFromDays(d.days);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(c.y), c.m, c.d);
  return buf;
}

std::optional<Date> ParseDate(std::string_view s) {
  int64_t days;
  if (!ParseCivilDate(s, days)) return std::nullopt;
  if (s.size() > 10) {
    auto t = ParseTimestamp(s);
    if (!t) return std::nullopt;
  }
  return Date{static_cast<int32_t>(days)};
}

Date DateOf(Timestamp t) { return Date{static_cast<int32_t>(FloorDiv(t.ms, 86400000))}; }

Timestamp SystemClock::Now() const {
  return Timestamp{
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count()};
}

const SystemClock& SystemClock::Get() {
  static const SystemClock clock;
  return clock;
}

}  // namespace tributary

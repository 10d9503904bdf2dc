#include "tributary/base/status.h"

#include <cstdio>

namespace tributary {

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out;
  if (error_code_ != 0) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x: ", error_code_);
    out += buf;
  }
  out += message_;
  return out;
}

}  // namespace tributary

#include "cli_status.h"

#include <cstdio>

namespace tributary::app {

int ExitCode(const Status& s) {
  switch (s.code()) {
    case Code::kOk:
      return 0;
    case Code::kInvalidArgument:
    case Code::kNotFound:
    case Code::kAlreadyExists:
    case Code::kFailedPrecondition:
    case Code::kPermissionDenied:
      return 2;
    default:
      return 1;
  }
}

int Report(const Status& s, int exit_code) {
  if (s.ok()) return 0;
  std::fprintf(stderr, "tributary: %s\n", s.message().c_str());
  return exit_code;
}

}  // namespace tributary::app

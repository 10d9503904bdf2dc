#pragma once
// Exit codes and error output shared by the command-line tools (`user`, `role`, `bus`).

#include "tributary/base/status.h"

namespace tributary::app {

// 0 for OK; 2 for what the caller can fix (bad arguments, unknown or existing names, a refused
// precondition such as a data folder in use, a denied permission); 1 for any other failure.
int ExitCode(const Status& s);

// Prints "tributary: <message>" on stderr unless `s` is OK; returns `exit_code`.
int Report(const Status& s, int exit_code);
inline int Report(const Status& s) { return Report(s, ExitCode(s)); }

}  // namespace tributary::app

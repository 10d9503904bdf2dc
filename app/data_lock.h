#pragma once
// One process at a time on an embedded data folder. `tributary serve` holds an exclusive flock on
// <data>/tributary.lock while it runs (the OS drops it when the process ends, kill -9 included),
// and writes its pid and URL into the file; `tributary bus …` holds it for the length of a
// command. A second server, or a bus command while a server runs, is refused with a message that
// names the holder: each keeps the bus in memory and would not see the other's changes.

#include <string>

#include "tributary/base/status.h"

namespace tributary::app {

class DataLock {
 public:
  // Creates the folder when missing, then takes the lock. kFailedPrecondition when another
  // process holds it; the message names that process (its pid and URL, as it recorded them).
  static Result<DataLock> Acquire(const std::string& data_dir);

  DataLock(DataLock&& other) noexcept;
  DataLock& operator=(DataLock&&) = delete;
  DataLock(const DataLock&) = delete;
  ~DataLock();

  // Records who holds the lock ("pid 123, http://127.0.0.1:8080") for the messages of others.
  void Describe(const std::string& url);

 private:
  explicit DataLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace tributary::app

#include "data_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "tributary/base/strings.h"

namespace tributary::app {

namespace {

constexpr const char* kLockFile = "tributary.lock";

// What the holder recorded: its first line, printable, at most 200 bytes.
std::string ReadHolder(int fd) {
  char buf[256];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "";
  std::string s(buf, static_cast<size_t>(n));
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  return PrintableText(s, 200);
}

void Record(int fd, const std::string& text) {
  const std::string line = text + "\n";
  if (ftruncate(fd, 0) != 0) return;
  // Best effort: the text only improves the message another process prints.
  (void)!pwrite(fd, line.data(), line.size(), 0);
}

}  // namespace

Result<DataLock> DataLock::Acquire(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return Status(Code::kInternal, "cannot create the data folder " + data_dir + ": " + ec.message());
  const std::string path = (std::filesystem::path(data_dir) / kLockFile).string();
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status(Code::kInternal, "cannot open " + path + ": " + std::strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder = err == EWOULDBLOCK ? ReadHolder(fd) : "";
    close(fd);
    if (err != EWOULDBLOCK) return Status(Code::kInternal, "cannot lock " + path + ": " + std::strerror(err));
    return Status(Code::kFailedPrecondition,
                  "the data folder " + data_dir + " is in use by another Tributary process" +
                      (holder.empty() ? std::string() : " (" + holder + ")") +
                      ". One process at a time: stop it first, or, while a server runs, use its HTTP API.");
  }
  Record(fd, "pid " + std::to_string(getpid()));
  return DataLock(fd);
}

DataLock::DataLock(DataLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

DataLock::~DataLock() {
  if (fd_ < 0) return;
  // Emptied first, so that a stale description never outlives the lock.
  (void)!ftruncate(fd_, 0);
  close(fd_);  // releases the flock
}

void DataLock::Describe(const std::string& url) {
  if (fd_ >= 0) Record(fd_, "pid " + std::to_string(getpid()) + ", " + url);
}

}  // namespace tributary::app

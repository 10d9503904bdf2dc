#include <future>

#include "tributary/storage/engine.h"

namespace tributary::storage {

Status Engine::WriteSync(WriteFn fn) {
  std::promise<Status> p;
  auto f = p.get_future();
  Write(std::move(fn), [&p](Status s) { p.set_value(std::move(s)); });
  return f.get();
}

std::string Placeholders(size_t n) {
  std::string s;
  s.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) s += i ? ",?" : "?";
  return s;
}

}  // namespace tributary::storage

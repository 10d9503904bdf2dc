#include <future>

#include "tributary/storage/engine.h"

namespace tributary::storage {

Status Engine::WriteSync(WriteFn fn) {
  std::promise<Status> p;
  auto f = p.get_future();
  Write(std::move(fn), [&p](Status s) { p.set_value(std::move(s)); });
  return f.get();
}

}  // namespace tributary::storage

// libFuzzer target for the OData URL parsers: $filter, $expand, $orderby, $select, the resource
// path, single literals and the query string. The input must never crash, hang or fail with
// anything but a QueryError; a successful $filter must yield a well-formed tree.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "tributary/base/status.h"
#include "tributary/base/strings.h"
#include "tributary/data/query.h"
#include "tributary/odata/uri_parser.h"

namespace {

using tributary::Status;
using tributary::data::Expr;

void Check(const Status& s, const char* what) {
  if (s.ok()) return;
  if (s.error_code() != tributary::err::kQueryError || s.code() != tributary::Code::kInvalidArgument) {
    std::fprintf(stderr, "%s failed without kQueryError: %s\n", what, s.message().c_str());
    std::abort();
  }
  if (s.message().empty() || !tributary::IsUtf8(s.message())) {
    std::fprintf(stderr, "%s: empty or invalid UTF-8 message: %s\n", what, s.message().c_str());
    std::abort();
  }
}

// Verifies the shape promised by query.h; aborts on a broken invariant. Iterative so that the
// checker itself does not depend on the depth bound it is checking.
void CheckTree(const Expr& root) {
  std::vector<const Expr*> stack = {&root};
  while (!stack.empty()) {
    const Expr* e = stack.back();
    stack.pop_back();
    size_t want = 0;
    switch (e->kind) {
      case Expr::Kind::kAnd:
      case Expr::Kind::kOr:
      case Expr::Kind::kCompare:
      case Expr::Kind::kFunction:
        want = 2;
        break;
      case Expr::Kind::kNot:
        want = 1;
        break;
      case Expr::Kind::kLambda:
        want = e->children.empty() ? 0 : 1;
        break;
      default:
        want = 0;
        break;
    }
    if (e->children.size() != want) {
      std::fprintf(stderr, "node kind %d has %zu children\n", static_cast<int>(e->kind), e->children.size());
      std::abort();
    }
    for (const auto& c : e->children) {
      if (!c) std::abort();
      stack.push_back(c.get());
    }
    if (e->kind == Expr::Kind::kCompare) {
      for (const auto& c : e->children)
        if (c->kind != Expr::Kind::kProperty && c->kind != Expr::Kind::kLiteral) std::abort();
    }
    if (e->kind == Expr::Kind::kProperty && e->path.empty()) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  static const tributary::odata::AliasMap kAliases = {
      {"@p1", "'Contoso'"}, {"@p2", "[\"a\",'b',5]"}, {"@p3", "revenue"}, {"@p4", "{'@odata.id':'accounts(1)'}"}};

  auto filter = tributary::odata::ParseFilter(text, kAliases);
  Check(filter.status(), "ParseFilter");
  if (filter.ok()) {
    if (!*filter) std::abort();
    CheckTree(**filter);
  }
  auto expand = tributary::odata::ParseExpand(text, kAliases);
  Check(expand.status(), "ParseExpand");
  if (expand.ok()) {
    std::vector<const tributary::data::Expand*> stack;
    for (const auto& e : *expand) stack.push_back(&e);
    while (!stack.empty()) {
      const auto* e = stack.back();
      stack.pop_back();
      if (e->nav.empty()) std::abort();
      if (e->options.filter) CheckTree(*e->options.filter);
      for (const auto& c : e->options.expand) stack.push_back(&c);
    }
  }
  Check(tributary::odata::ParseResourcePath(text, kAliases).status(), "ParseResourcePath");
  Check(tributary::odata::ParseOrderBy(text, kAliases).status(), "ParseOrderBy");
  Check(tributary::odata::ParseSelect(text).status(), "ParseSelect");
  Check(tributary::odata::ParseLiteral(text).status(), "ParseLiteral");
  Check(tributary::odata::ParseQueryString(text).status(), "ParseQueryString");
  return 0;
}

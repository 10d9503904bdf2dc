#pragma once
// The protocol-neutral query model: what OData's $filter/$select/$orderby/$expand (and, later,
// FetchXML) are parsed into, and what the data layer binds against the catalog and turns into SQL.
//
// The expression tree is syntactic: property paths are names, literals keep their lexical kind.
// Binding (name → column, literal → typed value) happens in the data layer, which knows the catalog.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tributary::data {

struct Literal {
  enum class Kind : uint8_t {
    kNull,
    kBool,      // text "true"/"false"
    kInteger,   // text of an integer
    kDecimal,   // text of a number with a fraction or exponent
    kString,    // text is the unescaped string
    kGuid,      // text is the canonical lowercase GUID
    kDateTime,  // text as written, e.g. "2023-01-01T00:00:00Z"
    kDate,      // "2023-01-01"
    kEnum,      // Microsoft.Dynamics.CRM.Type'Member': text = "Type'Member'"
  };
  Kind kind = Kind::kNull;
  std::string text;
  bool operator==(const Literal&) const = default;
};

enum class CompareOp : uint8_t { kEq, kNe, kGt, kGe, kLt, kLe };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind : uint8_t {
    kAnd,            // children[0] and children[1]
    kOr,             // children[0] or children[1]
    kNot,            // not children[0]
    kCompare,        // children[0] op children[1]; each a kProperty or kLiteral
    kProperty,       // path: ["primarycontactid", "fullname"], ["_ownerid_value"]; lambda variables
                     //   appear as the first segment ("t" in any(t:t/subject eq 'x'))
    kLiteral,        // literal
    kFunction,       // name: "contains" | "startswith" | "endswith"; children: property, literal
    kLambda,         // name: "any" | "all"; path: the collection navigation (possibly multi-
                     //   segment); variable; children: the predicate (empty for "any()")
    kQueryFunction,  // name: Dataverse query function without namespace ("In", "Between",
                     //   "LastXDays", …); params: named parameters
  };

  struct Param {
    std::string name;             // "PropertyName", "PropertyValue", "PropertyValues", …
    std::vector<Literal> values;  // one literal, or the elements of an array parameter
    bool is_array = false;
  };

  Kind kind = Kind::kLiteral;
  CompareOp op = CompareOp::kEq;
  std::vector<std::string> path;
  Literal literal;
  std::string name;
  std::string variable;
  std::vector<ExprPtr> children;
  std::vector<Param> params;
};

struct OrderBy {
  std::vector<std::string> path;  // column, lookup property or single-valued nav path
  bool descending = false;
};

struct Expand;

// Options that apply to a collection (top level, or inside $expand(...)).
struct QueryOptions {
  std::vector<std::string> select;  // empty = all columns
  ExprPtr filter;                   // may be null
  std::vector<OrderBy> orderby;
  std::optional<int64_t> top;
  std::vector<Expand> expand;
};

struct Expand {
  std::string nav;   // navigation property name (case-sensitive)
  bool ref = false;  // $expand=nav/$ref
  QueryOptions options;
};

}  // namespace tributary::data

#pragma once
// OData v4 URL parsing for the Dataverse-compatible Web API: the resource path after
// "/api/data/vX.Y/", the query string, and the system query options $filter, $orderby,
// $select, $expand and $top, parsed into the protocol-neutral model of data/query.h.
//
// The output is syntactic: names are not checked against the catalog, and literals keep their
// lexical kind (a quoted GUID stays a string); the data layer binds them.
//
// Error contract, shared by every function here: failure is a Status with Code::kInvalidArgument
// and platform error err::kQueryError (0x80060888), built with QueryError(). The message names
// the problem and, for expressions, the 0-based byte position in the option text, e.g.
//   Syntax error at position 8 in '$filter': expected an operator after 'name' but found 'foo'.
// No input crashes or throws (only std::bad_alloc can escape). Nesting — parentheses, `not`,
// function calls, lambdas and nested $expand, counted together — is limited to
// kMaxNestingDepth levels, and work is linear in the input length: long `and`/`or` chains are
// fine (see ParseFilter), and parameter aliases may expand to at most 1 MiB in total per call.
//
// All functions are pure and thread-safe.

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tributary/base/status.h"
#include "tributary/data/query.h"

namespace tributary::odata {

inline constexpr int kMaxNestingDepth = 100;

// Parameter aliases from the query string: "@p1" -> its (already percent-decoded) value text.
// An alias that is used but not in the map is the null literal, as in Dataverse.
using AliasMap = std::unordered_map<std::string, std::string>;

// Parses a $filter expression.
//
// Grammar (keywords are case-sensitive; spaces, tabs, CR and LF separate tokens):
//   or-expr    := and-expr ("or" and-expr)*
//   and-expr   := comparison ("and" comparison)*
//   comparison := unary [("eq"|"ne"|"gt"|"ge"|"lt"|"le") unary]
//   unary      := "not" unary | primary
//   primary    := "(" or-expr ")" | literal | @alias | path | path "/" ("any"|"all") "(" [var ":" or-expr] ")"
//               | ("contains"|"startswith"|"endswith") "(" path "," literal ")"
//               | ("Microsoft.Dynamics.CRM."|"mscrm.") Name "(" [param ("," param)*] ")"
//   param      := Name "=" (literal | @alias | "[" [element ("," element)*] "]")
// so `not` binds tighter than comparisons, which bind tighter than `and`, then `or`.
//
// Result shapes:
// - A chain of the same operator (`a or b or c …`) becomes a balanced tree of binary kOr/kAnd
//   nodes (left-leaning: `a or b or c` is or(or(a,b),c)), so thousands of generated
//   `id eq … or id eq …` terms give a tree of logarithmic depth.
// - Comparison operands are kProperty or kLiteral; anything else is an error.
// - A bare property used as a condition (`donotemail`, `not donotemail`) becomes
//   `donotemail eq true`. A function, lambda or query function compared with a boolean literal
//   (`contains(name,'x') eq false`) becomes the call itself or its negation.
// - Aliases: `@p` resolves through `aliases`. As an operand its value may be a literal or a
//   property path (`$filter=@p1 gt 5&@p1=revenue`); as a query-function parameter a literal or
//   an array. Unassigned → null literal.
// - Array elements may be single-quoted OData strings or double-quoted JSON strings (both become
//   kString), numbers or other literals.
// - Functions other than contains/startswith/endswith (tolower, year, …) are errors naming the
//   function; so are the operators has, in, add, sub, mul, div, mod. `not` applied directly to a
//   query function fails with "Not operator along with the Custom Named Condition operators is
//   not allowed".
Result<data::ExprPtr> ParseFilter(std::string_view text, const AliasMap& aliases);

// Parses $orderby: a comma list of `path [asc|desc]`; a path may be an alias whose value is a
// property path.
Result<std::vector<data::OrderBy>> ParseOrderBy(std::string_view text, const AliasMap& aliases);

// Parses $select: a comma list of identifiers (`name`, `_primarycontactid_value`); spaces around
// commas are tolerated, empty items are errors.
Result<std::vector<std::string>> ParseSelect(std::string_view text);

// Parses $expand: a comma list of `nav`, `nav/$ref` or `nav(options)`, where options are
// `$select`, `$filter`, `$orderby`, `$top` and `$expand` separated by ';'. Commas and semicolons
// inside nested parentheses, brackets and quoted strings do not split. `$skip`, `$count`,
// `$search` and `$levels` are errors naming the option ("not supported inside $expand"); any
// other option name, or one given twice, is an error. Errors from a nested option are prefixed
// with "In $expand of 'nav': ".
Result<std::vector<data::Expand>> ParseExpand(std::string_view text, const AliasMap& aliases);

// Parses $top: a non-negative decimal integer that fits in int64_t (surrounding spaces allowed).
Result<int64_t> ParseTop(std::string_view text);

// One entry of a path segment's parentheses.
struct KeyValue {
  std::string name;  // empty for a bare key: accounts(<guid>)
  // After alias resolution. For a JSON array or object (function parameters such as
  // EntityNames=["account"] or {'@odata.id':'accounts(…)'}) this is the null literal and `raw`
  // holds the text, so check `raw` for collection- and complex-typed parameters.
  data::Literal value;
  // The value's text after alias resolution, trimmed: "'A1'", "1033", "[\"account\"]". An
  // unassigned alias gives "null".
  std::string raw;
};

struct Segment {
  // Identifier as written (may contain dots: Microsoft.Dynamics.CRM.WhoAmI), or a '$' name:
  // "$ref", "$count", "$value", "$batch", "$metadata", "$1" (batch Content-ID), ….
  std::string name;
  bool has_parens = false;  // "WhoAmI()" → true, "WhoAmI" → false
  // Contents of (...): one bare key, or name=value pairs (alternate/composite keys, function
  // parameters), in the order written. Names are unique. A bare value that is not a GUID
  // (accounts(123)) is returned as whatever literal it is; the caller decides.
  std::vector<KeyValue> keys;
};

// Parses a resource path. `path` is the part after "/api/data/vX.Y/", already percent-decoded,
// without the query string. Repeated '/' are collapsed and leading/trailing '/' ignored; an
// empty path gives no segments (the service document). Quoted strings inside parentheses may
// contain '/', ')', ',' and '='. Unbalanced parentheses, bad quoting, an invalid name or value,
// or text after ')' other than '/' fail with a message naming the segment.
Result<std::vector<Segment>> ParseResourcePath(std::string_view path, const AliasMap& aliases);

// Parses a raw query string (after '?') into ordered (name, value) pairs, percent-decoding
// names and values ('+' = space). Pieces are separated by '&'; empty pieces are skipped; a piece
// without '=' has an empty value. Fails with QueryError on a malformed '%' escape.
Result<std::vector<std::pair<std::string, std::string>>> ParseQueryString(std::string_view query);

// Parses one literal as it appears in a URL (keys, alias values), surrounding spaces allowed:
//   null, true, false                      → kNull, kBool
//   42, -7                                 → kInteger (text without a leading '+')
//   1.5, -2e3, 1.5m                        → kDecimal (text without the m/M suffix)
//   'O''Neil'                              → kString "O'Neil" (a quoted GUID stays a kString)
//   4026BE43-…, {4026be43-…}               → kGuid, canonical lowercase text
//   2023-01-01T00:00:00Z, …+01:00, …00.5Z  → kDateTime, text as written
//   2023-01-01                             → kDate
//   Microsoft.Dynamics.CRM.OwnershipTypes'UserOwned' → kEnum "OwnershipTypes'UserOwned'"
// Aliases are not literals here; resolve them first.
Result<data::Literal> ParseLiteral(std::string_view text);

}  // namespace tributary::odata

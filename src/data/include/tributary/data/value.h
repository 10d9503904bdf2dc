#pragma once
// Typed column values and records as the organization service reads and writes them.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "tributary/base/guid.h"
#include "tributary/base/time.h"
#include "tributary/catalog/catalog.h"
#include "tributary/data/query.h"

namespace tributary::data {

// A reference to a record of a table (lookups).
struct EntityRef {
  std::string table;  // logical name
  Guid id;
  bool operator==(const EntityRef&) const = default;
};

// Column value. Types by column type: string/memo/multichoice → std::string; integer, bigint,
// choice, state, status → int64_t; boolean → bool; decimal, double, money → double;
// datetime → Timestamp (Date for DateOnly); uniqueidentifier → Guid; lookups → EntityRef.
using Value = std::variant<std::monostate, bool, int64_t, double, std::string, Guid, Timestamp, Date, EntityRef>;

inline bool IsNull(const Value& v) { return std::holds_alternative<std::monostate>(v); }

struct Field {
  const catalog::Column* column = nullptr;
  Value value;
};

// How a record is addressed: by primary id, or by the values of an alternate key.
struct RecordKey {
  std::optional<Guid> id;
  std::vector<std::pair<std::string, Literal>> alternate;  // column (or _x_value) → literal
};

// The target of an @odata.bind / @odata.id reference, resolved inside the write transaction.
struct BindTarget {
  const catalog::Table* table = nullptr;
  RecordKey key;
};

// The body of a create/update/upsert, already typed against the catalog by the protocol layer.
struct EntityInput {
  const catalog::Table* table = nullptr;
  std::vector<Field> fields;
  // Lookups set through navigation properties (@odata.bind); nullopt clears the lookup.
  struct Bind {
    const catalog::NavProperty* nav = nullptr;
    std::optional<BindTarget> target;
  };
  std::vector<Bind> binds;
  // Deep insert: a related record created in the same transaction.
  struct DeepSingle {
    const catalog::NavProperty* nav = nullptr;
    std::unique_ptr<EntityInput> child;
  };
  struct DeepMany {
    const catalog::NavProperty* nav = nullptr;
    std::vector<EntityInput> children;
    std::vector<BindTarget> existing;  // "nav@odata.bind": [ ... ] on a collection navigation
  };
  std::vector<DeepSingle> deep_single;
  std::vector<DeepMany> deep_many;
};

// A record read from the store: the selected columns, plus expanded navigations.
struct Entity {
  const catalog::Table* table = nullptr;
  Guid id;
  int64_t version = 0;
  std::vector<Field> fields;  // in select order (all readable columns when no $select)
  struct Expanded {
    const catalog::NavProperty* nav = nullptr;
    std::vector<Entity> rows;  // single-valued: 0 or 1 row
  };
  std::vector<Expanded> expanded;
  const Value* Get(std::string_view column) const;
};

}  // namespace tributary::data

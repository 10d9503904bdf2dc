// Auditing: audit rows written with the change, and change histories read back (audit.h).

#include "tributary/data/audit.h"

#include <algorithm>
#include <type_traits>

#include "internal.h"
#include "tributary/base/json.h"

namespace tributary::data {

using catalog::Column;
using catalog::ColumnType;
using catalog::Table;

namespace {

constexpr int kChangeDataVersion = 1;

// --- changedata values (docs/formats/audit-changedata.md) -----------------------------------

void WriteRef(JsonWriter& w, const EntityRef& r) {
  w.BeginObject();
  w.Key("table");
  w.String(r.table);
  w.Key("id");
  w.String(r.id.ToString());
  w.EndObject();
}

void WriteJsonValue(JsonWriter& w, const Value& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>)
          w.Null();
        else if constexpr (std::is_same_v<T, bool>)
          w.Bool(x);
        else if constexpr (std::is_same_v<T, int64_t>)
          w.Int(x);
        else if constexpr (std::is_same_v<T, double>)
          w.Double(x);
        else if constexpr (std::is_same_v<T, std::string>)
          w.String(x);
        else if constexpr (std::is_same_v<T, Guid>)
          w.String(x.ToString());
        else if constexpr (std::is_same_v<T, Timestamp>)
          w.String(FormatTimestamp(x));
        else if constexpr (std::is_same_v<T, Date>)
          w.String(FormatDate(x));
        else
          WriteRef(w, x);
      },
      v);
}

std::optional<EntityRef> RefFromJson(const Json& j) {
  if (!j.is_object()) return std::nullopt;
  const Json* t = j.Find("table");
  const Json* id = j.Find("id");
  if (!t || !t->is_string() || !id || !id->is_string()) return std::nullopt;
  auto g = Guid::Parse(id->as_string());
  if (!g) return std::nullopt;
  return EntityRef{t->as_string(), *g};
}

// The typed value of `c` a changedata value stands for; nullopt when it does not fit the column
// (the column's type changed since).
std::optional<Value> ValueFromJson(const Column& c, const Json& j) {
  if (j.is_null()) return Value();
  switch (c.type) {
    case ColumnType::kString:
    case ColumnType::kMemo:
    case ColumnType::kMultiChoice:
    case ColumnType::kImage:
      if (j.is_string()) return Value(j.as_string());
      return std::nullopt;
    case ColumnType::kInteger:
    case ColumnType::kBigInt:
    case ColumnType::kChoice:
    case ColumnType::kState:
    case ColumnType::kStatus:
      if (j.is_number()) return Value(j.as_int());
      return std::nullopt;
    case ColumnType::kBoolean:
      if (j.is_bool()) return Value(j.as_bool());
      return std::nullopt;
    case ColumnType::kDecimal:
    case ColumnType::kDouble:
    case ColumnType::kMoney:
      if (j.is_number()) return Value(j.as_double());
      return std::nullopt;
    case ColumnType::kDateTime: {
      if (!j.is_string()) return std::nullopt;
      const std::string& s = j.as_string();
      if (s.size() == 10) {
        if (auto d = ParseDate(s)) return Value(*d);
        return std::nullopt;
      }
      if (auto t = ParseTimestamp(s)) return Value(*t);
      return std::nullopt;
    }
    case ColumnType::kUniqueIdentifier:
    case ColumnType::kFile:
      if (j.is_string())
        if (auto g = Guid::Parse(j.as_string())) return Value(*g);
      return std::nullopt;
    case ColumnType::kLookup:
    case ColumnType::kCustomer:
    case ColumnType::kOwner:
      if (auto r = RefFromJson(j)) return Value(*r);
      return std::nullopt;
  }
  return std::nullopt;
}

// {"v":1,"old":{…},"new":{…}}; either side may be left out.
std::string AttributeChangeData(const ColumnValues* old_values, const ColumnValues* new_values) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("v");
  w.Int(kChangeDataVersion);
  auto side = [&](const char* key, const ColumnValues* values) {
    if (!values) return;
    w.Key(key);
    w.BeginObject();
    for (const auto& [c, v] : *values) {
      w.Key(c->logical_name);
      WriteJsonValue(w, v);
    }
    w.EndObject();
  };
  side("old", old_values);
  side("new", new_values);
  w.EndObject();
  return out;
}

std::string Mask(const ColumnValues& values) {
  std::string out;
  for (const auto& [c, v] : values) {
    if (!out.empty()) out += ",";
    out += c->logical_name;
  }
  return out;
}

const Value* Find(const ColumnValues& values, const Column* c) {
  for (const auto& [col, v] : values)
    if (col == c) return &v;
  return nullptr;
}

// Reads `columns` of record `id`; an empty result when the record does not exist.
Result<ColumnValues> ReadColumns(storage::Connection& c, const Table& t, const Guid& id,
                                 const std::vector<const Column*>& columns) {
  ColumnValues out;
  if (columns.empty()) return out;
  std::string sql = "SELECT ";
  std::vector<std::pair<int, int>> index;  // value, type
  int next = 0;
  for (const Column* col : columns) {
    if (next) sql += ", ";
    sql += Q(col->sql_name);
    int vi = next++, ti = -1;
    if (col->IsPolymorphic()) {
      sql += ", " + Q(col->sql_name + "_type");
      ti = next++;
    }
    index.emplace_back(vi, ti);
  }
  sql += " FROM " + Q(t.sql_table) + " WHERE " + Q(t.PrimaryId()->sql_name) + " = ?";
  std::vector<storage::SqlValue> p = {id.ToString()};
  RETURN_IF_ERROR(c.Query(sql, p, [&](const storage::Row& r) {
    for (size_t i = 0; i < columns.size(); ++i)
      out.emplace_back(columns[i], FromSql(*columns[i], r, index[i].first, index[i].second));
    return false;
  }));
  return out;
}

ExprPtr Compare(std::string property, Literal literal) {
  auto prop = std::make_unique<Expr>();
  prop->kind = Expr::Kind::kProperty;
  prop->path = {std::move(property)};
  auto lit = std::make_unique<Expr>();
  lit->kind = Expr::Kind::kLiteral;
  lit->literal = std::move(literal);
  auto e = std::make_unique<Expr>();
  e->kind = Expr::Kind::kCompare;
  e->op = CompareOp::kEq;
  e->children.push_back(std::move(prop));
  e->children.push_back(std::move(lit));
  return e;
}

}  // namespace

Status RefuseAuditWrite(const Table& table, std::string_view message) {
  if (table.logical_name != "audit") return Status::Ok();
  return Status(Code::kMethodNotAllowed,
                "The '" + std::string(message) +
                    "' method does not support entities of type 'audit'. Audit records are written by the platform.",
                kErrEntityDoesNotSupportMessage);
}

// --- Auditor ------------------------------------------------------------------------------

struct Auditor::Row {
  AuditAction action = AuditAction::kUpdate;
  AuditOperation operation = AuditOperation::kUpdate;
  const Table* table = nullptr;
  Guid id;
  std::string attributemask;  // empty: NULL
  std::string changedata;
};

Auditor::Auditor(storage::Connection& c, const catalog::Catalog& cat, const CallerContext& caller, Timestamp now,
                 std::optional<bool>* org_cache, std::function<int64_t()> next_version)
    : c_(c),
      cat_(cat),
      caller_(caller),
      now_(now),
      org_cache_(org_cache),
      next_version_(std::move(next_version)),
      audit_(cat.FindTable("audit")) {}

Auditor::~Auditor() {
  if (org_written_ && org_cache_) org_cache_->reset();
}

bool Auditor::ColumnAudited(const Column& c) { return c.audit_enabled && !c.is_primary_id && !c.IsFileOrImage(); }

Result<bool> Auditor::OrganizationAudits() {
  if (org_) return *org_;
  if (!org_written_ && org_cache_ && *org_cache_) return **org_cache_;
  bool on = false;
  const Table* org = cat_.FindTable("organization");
  const Column* flag = org ? org->FindColumn("isauditenabled") : nullptr;
  if (flag) {
    RETURN_IF_ERROR(c_.Query("SELECT " + Q(flag->sql_name) + " FROM " + Q(org->sql_table) + " LIMIT 1", {},
                             [&](const storage::Row& r) {
                               on = r.kind(0) == storage::ValueKind::kInt && r.Int(0) != 0;
                               return false;
                             }));
  }
  org_ = on;
  // A job that wrote the organization row reads its own uncommitted value: not for other jobs.
  if (!org_written_ && org_cache_) *org_cache_ = on;
  return on;
}

Result<bool> Auditor::Enabled(const Table& table) {
  if (!audit_ || !table.audit_enabled || &table == audit_) return false;
  return OrganizationAudits();
}

Status Auditor::Write(const Row& row) {
  if (insert_sql_.empty()) {
    auto col = [&](const char* name) { return Q(audit_->FindColumn(name)->sql_name); };
    insert_sql_ = "INSERT INTO " + Q(audit_->sql_table) + " (" + col("auditid") + ", " + col("createdon") + ", " +
                  col("action") + ", " + col("operation") + ", " + col("objectid") + ", " +
                  Q(audit_->FindColumn("objectid")->sql_name + "_type") + ", " + col("objecttypecode") + ", " +
                  col("userid") + ", " + col("callinguserid") + ", " + col("attributemask") + ", " + col("changedata") +
                  ", " + col("transactionid") + ", " + col("versionnumber") +
                  ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
  }
  if (transaction_.IsNil()) transaction_ = GuidGenerator::NewSequential();
  auto guid_or_null = [](const Guid& g) { return g.IsNil() ? storage::SqlValue() : storage::SqlValue(g.ToString()); };
  std::vector<storage::SqlValue> p = {
      GuidGenerator::NewSequential().ToString(),
      now_.ms,
      int64_t{static_cast<int>(row.action)},
      int64_t{static_cast<int>(row.operation)},
      row.id.ToString(),
      row.table->logical_name,
      row.table->logical_name,
      guid_or_null(caller_.user_id),
      guid_or_null(caller_.initiating_user_id),
      row.attributemask.empty() ? storage::SqlValue() : storage::SqlValue(row.attributemask),
      row.changedata,
      transaction_.ToString(),
      next_version_ ? next_version_() : int64_t{0},
  };
  return c_.Exec(insert_sql_, p).status();
}

Status Auditor::RecordCreate(const Table& table, const Guid& id, const ColumnValues& values) {
  if (table.logical_name == "organization") {
    org_written_ = true;
    org_.reset();
  }
  ASSIGN_OR_RETURN(bool on, Enabled(table));
  if (!on) return Status::Ok();
  ColumnValues created;
  for (const auto& [c, v] : values)
    if (ColumnAudited(*c) && !IsNull(v)) created.emplace_back(c, v);
  return Write(Row{AuditAction::kCreate, AuditOperation::kCreate, &table, id, Mask(created),
                   AttributeChangeData(nullptr, &created)});
}

Result<std::optional<ColumnValues>> Auditor::ReadBefore(const Table& table, const Guid& id,
                                                        const ColumnValues& changes) {
  ASSIGN_OR_RETURN(bool on, Enabled(table));
  if (!on) return std::optional<ColumnValues>();
  std::vector<const Column*> columns;
  for (const auto& [c, v] : changes)
    if (ColumnAudited(*c)) columns.push_back(c);
  ASSIGN_OR_RETURN(ColumnValues before, ReadColumns(c_, table, id, columns));
  return std::optional<ColumnValues>(std::move(before));
}

Status Auditor::RecordUpdate(const Table& table, const Guid& id, const std::optional<ColumnValues>& before,
                             const ColumnValues& after) {
  if (table.logical_name == "organization") {
    org_written_ = true;
    org_.reset();
  }
  if (!before) return Status::Ok();
  ColumnValues old_values, new_values;
  const Column* owner = nullptr;
  for (const auto& [c, v] : after) {
    if (!ColumnAudited(*c)) continue;
    const Value* old = Find(*before, c);
    if (!old || *old == v) continue;
    if (c->type == ColumnType::kOwner) {
      owner = c;
      continue;
    }
    old_values.emplace_back(c, *old);
    new_values.emplace_back(c, v);
  }
  if (owner) {
    const auto* from = std::get_if<EntityRef>(Find(*before, owner));
    const auto* to = std::get_if<EntityRef>(Find(after, owner));
    if (from && to) RETURN_IF_ERROR(RecordAssign(table, id, *from, *to));
  }
  if (new_values.empty()) return Status::Ok();
  return Write(Row{AuditAction::kUpdate, AuditOperation::kUpdate, &table, id, Mask(new_values),
                   AttributeChangeData(&old_values, &new_values)});
}

Status Auditor::RecordDelete(const Table& table, const Guid& id) {
  ASSIGN_OR_RETURN(bool on, Enabled(table));
  if (!on) return Status::Ok();
  std::vector<const Column*> columns;
  for (const auto& c : table.columns)
    if (ColumnAudited(*c) && c->valid_for_read) columns.push_back(c.get());
  ASSIGN_OR_RETURN(ColumnValues all, ReadColumns(c_, table, id, columns));
  ColumnValues old_values;
  for (auto& [c, v] : all)
    if (!IsNull(v)) old_values.emplace_back(c, std::move(v));
  return Write(Row{AuditAction::kDelete, AuditOperation::kDelete, &table, id, Mask(old_values),
                   AttributeChangeData(&old_values, nullptr)});
}

Status Auditor::RecordAssociate(const Table& table, const Guid& id, const catalog::Relationship& rel,
                                const Table& other_table, const Guid& other, bool associate) {
  AuditAction action = associate ? AuditAction::kAssociate : AuditAction::kDisassociate;
  bool role_side_only = false;
  if (rel.schema_name == "systemuserroles_association") {
    action = associate ? AuditAction::kAssignRoleToUser : AuditAction::kRemoveRoleFromUser;
  } else if (rel.schema_name == "teamroles_association") {
    action = associate ? AuditAction::kAssignRoleToTeam : AuditAction::kRemoveRoleFromTeam;
  } else if (rel.schema_name == "roleprivileges_association") {
    action = associate ? AuditAction::kAddPrivilegesToRole : AuditAction::kRemovePrivilegesFromRole;
    role_side_only = true;
  }
  auto side = [&](const Table& t, const Guid& record, const Table& target_table, const Guid& target) -> Status {
    if (role_side_only && t.logical_name != "role") return Status::Ok();
    ASSIGN_OR_RETURN(bool on, Enabled(t));
    if (!on) return Status::Ok();
    std::string data;
    JsonWriter w(data);
    w.BeginObject();
    w.Key("v");
    w.Int(kChangeDataVersion);
    w.Key("relationship");
    w.String(rel.schema_name);
    w.Key("targets");
    w.BeginArray();
    WriteRef(w, EntityRef{target_table.logical_name, target});
    w.EndArray();
    w.EndObject();
    return Write(Row{action, AuditOperation::kUpdate, &t, record, {}, std::move(data)});
  };
  RETURN_IF_ERROR(side(table, id, other_table, other));
  if (&table == &other_table && id == other) return Status::Ok();
  return side(other_table, other, table, id);
}

Status Auditor::RecordAssign(const Table& table, const Guid& id, const EntityRef& old_owner,
                             const EntityRef& new_owner) {
  if (old_owner == new_owner) return Status::Ok();
  ASSIGN_OR_RETURN(bool on, Enabled(table));
  const Column* owner = table.FindColumn("ownerid");
  if (!on || !owner || !ColumnAudited(*owner)) return Status::Ok();
  ColumnValues old_values = {{owner, old_owner}}, new_values = {{owner, new_owner}};
  return Write(Row{AuditAction::kAssign, AuditOperation::kUpdate, &table, id, owner->logical_name,
                   AttributeChangeData(&old_values, &new_values)});
}

Status Auditor::RecordShare(const Table& table, const Guid& id, const EntityRef& principal, uint32_t old_mask,
                            uint32_t new_mask) {
  if (old_mask == new_mask) return Status::Ok();
  ASSIGN_OR_RETURN(bool on, Enabled(table));
  if (!on) return Status::Ok();
  AuditAction action = old_mask == 0   ? AuditAction::kShare
                       : new_mask == 0 ? AuditAction::kUnshare
                                       : AuditAction::kModifyShare;
  std::string data;
  JsonWriter w(data);
  w.BeginObject();
  w.Key("v");
  w.Int(kChangeDataVersion);
  w.Key("principal");
  WriteRef(w, principal);
  w.Key("oldmask");
  w.Int(old_mask);
  w.Key("newmask");
  w.Int(new_mask);
  w.EndObject();
  return Write(Row{action, AuditOperation::kUpdate, &table, id, {}, std::move(data)});
}

// --- Reading --------------------------------------------------------------------------------

Status DecodeChangeData(const Table* table, std::string_view changedata, AuditDetail& detail) {
  auto bad = [] { return InvalidArgument("The audit record's change data is not in a known format."); };
  auto parsed = ParseJson(changedata);
  if (!parsed.ok() || !parsed->is_object()) return bad();
  const Json& j = *parsed;
  const Json* v = j.Find("v");
  if (!v || !v->is_int() || v->as_int() != kChangeDataVersion) return bad();
  if (const Json* rel = j.Find("relationship")) {
    detail.kind = AuditDetail::Kind::kRelationship;
    if (!rel->is_string()) return bad();
    detail.relationship = rel->as_string();
    if (const Json* targets = j.Find("targets"); targets && targets->is_array())
      for (const auto& t : targets->as_array())
        if (auto r = RefFromJson(t)) detail.targets.push_back(*r);
    return Status::Ok();
  }
  if (const Json* principal = j.Find("principal")) {
    detail.kind = AuditDetail::Kind::kShare;
    auto r = RefFromJson(*principal);
    if (!r) return bad();
    detail.principal = *r;
    const Json* o = j.Find("oldmask");
    const Json* n = j.Find("newmask");
    detail.old_mask = o && o->is_int() ? static_cast<uint32_t>(o->as_int()) : 0;
    detail.new_mask = n && n->is_int() ? static_cast<uint32_t>(n->as_int()) : 0;
    return Status::Ok();
  }
  detail.kind = AuditDetail::Kind::kAttribute;
  auto side = [&](const char* key, std::vector<Field>& out) -> Status {
    const Json* values = j.Find(key);
    if (!values) return Status::Ok();
    if (!values->is_object()) return bad();
    for (const auto& [name, value] : values->as_object()) {
      const Column* c = table ? table->FindColumn(name) : nullptr;
      std::optional<Value> typed = c ? ValueFromJson(*c, value) : std::nullopt;
      if (!typed) {
        auto& deleted = detail.deleted_attributes;
        if (std::find(deleted.begin(), deleted.end(), name) == deleted.end()) deleted.push_back(name);
        continue;
      }
      out.push_back(Field{c, std::move(*typed)});
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(side("old", detail.old_values));
  return side("new", detail.new_values);
}

Result<std::vector<AuditDetail>> RetrieveRecordChangeHistory(OrganizationService& svc, const CallerContext& caller,
                                                             const Table& table, const Guid& id, int64_t skip,
                                                             int64_t max, int64_t* total) {
  if (total) *total = 0;
  catalog::CatalogPtr cat = svc.catalog();
  const Table* audit = cat->FindTable("audit");
  if (!audit) return std::vector<AuditDetail>();
  // The record's history is as private as the record: while it exists, the caller must read it.
  {
    QueryOptions o;
    o.select = {table.primary_id};
    auto record = svc.Retrieve(caller, table, RecordKey{id, {}}, o);
    if (!record.ok() && record.status().code() != Code::kNotFound) return record.status();
  }
  QueryOptions q;
  q.select = {"auditid",         "createdon",      "action",        "operation",
              "_objectid_value", "objecttypecode", "_userid_value", "_callinguserid_value",
              "attributemask",   "changedata",     "transactionid", "useradditionalinfo"};
  auto both = std::make_unique<Expr>();
  both->kind = Expr::Kind::kAnd;
  both->children.push_back(Compare("_objectid_value", Literal{Literal::Kind::kGuid, id.ToString()}));
  both->children.push_back(Compare("objecttypecode", Literal{Literal::Kind::kString, table.logical_name}));
  q.filter = std::move(both);
  q.orderby.push_back(OrderBy{{"versionnumber"}, true});
  std::vector<Entity> rows;
  PageRequest page;
  for (;;) {
    ASSIGN_OR_RETURN(Page p, svc.RetrieveMultiple(caller, *audit, q, page));
    for (auto& e : p.rows) rows.push_back(std::move(e));
    if (p.next_skiptoken.empty()) break;
    page.skiptoken = p.next_skiptoken;
  }
  if (total) *total = static_cast<int64_t>(rows.size());
  std::vector<AuditDetail> out;
  skip = std::max<int64_t>(skip, 0);
  for (size_t i = static_cast<size_t>(skip); i < rows.size() && static_cast<int64_t>(out.size()) < max; ++i) {
    AuditDetail d;
    const Value* data = rows[i].Get("changedata");
    // Rows are written by the platform only; one it cannot read still shows, without values.
    if (data && std::holds_alternative<std::string>(*data) &&
        !DecodeChangeData(&table, std::get<std::string>(*data), d).ok())
      d = AuditDetail();
    d.record = std::move(rows[i]);
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace tributary::data

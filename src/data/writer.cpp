// Write side of the organization service. Every operation runs as one job on the store's writer
// thread (one transaction, shared with other jobs by group commit), so deep inserts, cascades and
// binds are all-or-nothing.

#include <charconv>
#include <cmath>

#include "access.h"
#include "internal.h"
#include "tributary/base/strings.h"
#include "tributary/data/audit.h"

namespace tributary::data {

using catalog::Column;
using catalog::ColumnType;
using catalog::NavProperty;
using catalog::Table;

namespace {

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

Status Validation(std::string msg) { return InvalidArgument("A validation error occurred. " + msg, err::kValidation); }

std::string Num(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  return std::to_string(v);
}

// Checks a value against the column's limits (length, range, options).
Status ValidateValue(const Table& t, const Column& c, const Value& v) {
  if (IsNull(v)) return Status::Ok();
  switch (c.type) {
    case ColumnType::kString:
    case ColumnType::kMemo: {
      const auto& s = std::get<std::string>(v);
      if (c.max_length > 0 && Utf8Length(s) > static_cast<size_t>(c.max_length))
        return Validation("The length of the '" + c.logical_name + "' attribute of the '" + t.logical_name +
                          "' entity exceeded the maximum allowed length of '" + std::to_string(c.max_length) + "'.");
      return Status::Ok();
    }
    case ColumnType::kInteger:
    case ColumnType::kDecimal:
    case ColumnType::kDouble:
    case ColumnType::kMoney: {
      double d = std::holds_alternative<int64_t>(v) ? static_cast<double>(std::get<int64_t>(v)) : std::get<double>(v);
      if ((c.min_value && d < *c.min_value) || (c.max_value && d > *c.max_value))
        return Validation("The value " + Num(d) + " of '" + c.logical_name + "' on record of type '" + t.logical_name +
                          "' is outside the valid range. Accepted Values: Between " + Num(c.min_value.value_or(0)) +
                          " and " + Num(c.max_value.value_or(0)));
      return Status::Ok();
    }
    case ColumnType::kChoice:
    case ColumnType::kState:
    case ColumnType::kStatus:
      if (c.options && !c.options->Find(static_cast<int>(std::get<int64_t>(v))))
        return InvalidArgument("The picklist value " + std::to_string(std::get<int64_t>(v)) + " of '" + c.logical_name +
                                   "' is out of the range.",
                               err::kPicklistOutOfRange);
      return Status::Ok();
    case ColumnType::kMultiChoice: {
      const auto& s = std::get<std::string>(v);
      if (s.empty()) return Status::Ok();
      for (auto part : Split(s, ',')) {
        int n = 0;
        auto sv = Trim(part);
        auto r = std::from_chars(sv.data(), sv.data() + sv.size(), n);
        if (r.ec != std::errc() || r.ptr != sv.data() + sv.size() || (c.options && !c.options->Find(n)))
          return InvalidArgument(
              "The value '" + std::string(sv) + "' of '" + c.logical_name + "' is not a valid option.",
              err::kPicklistOutOfRange);
      }
      return Status::Ok();
    }
    default:
      return Status::Ok();
  }
}

// Writes `g` in its canonical text form (as Guid::ToString) into `out`, reusing its buffer.
void AssignGuidText(std::string& out, const Guid& g) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.resize(36);
  char* p = out.data();
  const auto& b = g.bytes();
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
    *p++ = kHex[b[i] >> 4];
    *p++ = kHex[b[i] & 15];
  }
}

std::string& TextSlot(storage::SqlValue& dst) {
  if (auto* s = std::get_if<std::string>(&dst)) return *s;
  return dst.emplace<std::string>();
}

// Sets `dst` to ToSql(v), reusing the string buffer `dst` already holds: the bulk paths bind the
// same columns row after row, so their parameter vectors are refilled without allocating.
void AssignSql(storage::SqlValue& dst, const Value& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>)
          dst = std::monostate{};
        else if constexpr (std::is_same_v<T, bool>)
          dst = int64_t{x ? 1 : 0};
        else if constexpr (std::is_same_v<T, int64_t>)
          dst = x;
        else if constexpr (std::is_same_v<T, double>)
          dst = x;
        else if constexpr (std::is_same_v<T, std::string>)
          TextSlot(dst).assign(x);
        else if constexpr (std::is_same_v<T, Guid>)
          AssignGuidText(TextSlot(dst), x);
        else if constexpr (std::is_same_v<T, Timestamp>)
          dst = x.ms;
        else if constexpr (std::is_same_v<T, Date>)
          dst = int64_t{x.days};
        else
          AssignGuidText(TextSlot(dst), x.id);
      },
      v);
}

// Appends the parameter(s) of one column value: the value, and for polymorphic lookups the target
// table ("<col>_type"). `n` counts the parameters filled so far; `params` grows as needed.
void PushParam(std::vector<storage::SqlValue>& params, size_t& n, const Column& c, const Value& v) {
  if (params.size() <= n) params.resize(n + 1);
  AssignSql(params[n++], v);
  if (c.IsPolymorphic()) {
    if (params.size() <= n) params.resize(n + 1);
    const auto* er = std::get_if<EntityRef>(&v);
    if (er)
      TextSlot(params[n]).assign(er->table);
    else
      params[n] = std::monostate{};
    ++n;
  }
}

// Collected column values of one row being written.
struct RowValues {
  RowValues() { values.reserve(32); }
  std::vector<std::pair<const Column*, Value>> values;
  void Set(const Column* c, Value v) {
    for (auto& [col, val] : values)
      if (col == c) {
        val = std::move(v);
        return;
      }
    values.emplace_back(c, std::move(v));
  }
  const Value* Get(const Column* c) const {
    for (const auto& [col, val] : values)
      if (col == c) return &val;
    return nullptr;
  }
  bool Has(const Column* c) const { return Get(c) != nullptr; }
};

// SQL text of a statement over a given sequence of columns (an INSERT's column list, an UPDATE's
// SET list), built once per write job and reused for every row with the same columns.
struct ColumnsSql {
  std::vector<const Column*> columns;
  std::string sql;
};

// The columns of one table the write pipeline looks up by name for every row (system columns,
// defaults, money base amounts), resolved once per write job, and the statement text cached for it.
// A plan lives in one Writer, which runs on one catalog snapshot, so the pointers stay valid.
struct TablePlan {
  explicit TablePlan(const Table& t) : table(t) {
    pk = t.PrimaryId();
    fullname = t.FindColumn("fullname");
    firstname = t.FindColumn("firstname");
    lastname = t.FindColumn("lastname");
    statecode = t.FindColumn("statecode");
    statuscode = t.FindColumn("statuscode");
    overriddencreatedon = t.FindColumn("overriddencreatedon");
    createdon = t.FindColumn("createdon");
    createdby = t.FindColumn("createdby");
    ownerid = t.FindColumn("ownerid");
    owninguser = t.FindColumn("owninguser");
    owningteam = t.FindColumn("owningteam");
    owningbusinessunit = t.FindColumn("owningbusinessunit");
    organizationid = t.FindColumn("organizationid");
    transactioncurrencyid = t.FindColumn("transactioncurrencyid");
    exchangerate = t.FindColumn("exchangerate");
    modifiedon = t.FindColumn("modifiedon");
    modifiedby = t.FindColumn("modifiedby");
    versionnumber = t.FindColumn("versionnumber");
    for (const auto& c : t.columns) {
      if (c->type == ColumnType::kBoolean && c->default_bool) default_bools.push_back(c.get());
      if (c->type == ColumnType::kMoney && !c->logical_name.ends_with("_base"))
        if (const Column* base = t.FindColumn(c->logical_name + "_base")) money_base.emplace_back(c.get(), base);
    }
  }

  // The base-amount column of money column `c`, or nullptr.
  const Column* MoneyBase(const Column* c) const {
    for (const auto& [money, base] : money_base)
      if (money == c) return base;
    return nullptr;
  }

  const Table& table;
  const Column *pk, *fullname, *firstname, *lastname, *statecode, *statuscode;
  const Column *overriddencreatedon, *createdon, *createdby, *ownerid, *owninguser, *owningteam, *owningbusinessunit;
  const Column *organizationid, *transactioncurrencyid, *exchangerate, *modifiedon, *modifiedby, *versionnumber;
  std::vector<const Column*> default_bools;                         // two-option columns with a default
  std::vector<std::pair<const Column*, const Column*>> money_base;  // money column → its _base column
  std::vector<ColumnsSql> inserts, updates;
  std::vector<std::pair<std::string, std::string>> finds;  // KeySql::where → SELECT text
};

// The cached statement over exactly the columns of `row` (in row order), built by `build` on a miss.
template <typename Build>
const std::string& CachedSql(std::vector<ColumnsSql>& cache, const RowValues& row, Build build) {
  for (const auto& e : cache) {
    if (e.columns.size() != row.values.size()) continue;
    bool same = true;
    for (size_t i = 0; same && i < e.columns.size(); ++i) same = e.columns[i] == row.values[i].first;
    if (same) return e.sql;
  }
  if (cache.size() >= 32) cache.clear();  // rows of many different shapes: keep the search short
  ColumnsSql e;
  e.columns.reserve(row.values.size());
  for (const auto& [c, v] : row.values) e.columns.push_back(c);
  e.sql = build();
  cache.push_back(std::move(e));
  return cache.back().sql;
}

}  // namespace

// One write operation's context on the writer thread.
class OrganizationService::Writer {
 public:
  Writer(OrganizationService& svc, storage::Connection& c, const catalog::Catalog& cat, const CallerContext& caller)
      : svc_(svc),
        c_(c),
        cat_(cat),
        caller_(caller),
        now_(svc.clock_.Now()),
        audit_(c, cat, caller, now_, &svc.org_audit_enabled_, [this] { return NextVersion(); }) {}

  // The audit rows of this job (audit.h).
  Auditor& audit() { return audit_; }

  int64_t NextVersion() { return svc_.next_version_++; }

  // The plan of `t` for this job, built on first use.
  TablePlan& Plan(const Table& t) {
    for (auto& p : plans_)
      if (&p->table == &t) return *p;
    plans_.push_back(std::make_unique<TablePlan>(t));
    return *plans_.back();
  }

  // --- Security (access.h): privilege, then row access --------------------------------------

  const CallerContext& caller() const { return caller_; }

  // Fails unless the caller may do `v` on record `id` of `t`.
  Status CheckRow(const Table& t, const Guid& id, Verb v) {
    std::vector<storage::SqlValue> p = {id.ToString()};
    ASSIGN_OR_RETURN(auto rf, RowFilter(caller_, t, v, "t0", p));
    if (!rf) return Status::Ok();
    bool ok = false;
    RETURN_IF_ERROR(
        c_.Query("SELECT 1 FROM " + Q(t.sql_table) + " t0 WHERE t0." + Q(t.PrimaryId()->sql_name) + " = ? AND " + *rf,
                 p, [&](const storage::Row&) {
                   ok = true;
                   return false;
                 }));
    return ok ? Status::Ok() : RecordAccessDenied(caller_, t, v, id);
  }

  // Lookups the input sets on a row of `t`: Append on `t` (and on `record`, the row being updated,
  // when there is one), AppendTo on each referenced record. Owner and audit lookups are the
  // platform's (ownership is checked separately).
  Status CheckAppend(const Table& t, const RowValues& row, const Guid* record = nullptr) {
    if (!caller_.principal) return Status::Ok();
    bool append_checked = false;
    for (const auto& [c, v] : row.values) {
      if (!c->IsLookup()) continue;
      const auto* ref = std::get_if<EntityRef>(&v);
      if (!ref) continue;
      const std::string& n = c->logical_name;
      if (n == "ownerid" || n == "owninguser" || n == "owningteam" || n == "owningbusinessunit" || n == "createdby" ||
          n == "modifiedby" || n == "createdonbehalfby" || n == "modifiedonbehalfby")
        continue;
      if (!append_checked) {
        RETURN_IF_ERROR(CheckPrivilege(caller_, t, Verb::kAppend));
        if (record) RETURN_IF_ERROR(CheckRow(t, *record, Verb::kAppend));
        append_checked = true;
      }
      const Table* target = cat_.FindTable(ref->table);
      if (!target) continue;
      RETURN_IF_ERROR(CheckPrivilege(caller_, *target, Verb::kAppendTo));
      RETURN_IF_ERROR(CheckRow(*target, ref->id, Verb::kAppendTo));
    }
    return Status::Ok();
  }

  // The business unit of an owner (a systemuser or a team).
  Result<Guid> OwnerBusinessUnit(const EntityRef& owner) {
    if (owner.table == "systemuser" && owner.id == caller_.user_id && !caller_.business_unit_id.IsNil())
      return caller_.business_unit_id;
    if (owner.table != "systemuser" && owner.table != "team")
      return InvalidArgument("An owner must be a systemuser or a team, not '" + owner.table + "'.");
    std::optional<Guid> bu;
    bool found = false;
    std::vector<storage::SqlValue> p = {owner.id.ToString()};
    RETURN_IF_ERROR(
        c_.Query("SELECT businessunitid FROM " + Q(owner.table) + " WHERE " + Q(owner.table + "id") + " = ?", p,
                 [&](const storage::Row& r) {
                   found = true;
                   if (!r.is_null(0)) bu = Guid::Parse(r.Text(0));
                   return false;
                 }));
    if (!found) return NotFound(owner.table + " With Id = " + owner.id.ToString() + " Does Not Exist");
    return bu.value_or(svc_.ids_.root_business_unit_id);
  }

  // Sets owninguser/owningteam/owningbusinessunit from the row's ownerid.
  Status SetOwningColumns(const TablePlan& plan, RowValues& row) {
    const Value* ov = plan.ownerid ? row.Get(plan.ownerid) : nullptr;
    if (!ov) return Status::Ok();
    const auto* ref = std::get_if<EntityRef>(ov);
    if (!ref) return InvalidArgument("A record of '" + plan.table.logical_name + "' must have an owner.");
    EntityRef owner = *ref;
    ASSIGN_OR_RETURN(Guid bu, OwnerBusinessUnit(owner));
    bool team = owner.table == "team";
    if (plan.owninguser) row.Set(plan.owninguser, team ? Value(std::monostate{}) : Value(owner));
    if (plan.owningteam) row.Set(plan.owningteam, team ? Value(owner) : Value(std::monostate{}));
    if (plan.owningbusinessunit) row.Set(plan.owningbusinessunit, EntityRef{"businessunit", bu});
    return Status::Ok();
  }

  void Touch(const Table& t) {
    if (security::SecurityCache::IsSecurityTable(t.logical_name)) touched_security_ = true;
  }
  void TouchSecurity() { touched_security_ = true; }
  bool touched_security() const { return touched_security_; }

  // Finds a record by key: its id and version, or nullopt.
  Result<std::optional<std::pair<Guid, int64_t>>> Find(const Table& t, const RecordKey& key,
                                                       KeySql* out_key = nullptr) {
    ASSIGN_OR_RETURN(KeySql k, KeyToSql(t, key));
    std::optional<std::pair<Guid, int64_t>> found;
    TablePlan& plan = Plan(t);
    const std::string* sql = nullptr;
    for (const auto& [where, text] : plan.finds)
      if (where == k.where) sql = &text;
    if (!sql) {
      if (plan.finds.size() >= 32) plan.finds.clear();
      plan.finds.emplace_back(k.where, "SELECT t0." + Q(plan.pk->sql_name) + ", " +
                                           (plan.versionnumber ? "t0.\"versionnumber\"" : "0") + " FROM " +
                                           Q(t.sql_table) + " t0 WHERE " + k.where);
      sql = &plan.finds.back().second;
    }
    RETURN_IF_ERROR(c_.Query(*sql, k.params, [&](const storage::Row& r) {
      if (auto g = Guid::Parse(r.Text(0))) found = std::make_pair(*g, r.Int(1));
      return false;
    }));
    if (out_key) *out_key = std::move(k);
    return found;
  }

  Result<Guid> ResolveBind(const BindTarget& b) {
    KeySql k;
    ASSIGN_OR_RETURN(auto found, Find(*b.table, b.key, &k));
    if (!found) return NotFoundFor(*b.table, k);
    return found->first;
  }

  // Applies @odata.bind lookups to `row`.
  Status ApplyBinds(const Table& t, const std::vector<EntityInput::Bind>& binds, RowValues& row) {
    for (const auto& b : binds) {
      const NavProperty& nav = *b.nav;
      const Column* col = nav.column;
      if (!b.target) {
        row.Set(col, std::monostate{});
        continue;
      }
      ASSIGN_OR_RETURN(Guid id, ResolveBind(*b.target));
      row.Set(col, EntityRef{b.target->table->logical_name, id});
    }
    return Status::Ok();
  }

  Status Validate(const Table& t, const RowValues& row) {
    for (const auto& [c, v] : row.values) RETURN_IF_ERROR(ValidateValue(t, *c, v));
    return Status::Ok();
  }

  void ComputeFullName(const TablePlan& plan, RowValues& row, const Entity* current) {
    const Column* full = plan.fullname;
    const Column* first = plan.firstname;
    const Column* last = plan.lastname;
    if (!full || !first || !last) return;
    if (current && !row.Has(first) && !row.Has(last)) return;
    auto text = [&](const Column* c) -> std::string {
      const Value* v = row.Get(c);
      if (!v && current) v = current->Get(c->logical_name);
      if (v && std::holds_alternative<std::string>(*v)) return std::get<std::string>(*v);
      return {};
    };
    std::string f = text(first), l = text(last);
    std::string name = f.empty() ? l : (l.empty() ? f : f + " " + l);
    row.Set(full, name.empty() ? Value(std::monostate{}) : Value(name));
  }

  Status SetDefaultStatus(const TablePlan& plan, RowValues& row, bool creating) {
    const Table& t = plan.table;
    const Column* state = plan.statecode;
    const Column* status = plan.statuscode;
    if (!state || !status || !status->options) return Status::Ok();
    const Value* sv = row.Get(state);
    const Value* stv = row.Get(status);
    int64_t st = sv && std::holds_alternative<int64_t>(*sv) ? std::get<int64_t>(*sv) : 0;
    if (creating && !sv) row.Set(state, int64_t{0});
    if (stv && std::holds_alternative<int64_t>(*stv)) {
      const auto* opt = status->options->Find(static_cast<int>(std::get<int64_t>(*stv)));
      if (opt && (sv || creating) && opt->state != st)
        return InvalidArgument("The status " + std::to_string(opt->value) + " is not valid for the state " +
                                   std::to_string(st) + " of '" + t.logical_name + "'.",
                               err::kValidation);
      if (opt && !sv && !creating) row.Set(state, int64_t{opt->state});
      return Status::Ok();
    }
    if (creating || sv) {
      for (const auto& o : status->options->options)
        if (o.state == st) {
          row.Set(status, int64_t{o.value});
          break;
        }
    }
    return Status::Ok();
  }

  Status Insert(TablePlan& plan, const RowValues& row) {
    const Table& t = plan.table;
    const std::string& sql = CachedSql(plan.inserts, row, [&] {
      std::string cols, qs;
      for (const auto& [c, v] : row.values) {
        if (!cols.empty()) {
          cols += ", ";
          qs += ", ";
        }
        cols += Q(c->sql_name);
        qs += "?";
        if (c->IsPolymorphic()) {
          cols += ", " + Q(c->sql_name + "_type");
          qs += ", ?";
        }
      }
      return "INSERT INTO " + Q(t.sql_table) + " (" + cols + ") VALUES (" + qs + ")";
    });
    size_t n = 0;
    for (const auto& [c, v] : row.values) PushParam(params_, n, *c, v);
    auto r = c_.Exec(sql, std::span<const storage::SqlValue>(params_.data(), n));
    if (!r.ok()) {
      if (r.status().code() == Code::kAlreadyExists) return DuplicateError(t, r.status());
      return r.status();
    }
    return Status::Ok();
  }

  Status DuplicateError(const Table& t, const Status& s) {
    // A primary-key clash or an alternate-key clash.
    if (s.message().find(t.sql_table + "." + t.primary_id) != std::string::npos)
      return Status(Code::kAlreadyExists, "Cannot insert duplicate key.", err::kDuplicateRecord);
    for (const auto& k : t.keys) {
      bool all = true;
      for (const auto& col : k.columns) all &= s.message().find(t.sql_table + "." + col) != std::string::npos;
      if (all) {
        std::string cols;
        for (const auto& col : k.columns) cols += (cols.empty() ? "" : ", ") + col;
        return Status(Code::kAlreadyExists,
                      "A record that has the attribute values " + cols + " already exists. The entity key " +
                          k.logical_name + " requires that this set of attributes contains unique values.",
                      err::kDuplicateRecordEntityKey);
      }
    }
    return Status(Code::kAlreadyExists, "Cannot insert duplicate key.", err::kDuplicateRecord);
  }

  // Creates a record from `in`; `extra` are fields handled as if they followed in.fields (the key
  // values of an upsert that creates).
  Result<Guid> Create(const EntityInput& in, std::optional<Guid> id, int depth = 0, std::span<const Field> extra = {}) {
    if (depth > 8) return PayloadError("Deep insert is nested too deeply.");
    const Table& t = *in.table;
    if (t.is_intersect)
      return Status(Code::kMethodNotAllowed, "The intersect table '" + t.logical_name + "' is read-only.",
                    err::kNotSupported);
    RETURN_IF_ERROR(RefuseAuditWrite(t, "Create"));
    RETURN_IF_ERROR(CheckPrivilege(caller_, t, Verb::kCreate));
    RowValues row;
    Status field_denied;
    auto take = [&](const Field& f) {
      if (f.column->is_primary_id) {
        if (const auto* g = std::get_if<Guid>(&f.value)) id = *g;
        return;
      }
      if (!f.column->valid_for_create) return;  // silently ignored, as Dataverse does
      if (f.column->is_secured && field_denied.ok() && !IsNull(f.value))
        field_denied = CheckField(caller_, t, *f.column, security::kFieldCreate);
      row.Set(f.column, f.value);
    };
    for (const auto& f : in.fields) take(f);
    for (const auto& f : extra) take(f);
    RETURN_IF_ERROR(field_denied);
    RETURN_IF_ERROR(ApplyBinds(t, in.binds, row));
    // Single-valued deep insert: create the related record first, then point at it.
    for (const auto& ds : in.deep_single) {
      ASSIGN_OR_RETURN(Guid child, Create(*ds.child, std::nullopt, depth + 1));
      row.Set(ds.nav->column, EntityRef{ds.nav->target->logical_name, child});
    }
    Guid rid = id ? *id : GuidGenerator::NewSequential();
    if (rid.IsNil()) return PayloadError("The id of a new record cannot be the empty GUID.");
    TablePlan& plan = Plan(t);
    row.Set(plan.pk, rid);
    // Two-option columns not given take their default value, as in Dataverse.
    for (const Column* c : plan.default_bools)
      if (!row.Has(c)) row.Set(c, *c->default_bool);
    ComputeFullName(plan, row, nullptr);
    RETURN_IF_ERROR(SetDefaultStatus(plan, row, true));
    RETURN_IF_ERROR(CheckAppend(t, row));
    FillSystem(plan, row, true);
    if (t.ownership == catalog::Ownership::kUser) {
      RETURN_IF_ERROR(SetOwningColumns(plan, row));
      // The new record's owner must be within the caller's Create depth.
      if (caller_.principal) {
        const auto& owner = std::get<EntityRef>(*row.Get(plan.ownerid));
        const auto* bu = plan.owningbusinessunit ? std::get_if<EntityRef>(row.Get(plan.owningbusinessunit)) : nullptr;
        if (!ReachesOwner(caller_, t, Verb::kCreate, owner.id, bu ? bu->id : Guid()))
          return Status(Code::kPermissionDenied,
                        "Principal user (Id=" + caller_.user_id.ToString() + ", type=8) cannot create a " +
                            t.logical_name + " record owned by " + owner.table + " " + owner.id.ToString() +
                            ": the access level of " + security::PrivilegeName(Verb::kCreate, t.schema_name) +
                            " does not reach that owner.",
                        err::kPrivilegeDenied);
      }
    }
    RETURN_IF_ERROR(Validate(t, row));
    RETURN_IF_ERROR(Insert(plan, row));
    RETURN_IF_ERROR(audit_.RecordCreate(t, rid, row.values));
    Touch(t);
    if (t.logical_name == "businessunit") RETURN_IF_ERROR(CreateDefaultTeam(t, row, rid));
    // Collection-valued deep insert and binds: children point back at the new record.
    for (const auto& dm : in.deep_many) {
      for (const auto& child_in : dm.children) {
        if (dm.nav->kind == NavProperty::Kind::kCollection) {
          EntityInput copy = CopyInput(child_in);
          copy.fields.push_back(Field{dm.nav->column, EntityRef{t.logical_name, rid}});
          RETURN_IF_ERROR(Create(copy, std::nullopt, depth + 1).status());
        } else {
          ASSIGN_OR_RETURN(Guid child, Create(child_in, std::nullopt, depth + 1));
          RETURN_IF_ERROR(Link(t, rid, *dm.nav, child, true));
        }
      }
      for (const auto& existing : dm.existing) {
        ASSIGN_OR_RETURN(Guid other, ResolveBind(existing));
        RETURN_IF_ERROR(Link(t, rid, *dm.nav, other, true));
      }
    }
    return rid;
  }

  // A new child business unit gets its default owner team, named after the unit; its members are
  // the unit's users (platform.md §2.1). The platform makes it, so no privilege is checked. The
  // root unit's default team is made by the environment's bootstrap.
  Status CreateDefaultTeam(const Table& bu_table, const RowValues& bu_row, const Guid& bu) {
    const Column* parent = bu_table.FindColumn("parentbusinessunitid");
    const Value* parent_value = parent ? bu_row.Get(parent) : nullptr;
    const Table* team = cat_.FindTable("team");
    if (!parent_value || IsNull(*parent_value) || !team) return Status::Ok();
    TablePlan& plan = Plan(*team);
    RowValues row;
    const Guid id = GuidGenerator::NewSequential();
    row.Set(plan.pk, id);
    const Column* bu_name = bu_table.FindColumn(bu_table.primary_name);
    const Value* name = bu_name ? bu_row.Get(bu_name) : nullptr;
    row.Set(team->FindColumn(team->primary_name), name ? *name : Value(bu.ToString()));
    row.Set(team->FindColumn("teamtype"), int64_t{0});
    row.Set(team->FindColumn("isdefault"), true);
    row.Set(team->FindColumn("businessunitid"), EntityRef{"businessunit", bu});
    for (const Column* c : plan.default_bools)
      if (!row.Has(c)) row.Set(c, *c->default_bool);
    RETURN_IF_ERROR(SetDefaultStatus(plan, row, true));
    FillSystem(plan, row, true);
    RETURN_IF_ERROR(Insert(plan, row));
    RETURN_IF_ERROR(audit_.RecordCreate(*team, id, row.values));
    Touch(*team);
    return Status::Ok();
  }

  static EntityInput CopyInput(const EntityInput& in) {
    EntityInput out;
    out.table = in.table;
    out.fields = in.fields;
    out.binds = in.binds;
    // Nested deep inserts below a copied child are moved by reference semantics: copy recursively.
    for (const auto& ds : in.deep_single)
      out.deep_single.push_back(EntityInput::DeepSingle{ds.nav, std::make_unique<EntityInput>(CopyInput(*ds.child))});
    for (const auto& dm : in.deep_many) {
      EntityInput::DeepMany m{dm.nav, {}, dm.existing};
      for (const auto& c : dm.children) m.children.push_back(CopyInput(c));
      out.deep_many.push_back(std::move(m));
    }
    return out;
  }

  void FillSystem(const TablePlan& plan, RowValues& row, bool creating) {
    const Table& t = plan.table;
    auto set = [&](const Column* c, Value v) {
      if (c) row.Set(c, std::move(v));
    };
    EntityRef me{"systemuser", caller_.user_id};
    if (creating) {
      const Column* oco = plan.overriddencreatedon;
      const Value* override_on = oco ? row.Get(oco) : nullptr;
      if (override_on && std::holds_alternative<Timestamp>(*override_on)) {
        Timestamp created = std::get<Timestamp>(*override_on);
        set(plan.createdon, created);
        set(plan.overriddencreatedon, now_);
      } else {
        set(plan.createdon, now_);
      }
      set(plan.createdby, me);
      if (t.ownership == catalog::Ownership::kUser) {
        const Column* owner = plan.ownerid;
        const Value* ov = row.Get(owner);
        if (!ov || IsNull(*ov)) {
          row.Set(owner, me);
          ov = row.Get(owner);
        }
        // owninguser/owningteam/owningbusinessunit follow the owner (SetOwningColumns).
      } else if (t.ownership == catalog::Ownership::kOrganization) {
        set(plan.organizationid, EntityRef{"organization", svc_.ids_.organization_id});
      }
      if (const Column* cur = plan.transactioncurrencyid; cur && !row.Has(cur))
        row.Set(cur, EntityRef{"transactioncurrency", svc_.ids_.base_currency_id});
      if (plan.exchangerate && plan.transactioncurrencyid) set(plan.exchangerate, 1.0);
    }
    set(plan.modifiedon, now_);
    set(plan.modifiedby, me);
    // Money base amounts at an exchange rate of 1 (single-currency environments).
    if (!plan.money_base.empty()) {
      for (size_t i = 0, n = row.values.size(); i < n; ++i) {
        const Column* c = row.values[i].first;
        if (c->type != ColumnType::kMoney) continue;
        if (const Column* base = plan.MoneyBase(c)) {
          Value v = row.values[i].second;  // Set may grow the vector
          row.Set(base, std::move(v));
        }
      }
    }
    if (plan.versionnumber) set(plan.versionnumber, NextVersion());
  }

  Result<WriteResult> Upsert(const EntityInput& in, const RecordKey& key, UpsertMode mode,
                             std::optional<int64_t> if_match) {
    const Table& t = *in.table;
    if (t.is_intersect)
      return Status(Code::kMethodNotAllowed, "The intersect table '" + t.logical_name + "' is read-only.",
                    err::kNotSupported);
    RETURN_IF_ERROR(RefuseAuditWrite(t, "Update"));
    KeySql k;
    ASSIGN_OR_RETURN(auto found, Find(t, key, &k));
    if (!found) {
      if (mode == UpsertMode::kUpdateOnly || if_match) return NotFoundFor(t, k);
      // Create with the key values from the URL unless the body has them.
      std::vector<Field> key_fields;
      std::optional<Guid> id = key.id;
      if (!key.id) {
        for (const auto& [name, lit] : key.alternate) {
          const Column* c = t.FindColumn(name);
          if (!c) c = t.FindLookupProperty(name);
          if (!c) continue;
          if (c->is_primary_id) {
            if (auto g = Guid::Parse(lit.text)) id = *g;
            continue;
          }
          bool in_body = false;
          for (const auto& f : in.fields) in_body |= f.column == c;
          for (const auto& f : key_fields) in_body |= f.column == c;
          if (in_body) continue;
          ASSIGN_OR_RETURN(Value v, LiteralToValue(*c, lit));
          key_fields.push_back(Field{c, std::move(v)});
        }
      }
      ASSIGN_OR_RETURN(Guid rid, Create(in, id, 0, key_fields));
      return WriteResult{rid, true};
    }
    if (mode == UpsertMode::kCreateOnly)
      return Status(Code::kFailedPrecondition, "A record with matching key values already exists.",
                    err::kDuplicateRecord);
    if (if_match && *if_match != found->second)
      return Status(Code::kFailedPrecondition,
                    "The version of the existing record doesn't match the RowVersion property provided.",
                    err::kConcurrencyVersionMismatch);
    RETURN_IF_ERROR(CheckPrivilege(caller_, t, Verb::kWrite));
    RETURN_IF_ERROR(CheckRow(t, found->first, Verb::kWrite));
    RETURN_IF_ERROR(Update(in, found->first, k.by_id ? nullptr : &key));
    return WriteResult{found->first, false};
  }

  Status Update(const EntityInput& in, const Guid& id, const RecordKey* alt_key) {
    const Table& t = *in.table;
    RowValues row;
    for (const auto& f : in.fields) {
      if (f.column->is_primary_id || !f.column->valid_for_update) continue;
      if (f.column->is_secured) RETURN_IF_ERROR(CheckField(caller_, t, *f.column, security::kFieldUpdate));
      if (alt_key) {  // key columns of the addressing key are not changed by the body
        bool is_key = false;
        for (const auto& [name, lit] : alt_key->alternate) is_key |= name == f.column->logical_name;
        if (is_key) continue;
      }
      row.Set(f.column, f.value);
    }
    RETURN_IF_ERROR(ApplyBinds(t, in.binds, row));
    for (const auto& ds : in.deep_single) {
      ASSIGN_OR_RETURN(Guid child, Create(*ds.child, std::nullopt, 1));
      row.Set(ds.nav->column, EntityRef{ds.nav->target->logical_name, child});
    }
    TablePlan& plan = Plan(t);
    if (plan.fullname && plan.firstname) {
      Entity current;
      const Column* first = plan.firstname;
      const Column* last = plan.lastname;
      std::vector<storage::SqlValue> p = {id.ToString()};
      RETURN_IF_ERROR(
          c_.Query("SELECT \"firstname\", \"lastname\" FROM " + Q(t.sql_table) + " WHERE " + Q(t.primary_id) + " = ?",
                   p, [&](const storage::Row& r) {
                     current.fields.push_back(Field{first, FromSql(*first, r, 0)});
                     current.fields.push_back(Field{last, FromSql(*last, r, 1)});
                     return false;
                   }));
      ComputeFullName(plan, row, &current);
    }
    RETURN_IF_ERROR(SetDefaultStatus(plan, row, false));
    RETURN_IF_ERROR(CheckAppend(t, row, &id));
    if (plan.ownerid && row.Has(plan.ownerid)) {
      // A new owner is an Assign.
      RETURN_IF_ERROR(CheckPrivilege(caller_, t, Verb::kAssign));
      RETURN_IF_ERROR(CheckRow(t, id, Verb::kAssign));
      RETURN_IF_ERROR(SetOwningColumns(plan, row));
    }
    FillSystem(plan, row, false);
    RETURN_IF_ERROR(Validate(t, row));
    Touch(t);
    ASSIGN_OR_RETURN(auto before, audit_.ReadBefore(t, id, row.values));
    const std::string& sql = CachedSql(plan.updates, row, [&] {
      std::string sets;
      for (const auto& [c, v] : row.values) {
        if (!sets.empty()) sets += ", ";
        sets += Q(c->sql_name) + " = ?";
        if (c->IsPolymorphic()) sets += ", " + Q(c->sql_name + "_type") + " = ?";
      }
      return "UPDATE " + Q(t.sql_table) + " SET " + sets + " WHERE " + Q(plan.pk->sql_name) + " = ?";
    });
    size_t n = 0;
    for (const auto& [c, v] : row.values) PushParam(params_, n, *c, v);
    PushParam(params_, n, *plan.pk, Value(id));
    auto r = c_.Exec(sql, std::span<const storage::SqlValue>(params_.data(), n));
    if (!r.ok()) return r.status().code() == Code::kAlreadyExists ? DuplicateError(t, r.status()) : r.status();
    RETURN_IF_ERROR(audit_.RecordUpdate(t, id, before, row.values));
    for (const auto& dm : in.deep_many) {
      for (const auto& existing : dm.existing) {
        ASSIGN_OR_RETURN(Guid other, ResolveBind(existing));
        RETURN_IF_ERROR(Link(t, id, *dm.nav, other, true));
      }
      for (const auto& child_in : dm.children) {
        EntityInput copy = CopyInput(child_in);
        if (dm.nav->kind == NavProperty::Kind::kCollection) {
          copy.fields.push_back(Field{dm.nav->column, EntityRef{t.logical_name, id}});
          RETURN_IF_ERROR(Create(copy, std::nullopt, 1).status());
        } else {
          ASSIGN_OR_RETURN(Guid child, Create(copy, std::nullopt, 1));
          RETURN_IF_ERROR(Link(t, id, *dm.nav, child, true));
        }
      }
    }
    return Status::Ok();
  }

  // Associates (or disassociates) `other` with record `id` through a collection navigation.
  Status Link(const Table& t, const Guid& id, const NavProperty& nav, const Guid& other, bool add) {
    if (caller_.principal) {
      // 1:N: the child's lookup changes (Append on the child, AppendTo on this record); N:N:
      // Append on both records.
      bool one_to_many = nav.kind == NavProperty::Kind::kCollection;
      Verb self = one_to_many ? Verb::kAppendTo : Verb::kAppend;
      RETURN_IF_ERROR(CheckPrivilege(caller_, t, self));
      RETURN_IF_ERROR(CheckRow(t, id, self));
      RETURN_IF_ERROR(CheckPrivilege(caller_, *nav.target, Verb::kAppend));
      RETURN_IF_ERROR(CheckRow(*nav.target, other, Verb::kAppend));
    }
    Touch(t);
    Touch(*nav.target);
    if (nav.relationship && nav.relationship->type == catalog::RelationshipType::kManyToMany)
      if (const Table* inter = cat_.FindTable(nav.relationship->intersect_entity)) Touch(*inter);
    if (nav.kind == NavProperty::Kind::kCollection) {
      const Table& child = *nav.target;
      const Column* col = nav.column;
      RETURN_IF_ERROR(RefuseAuditWrite(child, "Associate"));
      std::vector<storage::SqlValue> p;
      std::string sql = "UPDATE " + Q(child.sql_table) + " SET " + Q(col->sql_name) + " = ?";
      p.push_back(add ? storage::SqlValue(id.ToString()) : storage::SqlValue());
      if (col->IsPolymorphic()) {
        sql += ", " + Q(col->sql_name + "_type") + " = ?";
        p.push_back(add ? storage::SqlValue(t.logical_name) : storage::SqlValue());
      }
      if (child.FindColumn("versionnumber")) {
        sql += ", \"versionnumber\" = ?, \"modifiedon\" = ?";
        p.push_back(NextVersion());
        p.push_back(now_.ms);
      }
      sql += " WHERE " + Q(child.PrimaryId()->sql_name) + " = ?";
      p.push_back(other.ToString());
      if (!add) {
        sql += " AND " + Q(col->sql_name) + " = ?";
        p.push_back(id.ToString());
      }
      ColumnValues change = {{col, add ? Value(EntityRef{t.logical_name, id}) : Value()}};
      ASSIGN_OR_RETURN(auto before, audit_.ReadBefore(child, other, change));
      ASSIGN_OR_RETURN(int64_t n, c_.Exec(sql, p));
      if (n == 0 && add) return NotFound(child.logical_name + " With Id = " + other.ToString() + " Does Not Exist");
      return n > 0 ? audit_.RecordUpdate(child, other, before, change) : Status::Ok();
    }
    const auto& r = *nav.relationship;
    const Table* inter = cat_.FindTable(r.intersect_entity);
    bool self_first = r.entity1 == t.logical_name;
    const std::string& a1 = self_first ? r.entity1_attribute : r.entity2_attribute;
    const std::string& a2 = self_first ? r.entity2_attribute : r.entity1_attribute;
    if (!add) {
      std::vector<storage::SqlValue> p = {id.ToString(), other.ToString()};
      ASSIGN_OR_RETURN(
          int64_t n,
          c_.Exec("DELETE FROM " + Q(inter->sql_table) + " WHERE " + Q(a1) + " = ? AND " + Q(a2) + " = ?", p));
      return n > 0 ? audit_.RecordAssociate(t, id, r, *nav.target, other, false) : Status::Ok();
    }
    // The related record must exist.
    KeySql k;
    RecordKey rk;
    rk.id = other;
    ASSIGN_OR_RETURN(auto found, Find(*nav.target, rk, &k));
    if (!found) return NotFoundFor(*nav.target, k);
    std::vector<storage::SqlValue> p = {GuidGenerator::NewSequential().ToString(), id.ToString(), other.ToString(),
                                        NextVersion()};
    auto res = c_.Exec("INSERT INTO " + Q(inter->sql_table) + " (" + Q(inter->primary_id) + ", " + Q(a1) + ", " +
                           Q(a2) + ", \"versionnumber\") VALUES (?, ?, ?, ?)",
                       p);
    if (!res.ok() && res.status().code() == Code::kAlreadyExists)
      return Status(Code::kAlreadyExists, "Cannot insert duplicate key.", err::kDuplicateRecord);
    if (!res.ok()) return res.status();
    return audit_.RecordAssociate(t, id, r, *nav.target, other, true);
  }

  Status Delete(const Table& t, const Guid& id, int depth = 0) {
    if (depth > 32) return Status(Code::kInvalidArgument, "The delete cascades too deeply.", err::kInvalidArgument);
    if (depth == 0) {
      RETURN_IF_ERROR(RefuseAuditWrite(t, "Delete"));
      RETURN_IF_ERROR(CheckPrivilege(caller_, t, Verb::kDelete));
      RETURN_IF_ERROR(CheckRow(t, id, Verb::kDelete));
    }
    Touch(t);
    // Relationships where this table is the parent.
    for (const auto& rp : cat_.relationships()) {
      const auto& r = *rp;
      if (r.type == catalog::RelationshipType::kManyToMany) {
        if (r.entity1 != t.logical_name && r.entity2 != t.logical_name) continue;
        const Table* inter = cat_.FindTable(r.intersect_entity);
        std::vector<storage::SqlValue> p = {id.ToString()};
        if (r.entity1 == t.logical_name)
          RETURN_IF_ERROR(
              c_.Exec("DELETE FROM " + Q(inter->sql_table) + " WHERE " + Q(r.entity1_attribute) + " = ?", p).status());
        if (r.entity2 == t.logical_name)
          RETURN_IF_ERROR(
              c_.Exec("DELETE FROM " + Q(inter->sql_table) + " WHERE " + Q(r.entity2_attribute) + " = ?", p).status());
        continue;
      }
      if (r.referenced_entity != t.logical_name) continue;
      const Table* child = cat_.FindTable(r.referencing_entity);
      const Column* col = child ? child->FindColumn(r.referencing_attribute) : nullptr;
      if (!col) continue;
      std::vector<storage::SqlValue> p = {id.ToString()};
      std::string where = " WHERE " + Q(col->sql_name) + " = ?";
      if (col->IsPolymorphic()) {
        where += " AND " + Q(col->sql_name + "_type") + " = ?";
        p.push_back(t.logical_name);
      }
      switch (r.on_delete) {
        case catalog::CascadeDelete::kRestrict: {
          bool any = false;
          RETURN_IF_ERROR(
              c_.Query("SELECT 1 FROM " + Q(child->sql_table) + where + " LIMIT 1", p, [&](const storage::Row&) {
                any = true;
                return false;
              }));
          if (any)
            return Status(Code::kMethodNotAllowed,
                          "The record cannot be deleted because it is associated with another record (" +
                              child->logical_name + " through " + r.schema_name + ").",
                          err::kCannotDeleteDueToAssociation);
          break;
        }
        case catalog::CascadeDelete::kCascade: {
          std::vector<Guid> ids;
          RETURN_IF_ERROR(c_.Query("SELECT " + Q(child->PrimaryId()->sql_name) + " FROM " + Q(child->sql_table) + where,
                                   p, [&](const storage::Row& row) {
                                     if (auto g = Guid::Parse(row.Text(0))) ids.push_back(*g);
                                     return true;
                                   }));
          for (const auto& cid : ids)
            if (cid != id) RETURN_IF_ERROR(Delete(*child, cid, depth + 1));
          break;
        }
        case catalog::CascadeDelete::kRemoveLink: {
          std::string sql = "UPDATE " + Q(child->sql_table) + " SET " + Q(col->sql_name) + " = NULL";
          if (col->IsPolymorphic()) sql += ", " + Q(col->sql_name + "_type") + " = NULL";
          RETURN_IF_ERROR(c_.Exec(sql + where, p).status());
          break;
        }
      }
    }
    RETURN_IF_ERROR(audit_.RecordDelete(t, id));
    RETURN_IF_ERROR(DeleteRecordFiles(c_, t, id));
    std::vector<storage::SqlValue> p = {id.ToString()};
    if (t.ownership == catalog::Ownership::kUser)  // its shares go with it
      RETURN_IF_ERROR(c_.Exec("DELETE FROM principalobjectaccess WHERE objectid = ?", p).status());
    return c_.Exec("DELETE FROM " + Q(t.sql_table) + " WHERE " + Q(t.PrimaryId()->sql_name) + " = ?", p).status();
  }

  storage::Connection& connection() { return c_; }

 private:
  OrganizationService& svc_;
  storage::Connection& c_;
  const catalog::Catalog& cat_;
  const CallerContext& caller_;
  Timestamp now_;
  std::vector<std::unique_ptr<TablePlan>> plans_;
  std::vector<storage::SqlValue> params_;  // parameters of the last INSERT/UPDATE, reused row after row
  bool touched_security_ = false;          // a table the principals are made of changed
  Auditor audit_;                          // after now_: initialised from it
};

OrganizationService::OrganizationService(storage::Engine& engine, CatalogHolder& catalog, const Clock& clock,
                                         EnvironmentIds ids)
    : engine_(engine), catalog_(catalog), clock_(clock), ids_(ids) {}

OrganizationService::~OrganizationService() = default;

Status OrganizationService::PreCommit(storage::Connection& c) {
  if (next_version_ - 1 == persisted_version_) return Status::Ok();
  std::vector<storage::SqlValue> p = {std::to_string(next_version_ - 1)};
  RETURN_IF_ERROR(c.Exec("UPDATE _t_meta SET value = ? WHERE key = 'version'", p).status());
  persisted_version_ = next_version_ - 1;
  return Status::Ok();
}

// --- WriteScope: the operations of one transaction -------------------------------------------

Result<WriteResult> WriteScope::Create(const EntityInput& input, std::optional<Guid> id) {
  ASSIGN_OR_RETURN(Guid rid, w_.Create(input, id));
  return WriteResult{rid, true};
}

Result<WriteResult> WriteScope::Upsert(const EntityInput& input, const RecordKey& key, UpsertMode mode,
                                       std::optional<int64_t> if_match_version) {
  return w_.Upsert(input, key, mode, if_match_version);
}

Result<Guid> WriteScope::Delete(const Table& table, const RecordKey& key, std::optional<int64_t> if_match_version) {
  KeySql k;
  ASSIGN_OR_RETURN(auto found, w_.Find(table, key, &k));
  if (!found) return NotFoundFor(table, k);
  if (if_match_version && *if_match_version != found->second)
    return Status(Code::kFailedPrecondition,
                  "The version of the existing record doesn't match the RowVersion property provided.",
                  err::kConcurrencyVersionMismatch);
  RETURN_IF_ERROR(w_.Delete(table, found->first));
  return found->first;
}

Result<std::vector<Guid>> WriteScope::Bulk(const Table& table, BulkOperation op, const std::vector<BulkItem>& items) {
  std::vector<Guid> ids;
  ids.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const BulkItem& item = items[i];
    Result<Guid> r = [&]() -> Result<Guid> {
      switch (op) {
        case BulkOperation::kCreate:
          return w_.Create(item.input, item.key.id);
        case BulkOperation::kUpdate:
        case BulkOperation::kUpsert: {
          auto mode = op == BulkOperation::kUpdate ? UpsertMode::kUpdateOnly : UpsertMode::kUpsert;
          ASSIGN_OR_RETURN(WriteResult wr, w_.Upsert(item.input, item.key, mode, std::nullopt));
          return wr.id;
        }
        case BulkOperation::kDelete:
          return Delete(table, item.key, std::nullopt);
      }
      return Internal("unknown bulk operation");
    }();
    if (!r.ok()) {
      const Status& s = r.status();
      return Status(s.code(), "Targets[" + std::to_string(i) + "]: " + s.message(), s.error_code());
    }
    ids.push_back(*r);
  }
  return ids;
}

Result<Guid> WriteScope::SetReference(const Table& table, const RecordKey& key, const NavProperty& nav,
                                      const std::optional<BindTarget>& target) {
  EntityInput in;
  in.table = &table;
  in.binds.push_back(EntityInput::Bind{&nav, target});
  ASSIGN_OR_RETURN(WriteResult r, w_.Upsert(in, key, UpsertMode::kUpdateOnly, std::nullopt));
  return r.id;
}

Result<Guid> WriteScope::Associate(const Table& table, const RecordKey& key, const NavProperty& nav,
                                   const BindTarget& related, bool associate) {
  KeySql k;
  ASSIGN_OR_RETURN(auto found, w_.Find(table, key, &k));
  if (!found) return NotFoundFor(table, k);
  ASSIGN_OR_RETURN(Guid other, w_.ResolveBind(related));
  RETURN_IF_ERROR(w_.Link(table, found->first, nav, other, associate));
  return found->first;
}

const CallerContext& WriteScope::caller() const { return w_.caller(); }

void WriteScope::SecurityChanged() { w_.TouchSecurity(); }

Status WriteScope::CheckAccess(const Table& table, const Guid& record, Verb verb) {
  RETURN_IF_ERROR(CheckPrivilege(w_.caller(), table, verb));
  return w_.CheckRow(table, record, verb);
}

Result<Guid> WriteScope::Assign(const Table& table, const RecordKey& key, const EntityRef& owner) {
  const Column* ownerid = table.FindColumn("ownerid");
  if (table.ownership != catalog::Ownership::kUser || !ownerid)
    return InvalidArgument("The table '" + table.logical_name + "' has no owner: its records cannot be assigned.");
  EntityInput in;
  in.table = &table;
  in.fields.push_back(Field{ownerid, owner});
  ASSIGN_OR_RETURN(WriteResult r, w_.Upsert(in, key, UpsertMode::kUpdateOnly, std::nullopt));
  return r.id;
}

Status WriteScope::Share(const Table& table, const Guid& record, const EntityRef& principal, uint32_t rights,
                         bool replace) {
  if (table.ownership != catalog::Ownership::kUser)
    return InvalidArgument("Records of '" + table.logical_name + "' cannot be shared: the table has no owner.");
  if (principal.table != "systemuser" && principal.table != "team")
    return InvalidArgument("A record can be shared with a systemuser or a team, not '" + principal.table + "'.");
  if ((rights & ~security::kAllAccessRights) != 0) return InvalidArgument("AccessMask has unknown access rights.");
  RETURN_IF_ERROR(CheckAccess(table, record, Verb::kShare));
  RETURN_IF_ERROR(CheckAccess(table, record, Verb::kRead));
  storage::Connection& c = w_.connection();
  bool exists = false;
  std::vector<storage::SqlValue> p = {principal.id.ToString()};
  RETURN_IF_ERROR(c.Query("SELECT 1 FROM " + Q(principal.table) + " WHERE " + Q(principal.table + "id") + " = ?", p,
                          [&](const storage::Row&) {
                            exists = true;
                            return false;
                          }));
  if (!exists) return NotFound(principal.table + " With Id = " + principal.id.ToString() + " Does Not Exist");
  std::vector<storage::SqlValue> q = {record.ToString(), principal.id.ToString()};
  std::optional<int64_t> current;
  RETURN_IF_ERROR(c.Query("SELECT accessrightsmask FROM principalobjectaccess WHERE objectid = ? AND principalid = ?",
                          q, [&](const storage::Row& r) {
                            current = r.is_null(0) ? 0 : r.Int(0);
                            return false;
                          }));
  int64_t mask = replace ? rights : (current.value_or(0) | rights);
  RETURN_IF_ERROR(w_.audit().RecordShare(table, record, principal, static_cast<uint32_t>(current.value_or(0)),
                                         static_cast<uint32_t>(mask)));
  if (current) {
    std::vector<storage::SqlValue> u = {mask, record.ToString(), principal.id.ToString()};
    return c.Exec("UPDATE principalobjectaccess SET accessrightsmask = ? WHERE objectid = ? AND principalid = ?", u)
        .status();
  }
  std::vector<storage::SqlValue> ins = {GuidGenerator::NewSequential().ToString(),
                                        principal.id.ToString(),
                                        principal.table,
                                        record.ToString(),
                                        table.logical_name,
                                        mask};
  return c
      .Exec(
          "INSERT INTO principalobjectaccess (principalobjectaccessid, principalid, principaltypecode, objectid, "
          "objecttypecode, accessrightsmask, inheritedaccessrightsmask) VALUES (?, ?, ?, ?, ?, ?, 0)",
          ins)
      .status();
}

Status WriteScope::Unshare(const Table& table, const Guid& record, const EntityRef& principal) {
  RETURN_IF_ERROR(CheckAccess(table, record, Verb::kShare));
  std::vector<storage::SqlValue> q = {record.ToString(), principal.id.ToString()};
  std::optional<int64_t> old;
  RETURN_IF_ERROR(
      w_.connection().Query("SELECT accessrightsmask FROM principalobjectaccess WHERE objectid = ? AND principalid = ?",
                            q, [&](const storage::Row& r) {
                              old = r.is_null(0) ? 0 : r.Int(0);
                              return false;
                            }));
  if (!old) return Status::Ok();  // nothing shared: nothing to revoke
  RETURN_IF_ERROR(w_.audit().RecordShare(table, record, principal, static_cast<uint32_t>(*old), 0));
  return w_.connection().Exec("DELETE FROM principalobjectaccess WHERE objectid = ? AND principalid = ?", q).status();
}

storage::Connection& WriteScope::connection() { return w_.connection(); }

void OrganizationService::Transact(const CallerContext& caller, std::function<Status(WriteScope&)> fn,
                                   std::function<void(Status)> done) {
  auto cat = catalog_.Get();
  auto touched = std::make_shared<bool>(false);
  engine_.Write(
      [this, cat, caller, touched, fn = std::move(fn)](storage::Connection& c) -> Status {
        // Another process on the same store (the `tributary user` / `role` commands) may have
        // handed out versions since the last job: continue after the highest one stored. The
        // write transaction holds the store's write lock, so this read is current.
        RETURN_IF_ERROR(c.Query("SELECT value FROM _t_meta WHERE key = 'version'", {}, [&](const storage::Row& r) {
          int64_t stored = 0;
          std::string_view text = r.Text(0);
          std::from_chars(text.data(), text.data() + text.size(), stored);
          if (stored >= next_version_) {
            next_version_ = stored + 1;
            persisted_version_ = stored;
          }
          return false;
        }));
        Writer w(*this, c, *cat, caller);
        WriteScope scope(w);
        Status s = fn(scope);
        *touched = w.touched_security();
        return s;
      },
      [this, touched, done = std::move(done)](Status s) {
        // After the commit: principals read from now on see the change.
        if (*touched && security_) security_->Invalidate();
        done(std::move(s));
      });
}

namespace {

// Runs `fn` in a transaction of its own; its result reaches `done` after the commit.
template <typename T, typename Fn>
void RunScoped(OrganizationService& svc, const CallerContext& caller, Fn fn, Done<T> done) {
  auto result = std::make_shared<std::optional<T>>();
  svc.Transact(
      caller,
      [fn = std::move(fn), result](WriteScope& s) -> Status {
        Result<T> r = fn(s);
        if (!r.ok()) return r.status();
        *result = std::move(r).value();
        return Status::Ok();
      },
      [result, done = std::move(done)](Status s) {
        if (!s.ok())
          done(std::move(s));
        else
          done(std::move(**result));
      });
}

}  // namespace

void OrganizationService::Create(const CallerContext& caller, EntityInput input, std::optional<Guid> id,
                                 Done<WriteResult> done) {
  auto in = std::make_shared<EntityInput>(std::move(input));
  RunScoped<WriteResult>(
      *this, caller, [in, id](WriteScope& s) { return s.Create(*in, id); }, std::move(done));
}

void OrganizationService::Upsert(const CallerContext& caller, EntityInput input, RecordKey key, UpsertMode mode,
                                 std::optional<int64_t> if_match_version, Done<WriteResult> done) {
  auto in = std::make_shared<EntityInput>(std::move(input));
  RunScoped<WriteResult>(
      *this, caller,
      [in, key = std::move(key), mode, if_match_version](WriteScope& s) {
        return s.Upsert(*in, key, mode, if_match_version);
      },
      std::move(done));
}

void OrganizationService::Delete(const CallerContext& caller, const Table& table, RecordKey key,
                                 std::optional<int64_t> if_match_version, Done<Guid> done) {
  RunScoped<Guid>(
      *this, caller,
      [&table, key = std::move(key), if_match_version](WriteScope& s) {
        return s.Delete(table, key, if_match_version);
      },
      std::move(done));
}

void OrganizationService::ExecuteBulk(const CallerContext& caller, const Table& table, BulkOperation op,
                                      std::vector<BulkItem> items, Done<std::vector<Guid>> done) {
  auto shared = std::make_shared<std::vector<BulkItem>>(std::move(items));
  RunScoped<std::vector<Guid>>(
      *this, caller, [&table, op, shared](WriteScope& s) { return s.Bulk(table, op, *shared); }, std::move(done));
}

void OrganizationService::SetReference(const CallerContext& caller, const Table& table, RecordKey key,
                                       const NavProperty& nav, std::optional<BindTarget> target, Done<Guid> done) {
  RunScoped<Guid>(
      *this, caller,
      [&table, &nav, key = std::move(key), target = std::move(target)](WriteScope& s) {
        return s.SetReference(table, key, nav, target);
      },
      std::move(done));
}

void OrganizationService::Associate(const CallerContext& caller, const Table& table, RecordKey key,
                                    const NavProperty& nav, BindTarget related, bool associate, Done<Guid> done) {
  RunScoped<Guid>(
      *this, caller,
      [&table, &nav, key = std::move(key), related = std::move(related), associate](WriteScope& s) {
        return s.Associate(table, key, nav, related, associate);
      },
      std::move(done));
}

}  // namespace tributary::data

// Functions and actions of the Web API: the built-in operations, custom APIs (customapi rows),
// and their invocation (unbound, bound to a record, bound to a collection). See operations.h.

#include <algorithm>

#include "body.h"
#include "operations.h"
#include "tributary/base/strings.h"
#include "tributary/data/audit.h"
#include "tributary/odata/errors.h"
#include "tributary/odata/metadata_writer.h"
#include "tributary/security/principal.h"
#include "webapi_internal.h"

namespace tributary::odata {

using catalog::Column;
using catalog::NavProperty;
using catalog::Table;

namespace {

OperationParameter Param(std::string name, OperationType type, bool optional = false, std::string entity = "") {
  return OperationParameter{std::move(name), type, std::move(entity), optional};
}

// The @odata.context of an operation's response complex type.
std::string ResponseContext(const WebApi::Call& c, const std::string& name) {
  return c.root + "$metadata#Microsoft.Dynamics.CRM." + name + "Response";
}

// A record as a crmbaseentity value: {"@odata.type":"#Microsoft.Dynamics.CRM.<table>", <fields>}.
void WriteRecordValue(JsonWriter& w, std::string_view table, const std::vector<data::Field>& fields,
                      const SerializeContext& ctx, const Table* nav_table) {
  w.BeginObject();
  w.Key("@odata.type");
  w.String("#Microsoft.Dynamics.CRM." + std::string(table));
  for (const auto& f : fields) {
    std::string name = PropertyName(*f.column);
    WriteResultProperty(w, ResultProperty{name, f.column, false, {}, nav_table}, f.value, ctx);
  }
  w.EndObject();
}

// A reference as a crmbaseentity value: the table's type and its primary id.
void WriteReferenceValue(JsonWriter& w, const catalog::Catalog& cat, const data::EntityRef& r) {
  const Table* t = cat.FindTable(r.table);
  w.BeginObject();
  w.Key("@odata.type");
  w.String("#Microsoft.Dynamics.CRM." + r.table);
  w.Key(t ? t->primary_id : r.table + "id");
  w.String(r.id.ToString());
  w.EndObject();
}

// RetrieveRecordChangeHistory(Target=@t[,PagingInfo=@p]): the audit history of one record, newest
// first, as an AuditDetailCollection (data/audit.h). PagingInfo.Count and PageNumber page it.
void RecordChangeHistory(data::OrganizationService& svc, const std::shared_ptr<WebApi::Call>& c, const Json& params) {
  const catalog::Catalog& cat = *c->cat;
  auto target = ParseEntityArgument(cat, *params.Find("Target"), "Target", nullptr);
  if (!target.ok()) return c->Fail(target.status());
  if (!target->id) return c->Fail(PayloadError("The parameter 'Target' must name the record by its id."));
  int64_t count = 5000, page = 1;
  if (const Json* paging = params.Find("PagingInfo"); paging && paging->is_object()) {
    const Json* n = paging->Find("Count");
    const Json* p = paging->Find("PageNumber");
    if (n && n->is_int() && n->as_int() > 0) count = std::min<int64_t>(n->as_int(), 5000);
    if (p && p->is_int() && p->as_int() > 1) page = std::min<int64_t>(p->as_int(), 1'000'000);
  }
  int64_t total = 0;
  int64_t skip = (page - 1) * count;
  auto history = data::RetrieveRecordChangeHistory(svc, c->caller, *target->table, *target->id, skip, count, &total);
  if (!history.ok()) return c->Fail(history.status());
  const Table* audit = cat.FindTable("audit");
  SerializeContext ctx = MakeSerializeContext(*c, svc);
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("@odata.context");
  w.String(ResponseContext(*c, "RetrieveRecordChangeHistory"));
  w.Key("AuditDetailCollection");
  w.BeginObject();
  bool more = skip + static_cast<int64_t>(history->size()) < total;
  w.Key("MoreRecords");
  w.Bool(more);
  w.Key("PagingCookie");
  if (more)
    w.String("<cookie page=\"" + std::to_string(page) + "\" />");
  else
    w.Null();
  w.Key("TotalRecordCount");
  w.Int(total);
  w.Key("AuditDetails");
  w.BeginArray();
  for (const auto& d : *history) {
    w.BeginObject();
    w.Key("@odata.type");
    switch (d.kind) {
      case data::AuditDetail::Kind::kAttribute:
        w.String("#Microsoft.Dynamics.CRM.AttributeAuditDetail");
        break;
      case data::AuditDetail::Kind::kRelationship:
        w.String("#Microsoft.Dynamics.CRM.RelationshipAuditDetail");
        break;
      case data::AuditDetail::Kind::kShare:
        w.String("#Microsoft.Dynamics.CRM.ShareAuditDetail");
        break;
    }
    w.Key("AuditRecord");
    WriteRecordValue(w, "audit", d.record.fields, ctx, audit);
    switch (d.kind) {
      case data::AuditDetail::Kind::kAttribute:
        w.Key("OldValue");
        WriteRecordValue(w, target->table->logical_name, d.old_values, ctx, target->table);
        w.Key("NewValue");
        WriteRecordValue(w, target->table->logical_name, d.new_values, ctx, target->table);
        w.Key("InvalidNewValueAttributes");
        w.BeginArray();
        w.EndArray();
        w.Key("LocLabelLanguageCode");
        w.Int(0);
        w.Key("DeletedAttributes");
        w.BeginObject();
        w.Key("Count");
        w.Int(static_cast<int64_t>(d.deleted_attributes.size()));
        w.Key("IsReadOnly");
        w.Bool(false);
        w.Key("Keys");
        w.BeginArray();
        for (size_t i = 0; i < d.deleted_attributes.size(); ++i) w.Int(static_cast<int64_t>(i));
        w.EndArray();
        w.Key("Values");
        w.BeginArray();
        for (const auto& name : d.deleted_attributes) w.String(name);
        w.EndArray();
        w.EndObject();
        break;
      case data::AuditDetail::Kind::kRelationship:
        w.Key("RelationshipName");
        w.String(d.relationship);
        w.Key("TargetRecords");
        w.BeginArray();
        for (const auto& r : d.targets) WriteReferenceValue(w, cat, r);
        w.EndArray();
        break;
      case data::AuditDetail::Kind::kShare:
        w.Key("Principal");
        WriteReferenceValue(w, cat, d.principal);
        w.Key("OldPrivileges");
        w.String(security::AccessRightsText(d.old_mask));
        w.Key("NewPrivileges");
        w.String(security::AccessRightsText(d.new_mask));
        break;
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  w.EndObject();
  c->Reply(Json200(std::move(body)));
}

}  // namespace

void WebApi::RegisterOperations() {
  auto add = [this](OperationDef def, std::function<void(CallPtr, const OperationArgs&)> run) {
    operations_.push_back(std::make_shared<const Operation>(Operation{std::move(def), std::move(run)}));
  };
  add({"WhoAmI",
       true,
       OperationBinding::kUnbound,
       "",
       {},
       {Param("BusinessUnitId", OperationType::kGuid), Param("UserId", OperationType::kGuid),
        Param("OrganizationId", OperationType::kGuid)}},
      [this](CallPtr c, const OperationArgs&) {
        std::string body;
        JsonWriter w(body);
        w.BeginObject();
        w.Key("@odata.context");
        w.String(ResponseContext(*c, "WhoAmI"));
        w.Key("BusinessUnitId");
        w.String(c->caller.business_unit_id.ToString());
        w.Key("UserId");
        w.String(c->caller.user_id.ToString());
        w.Key("OrganizationId");
        w.String(env_.service().ids().organization_id.ToString());
        w.EndObject();
        c->Reply(Json200(std::move(body)));
      });
  add({"RetrieveVersion", true, OperationBinding::kUnbound, "", {}, {Param("Version", OperationType::kString)}},
      [](CallPtr c, const OperationArgs&) {
        std::string body;
        JsonWriter w(body);
        w.BeginObject();
        w.Key("@odata.context");
        w.String(ResponseContext(*c, "RetrieveVersion"));
        w.Key("Version");
        w.String("9.2.0.0");
        w.EndObject();
        c->Reply(Json200(std::move(body)));
      });
  add({"RetrieveTotalRecordCount",
       true,
       OperationBinding::kUnbound,
       "",
       {Param("EntityNames", OperationType::kStringArray)},
       {Param("EntityRecordCountCollection", OperationType::kEnum, false, "EntityRecordCountCollection")}},
      [this](CallPtr c, const OperationArgs&) { UnboundFunction(c, "RetrieveTotalRecordCount"); });
  add({"InitializeFrom",
       true,
       OperationBinding::kUnbound,
       "",
       {Param("EntityMoniker", OperationType::kEntityReference), Param("TargetEntityName", OperationType::kString),
        Param("TargetFieldType", OperationType::kEnum, true, "TargetFieldType")},
       {}},
      [this](CallPtr c, const OperationArgs&) { UnboundFunction(c, "InitializeFrom"); });
  for (const char* bulk : {"CreateMultiple", "UpdateMultiple", "UpsertMultiple", "DeleteMultiple"}) {
    OperationDef def{
        bulk, false, OperationBinding::kCollection, "", {Param("Targets", OperationType::kEntityCollection)}, {}};
    if (std::string_view(bulk) == "CreateMultiple") def.response = {Param("Ids", OperationType::kGuidArray)};
    add(std::move(def), [this, bulk](CallPtr c, const OperationArgs& a) { BulkAction(c, *a.table, bulk, a.params); });
  }
  add({"QualifyLead",
       false,
       OperationBinding::kEntity,
       "lead",
       {Param("CreateAccount", OperationType::kBoolean), Param("CreateContact", OperationType::kBoolean),
        Param("CreateOpportunity", OperationType::kBoolean), Param("Status", OperationType::kInteger),
        Param("OpportunityCurrencyId", OperationType::kEntityReference, true, "transactioncurrency"),
        Param("OpportunityCustomerId", OperationType::kEntityReference, true),
        Param("SourceCampaignId", OperationType::kEntityReference, true)},
       {Param("CreatedEntities", OperationType::kEntityCollection)}},
      [this](CallPtr c, const OperationArgs& a) { QualifyLead(c, a); });
  add({"RetrieveRecordChangeHistory",
       true,
       OperationBinding::kUnbound,
       "",
       {Param("Target", OperationType::kEntityReference),
        Param("PagingInfo", OperationType::kComplex, true, "mscrm.PagingInfo")},
       {Param("AuditDetailCollection", OperationType::kEnum, false, "AuditDetailCollection")}},
      [this](CallPtr c, const OperationArgs& a) { RecordChangeHistory(env_.service(), c, a.params); });
  RegisterSecurityOperations();
}

std::shared_ptr<const WebApi::Operation> WebApi::FindOperation(std::string_view name, OperationBinding binding,
                                                               const Table* table, CallPtr c) {
  for (const auto& op : operations_)
    if (op->def.name == name && op->def.binding == binding &&
        (op->def.bound_table.empty() || (table && op->def.bound_table == table->logical_name)))
      return op;
  // Custom APIs: customapi rows, by unique name.
  auto def = LoadCustomApi(*c, name);
  if (!def.ok() || !*def) return nullptr;
  if ((*def)->binding != binding || ((*def)->binding != OperationBinding::kUnbound && table &&
                                     !(*def)->bound_table.empty() && (*def)->bound_table != table->logical_name))
    return nullptr;
  return std::make_shared<const Operation>(
      Operation{std::move(**def), [this](CallPtr c, const OperationArgs& a) { RunCustomApi(c, a); }});
}

Result<std::optional<OperationDef>> WebApi::LoadCustomApi(const Call& c, std::string_view name) {
  const catalog::Catalog& cat = *c.cat;
  const Table* api = cat.FindTable("customapi");
  const Table* req = cat.FindTable("customapirequestparameter");
  const Table* resp = cat.FindTable("customapiresponseproperty");
  if (!api || !req || !resp) return std::optional<OperationDef>();
  auto& svc = env_.service();
  auto text = [](const data::Entity& e, std::string_view col) -> std::string {
    const data::Value* v = e.Get(col);
    return v && std::holds_alternative<std::string>(*v) ? std::get<std::string>(*v) : std::string();
  };
  auto integer = [](const data::Entity& e, std::string_view col) -> int64_t {
    const data::Value* v = e.Get(col);
    return v && std::holds_alternative<int64_t>(*v) ? std::get<int64_t>(*v) : 0;
  };
  auto boolean = [](const data::Entity& e, std::string_view col) {
    const data::Value* v = e.Get(col);
    return v && std::holds_alternative<bool>(*v) && std::get<bool>(*v);
  };
  std::string quoted;
  for (char ch : name) quoted += ch == '\'' ? std::string("''") : std::string(1, ch);
  data::QueryOptions o;
  ASSIGN_OR_RETURN(o.filter, ParseFilter("uniquename eq '" + quoted + "' and statecode eq 0", {}));
  data::PageRequest pr;
  pr.page_size = 1;
  ASSIGN_OR_RETURN(data::Page page, svc.RetrieveMultiple(c.caller, *api, o, pr));
  if (page.rows.empty()) return std::optional<OperationDef>();
  const data::Entity& row = page.rows[0];
  OperationDef def;
  def.custom = true;
  def.name = text(row, "uniquename");
  def.is_function = boolean(row, "isfunction");
  int64_t binding = integer(row, "bindingtype");
  def.binding = binding == 1   ? OperationBinding::kEntity
                : binding == 2 ? OperationBinding::kCollection
                               : OperationBinding::kUnbound;
  def.bound_table = text(row, "boundentitylogicalname");
  auto members = [&](const Table& t, std::vector<OperationParameter>& out, bool request) -> Status {
    data::QueryOptions mo;
    ASSIGN_OR_RETURN(mo.filter, ParseFilter("_customapiid_value eq " + row.id.ToString() + " and statecode eq 0", {}));
    mo.orderby.push_back(data::OrderBy{{"uniquename"}, false});
    data::PageRequest mp;
    ASSIGN_OR_RETURN(data::Page members, svc.RetrieveMultiple(c.caller, t, mo, mp));
    for (const auto& m : members.rows) {
      OperationParameter p;
      p.name = text(m, "uniquename");
      p.type = static_cast<OperationType>(integer(m, "type"));
      p.entity = text(m, "logicalentityname");
      p.optional = request && boolean(m, "isoptional");
      out.push_back(std::move(p));
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(members(*req, def.parameters, true));
  RETURN_IF_ERROR(members(*resp, def.response, false));
  return std::optional<OperationDef>(std::move(def));
}

std::vector<OperationDef> WebApi::OperationsForMetadata(const Call& c) {
  std::vector<OperationDef> out;
  for (const auto& op : operations_) out.push_back(op->def);
  const Table* api = c.cat->FindTable("customapi");
  if (!api) return out;
  data::QueryOptions o;
  o.select = {"uniquename"};
  auto filter = ParseFilter("statecode eq 0 and isprivate ne true", {});
  if (filter.ok()) o.filter = std::move(filter).value();
  data::PageRequest pr;
  auto page = env_.service().RetrieveMultiple(c.caller, *api, o, pr);
  if (!page.ok()) return out;
  for (const auto& row : page->rows) {
    const data::Value* v = row.Get("uniquename");
    if (!v || !std::holds_alternative<std::string>(*v)) continue;
    auto def = LoadCustomApi(c, std::get<std::string>(*v));
    if (def.ok() && *def) out.push_back(std::move(**def));
  }
  return out;
}

void WebApi::Invoke(CallPtr c, const Operation& op, const Segment& seg, const Table* table,
                    std::optional<data::RecordKey> key) {
  const std::string& m = c->http.method;
  const OperationDef& def = op.def;
  if (def.is_function && m != "GET")
    return c->Fail(MethodNotAllowed(m, "the function '" + def.name + "' (call functions with GET)"));
  if (!def.is_function && m != "POST")
    return c->Fail(MethodNotAllowed(m, "the action '" + def.name + "' (call actions with POST)"));
  OperationArgs args;
  args.table = table;
  args.key = std::move(key);
  if (def.is_function) {
    auto params = FunctionArguments(seg);
    if (!params.ok()) return c->Fail(params.status());
    args.params = std::move(params).value();
  } else {
    if (seg.has_parens && !seg.keys.empty())
      return c->Fail(QueryError("Parameters of the action '" + def.name + "' go in the JSON body, not the URL."));
    if (Trim(c->http.body).empty()) {
      args.params = Json::MakeObject({});
    } else {
      auto body = ParseBody(c->http);
      if (!body.ok()) return c->Fail(body.status());
      args.params = std::move(body).value();
    }
  }
  if (Status s = CheckArguments(*c->cat, def, args.params); !s.ok()) return c->Fail(s);
  op.run(std::move(c), args);
}

void WebApi::RunCustomApi(CallPtr c, const OperationArgs& a) {
  // A custom API without an implementation runs the message pipeline with no main operation:
  // the bound record must exist, entity arguments must name real tables, and the response
  // properties are unset (null) — as Dataverse answers a custom API that has no plug-in type.
  const OperationDef* def = nullptr;
  auto loaded = LoadCustomApi(*c, c->segs.back().name.substr(c->segs.back().name.rfind('.') + 1));
  if (!loaded.ok()) return c->Fail(loaded.status());
  if (!*loaded) return c->Fail(NotFoundSegment(c->segs.back().name));
  def = &**loaded;
  if (a.key) {
    data::QueryOptions o;
    o.select = {a.table->primary_id};
    auto e = env_.service().Retrieve(c->caller, *a.table, *a.key, o);
    if (!e.ok()) return c->Fail(e.status());
  }
  for (const auto& p : def->parameters) {
    const Json* v = a.params.Find(p.name);
    if (!v || v->is_null()) continue;
    const Table* expected = p.entity.empty() ? nullptr : c->cat->FindTable(p.entity);
    if (p.type == OperationType::kEntity || p.type == OperationType::kEntityReference) {
      auto e = ParseEntityArgument(*c->cat, *v, p.name, expected);
      if (!e.ok()) return c->Fail(e.status());
    } else if (p.type == OperationType::kEntityCollection) {
      for (const auto& item : v->as_array()) {
        auto e = ParseEntityArgument(*c->cat, item, p.name, expected);
        if (!e.ok()) return c->Fail(e.status());
      }
    }
  }
  if (def->response.empty() && !def->is_function) return c->Reply(NoContent());
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("@odata.context");
  w.String(ResponseContext(*c, def->name));
  for (const auto& p : def->response) {
    w.Key(p.name);
    w.Null();
  }
  w.EndObject();
  c->Reply(Json200(std::move(body)));
}

// QualifyLead: creates the account, contact and opportunity the flags ask for from the lead's
// values, links them, and closes the lead as qualified — all in one transaction (or the change set).
void WebApi::QualifyLead(CallPtr c, const OperationArgs& a) {
  const catalog::Catalog& cat = *c->cat;
  auto& svc = env_.service();
  auto lead = svc.Retrieve(c->caller, *a.table, *a.key, {});
  if (!lead.ok()) return c->Fail(lead.status());
  const data::Value* state = lead->Get("statecode");
  if (state && std::holds_alternative<int64_t>(*state) && std::get<int64_t>(*state) != 0)
    return c->Fail(InvalidArgument("The lead is closed; only an open lead can be qualified.", err::kValidation));
  const Table* account = cat.FindTable("account");
  const Table* contact = cat.FindTable("contact");
  const Table* opportunity = cat.FindTable("opportunity");
  auto flag = [&](const char* n) {
    const Json* v = a.params.Find(n);
    return v && v->is_bool() && v->as_bool();
  };
  bool make_account = flag("CreateAccount"), make_contact = flag("CreateContact"),
       make_opportunity = flag("CreateOpportunity");
  int64_t status = a.params.Find("Status") && a.params.Find("Status")->is_int() ? a.params.Find("Status")->as_int() : 3;
  std::optional<EntityArgument> currency, customer;
  if (const Json* v = a.params.Find("OpportunityCurrencyId"); v && !v->is_null()) {
    auto e = ParseEntityArgument(cat, *v, "OpportunityCurrencyId", cat.FindTable("transactioncurrency"));
    if (!e.ok()) return c->Fail(e.status());
    currency = *e;
  }
  if (const Json* v = a.params.Find("OpportunityCustomerId"); v && !v->is_null()) {
    auto e = ParseEntityArgument(cat, *v, "OpportunityCustomerId", nullptr);
    if (!e.ok()) return c->Fail(e.status());
    if (e->table != account && e->table != contact)
      return c->Fail(PayloadError("OpportunityCustomerId must be an account or a contact."));
    customer = *e;
  }
  // Copies lead columns onto a new record (same-named columns, or lead → target renames).
  auto copy = [](const data::Entity& lead, const Table& target, data::EntityInput& in,
                 std::initializer_list<std::pair<const char*, const char*>> columns) {
    for (const auto& [from, to] : columns) {
      const data::Value* v = lead.Get(from);
      const Column* col = target.FindColumn(to);
      if (v && col && !data::IsNull(*v)) in.fields.push_back(data::Field{col, *v});
    }
  };
  auto bind = [](const Table& t, std::string_view nav, const Table* target, const Guid& id, data::EntityInput& in) {
    if (const NavProperty* n = t.FindNav(nav))
      in.binds.push_back(data::EntityInput::Bind{n, data::BindTarget{target, data::RecordKey{id, {}}}});
  };
  auto lead_entity = std::make_shared<data::Entity>(std::move(lead).value());
  const Table* lead_table = a.table;
  Guid lead_id = lead_entity->id;
  Submit(
      c,
      [=](data::WriteScope& s) -> Result<WriteOutcome> {
        WriteOutcome out{lead_table, lead_id, false, {}};
        std::vector<std::pair<const Table*, Guid>> created;
        std::optional<Guid> account_id, contact_id;
        if (make_account && account) {
          data::EntityInput in;
          in.table = account;
          copy(*lead_entity, *account, in,
               {{"companyname", "name"},
                {"telephone1", "telephone1"},
                {"emailaddress1", "emailaddress1"},
                {"websiteurl", "websiteurl"},
                {"address1_line1", "address1_line1"},
                {"address1_city", "address1_city"},
                {"address1_postalcode", "address1_postalcode"},
                {"address1_country", "address1_country"}});
          if (!lead_entity->Get("companyname") || data::IsNull(*lead_entity->Get("companyname")))
            return InvalidArgument("The lead has no company name to create the account from.", err::kValidation);
          ASSIGN_OR_RETURN(data::WriteResult r, s.Create(in, std::nullopt));
          account_id = r.id;
          created.emplace_back(account, r.id);
        }
        if (make_contact && contact) {
          data::EntityInput in;
          in.table = contact;
          copy(*lead_entity, *contact, in,
               {{"firstname", "firstname"},
                {"lastname", "lastname"},
                {"jobtitle", "jobtitle"},
                {"emailaddress1", "emailaddress1"},
                {"telephone1", "telephone1"},
                {"mobilephone", "mobilephone"}});
          if (account_id) bind(*contact, "parentcustomerid_account", account, *account_id, in);
          ASSIGN_OR_RETURN(data::WriteResult r, s.Create(in, std::nullopt));
          contact_id = r.id;
          created.emplace_back(contact, r.id);
        }
        if (make_opportunity && opportunity) {
          data::EntityInput in;
          in.table = opportunity;
          copy(*lead_entity, *opportunity, in, {{"subject", "name"}, {"estimatedvalue", "estimatedvalue"}});
          if (customer)
            bind(*opportunity, customer->table == account ? "customerid_account" : "customerid_contact",
                 customer->table, *customer->id, in);
          else if (account_id)
            bind(*opportunity, "customerid_account", account, *account_id, in);
          else if (contact_id)
            bind(*opportunity, "customerid_contact", contact, *contact_id, in);
          if (account_id) bind(*opportunity, "parentaccountid", account, *account_id, in);
          if (contact_id) bind(*opportunity, "parentcontactid", contact, *contact_id, in);
          bind(*opportunity, "originatingleadid", lead_table, lead_id, in);
          if (currency) bind(*opportunity, "transactioncurrencyid", currency->table, *currency->id, in);
          ASSIGN_OR_RETURN(data::WriteResult r, s.Create(in, std::nullopt));
          created.emplace_back(opportunity, r.id);
        }
        // Close the lead as qualified and point it at what was created.
        data::EntityInput upd;
        upd.table = lead_table;
        if (const Column* sc = lead_table->FindColumn("statecode")) upd.fields.push_back(data::Field{sc, int64_t{1}});
        if (const Column* st = lead_table->FindColumn("statuscode")) upd.fields.push_back(data::Field{st, status});
        if (account_id) bind(*lead_table, "parentaccountid", account, *account_id, upd);
        if (contact_id) bind(*lead_table, "parentcontactid", contact, *contact_id, upd);
        RETURN_IF_ERROR(
            s.Upsert(upd, data::RecordKey{lead_id, {}}, data::UpsertMode::kUpdateOnly, std::nullopt).status());
        for (const auto& [t, id] : created) {
          out.ids.push_back(id);
          out.tables.push_back(t);
        }
        return out;
      },
      [c](const WriteOutcome& o) {
        std::string body;
        JsonWriter w(body);
        w.BeginObject();
        w.Key("@odata.context");
        w.String(ResponseContext(*c, "QualifyLead"));
        w.Key("CreatedEntities");
        w.BeginArray();
        for (size_t i = 0; i < o.ids.size(); ++i) {
          w.BeginObject();
          w.Key("@odata.type");
          w.String("#Microsoft.Dynamics.CRM." + o.tables[i]->logical_name);
          w.Key(o.tables[i]->primary_id);
          w.String(o.ids[i].ToString());
          w.EndObject();
        }
        w.EndArray();
        w.EndObject();
        c->Reply(Json200(std::move(body)));
      });
}

}  // namespace tributary::odata

// Functions and actions: argument binding and checks (see operations.h).

#include "operations.h"

#include <charconv>
#include <cstdlib>

#include "tributary/base/strings.h"
#include "tributary/base/time.h"
#include "tributary/odata/errors.h"

namespace tributary::odata {

std::string OperationEdmType(const OperationParameter& p) {
  auto entity = [&]() { return "mscrm." + (p.entity.empty() ? std::string("crmbaseentity") : p.entity); };
  switch (p.type) {
    case OperationType::kBoolean:
      return "Edm.Boolean";
    case OperationType::kDateTime:
      return "Edm.DateTimeOffset";
    case OperationType::kDecimal:
    case OperationType::kMoney:
      return "Edm.Decimal";
    case OperationType::kEntity:
    case OperationType::kEntityReference:
      return entity();
    case OperationType::kEntityCollection:
      return "Collection(" + entity() + ")";
    case OperationType::kFloat:
      return "Edm.Double";
    case OperationType::kInteger:
    case OperationType::kPicklist:
      return "Edm.Int32";
    case OperationType::kString:
      return "Edm.String";
    case OperationType::kStringArray:
      return "Collection(Edm.String)";
    case OperationType::kGuid:
      return "Edm.Guid";
    case OperationType::kEnum:
      return "mscrm." + p.entity;
    case OperationType::kGuidArray:
      return "Collection(Edm.Guid)";
    case OperationType::kComplex:
      return p.entity;
  }
  return "Edm.String";
}

namespace {

Result<Json> LiteralJson(const KeyValue& kv) {
  std::string_view raw = Trim(kv.raw);
  if (!raw.empty() && (raw.front() == '{' || raw.front() == '[')) {
    // JSON written by clients with single or double quotes.
    auto j = ParseJson(raw);
    if (j.ok()) return j;
    std::string swapped(raw);
    for (char& ch : swapped)
      if (ch == '\'') ch = '"';
    auto k = ParseJson(swapped);
    if (k.ok()) return k;
    return QueryError("The value of the parameter '" + kv.name + "' is not valid JSON: " + std::string(raw));
  }
  const data::Literal& l = kv.value;
  switch (l.kind) {
    case data::Literal::Kind::kNull:
      return Json();
    case data::Literal::Kind::kBool:
      return Json::MakeBool(l.text == "true");
    case data::Literal::Kind::kInteger: {
      int64_t v = 0;
      auto r = std::from_chars(l.text.data(), l.text.data() + l.text.size(), v);
      if (r.ec != std::errc()) return Json::MakeDouble(std::strtod(l.text.c_str(), nullptr));
      return Json::MakeInt(v);
    }
    case data::Literal::Kind::kDecimal:
      return Json::MakeDouble(std::strtod(l.text.c_str(), nullptr));
    case data::Literal::Kind::kEnum: {
      // TargetFieldType'ValidForCreate' → "ValidForCreate".
      auto q = l.text.find('\'');
      std::string member = q == std::string::npos ? l.text : l.text.substr(q + 1);
      if (!member.empty() && member.back() == '\'') member.pop_back();
      return Json::MakeString(member);
    }
    default:
      return Json::MakeString(l.text);
  }
}

bool IsGuidText(const Json& j) { return j.is_string() && Guid::Parse(j.as_string()).has_value(); }

// Whether a JSON value can hold the parameter's type.
bool Fits(const OperationParameter& p, const Json& v) {
  if (v.is_null()) return true;
  switch (p.type) {
    case OperationType::kBoolean:
      return v.is_bool();
    case OperationType::kDateTime:
      return v.is_string() && ParseTimestamp(v.as_string()).has_value();
    case OperationType::kDecimal:
    case OperationType::kMoney:
    case OperationType::kFloat:
      return v.is_number();
    case OperationType::kInteger:
    case OperationType::kPicklist:
      return v.is_int();
    case OperationType::kString:
    case OperationType::kEnum:
      return v.is_string();
    case OperationType::kGuid:
      return IsGuidText(v);
    case OperationType::kStringArray:
      if (!v.is_array()) return false;
      for (const auto& e : v.as_array())
        if (!e.is_string()) return false;
      return true;
    case OperationType::kEntity:
    case OperationType::kEntityReference:
      return v.is_object();
    case OperationType::kEntityCollection:
      if (!v.is_array()) return false;
      for (const auto& e : v.as_array())
        if (!e.is_object()) return false;
      return true;
    case OperationType::kGuidArray:
      if (!v.is_array()) return false;
      for (const auto& e : v.as_array())
        if (!IsGuidText(e)) return false;
      return true;
    case OperationType::kComplex:
      if (v.is_object()) return true;
      if (!v.is_array()) return false;
      for (const auto& e : v.as_array())
        if (!e.is_object()) return false;
      return true;
  }
  return false;
}

std::string_view TypeLabel(OperationType t) {
  switch (t) {
    case OperationType::kBoolean:
      return "a boolean";
    case OperationType::kDateTime:
      return "a date and time (ISO 8601)";
    case OperationType::kDecimal:
    case OperationType::kMoney:
    case OperationType::kFloat:
      return "a number";
    case OperationType::kInteger:
    case OperationType::kPicklist:
      return "an integer";
    case OperationType::kString:
    case OperationType::kEnum:
      return "a string";
    case OperationType::kGuid:
      return "a GUID";
    case OperationType::kStringArray:
      return "an array of strings";
    case OperationType::kEntity:
    case OperationType::kEntityReference:
      return "an object naming a record";
    case OperationType::kEntityCollection:
      return "an array of records";
    case OperationType::kGuidArray:
      return "an array of GUIDs";
    case OperationType::kComplex:
      return "an object or an array of objects";
  }
  return "a value";
}

}  // namespace

Result<Json> FunctionArguments(const Segment& s) {
  std::vector<Json::Member> members;
  for (const auto& kv : s.keys) {
    if (kv.name.empty())
      return QueryError("The parameters of '" + s.name + "' must be named: " + s.name + "(Name=value).");
    ASSIGN_OR_RETURN(Json v, LiteralJson(kv));
    members.emplace_back(kv.name, std::move(v));
  }
  return Json::MakeObject(std::move(members));
}

Status CheckArguments(const catalog::Catalog& cat, const OperationDef& def, const Json& args) {
  std::string what = std::string(def.is_function ? "The function '" : "The action '") + def.name + "'";
  auto fail = [&](std::string msg) {
    return def.is_function ? QueryError(std::move(msg)) : PayloadError(std::move(msg));
  };
  if (!args.is_object()) return fail(what + " takes a JSON object of parameters.");
  for (const auto& [name, value] : args.as_object()) {
    if (!name.empty() && name[0] == '@') continue;  // annotations
    const OperationParameter* p = nullptr;
    for (const auto& d : def.parameters)
      if (d.name == name) p = &d;
    if (!p) return fail(what + " has no parameter named '" + name + "'.");
    if (!Fits(*p, value))
      return fail(what + ": the parameter '" + name + "' must be " + std::string(TypeLabel(p->type)) + ", not " +
                  std::string(value.TypeName()) + ".");
    if (!p->entity.empty() && p->type != OperationType::kEnum && p->type != OperationType::kComplex &&
        !cat.FindTable(p->entity))
      return fail(what + ": the parameter '" + name + "' refers to an unknown table '" + p->entity + "'.");
  }
  for (const auto& d : def.parameters) {
    if (d.optional) continue;
    const Json* v = args.Find(d.name);
    if (!v || v->is_null()) return fail(what + " requires the parameter '" + d.name + "'.");
  }
  return Status::Ok();
}

Result<EntityArgument> ParseEntityArgument(const catalog::Catalog& cat, const Json& value, std::string_view name,
                                           const catalog::Table* expected) {
  std::string where = "The parameter '" + std::string(name) + "'";
  if (!value.is_object()) return PayloadError(where + " must be an object naming a record.");
  EntityArgument out;
  if (const Json* id = value.Find("@odata.id"); id && id->is_string()) {
    // {"@odata.id":"accounts(<id>)"}: resolve the set; the key must be a GUID here.
    std::string_view s = id->as_string();
    auto open = s.rfind('(');
    auto slash = s.rfind('/', open == std::string_view::npos ? std::string_view::npos : open);
    std::string set(s.substr(slash == std::string_view::npos ? 0 : slash + 1,
                             open == std::string_view::npos
                                 ? std::string_view::npos
                                 : open - (slash == std::string_view::npos ? 0 : slash + 1)));
    out.table = cat.FindBySetName(set);
    if (!out.table || open == std::string_view::npos || s.back() != ')')
      return PayloadError(where + ": '" + std::string(s) + "' does not address a record.");
    out.id = Guid::Parse(s.substr(open + 1, s.size() - open - 2));
    if (!out.id) return PayloadError(where + ": '" + std::string(s) + "' must address the record by its id.");
  } else {
    const Json* type = value.Find("@odata.type");
    if (!type || !type->is_string())
      return PayloadError(where + " needs \"@odata.type\": \"Microsoft.Dynamics.CRM.<table>\" (or \"@odata.id\").");
    std::string_view t = type->as_string();
    if (!t.empty() && t[0] == '#') t.remove_prefix(1);
    if (t.rfind("Microsoft.Dynamics.CRM.", 0) == 0)
      t.remove_prefix(23);
    else if (t.rfind("mscrm.", 0) == 0)
      t.remove_prefix(6);
    out.table = cat.FindTable(t);
    if (!out.table) return PayloadError(where + ": there is no table named '" + std::string(t) + "'.");
    if (const Json* pk = value.Find(out.table->primary_id); pk && pk->is_string()) {
      out.id = Guid::Parse(pk->as_string());
      if (!out.id) return PayloadError(where + ": '" + out.table->primary_id + "' must be a GUID.");
    }
  }
  if (expected && out.table != expected)
    return PayloadError(where + " must be a '" + expected->logical_name + "' record, not '" + out.table->logical_name +
                        "'.");
  return out;
}

}  // namespace tributary::odata

#include "body.h"

#include <cmath>

#include "tributary/base/strings.h"
#include "tributary/odata/metadata_writer.h"

namespace tributary::odata {

using catalog::Column;
using catalog::ColumnType;
using catalog::NavProperty;
using catalog::Table;

namespace {

Status Payload(const Table& t, const std::string& inner) {
  return PayloadError("Error identified in Payload provided by the user for Entity :'" + t.logical_name +
                      "', For more information on this error please follow this help link "
                      "https://go.microsoft.com/fwlink/?linkid=2195293  ----> InnerException : "
                      "Microsoft.OData.ODataException: " +
                      inner);
}

Status Mismatch(const Table& t, const Column& c, const Json& v) {
  std::string shown = v.is_string() ? v.as_string() : v.Dump();
  if (shown.size() > 64) shown = shown.substr(0, 64) + "…";
  return Payload(t, "Cannot convert the literal '" + shown + "' to the expected type '" + std::string(EdmType(c)) +
                        "' for the property '" + c.logical_name + "'.");
}

}  // namespace

Result<data::RecordKey> KeyFromSegment(const Table& table, const Segment& seg) {
  data::RecordKey key;
  if (seg.keys.empty()) return QueryError("A key is required for '" + seg.name + "'.");
  if (seg.keys.size() == 1 && seg.keys[0].name.empty()) {
    const data::Literal& lit = seg.keys[0].value;
    auto g = lit.kind == data::Literal::Kind::kGuid ? Guid::Parse(lit.text) : std::nullopt;
    if (!g) return QueryError("The key value '" + seg.keys[0].raw + "' of '" + seg.name + "' is not a valid GUID.");
    key.id = *g;
    return key;
  }
  for (const auto& kv : seg.keys) {
    if (kv.name.empty()) return QueryError("A key segment cannot mix a bare key with named key values.");
    key.alternate.emplace_back(kv.name, kv.value);
  }
  return key;
}

Result<data::BindTarget> ParseReference(const catalog::Catalog& cat, std::string_view url) {
  std::string_view s = Trim(url);
  if (s.empty()) return QueryError("An empty reference URL was given.");
  // Drop scheme://host/… up to the version segment when present.
  if (auto p = s.find("/api/data/v"); p != std::string_view::npos) {
    auto slash = s.find('/', p + 11);
    s = slash == std::string_view::npos ? std::string_view() : s.substr(slash + 1);
  }
  while (!s.empty() && s.front() == '/') s.remove_prefix(1);
  // The last segment outside parentheses is "{set}({key})".
  int depth = 0;
  size_t start = 0;
  bool quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\'') quoted = !quoted;
    if (quoted) continue;
    if (c == '(')
      ++depth;
    else if (c == ')')
      --depth;
    else if (c == '/' && depth == 0)
      start = i + 1;
  }
  std::string decoded;
  if (!PercentDecode(s.substr(start), decoded, false))
    return QueryError("The reference URL '" + std::string(url) + "' has a malformed percent escape.");
  ASSIGN_OR_RETURN(auto segs, ParseResourcePath(decoded, {}));
  if (segs.size() != 1 || segs[0].keys.empty())
    return QueryError("The reference '" + std::string(url) + "' does not address a single record.");
  const Table* t = cat.FindBySetName(segs[0].name);
  if (!t)
    return PayloadError("The reference '" + std::string(url) + "' names an unknown entity set '" + segs[0].name + "'.");
  ASSIGN_OR_RETURN(data::RecordKey key, KeyFromSegment(*t, segs[0]));
  return data::BindTarget{t, std::move(key)};
}

Result<data::Value> JsonToValue(const Table& t, const Column& c, const Json& v) {
  if (v.is_null()) return data::Value(std::monostate{});
  switch (c.type) {
    case ColumnType::kString:
    case ColumnType::kMemo:
      if (!v.is_string()) return Mismatch(t, c, v);
      return data::Value(v.as_string());
    case ColumnType::kMultiChoice:
      if (v.is_string()) return data::Value(v.as_string());
      if (v.is_int()) return data::Value(std::to_string(v.as_int()));
      return Mismatch(t, c, v);
    case ColumnType::kInteger:
    case ColumnType::kChoice:
    case ColumnType::kState:
    case ColumnType::kStatus:
    case ColumnType::kBigInt: {
      if (!v.is_number()) return Mismatch(t, c, v);
      double d = v.as_double();
      if (!v.is_int() && d != std::floor(d)) return Mismatch(t, c, v);
      if (c.type != ColumnType::kBigInt && (d < -2147483648.0 || d > 2147483647.0)) return Mismatch(t, c, v);
      return data::Value(v.is_int() ? v.as_int() : static_cast<int64_t>(d));
    }
    case ColumnType::kBoolean:
      if (!v.is_bool()) return Mismatch(t, c, v);
      return data::Value(v.as_bool());
    case ColumnType::kDecimal:
    case ColumnType::kDouble:
    case ColumnType::kMoney:
      if (!v.is_number()) return Mismatch(t, c, v);
      return data::Value(v.as_double());
    case ColumnType::kDateTime: {
      if (!v.is_string()) return Mismatch(t, c, v);
      if (c.behavior == catalog::DateBehavior::kDateOnly) {
        auto d = ParseDate(v.as_string());
        if (!d) return Mismatch(t, c, v);
        return data::Value(*d);
      }
      auto ts = ParseTimestamp(v.as_string());
      if (!ts) return Mismatch(t, c, v);
      return data::Value(*ts);
    }
    case ColumnType::kUniqueIdentifier: {
      if (!v.is_string()) return Mismatch(t, c, v);
      auto g = Guid::Parse(v.as_string());
      if (!g) return Mismatch(t, c, v);
      return data::Value(*g);
    }
    case ColumnType::kLookup:
    case ColumnType::kCustomer:
    case ColumnType::kOwner:
      return Payload(t, "A lookup property '" + c.logical_name +
                            "' must be set with the '<navigation property>@odata.bind' annotation.");
    case ColumnType::kFile:
    case ColumnType::kImage:
      // null passes (and changes nothing, like other read-only columns), so that records read
      // from the API can be sent back.
      return Payload(t, std::string("The ") + (c.type == ColumnType::kFile ? "file" : "image") + " column '" +
                            c.logical_name + "' cannot be set in a record's body: upload with PATCH " +
                            t.entity_set_name + "(<id>)/" + c.logical_name +
                            " (Content-Type: application/octet-stream, x-ms-file-name) and remove with DELETE " +
                            t.entity_set_name + "(<id>)/" + c.logical_name + ".");
  }
  return Mismatch(t, c, v);
}

Result<data::EntityInput> ParseEntityBody(const catalog::Catalog& cat, const Table& table, const Json& body,
                                          int depth) {
  if (!body.is_object()) return Payload(table, "The request body must be a JSON object.");
  if (depth > 8) return Payload(table, "Deep insert is nested too deeply.");
  data::EntityInput in;
  in.table = &table;
  for (const auto& [key, value] : body.as_object()) {
    auto at = key.find('@');
    if (key == "@odata.type") {
      std::string_view type = value.is_string() ? std::string_view(value.as_string()) : std::string_view();
      if (!type.empty() && type.front() == '#') type.remove_prefix(1);
      auto names_table = [&](std::string_view prefix) {
        return type.size() == prefix.size() + table.logical_name.size() && type.starts_with(prefix) &&
               type.substr(prefix.size()) == table.logical_name;
      };
      if (!names_table("Microsoft.Dynamics.CRM.") && !names_table("mscrm."))
        return Payload(table, "The @odata.type '" + (value.is_string() ? value.as_string() : value.Dump()) +
                                  "' does not match the entity set's type 'Microsoft.Dynamics.CRM." +
                                  table.logical_name + "'.");
      continue;
    }
    if (at == 0) continue;  // @odata.context, @odata.etag …
    if (at != std::string::npos) {
      std::string_view prop(key.data(), at), annotation(key.data() + at + 1, key.size() - at - 1);
      if (annotation != "odata.bind") continue;  // other instance annotations are ignored
      const NavProperty* nav = table.FindNav(prop);
      if (!nav) {
        return Payload(table, "An undeclared property '" + std::string(prop) +
                                  "' which only has property annotations in the payload but no property value was "
                                  "found in the payload.");
      }
      if (nav->IsCollection()) {
        if (!value.is_array()) return Payload(table, "The value of '" + key + "' must be an array of references.");
        data::EntityInput::DeepMany dm{nav, {}, {}};
        for (const auto& item : value.as_array()) {
          if (!item.is_string()) return Payload(table, "The value of '" + key + "' must be an array of URL strings.");
          ASSIGN_OR_RETURN(data::BindTarget target, ParseReference(cat, item.as_string()));
          if (target.table != nav->target)
            return Payload(table, "The reference '" + item.as_string() + "' does not point at a '" +
                                      nav->target->logical_name + "' record.");
          dm.existing.push_back(std::move(target));
        }
        in.deep_many.push_back(std::move(dm));
        continue;
      }
      if (value.is_null()) {
        in.binds.push_back(data::EntityInput::Bind{nav, std::nullopt});
        continue;
      }
      if (!value.is_string()) return Payload(table, "The value of '" + key + "' must be a URL string or null.");
      ASSIGN_OR_RETURN(data::BindTarget target, ParseReference(cat, value.as_string()));
      bool ok_target = nav->kind == NavProperty::Kind::kPolymorphicOwner
                           ? (target.table->logical_name == "systemuser" || target.table->logical_name == "team")
                           : target.table == nav->target;
      if (!ok_target)
        return Payload(table, "The reference '" + value.as_string() +
                                  "' does not point at a record the navigation "
                                  "property '" +
                                  nav->name + "' can refer to.");
      in.binds.push_back(data::EntityInput::Bind{nav, std::move(target)});
      continue;
    }
    if (const Column* c = table.FindColumn(key)) {
      if (c->IsLookup()) {
        // "parentaccountid": null clears a lookup; a value must use @odata.bind.
        if (value.is_null()) {
          in.fields.push_back(data::Field{c, std::monostate{}});
          continue;
        }
        if (const NavProperty* nav = table.FindNav(key); nav && value.is_object()) {
          // Deep insert through a nav named like the column (primarycontactid: {...}).
          ASSIGN_OR_RETURN(data::EntityInput child, ParseEntityBody(cat, *nav->target, value, depth + 1));
          in.deep_single.push_back(
              data::EntityInput::DeepSingle{nav, std::make_unique<data::EntityInput>(std::move(child))});
          continue;
        }
      }
      ASSIGN_OR_RETURN(data::Value v, JsonToValue(table, *c, value));
      in.fields.push_back(data::Field{c, std::move(v)});
      continue;
    }
    if (const Column* lk = table.FindLookupProperty(key))
      return Payload(table,
                     "The property '" + key + "' is read-only; set the lookup with '" +
                         (table.FindNav(lk->logical_name) ? lk->logical_name : std::string("<navigation property>")) +
                         "@odata.bind'.");
    if (const NavProperty* nav = table.FindNav(key)) {
      if (nav->IsCollection()) {
        if (!value.is_array()) return Payload(table, "The value of '" + key + "' must be an array of records.");
        data::EntityInput::DeepMany dm{nav, {}, {}};
        for (const auto& item : value.as_array()) {
          ASSIGN_OR_RETURN(data::EntityInput child, ParseEntityBody(cat, *nav->target, item, depth + 1));
          dm.children.push_back(std::move(child));
        }
        in.deep_many.push_back(std::move(dm));
      } else if (value.is_null()) {
        in.binds.push_back(data::EntityInput::Bind{nav, std::nullopt});
      } else if (nav->kind == NavProperty::Kind::kSingle && value.is_object()) {
        ASSIGN_OR_RETURN(data::EntityInput child, ParseEntityBody(cat, *nav->target, value, depth + 1));
        in.deep_single.push_back(
            data::EntityInput::DeepSingle{nav, std::make_unique<data::EntityInput>(std::move(child))});
      } else {
        return Payload(table, "The navigation property '" + key + "' needs an object (deep insert) or null.");
      }
      continue;
    }
    return Payload(table, "The property '" + key + "' does not exist on type 'Microsoft.Dynamics.CRM." +
                              table.logical_name +
                              "'. Make sure to only use property names that are defined by the type or mark the type "
                              "as open type.");
  }
  return in;
}

}  // namespace tributary::odata

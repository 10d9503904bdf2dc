#include "serializer.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "tributary/base/strings.h"

namespace tributary::odata {

using catalog::Column;
using catalog::ColumnType;
using catalog::NavProperty;

namespace {

constexpr const char* kFormatted = "OData.Community.Display.V1.FormattedValue";
constexpr const char* kLogicalName = "Microsoft.Dynamics.CRM.lookuplogicalname";
constexpr const char* kAssociatedNav = "Microsoft.Dynamics.CRM.associatednavigationproperty";

// "1234567.5" → "1,234,567.50" with `decimals` digits.
std::string Grouped(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, std::fabs(v));
  std::string s = buf;
  auto dot = s.find('.');
  std::string ip = s.substr(0, dot), frac = dot == std::string::npos ? "" : s.substr(dot);
  std::string out;
  for (size_t i = 0; i < ip.size(); ++i) {
    if (i && (ip.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(ip[i]);
  }
  return (v < 0 ? "-" : "") + out + frac;
}

std::string DateText(int64_t days, bool with_time, int64_t ms_of_day) {
  std::string iso = FormatDate(Date{static_cast<int32_t>(days)});
  int y = std::stoi(iso.substr(0, 4)), m = std::stoi(iso.substr(5, 2)), d = std::stoi(iso.substr(8, 2));
  char buf[48];
  if (!with_time) {
    std::snprintf(buf, sizeof buf, "%d/%d/%d", m, d, y);
    return buf;
  }
  int64_t mins = ms_of_day / 60000;
  int h = static_cast<int>(mins / 60), mi = static_cast<int>(mins % 60);
  std::snprintf(buf, sizeof buf, "%d/%d/%d %d:%02d %s", m, d, y, h % 12 == 0 ? 12 : h % 12, mi, h < 12 ? "AM" : "PM");
  return buf;
}

const NavProperty* NavFor(const catalog::Table& t, const Column& c, const data::EntityRef& ref) {
  if (c.type == ColumnType::kOwner) return t.FindNav("ownerid");
  for (const auto& n : t.navs)
    if (n.kind == NavProperty::Kind::kSingle && n.column == &c && n.target && n.target->logical_name == ref.table)
      return &n;
  return nullptr;
}

}  // namespace

std::string PropertyName(const Column& c) { return c.IsLookup() ? c.LookupProperty() : c.logical_name; }

void WriteValue(JsonWriter& w, const Column& c, const data::Value& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>)
          w.Null();
        else if constexpr (std::is_same_v<T, bool>)
          w.Bool(x);
        else if constexpr (std::is_same_v<T, int64_t>)
          w.Int(x);
        else if constexpr (std::is_same_v<T, double>) {
          if (c.type == ColumnType::kMoney)
            w.Fixed(x, 4);
          else if (c.type == ColumnType::kDecimal)
            w.Fixed(x, c.precision);
          else
            w.Double(x);
        } else if constexpr (std::is_same_v<T, std::string>) {
          if (c.type == ColumnType::kImage)  // Edm.Binary
            w.String(Base64Encode(x));
          else
            w.String(x);
        } else if constexpr (std::is_same_v<T, Guid>) {
          std::string s = x.ToString();
          w.String(s);
        } else if constexpr (std::is_same_v<T, Timestamp>)
          w.String(FormatTimestamp(x));
        else if constexpr (std::is_same_v<T, Date>)
          w.String(FormatDate(x));
        else
          w.String(x.id.ToString());
      },
      v);
}

std::optional<std::string> FormattedValue(const Column& c, const data::Value& v, const SerializeContext& ctx) {
  if (data::IsNull(v)) return std::nullopt;
  switch (c.type) {
    case ColumnType::kChoice:
    case ColumnType::kState:
    case ColumnType::kStatus:
      if (c.options)
        if (const auto* o = c.options->Find(static_cast<int>(std::get<int64_t>(v)))) return o->label;
      return std::to_string(std::get<int64_t>(v));
    case ColumnType::kBoolean:
      if (c.options)
        if (const auto* o = c.options->Find(std::get<bool>(v) ? 1 : 0)) return o->label;
      return std::get<bool>(v) ? "Yes" : "No";
    case ColumnType::kMultiChoice: {
      std::string out;
      for (auto part : Split(std::get<std::string>(v), ',')) {
        std::string label(Trim(part));
        if (c.options) {
          int n = 0;
          auto t = Trim(part);
          std::from_chars(t.data(), t.data() + t.size(), n);
          if (const auto* o = c.options->Find(n)) label = o->label;
        }
        out += (out.empty() ? "" : "; ") + label;
      }
      return out;
    }
    case ColumnType::kInteger:
    case ColumnType::kBigInt:
      return Grouped(static_cast<double>(std::get<int64_t>(v)), 0);
    case ColumnType::kMoney:
      return std::string(std::get<double>(v) < 0 ? "-$" : "$") + Grouped(std::fabs(std::get<double>(v)), c.precision);
    case ColumnType::kDecimal:
    case ColumnType::kDouble:
      return Grouped(std::get<double>(v), c.precision);
    case ColumnType::kDateTime:
      if (const auto* d = std::get_if<Date>(&v)) return DateText(d->days, false, 0);
      if (const auto* t = std::get_if<Timestamp>(&v)) {
        int64_t days = t->ms >= 0 ? t->ms / 86400000 : (t->ms - 86399999) / 86400000;
        return DateText(days, c.behavior != catalog::DateBehavior::kDateOnly, t->ms - days * 86400000);
      }
      return std::nullopt;
    case ColumnType::kLookup:
    case ColumnType::kCustomer:
    case ColumnType::kOwner: {
      const auto& ref = std::get<data::EntityRef>(v);
      if (ctx.primary_name) return ctx.primary_name(ref.table, ref.id);
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

void WriteEntity(JsonWriter& w, const data::Entity& e, const SerializeContext& ctx, std::string_view context) {
  const catalog::Table& t = *e.table;
  const Preferences* p = ctx.prefs;
  bool want_fmt = p && p->Wants(kFormatted);
  bool want_logical = p && p->Wants(kLogicalName);
  bool want_nav = p && p->Wants(kAssociatedNav);
  w.BeginObject();
  if (!context.empty()) {
    w.Key("@odata.context");
    w.String(context);
  }
  if (t.FindColumn("versionnumber")) {
    w.Key("@odata.etag");
    w.String("W/\"" + std::to_string(e.version) + "\"");
  }
  for (const auto& f : e.fields) {
    const Column& c = *f.column;
    if (ctx.omit_nulls && data::IsNull(f.value)) continue;
    std::string name = PropertyName(c);
    if (want_fmt) {
      if (auto fv = FormattedValue(c, f.value, ctx)) {
        w.Key(name + "@" + kFormatted);
        w.String(*fv);
      }
    }
    if (c.IsLookup() && !data::IsNull(f.value)) {
      const auto& ref = std::get<data::EntityRef>(f.value);
      if (want_nav)
        if (const NavProperty* n = NavFor(t, c, ref)) {
          w.Key(name + "@" + kAssociatedNav);
          w.String(n->name);
        }
      if (want_logical) {
        w.Key(name + "@" + kLogicalName);
        w.String(ref.table);
      }
    }
    w.Key(name);
    WriteValue(w, c, f.value);
  }
  for (const auto& ex : e.expanded) {
    w.Key(ex.nav->name);
    if (ex.nav->IsCollection()) {
      w.BeginArray();
      for (const auto& row : ex.rows) WriteEntity(w, row, ctx);
      w.EndArray();
    } else if (ex.rows.empty()) {
      w.Null();
    } else {
      WriteEntity(w, ex.rows.front(), ctx);
    }
  }
  w.EndObject();
}

void WriteResultProperty(JsonWriter& w, const ResultProperty& p, const data::Value& v, const SerializeContext& ctx) {
  const Preferences* prefs = ctx.prefs;
  const std::string name(p.name);
  if (prefs && prefs->Wants(kFormatted)) {
    std::optional<std::string> fv;
    if (p.column)
      fv = FormattedValue(*p.column, v, ctx);
    else if (const auto* i = std::get_if<int64_t>(&v))
      fv = p.count ? Grouped(static_cast<double>(*i), 0) : std::to_string(*i);
    if (fv) {
      w.Key(name + "@" + kFormatted);
      w.String(*fv);
    }
  }
  if (p.column && p.column->IsLookup())
    if (const auto* ref = std::get_if<data::EntityRef>(&v)) {
      if (p.nav_table && prefs && prefs->Wants(kAssociatedNav))
        if (const NavProperty* n = NavFor(*p.nav_table, *p.column, *ref)) {
          w.Key(name + "@" + kAssociatedNav);
          w.String(n->name);
        }
      if (prefs && prefs->Wants(kLogicalName)) {
        w.Key(name + "@" + kLogicalName);
        w.String(ref->table);
      }
    }
  if (!p.attribute_name.empty() && prefs && prefs->Wants("OData.Community.Display.V1.AttributeName")) {
    w.Key(name + "@OData.Community.Display.V1.AttributeName");
    w.String(p.attribute_name);
  }
  w.Key(name);
  if (p.column)
    WriteValue(w, *p.column, v);
  else if (const auto* i = std::get_if<int64_t>(&v))
    w.Int(*i);
  else
    w.Null();
}

}  // namespace tributary::odata

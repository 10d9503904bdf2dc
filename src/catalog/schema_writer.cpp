// Writes a SchemaDoc back as a JSON schema document (docs/formats/schema.md), so schema changes
// made through the metadata API are stored in the same format as applied files.

#include <type_traits>

#include "tributary/base/json.h"
#include "tributary/catalog/schema.h"

namespace tributary::catalog {
namespace {

void Str(JsonWriter& w, const char* key, const std::string& v) {
  if (v.empty()) return;
  w.Key(key);
  w.String(v);
}

void Options(JsonWriter& w, const char* key, const std::vector<OptionDef>& opts) {
  if (opts.empty()) return;
  w.Key(key);
  w.BeginArray();
  for (const auto& o : opts) {
    w.BeginObject();
    w.Key("value");
    w.Int(o.value);
    w.Key("label");
    w.String(o.label);
    w.EndObject();
  }
  w.EndArray();
}

void WriteColumn(JsonWriter& w, const ColumnDef& c) {
  w.BeginObject();
  Str(w, "name", c.name);
  Str(w, "schemaname", c.schemaname);
  Str(w, "displayname", c.displayname);
  Str(w, "description", c.description);
  Str(w, "type", c.type);
  Str(w, "format", c.format);
  Str(w, "behavior", c.behavior);
  Str(w, "required", c.required);
  if (c.maxlength) {
    w.Key("maxlength");
    w.Int(*c.maxlength);
  }
  if (c.precision) {
    w.Key("precision");
    w.Int(*c.precision);
  }
  if (c.max_size_kb) {
    w.Key("max_size_kb");
    w.Int(*c.max_size_kb);
  }
  if (c.min) {
    w.Key("min");
    w.Double(*c.min);
  }
  if (c.max) {
    w.Key("max");
    w.Double(*c.max);
  }
  Str(w, "target", c.target);
  Str(w, "relationship", c.relationship);
  if (!c.relationships.empty()) {
    w.Key("relationships");
    w.BeginObject();
    for (const auto& [k, v] : c.relationships) {
      w.Key(k);
      w.String(v);
    }
    w.EndObject();
  }
  Str(w, "nav", c.nav);
  Str(w, "ondelete", c.ondelete);
  Str(w, "choices", c.choices);
  Options(w, "options", c.options);
  if (c.default_bool) {
    w.Key("default");
    w.Bool(*c.default_bool);
  }
  Str(w, "truelabel", c.truelabel);
  Str(w, "falselabel", c.falselabel);
  if (c.readonly) {
    w.Key("readonly");
    w.Bool(true);
  }
  if (c.indexed) {
    w.Key("indexed");
    w.Bool(true);
  }
  if (c.audit) {
    w.Key("audit");
    w.Bool(*c.audit);
  }
  if (c.secured) {
    w.Key("secured");
    w.Bool(true);
  }
  w.EndObject();
}

void OptStr(JsonWriter& w, const char* key, const std::optional<std::string>& v) {
  if (!v) return;
  w.Key(key);
  w.String(*v);
}

template <typename T>
void OptNum(JsonWriter& w, const char* key, const std::optional<T>& v) {
  if (!v) return;
  w.Key(key);
  if constexpr (std::is_same_v<T, double>)
    w.Double(*v);
  else
    w.Int(*v);
}

void OptBool(JsonWriter& w, const char* key, const std::optional<bool>& v) {
  if (!v) return;
  w.Key(key);
  w.Bool(*v);
}

// An options list that is present but empty is written too: the update says "no options".
void OptOptions(JsonWriter& w, const char* key, const std::optional<std::vector<OptionDef>>& opts) {
  if (!opts) return;
  if (!opts->empty()) return Options(w, key, *opts);
  w.Key(key);
  w.BeginArray();
  w.EndArray();
}

void WriteDrop(JsonWriter& w, const DropDef& d) {
  w.Key("drop");
  w.BeginObject();
  auto list = [&](const char* key, const std::vector<DropRef>& refs) {
    if (refs.empty()) return;
    w.Key(key);
    w.BeginArray();
    for (const auto& r : refs) w.String(r.table.empty() ? r.name : r.table + "." + r.name);
    w.EndArray();
  };
  list("tables", d.tables);
  list("columns", d.columns);
  list("keys", d.keys);
  list("relationships", d.relationships);
  list("choices", d.choices);
  w.EndObject();
}

void WriteUpdate(JsonWriter& w, const UpdateDef& u) {
  w.Key("update");
  w.BeginObject();
  if (!u.tables.empty()) {
    w.Key("tables");
    w.BeginArray();
    for (const auto& t : u.tables) {
      w.BeginObject();
      Str(w, "name", t.name);
      OptStr(w, "displayname", t.displayname);
      OptStr(w, "displaycollectionname", t.displaycollectionname);
      OptStr(w, "description", t.description);
      OptBool(w, "changetracking", t.changetracking);
      OptBool(w, "audit", t.audit);
      if (!t.columns.empty()) {
        w.Key("columns");
        w.BeginArray();
        for (const auto& c : t.columns) {
          w.BeginObject();
          Str(w, "name", c.name);
          OptStr(w, "displayname", c.displayname);
          OptStr(w, "description", c.description);
          OptStr(w, "required", c.required);
          OptStr(w, "format", c.format);
          OptNum(w, "maxlength", c.maxlength);
          OptNum(w, "precision", c.precision);
          OptNum(w, "max_size_kb", c.max_size_kb);
          OptNum(w, "min", c.min);
          OptNum(w, "max", c.max);
          OptOptions(w, "options", c.options);
          OptBool(w, "default", c.default_bool);
          OptStr(w, "truelabel", c.truelabel);
          OptStr(w, "falselabel", c.falselabel);
          OptBool(w, "indexed", c.indexed);
          OptBool(w, "audit", c.audit);
          OptBool(w, "secured", c.secured);
          w.EndObject();
        }
        w.EndArray();
      }
      w.EndObject();
    }
    w.EndArray();
  }
  if (!u.choices.empty()) {
    w.Key("choices");
    w.BeginArray();
    for (const auto& c : u.choices) {
      w.BeginObject();
      Str(w, "name", c.name);
      OptStr(w, "displayname", c.displayname);
      OptOptions(w, "options", c.options);
      w.EndObject();
    }
    w.EndArray();
  }
  if (!u.relationships.empty()) {
    w.Key("relationships");
    w.BeginArray();
    for (const auto& r : u.relationships) {
      w.BeginObject();
      Str(w, "name", r.name);
      OptStr(w, "ondelete", r.ondelete);
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
}

}  // namespace

std::string SchemaDocToJson(const SchemaDoc& d) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("version");
  w.Int(1);
  if (!d.prefix.empty()) {
    w.Key("publisher");
    w.BeginObject();
    w.Key("prefix");
    w.String(d.prefix);
    w.EndObject();
  }
  w.Key("choices");
  w.BeginArray();
  for (const auto& c : d.choices) {
    w.BeginObject();
    Str(w, "name", c.name);
    Str(w, "displayname", c.displayname);
    Options(w, "options", c.options);
    w.EndObject();
  }
  w.EndArray();
  w.Key("tables");
  w.BeginArray();
  for (const auto& t : d.tables) {
    w.BeginObject();
    Str(w, "name", t.name);
    Str(w, "schemaname", t.schemaname);
    Str(w, "displayname", t.displayname);
    Str(w, "displaycollectionname", t.displaycollectionname);
    Str(w, "description", t.description);
    Str(w, "entitysetname", t.entitysetname);
    Str(w, "ownership", t.ownership);
    if (t.primaryname) {
      w.Key("primaryname");
      WriteColumn(w, *t.primaryname);
    }
    if (t.changetracking) {
      w.Key("changetracking");
      w.Bool(true);
    }
    if (t.audit) {
      w.Key("audit");
      w.Bool(true);
    }
    w.Key("columns");
    w.BeginArray();
    for (const auto& c : t.columns) WriteColumn(w, c);
    w.EndArray();
    w.Key("keys");
    w.BeginArray();
    for (const auto& k : t.keys) {
      w.BeginObject();
      Str(w, "name", k.name);
      Str(w, "schemaname", k.schemaname);
      Str(w, "displayname", k.displayname);
      w.Key("columns");
      w.BeginArray();
      for (const auto& col : k.columns) w.String(col);
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.Key("relationships");
  w.BeginArray();
  for (const auto& r : d.relationships) {
    w.BeginObject();
    Str(w, "name", r.name);
    Str(w, "type", r.type);
    Str(w, "entity1", r.entity1);
    Str(w, "entity2", r.entity2);
    Str(w, "intersect", r.intersect);
    w.EndObject();
  }
  w.EndArray();
  if (!d.drop.empty()) WriteDrop(w, d.drop);
  if (!d.update.empty()) WriteUpdate(w, d.update);
  w.EndObject();
  return out;
}

}  // namespace tributary::catalog

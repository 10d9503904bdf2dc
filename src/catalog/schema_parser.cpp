// Parses schema documents (YAML or JSON) into SchemaDoc. yaml-cpp reports errors by throwing;
// those exceptions are caught here and never leave this file.

#include <yaml-cpp/yaml.h>

#include "tributary/catalog/schema.h"

namespace tributary::catalog {
namespace {

class Parser {
 public:
  std::vector<std::string> errors;

  void Error(const std::string& path, const std::string& msg) { errors.push_back(path + ": " + msg); }

  void CheckKeys(const YAML::Node& n, const std::string& path, std::initializer_list<const char*> allowed) {
    if (!n.IsMap()) return;
    for (const auto& kv : n) {
      std::string k = kv.first.as<std::string>();
      bool ok = false;
      for (const char* a : allowed) ok |= k == a;
      if (!ok) Error(path, "unknown field '" + k + "'");
    }
  }

  std::string Str(const YAML::Node& n, const char* key, const std::string& path) {
    YAML::Node v = n[key];
    if (!v) return {};
    if (!v.IsScalar()) {
      Error(path + "." + key, "must be a string");
      return {};
    }
    return v.as<std::string>();
  }

  template <typename T>
  std::optional<T> Num(const YAML::Node& n, const char* key, const std::string& path) {
    YAML::Node v = n[key];
    if (!v) return std::nullopt;
    try {
      return v.as<T>();
    } catch (const YAML::Exception&) {
      Error(path + "." + key, "must be a number");
      return std::nullopt;
    }
  }

  std::optional<bool> Bool(const YAML::Node& n, const char* key, const std::string& path) {
    YAML::Node v = n[key];
    if (!v) return std::nullopt;
    try {
      return v.as<bool>();
    } catch (const YAML::Exception&) {
      Error(path + "." + key, "must be true or false");
      return std::nullopt;
    }
  }

  std::optional<std::string> OptStr(const YAML::Node& n, const char* key, const std::string& path) {
    if (!n[key]) return std::nullopt;
    return Str(n, key, path);
  }

  std::optional<std::vector<OptionDef>> OptOptions(const YAML::Node& n, const char* key, const std::string& path) {
    if (!n[key]) return std::nullopt;
    return Options(n[key], path + "." + key);
  }

  std::vector<OptionDef> Options(const YAML::Node& n, const std::string& path) {
    std::vector<OptionDef> out;
    if (!n) return out;
    if (!n.IsSequence()) {
      Error(path, "must be a list");
      return out;
    }
    for (size_t i = 0; i < n.size(); ++i) {
      std::string p = path + "[" + std::to_string(i) + "]";
      CheckKeys(n[i], p, {"value", "label"});
      OptionDef o;
      auto v = Num<int>(n[i], "value", p);
      if (!v) Error(p, "needs a value");
      o.value = v.value_or(0);
      o.label = Str(n[i], "label", p);
      out.push_back(std::move(o));
    }
    return out;
  }

  ColumnDef Column(const YAML::Node& n, const std::string& p) {
    CheckKeys(n, p, {"name",          "schemaname", "displayname", "description", "type",    "format",  "behavior",
                     "required",      "maxlength",  "precision",   "min",         "max",     "target",  "relationship",
                     "relationships", "nav",        "ondelete",    "choices",     "options", "default", "truelabel",
                     "falselabel",    "readonly",   "indexed",     "max_size_kb", "audit",   "secured"});
    ColumnDef c;
    c.path = p;
    c.name = Str(n, "name", p);
    c.schemaname = Str(n, "schemaname", p);
    c.displayname = Str(n, "displayname", p);
    c.description = Str(n, "description", p);
    c.type = Str(n, "type", p);
    c.format = Str(n, "format", p);
    c.behavior = Str(n, "behavior", p);
    c.required = Str(n, "required", p);
    c.maxlength = Num<int>(n, "maxlength", p);
    c.precision = Num<int>(n, "precision", p);
    c.max_size_kb = Num<int>(n, "max_size_kb", p);
    c.min = Num<double>(n, "min", p);
    c.max = Num<double>(n, "max", p);
    c.target = Str(n, "target", p);
    c.relationship = Str(n, "relationship", p);
    if (YAML::Node r = n["relationships"]) {
      if (!r.IsMap())
        Error(p + ".relationships", "must map target table to relationship name");
      else
        for (const auto& kv : r) c.relationships[kv.first.as<std::string>()] = kv.second.as<std::string>();
    }
    c.nav = Str(n, "nav", p);
    c.ondelete = Str(n, "ondelete", p);
    c.choices = Str(n, "choices", p);
    c.options = Options(n["options"], p + ".options");
    if (n["default"]) c.default_bool = Bool(n, "default", p);
    c.truelabel = Str(n, "truelabel", p);
    c.falselabel = Str(n, "falselabel", p);
    c.readonly = Bool(n, "readonly", p).value_or(false);
    c.indexed = Bool(n, "indexed", p).value_or(false);
    c.audit = Bool(n, "audit", p);
    c.secured = Bool(n, "secured", p).value_or(false);
    return c;
  }

  TableDef Table(const YAML::Node& n, const std::string& p) {
    CheckKeys(
        n, p,
        {"name", "schemaname", "displayname", "displaycollectionname", "description", "entitysetname", "ownership",
         "primaryname", "changetracking", "audit", "objecttypecode", "basename", "states", "columns", "keys"});
    TableDef t;
    t.path = p;
    t.name = Str(n, "name", p);
    t.schemaname = Str(n, "schemaname", p);
    t.displayname = Str(n, "displayname", p);
    t.displaycollectionname = Str(n, "displaycollectionname", p);
    t.description = Str(n, "description", p);
    t.entitysetname = Str(n, "entitysetname", p);
    t.ownership = Str(n, "ownership", p);
    if (YAML::Node pn = n["primaryname"]) {
      ColumnDef c = Column(pn, p + ".primaryname");
      if (c.type.empty()) c.type = "string";
      t.primaryname = std::move(c);
    }
    t.changetracking = Bool(n, "changetracking", p).value_or(false);
    t.audit = Bool(n, "audit", p).value_or(false);
    t.objecttypecode = Num<int>(n, "objecttypecode", p).value_or(0);
    t.basename = Str(n, "basename", p);
    if (YAML::Node s = n["states"]) {
      for (size_t i = 0; i < s.size(); ++i) {
        std::string sp = p + ".states[" + std::to_string(i) + "]";
        CheckKeys(s[i], sp, {"value", "label", "statuses"});
        StateDef st;
        st.value = Num<int>(s[i], "value", sp).value_or(0);
        st.label = Str(s[i], "label", sp);
        st.statuses = Options(s[i]["statuses"], sp + ".statuses");
        if (st.statuses.empty()) Error(sp, "a state needs at least one status");
        t.states.push_back(std::move(st));
      }
    }
    if (YAML::Node cs = n["columns"]) {
      if (!cs.IsSequence())
        Error(p + ".columns", "must be a list");
      else
        for (size_t i = 0; i < cs.size(); ++i)
          t.columns.push_back(Column(cs[i], p + ".columns[" + std::to_string(i) + "]"));
    }
    if (YAML::Node ks = n["keys"]) {
      if (!ks.IsSequence())
        Error(p + ".keys", "must be a list");
      else
        for (size_t i = 0; i < ks.size(); ++i) {
          std::string kp = p + ".keys[" + std::to_string(i) + "]";
          CheckKeys(ks[i], kp, {"name", "schemaname", "displayname", "columns"});
          KeyDef k;
          k.path = kp;
          k.name = Str(ks[i], "name", kp);
          k.schemaname = Str(ks[i], "schemaname", kp);
          k.displayname = Str(ks[i], "displayname", kp);
          if (YAML::Node kc = ks[i]["columns"]; kc && kc.IsSequence())
            for (const auto& c : kc) k.columns.push_back(c.as<std::string>());
          else
            Error(kp + ".columns", "must be a list of column names");
          t.keys.push_back(std::move(k));
        }
    }
    return t;
  }

  // drop: { tables: [a], columns: [t.c], keys: [t.k], relationships: [r], choices: [c] }
  DropDef Drop(const YAML::Node& n) {
    DropDef d;
    if (!n.IsMap()) {
      Error("drop", "must be a mapping of tables, columns, keys, relationships and choices");
      return d;
    }
    CheckKeys(n, "drop", {"tables", "columns", "keys", "relationships", "choices"});
    auto list = [&](const char* key, bool qualified, std::vector<DropRef>& out) {
      YAML::Node l = n[key];
      if (!l) return;
      std::string p = std::string("drop.") + key;
      if (!l.IsSequence()) {
        Error(p, "must be a list of names");
        return;
      }
      for (size_t i = 0; i < l.size(); ++i) {
        std::string ip = p + "[" + std::to_string(i) + "]";
        if (!l[i].IsScalar()) {
          Error(ip, "must be a name");
          continue;
        }
        DropRef r;
        r.path = ip;
        std::string v = l[i].as<std::string>();
        if (qualified) {
          auto dot = v.find('.');
          if (dot == std::string::npos || dot == 0 || dot + 1 == v.size()) {
            Error(ip, "'" + v + "' must be written table.name");
            continue;
          }
          r.table = v.substr(0, dot);
          r.name = v.substr(dot + 1);
        } else {
          r.name = v;
        }
        out.push_back(std::move(r));
      }
    };
    list("tables", false, d.tables);
    list("columns", true, d.columns);
    list("keys", true, d.keys);
    list("relationships", false, d.relationships);
    list("choices", false, d.choices);
    return d;
  }

  ColumnUpdate UpdateColumn(const YAML::Node& n, const std::string& p) {
    CheckKeys(n, p,
              {"name", "displayname", "description", "required", "format", "maxlength", "precision", "max_size_kb",
               "min", "max", "options", "default", "truelabel", "falselabel", "indexed", "audit", "secured"});
    ColumnUpdate c;
    c.path = p;
    c.name = Str(n, "name", p);
    if (c.name.empty()) Error(p, "needs a name");
    c.displayname = OptStr(n, "displayname", p);
    c.description = OptStr(n, "description", p);
    c.required = OptStr(n, "required", p);
    c.format = OptStr(n, "format", p);
    c.maxlength = Num<int>(n, "maxlength", p);
    c.precision = Num<int>(n, "precision", p);
    c.max_size_kb = Num<int>(n, "max_size_kb", p);
    c.min = Num<double>(n, "min", p);
    c.max = Num<double>(n, "max", p);
    c.options = OptOptions(n, "options", p);
    c.default_bool = Bool(n, "default", p);
    c.truelabel = OptStr(n, "truelabel", p);
    c.falselabel = OptStr(n, "falselabel", p);
    c.indexed = Bool(n, "indexed", p);
    c.audit = Bool(n, "audit", p);
    c.secured = Bool(n, "secured", p);
    return c;
  }

  UpdateDef Update(const YAML::Node& n) {
    UpdateDef u;
    if (!n.IsMap()) {
      Error("update", "must be a mapping of tables, choices and relationships");
      return u;
    }
    CheckKeys(n, "update", {"tables", "choices", "relationships"});
    auto each = [&](const char* key, auto&& fn) {
      YAML::Node l = n[key];
      if (!l) return;
      std::string p = std::string("update.") + key;
      if (!l.IsSequence()) {
        Error(p, "must be a list");
        return;
      }
      for (size_t i = 0; i < l.size(); ++i) fn(l[i], p + "[" + std::to_string(i) + "]");
    };
    each("tables", [&](const YAML::Node& t, const std::string& p) {
      CheckKeys(t, p,
                {"name", "displayname", "displaycollectionname", "description", "changetracking", "audit", "columns"});
      TableUpdate tu;
      tu.path = p;
      tu.name = Str(t, "name", p);
      if (tu.name.empty()) Error(p, "needs a name");
      tu.displayname = OptStr(t, "displayname", p);
      tu.displaycollectionname = OptStr(t, "displaycollectionname", p);
      tu.description = OptStr(t, "description", p);
      tu.changetracking = Bool(t, "changetracking", p);
      tu.audit = Bool(t, "audit", p);
      if (YAML::Node cs = t["columns"]) {
        if (!cs.IsSequence())
          Error(p + ".columns", "must be a list");
        else
          for (size_t i = 0; i < cs.size(); ++i)
            tu.columns.push_back(UpdateColumn(cs[i], p + ".columns[" + std::to_string(i) + "]"));
      }
      u.tables.push_back(std::move(tu));
    });
    each("choices", [&](const YAML::Node& c, const std::string& p) {
      CheckKeys(c, p, {"name", "displayname", "options"});
      ChoiceUpdate cu;
      cu.path = p;
      cu.name = Str(c, "name", p);
      if (cu.name.empty()) Error(p, "needs a name");
      cu.displayname = OptStr(c, "displayname", p);
      cu.options = OptOptions(c, "options", p);
      u.choices.push_back(std::move(cu));
    });
    each("relationships", [&](const YAML::Node& r, const std::string& p) {
      CheckKeys(r, p, {"name", "ondelete"});
      RelationshipUpdate ru;
      ru.path = p;
      ru.name = Str(r, "name", p);
      if (ru.name.empty()) Error(p, "needs a name");
      ru.ondelete = OptStr(r, "ondelete", p);
      u.relationships.push_back(std::move(ru));
    });
    return u;
  }

  SchemaDoc Doc(const YAML::Node& root) {
    SchemaDoc d;
    if (!root.IsMap()) {
      Error("(document)", "must be a mapping with 'version' and 'tables'");
      return d;
    }
    CheckKeys(root, "(document)", {"version", "publisher", "choices", "tables", "relationships", "drop", "update"});
    d.version = Num<int>(root, "version", "(document)").value_or(0);
    if (d.version != 1) Error("version", "must be 1");
    if (YAML::Node pub = root["publisher"]) {
      CheckKeys(pub, "publisher", {"prefix", "optionvalueprefix", "name"});
      d.prefix = Str(pub, "prefix", "publisher");
    }
    if (YAML::Node ch = root["choices"]) {
      for (size_t i = 0; i < ch.size(); ++i) {
        std::string p = "choices[" + std::to_string(i) + "]";
        CheckKeys(ch[i], p, {"name", "displayname", "options"});
        ChoiceDef c;
        c.path = p;
        c.name = Str(ch[i], "name", p);
        c.displayname = Str(ch[i], "displayname", p);
        c.options = Options(ch[i]["options"], p + ".options");
        d.choices.push_back(std::move(c));
      }
    }
    if (YAML::Node ts = root["tables"]) {
      if (!ts.IsSequence())
        Error("tables", "must be a list");
      else
        for (size_t i = 0; i < ts.size(); ++i) d.tables.push_back(Table(ts[i], "tables[" + std::to_string(i) + "]"));
    }
    if (YAML::Node rs = root["relationships"]) {
      for (size_t i = 0; i < rs.size(); ++i) {
        std::string p = "relationships[" + std::to_string(i) + "]";
        CheckKeys(rs[i], p, {"name", "type", "entity1", "entity2", "intersect"});
        RelationshipDef r;
        r.path = p;
        r.name = Str(rs[i], "name", p);
        r.type = Str(rs[i], "type", p);
        r.entity1 = Str(rs[i], "entity1", p);
        r.entity2 = Str(rs[i], "entity2", p);
        r.intersect = Str(rs[i], "intersect", p);
        d.relationships.push_back(std::move(r));
      }
    }
    if (YAML::Node dr = root["drop"]) d.drop = Drop(dr);
    if (YAML::Node up = root["update"]) d.update = Update(up);
    return d;
  }
};

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    if (!out.empty()) out += "\n";
    out += l;
  }
  return out;
}

}  // namespace

Result<SchemaDoc> ParseSchemaDocument(std::string_view text) {
  Parser p;
  SchemaDoc doc;
  try {
    YAML::Node root = YAML::Load(std::string(text));
    doc = p.Doc(root);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(std::string("schema file is not valid YAML/JSON: ") + e.what());
  }
  if (!p.errors.empty()) return InvalidArgument(Join(p.errors));
  return doc;
}

}  // namespace tributary::catalog

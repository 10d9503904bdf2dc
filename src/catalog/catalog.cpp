#include "tributary/catalog/catalog.h"

#include "tributary/base/strings.h"

namespace tributary::catalog {

const Option* OptionSet::Find(int value) const {
  for (const auto& o : options)
    if (o.value == value) return &o;
  return nullptr;
}

const Column* Table::FindColumn(std::string_view logical_name) const {
  auto it = column_index.find(std::string(logical_name));
  return it == column_index.end() ? nullptr : it->second;
}

const Column* Table::FindLookupProperty(std::string_view property) const {
  if (property.size() < 8 || property.front() != '_' || property.substr(property.size() - 6) != "_value")
    return nullptr;
  const Column* c = FindColumn(property.substr(1, property.size() - 7));
  return c && c->IsLookup() ? c : nullptr;
}

const NavProperty* Table::FindNav(std::string_view name) const {
  auto it = nav_index.find(std::string(name));
  return it == nav_index.end() ? nullptr : &navs[it->second];
}

const Key* Table::FindKey(std::string_view logical_name) const {
  for (const auto& k : keys)
    if (k.logical_name == logical_name) return &k;
  return nullptr;
}

const Table* Catalog::FindTable(std::string_view logical_name) const {
  auto it = by_name_.find(std::string(logical_name));
  return it == by_name_.end() ? nullptr : it->second;
}

const Table* Catalog::FindBySetName(std::string_view set_name) const {
  auto it = by_set_.find(ToLower(set_name));
  return it == by_set_.end() ? nullptr : it->second;
}

const Table* Catalog::FindByMetadataId(const Guid& id) const {
  for (const auto& t : tables_)
    if (t->metadata_id == id) return t.get();
  return nullptr;
}

const Relationship* Catalog::FindRelationship(std::string_view schema_name) const {
  for (const auto& r : relationships_)
    if (EqualsIgnoreCase(r->schema_name, schema_name)) return r.get();
  return nullptr;
}

const OptionSet* Catalog::FindGlobalChoice(std::string_view name) const {
  auto it = choices_.find(std::string(name));
  return it == choices_.end() ? nullptr : it->second.get();
}

std::string_view ColumnTypeName(ColumnType t) {
  switch (t) {
    case ColumnType::kString:
      return "String";
    case ColumnType::kMemo:
      return "Memo";
    case ColumnType::kInteger:
      return "Integer";
    case ColumnType::kBigInt:
      return "BigInt";
    case ColumnType::kDecimal:
      return "Decimal";
    case ColumnType::kDouble:
      return "Double";
    case ColumnType::kMoney:
      return "Money";
    case ColumnType::kBoolean:
      return "Boolean";
    case ColumnType::kChoice:
      return "Picklist";
    case ColumnType::kMultiChoice:
      return "Virtual";
    case ColumnType::kState:
      return "State";
    case ColumnType::kStatus:
      return "Status";
    case ColumnType::kDateTime:
      return "DateTime";
    case ColumnType::kUniqueIdentifier:
      return "Uniqueidentifier";
    case ColumnType::kLookup:
      return "Lookup";
    case ColumnType::kCustomer:
      return "Customer";
    case ColumnType::kOwner:
      return "Owner";
    case ColumnType::kFile:
    case ColumnType::kImage:
      return "Virtual";
  }
  return "String";
}

}  // namespace tributary::catalog

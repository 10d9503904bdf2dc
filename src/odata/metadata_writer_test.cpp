#include "tributary/odata/metadata_writer.h"

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tributary/base/json.h"
#include "tributary/base/status.h"

namespace tributary::odata {
namespace {

using catalog::Column;
using catalog::ColumnType;
using catalog::NavProperty;
using catalog::Relationship;
using catalog::Table;

constexpr std::string_view kRoot = "http://127.0.0.1:8080/api/data/v9.2/";

Guid G(uint8_t a, uint8_t b = 0) {
  std::array<uint8_t, 16> bytes{};
  bytes[0] = a;
  bytes[1] = b;
  bytes[15] = 1;
  return Guid(bytes);
}

// ---------------------------------------------------------------------------------------------
// A minimal XML well-formedness checker: one root, balanced and properly nested tags, quoted
// attributes without duplicates, no raw '<' in values, and only known entity references.
// Returns "" when well-formed, else what is wrong.

bool EntitiesOk(std::string_view text) {
  for (size_t i = text.find('&'); i != std::string_view::npos; i = text.find('&', i + 1)) {
    const size_t semi = text.find(';', i);
    if (semi == std::string_view::npos) return false;
    const std::string_view ref = text.substr(i + 1, semi - i - 1);
    if (ref == "amp" || ref == "lt" || ref == "gt" || ref == "quot" || ref == "apos") continue;
    if (ref.size() >= 3 && ref[0] == '#' && ref[1] == 'x' &&
        ref.substr(2).find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos) {
      continue;
    }
    return false;
  }
  return true;
}

bool NameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':' || c == '.' || c == '-';
}

std::string CheckXml(std::string_view s) {
  std::vector<std::string> open;
  bool root_done = false;
  size_t i = 0;
  if (s.starts_with("<?xml")) {
    const size_t end = s.find("?>");
    if (end == std::string_view::npos) return "unterminated declaration";
    i = end + 2;
  }
  while (i < s.size()) {
    if (s[i] != '<') {
      size_t j = s.find('<', i);
      if (j == std::string_view::npos) j = s.size();
      const std::string_view text = s.substr(i, j - i);
      if (open.empty() && text.find_first_not_of(" \t\r\n") != std::string_view::npos) {
        return "text outside the root element";
      }
      if (!EntitiesOk(text)) return "bad entity in text: " + std::string(text);
      i = j;
      continue;
    }
    if (s.substr(i).starts_with("</")) {
      const size_t end = s.find('>', i);
      if (end == std::string_view::npos) return "unterminated end tag";
      const std::string name(s.substr(i + 2, end - i - 2));
      if (open.empty() || open.back() != name) {
        return "end tag </" + name + "> does not match <" + (open.empty() ? "" : open.back()) + ">";
      }
      open.pop_back();
      if (open.empty()) root_done = true;
      i = end + 1;
      continue;
    }
    if (root_done) return "second root element";
    size_t j = i + 1;
    while (j < s.size() && NameChar(s[j])) ++j;
    const std::string name(s.substr(i + 1, j - i - 1));
    if (name.empty()) return "empty element name";
    std::set<std::string> attributes;
    while (true) {
      while (j < s.size() && s[j] == ' ') ++j;
      if (j >= s.size()) return "unterminated start tag <" + name;
      if (s.substr(j).starts_with("/>")) {
        j += 2;
        if (open.empty()) root_done = true;
        break;
      }
      if (s[j] == '>') {
        ++j;
        open.push_back(name);
        break;
      }
      const size_t attr_start = j;
      while (j < s.size() && NameChar(s[j])) ++j;
      const std::string attr(s.substr(attr_start, j - attr_start));
      if (attr.empty()) return "bad attribute in <" + name;
      if (!attributes.insert(attr).second) return "duplicate attribute " + attr + " in <" + name;
      if (s.substr(j, 2) != "=\"") return "attribute " + attr + " not quoted in <" + name;
      const size_t value_end = s.find('"', j + 2);
      if (value_end == std::string_view::npos) return "unterminated attribute value";
      const std::string_view value = s.substr(j + 2, value_end - j - 2);
      if (value.find('<') != std::string_view::npos) return "raw '<' in attribute " + attr;
      if (!EntitiesOk(value)) return "bad entity in attribute " + attr;
      j = value_end + 1;
    }
    i = j;
  }
  if (!open.empty()) return "unclosed <" + open.back() + ">";
  if (!root_done) return "no root element";
  return "";
}

TEST(CheckXmlTest, CatchesMalformedDocuments) {
  EXPECT_EQ(CheckXml(R"(<?xml version="1.0"?><a x="1"><b/><c>t &amp; u</c></a>)"), "");
  EXPECT_NE(CheckXml("<a><b></a></b>"), "");
  EXPECT_NE(CheckXml("<a><b></a>"), "");
  EXPECT_NE(CheckXml("<a/><b/>"), "");
  EXPECT_NE(CheckXml(R"(<a x="1" x="2"/>)"), "");
  EXPECT_NE(CheckXml(R"(<a x="a & b"/>)"), "");
  EXPECT_NE(CheckXml(R"(<a x="<"/>)"), "");
  EXPECT_NE(CheckXml("<a>1 < 2</a>"), "");
}

// The text of the first element that starts with `start` up to its matching `end`.
std::string Slice(const std::string& xml, std::string_view start, std::string_view end) {
  const size_t from = xml.find(start);
  if (from == std::string::npos) return {};
  const size_t to = xml.find(end, from);
  if (to == std::string::npos) return {};
  return xml.substr(from, to + end.size() - from);
}

// ---------------------------------------------------------------------------------------------
// A hand-built catalog: account, contact, systemuser, team.

class MetadataWriterTest : public ::testing::Test {
 protected:
  MetadataWriterTest() {
    InitTable(systemuser_, "systemuser", "SystemUser", "systemusers", "systemuserid", 8, "User");
    Add(systemuser_, "systemuserid", ColumnType::kUniqueIdentifier, [](Column& c) {
      c.is_primary_id = true;
      c.valid_for_update = false;
    });
    Add(systemuser_, "fullname", ColumnType::kString, [](Column& c) {
      c.is_primary_name = true;
      c.max_length = 200;
    });
    systemuser_.primary_name = "fullname";
    systemuser_.ownership = catalog::Ownership::kNone;

    InitTable(team_, "team", "Team", "teams", "teamid", 9, "Team");
    Add(team_, "teamid", ColumnType::kUniqueIdentifier, [](Column& c) { c.is_primary_id = true; });
    Add(team_, "name", ColumnType::kString, [](Column& c) { c.max_length = 160; });
    team_.primary_name = "name";

    InitTable(contact_, "contact", "Contact", "contacts", "contactid", 2, "Contact");
    Add(contact_, "contactid", ColumnType::kUniqueIdentifier, [](Column& c) { c.is_primary_id = true; });
    Add(contact_, "fullname", ColumnType::kString, [](Column& c) {
      c.max_length = 160;
      c.is_primary_name = true;
      c.valid_for_create = c.valid_for_update = false;
    });
    contact_parentcustomerid_ = Add(contact_, "parentcustomerid", ColumnType::kCustomer, [](Column& c) {
      c.targets = {"account", "contact"};
    });
    Add(contact_, "birthdate", ColumnType::kDateTime, [](Column& c) { c.behavior = catalog::DateBehavior::kDateOnly; });
    contact_.primary_name = "fullname";

    InitTable(account_, "account", "Account", "accounts", "accountid", 1, "Account");
    account_.display_collection_name = "Accounts";
    account_.description = "Business that represents a customer & <partner> \"A\"";
    account_.change_tracking = true;
    account_.primary_name = "name";
    Add(account_, "accountid", ColumnType::kUniqueIdentifier, [](Column& c) {
      c.is_primary_id = true;
      c.required = catalog::RequiredLevel::kSystemRequired;
      c.valid_for_update = false;
    });
    Add(account_, "name", ColumnType::kString, [](Column& c) {
      c.display_name = "Account Name";
      c.description = "Type the company <or> business name & more";
      c.max_length = 160;
      c.is_primary_name = true;
      c.required = catalog::RequiredLevel::kApplicationRequired;
    });
    Add(account_, "emailaddress1", ColumnType::kString, [](Column& c) {
      c.max_length = 100;
      c.format = "email";
    });
    Add(account_, "description", ColumnType::kMemo, [](Column& c) { c.max_length = 2000; });
    Add(account_, "numberofemployees", ColumnType::kInteger, [](Column& c) {
      c.min_value = 0;
      c.max_value = 1000000;
    });
    Add(account_, "versionnumber", ColumnType::kBigInt,
        [](Column& c) { c.valid_for_create = c.valid_for_update = false; });
    Add(account_, "exchangerate", ColumnType::kDecimal, [](Column& c) { c.precision = 10; });
    Add(account_, "new_score", ColumnType::kDouble, [](Column& c) {
      c.precision = 2;
      c.is_custom = true;
    });
    Add(account_, "revenue", ColumnType::kMoney, [](Column& c) { c.precision = 2; });
    Add(account_, "donotphone", ColumnType::kBoolean, [](Column& c) {
      auto set = std::make_shared<catalog::OptionSet>();
      set->name = "account_donotphone";
      set->metadata_id = G(0x50);
      set->options = {{1, "Do Not Allow"}, {0, "Allow"}};
      c.options = set;
      c.default_bool = false;
    });
    industry_ = std::make_shared<catalog::OptionSet>();
    industry_->name = "industrycode";
    industry_->metadata_id = G(0x51);
    industry_->is_global = true;
    industry_->options = {{1, "Accounting"}, {2, "Agriculture & Farming"}};
    Add(account_, "industrycode", ColumnType::kChoice, [this](Column& c) { c.options = industry_; });
    Add(account_, "new_tags", ColumnType::kMultiChoice, [](Column& c) {
      auto set = std::make_shared<catalog::OptionSet>();
      set->name = "account_new_tags";
      set->metadata_id = G(0x52);
      set->options = {{1, "A"}, {2, "B"}};
      c.options = set;
    });
    Add(account_, "statecode", ColumnType::kState, [](Column& c) {
      auto set = std::make_shared<catalog::OptionSet>();
      set->name = "account_statecode";
      set->metadata_id = G(0x53);
      set->options = {{0, "Active"}, {1, "Inactive"}};
      c.options = set;
    });
    Add(account_, "statuscode", ColumnType::kStatus, [](Column& c) {
      auto set = std::make_shared<catalog::OptionSet>();
      set->name = "account_statuscode";
      set->metadata_id = G(0x54);
      set->options = {{1, "Active", 0}, {2, "Inactive", 1}};
      c.options = set;
    });
    Add(account_, "createdon", ColumnType::kDateTime,
        [](Column& c) { c.valid_for_create = c.valid_for_update = false; });
    Add(account_, "new_extid", ColumnType::kUniqueIdentifier, [](Column& c) { c.is_custom = true; });
    account_primarycontactid_ =
        Add(account_, "primarycontactid", ColumnType::kLookup, [](Column& c) { c.targets = {"contact"}; });
    account_ownerid_ = Add(account_, "ownerid", ColumnType::kOwner, [](Column& c) {
      c.targets = {"systemuser", "team"};
    });
    account_.keys.push_back({"accountnumber_key", "AccountNumberKey", G(0x60), {"accountnumber"}});

    // account.primarycontactid → contact (1:N account_primary_contact).
    primary_contact_.schema_name = "account_primary_contact";
    primary_contact_.referenced_entity = "contact";
    primary_contact_.referenced_attribute = "contactid";
    primary_contact_.referencing_entity = "account";
    primary_contact_.referencing_attribute = "primarycontactid";
    primary_contact_.referencing_nav = "primarycontactid";
    primary_contact_.referenced_nav = "account_primary_contact";
    // contact.parentcustomerid → account (1:N contact_customer_accounts).
    customer_accounts_.schema_name = "contact_customer_accounts";
    customer_accounts_.referenced_entity = "account";
    customer_accounts_.referenced_attribute = "accountid";
    customer_accounts_.referencing_entity = "contact";
    customer_accounts_.referencing_attribute = "parentcustomerid";
    customer_accounts_.referencing_nav = "parentcustomerid_account";
    customer_accounts_.referenced_nav = "contact_customer_accounts";
    // account ↔ contact (N:N new_account_contact).
    account_contact_.schema_name = "new_account_contact";
    account_contact_.type = catalog::RelationshipType::kManyToMany;
    account_contact_.entity1 = "account";
    account_contact_.entity2 = "contact";

    AddNav(account_, "primarycontactid", NavProperty::Kind::kSingle, &primary_contact_, &contact_,
           account_primarycontactid_);
    AddNav(account_, "ownerid", NavProperty::Kind::kPolymorphicOwner, nullptr, nullptr, account_ownerid_);
    AddNav(account_, "contact_customer_accounts", NavProperty::Kind::kCollection, &customer_accounts_, &contact_,
           contact_parentcustomerid_);
    AddNav(account_, "new_account_contact", NavProperty::Kind::kManyToMany, &account_contact_, &contact_, nullptr);
    AddNav(contact_, "parentcustomerid_account", NavProperty::Kind::kSingle, &customer_accounts_, &account_,
           contact_parentcustomerid_);
    AddNav(contact_, "account_primary_contact", NavProperty::Kind::kCollection, &primary_contact_, &account_,
           account_primarycontactid_);
    AddNav(contact_, "new_account_contact", NavProperty::Kind::kManyToMany, &account_contact_, &account_, nullptr);

    tables_ = {&account_, &contact_, &systemuser_, &team_};
  }

  static void InitTable(Table& t, std::string name, std::string schema, std::string set, std::string id, uint8_t n,
                        std::string display) {
    t.logical_name = std::move(name);
    t.schema_name = std::move(schema);
    t.entity_set_name = std::move(set);
    t.primary_id = std::move(id);
    t.metadata_id = G(n);
    t.object_type_code = n;
    t.display_name = std::move(display);
  }

  template <typename Init>
  Column* Add(Table& t, std::string name, ColumnType type, Init init) {
    auto c = std::make_unique<Column>();
    c->logical_name = name;
    c->schema_name = name;
    c->type = type;
    c->metadata_id = G(t.metadata_id.bytes()[0], static_cast<uint8_t>(t.columns.size() + 1));
    c->sql_name = name;
    init(*c);
    Column* raw = c.get();
    t.column_index[name] = raw;
    t.columns.push_back(std::move(c));
    return raw;
  }

  static void AddNav(Table& t, std::string name, NavProperty::Kind kind, const Relationship* rel, const Table* target,
                     const Column* column) {
    t.nav_index[name] = t.navs.size();
    t.navs.push_back({std::move(name), kind, rel, target, column});
  }

  const Column& Col(const Table& t, std::string_view name) const { return *t.column_index.at(std::string(name)); }

  Table account_, contact_, systemuser_, team_;
  Relationship primary_contact_, customer_accounts_, account_contact_;
  std::shared_ptr<catalog::OptionSet> industry_;
  Column* account_primarycontactid_ = nullptr;
  Column* account_ownerid_ = nullptr;
  Column* contact_parentcustomerid_ = nullptr;
  std::vector<const Table*> tables_;
};

Json Parse(const Result<std::string>& text) {
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  if (!text.ok()) return {};
  auto parsed = ParseJson(*text);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString() << "\n" << *text;
  return parsed.ok() ? *parsed : Json();
}

Json Parse(const std::string& text) { return Parse(Result<std::string>(text)); }

std::string Str(const Json& j, std::string_view key) {
  const Json* v = j.Find(key);
  return v && v->is_string() ? v->as_string() : "<missing " + std::string(key) + ">";
}

const Json* Row(const Json& list, std::string_view logical_name) {
  const Json* value = list.Find("value");
  if (!value) return nullptr;
  for (const Json& row : value->as_array()) {
    const Json* name = row.Find("LogicalName");
    if (name && name->as_string() == logical_name) return &row;
  }
  return nullptr;
}

std::vector<std::string> Keys(const Json& object) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : object.as_object()) keys.push_back(k);
  return keys;
}

void ExpectQueryError(const Status& s, std::string_view message) {
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.error_code(), 0x80060888u);
  EXPECT_EQ(s.message(), message);
}

// ---------------------------------------------------------------------------------------------

TEST_F(MetadataWriterTest, EdmTypes) {
  Column c;
  const std::pair<ColumnType, std::string_view> cases[] = {
      {ColumnType::kString, "Edm.String"},
      {ColumnType::kMemo, "Edm.String"},
      {ColumnType::kMultiChoice, "Edm.String"},
      {ColumnType::kInteger, "Edm.Int32"},
      {ColumnType::kChoice, "Edm.Int32"},
      {ColumnType::kState, "Edm.Int32"},
      {ColumnType::kStatus, "Edm.Int32"},
      {ColumnType::kBigInt, "Edm.Int64"},
      {ColumnType::kDecimal, "Edm.Decimal"},
      {ColumnType::kMoney, "Edm.Decimal"},
      {ColumnType::kDouble, "Edm.Double"},
      {ColumnType::kBoolean, "Edm.Boolean"},
      {ColumnType::kDateTime, "Edm.DateTimeOffset"},
      {ColumnType::kUniqueIdentifier, "Edm.Guid"},
      {ColumnType::kLookup, "Edm.Guid"},
      {ColumnType::kCustomer, "Edm.Guid"},
      {ColumnType::kOwner, "Edm.Guid"},
  };
  for (const auto& [type, edm] : cases) {
    c.type = type;
    EXPECT_EQ(EdmType(c), edm) << static_cast<int>(type);
  }
  c.type = ColumnType::kDateTime;
  c.behavior = catalog::DateBehavior::kDateOnly;
  EXPECT_EQ(EdmType(c), "Edm.Date");
  c.behavior = catalog::DateBehavior::kTimeZoneIndependent;
  EXPECT_EQ(EdmType(c), "Edm.DateTimeOffset");
}

TEST_F(MetadataWriterTest, ServiceDocumentListsEveryEntitySet) {
  const Json doc = Parse(WriteServiceDocument(tables_, kRoot));
  EXPECT_EQ(Str(doc, "@odata.context"), std::string(kRoot) + "$metadata");
  const auto& value = doc.Find("value")->as_array();
  ASSERT_EQ(value.size(), 4u);
  EXPECT_EQ(value[0].Dump(), R"({"name":"accounts","kind":"EntitySet","url":"accounts"})");
  EXPECT_EQ(Str(value[3], "name"), "teams");
}

TEST_F(MetadataWriterTest, ServiceDocumentAddsMissingSlashToRoot) {
  const Json doc = Parse(WriteServiceDocument(tables_, "http://h/api/data/v9.2"));
  EXPECT_EQ(Str(doc, "@odata.context"), "http://h/api/data/v9.2/$metadata");
}

TEST_F(MetadataWriterTest, CatalogOverloadsWorkOnAnEmptyCatalog) {
  const catalog::Catalog empty;
  EXPECT_EQ(WriteServiceDocument(empty, kRoot),
            R"({"@odata.context":"http://127.0.0.1:8080/api/data/v9.2/$metadata","value":[]})");
  const std::string csdl = WriteCsdl(empty, true);
  EXPECT_EQ(CheckXml(csdl), "");
  EXPECT_NE(csdl.find(R"(<EntityType Name="crmbaseentity" Abstract="true"/>)"), std::string::npos);
  EXPECT_NE(csdl.find(R"(<EntityContainer Name="System">)"), std::string::npos);
  const Json defs = Parse(WriteEntityDefinitions(empty, kRoot, {}));
  EXPECT_TRUE(defs.Find("value")->as_array().empty());
}

TEST_F(MetadataWriterTest, CsdlIsWellFormed) {
  EXPECT_EQ(CheckXml(WriteCsdl(tables_, false)), "");
  EXPECT_EQ(CheckXml(WriteCsdl(tables_, true)), "");
}

TEST_F(MetadataWriterTest, CsdlEnvelopeAndBaseTypes) {
  const std::string csdl = WriteCsdl(tables_, false);
  EXPECT_TRUE(csdl.starts_with(R"(<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="4.0")"));
  EXPECT_NE(csdl.find(R"(<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm")"), std::string::npos);
  EXPECT_NE(csdl.find(R"(<EntityType Name="crmbaseentity" Abstract="true"/>)"), std::string::npos);
  EXPECT_NE(csdl.find(R"(<EntityType Name="principal" BaseType="mscrm.crmbaseentity" Abstract="true">)"
                      R"(<Key><PropertyRef Name="ownerid"/></Key>)"
                      R"(<Property Name="ownerid" Type="Edm.Guid"/></EntityType>)"),
            std::string::npos);
}

TEST_F(MetadataWriterTest, CsdlEntityTypeKeyAndProperties) {
  const std::string csdl = WriteCsdl(tables_, false);
  const std::string account = Slice(csdl, R"(<EntityType Name="account")", "</EntityType>");
  ASSERT_FALSE(account.empty());
  EXPECT_TRUE(account.starts_with(R"(<EntityType Name="account" BaseType="mscrm.crmbaseentity">)"
                                  R"(<Key><PropertyRef Name="accountid"/></Key>)"));
  for (std::string_view p : {
           R"(<Property Name="accountid" Type="Edm.Guid"/>)",
           R"(<Property Name="name" Type="Edm.String"/>)",
           R"(<Property Name="numberofemployees" Type="Edm.Int32"/>)",
           R"(<Property Name="versionnumber" Type="Edm.Int64"/>)",
           R"(<Property Name="exchangerate" Type="Edm.Decimal" Scale="Variable"/>)",
           R"(<Property Name="revenue" Type="Edm.Decimal" Scale="Variable"/>)",
           R"(<Property Name="new_score" Type="Edm.Double"/>)",
           R"(<Property Name="donotphone" Type="Edm.Boolean"/>)",
           R"(<Property Name="industrycode" Type="Edm.Int32"/>)",
           R"(<Property Name="new_tags" Type="Edm.String"/>)",
           R"(<Property Name="statecode" Type="Edm.Int32"/>)",
           R"(<Property Name="createdon" Type="Edm.DateTimeOffset"/>)",
           R"(<Property Name="_primarycontactid_value" Type="Edm.Guid"/>)",
           R"(<Property Name="_ownerid_value" Type="Edm.Guid"/>)",
       }) {
    EXPECT_NE(account.find(p), std::string::npos) << p;
  }
  // Lookups appear only as _x_value, never under the raw column name.
  EXPECT_EQ(account.find(R"(<Property Name="primarycontactid")"), std::string::npos);
  EXPECT_EQ(account.find(R"(<Property Name="ownerid")"), std::string::npos);
  EXPECT_EQ(account.find("Annotation"), std::string::npos);

  const std::string contact = Slice(csdl, R"(<EntityType Name="contact")", "</EntityType>");
  EXPECT_NE(contact.find(R"(<Property Name="birthdate" Type="Edm.Date"/>)"), std::string::npos);
  EXPECT_NE(contact.find(R"(<Property Name="_parentcustomerid_value" Type="Edm.Guid"/>)"), std::string::npos);
}

TEST_F(MetadataWriterTest, CsdlNavigationProperties) {
  const std::string csdl = WriteCsdl(tables_, false);
  const std::string account = Slice(csdl, R"(<EntityType Name="account")", "</EntityType>");
  EXPECT_NE(account.find(R"(<NavigationProperty Name="primarycontactid" Type="mscrm.contact" )"
                         R"(Partner="account_primary_contact">)"
                         R"(<ReferentialConstraint Property="_primarycontactid_value" )"
                         R"(ReferencedProperty="contactid"/></NavigationProperty>)"),
            std::string::npos)
      << account;
  EXPECT_NE(account.find(R"(<NavigationProperty Name="ownerid" Type="mscrm.principal">)"
                         R"(<ReferentialConstraint Property="_ownerid_value" )"
                         R"(ReferencedProperty="ownerid"/></NavigationProperty>)"),
            std::string::npos);
  EXPECT_NE(account.find(R"(<NavigationProperty Name="contact_customer_accounts" )"
                         R"x(Type="Collection(mscrm.contact)" Partner="parentcustomerid_account"/>)x"),
            std::string::npos);
  EXPECT_NE(account.find(R"(<NavigationProperty Name="new_account_contact" )"
                         R"x(Type="Collection(mscrm.contact)" Partner="new_account_contact"/>)x"),
            std::string::npos);

  const std::string contact = Slice(csdl, R"(<EntityType Name="contact")", "</EntityType>");
  EXPECT_NE(contact.find(R"(<NavigationProperty Name="parentcustomerid_account" Type="mscrm.account" )"
                         R"(Partner="contact_customer_accounts">)"
                         R"(<ReferentialConstraint Property="_parentcustomerid_value" )"
                         R"(ReferencedProperty="accountid"/></NavigationProperty>)"),
            std::string::npos);
  EXPECT_NE(contact.find(R"(<NavigationProperty Name="account_primary_contact" )"
                         R"x(Type="Collection(mscrm.account)" Partner="primarycontactid"/>)x"),
            std::string::npos);
}

TEST_F(MetadataWriterTest, CsdlPartnersAreReciprocal) {
  // Every Partner="p" on type T names a navigation property p on the target type whose own
  // Partner names the first one back.
  const std::string csdl = WriteCsdl(tables_, false);
  for (const Table* t : tables_) {
    for (const NavProperty& nav : t->navs) {
      if (nav.target == nullptr || nav.relationship == nullptr) continue;
      const std::string type = Slice(csdl, "<EntityType Name=\"" + nav.target->logical_name + "\"", "</EntityType>");
      std::string partner;
      const std::string self = Slice(csdl, "<EntityType Name=\"" + t->logical_name + "\"", "</EntityType>");
      const std::string element = Slice(self, "<NavigationProperty Name=\"" + nav.name + "\"", ">");
      const size_t p = element.find("Partner=\"");
      ASSERT_NE(p, std::string::npos) << element;
      partner = element.substr(p + 9, element.find('"', p + 9) - p - 9);
      const std::string back = Slice(type, "<NavigationProperty Name=\"" + partner + "\"", ">");
      ASSERT_FALSE(back.empty()) << nav.name << " → " << partner;
      EXPECT_NE(back.find("Partner=\"" + nav.name + "\""), std::string::npos) << back;
    }
  }
}

TEST_F(MetadataWriterTest, CsdlPrincipalDerivedTypesInheritTheKey) {
  const std::string csdl = WriteCsdl(tables_, false);
  for (std::string_view name : {"systemuser", "team"}) {
    const std::string type = Slice(csdl, "<EntityType Name=\"" + std::string(name) + "\"", "</EntityType>");
    ASSERT_FALSE(type.empty()) << name;
    EXPECT_NE(type.find(R"(BaseType="mscrm.principal")"), std::string::npos) << type;
    EXPECT_EQ(type.find("<Key>"), std::string::npos) << type;
  }
  EXPECT_NE(csdl.find(R"(<Property Name="systemuserid" Type="Edm.Guid"/>)"), std::string::npos);
}

TEST_F(MetadataWriterTest, CsdlFunctionsAndContainer) {
  const std::string csdl = WriteCsdl(tables_, false);
  const std::string_view expected[] = {
      R"(<ComplexType Name="WhoAmIResponse">)"
      R"(<Property Name="BusinessUnitId" Type="Edm.Guid" Nullable="false"/>)"
      R"(<Property Name="UserId" Type="Edm.Guid" Nullable="false"/>)"
      R"(<Property Name="OrganizationId" Type="Edm.Guid" Nullable="false"/></ComplexType>)",
      R"(<ComplexType Name="RetrieveVersionResponse">)"
      R"(<Property Name="Version" Type="Edm.String"/></ComplexType>)",
      R"(<Function Name="WhoAmI" IsBound="false">)"
      R"(<ReturnType Type="mscrm.WhoAmIResponse" Nullable="false"/></Function>)",
      R"(<Function Name="RetrieveVersion" IsBound="false">)"
      R"(<ReturnType Type="mscrm.RetrieveVersionResponse" Nullable="false"/></Function>)",
      R"(<EntityContainer Name="System">)",
      R"(<EntitySet Name="accounts" EntityType="Microsoft.Dynamics.CRM.account">)"
      R"(<NavigationPropertyBinding Path="primarycontactid" Target="contacts"/>)",
      R"(<NavigationPropertyBinding Path="contact_customer_accounts" Target="contacts"/>)",
      R"(<EntitySet Name="systemusers" EntityType="Microsoft.Dynamics.CRM.systemuser"/>)",
      R"(<FunctionImport Name="WhoAmI" Function="Microsoft.Dynamics.CRM.WhoAmI"/>)",
      R"(<FunctionImport Name="RetrieveVersion" )"
      R"(Function="Microsoft.Dynamics.CRM.RetrieveVersion"/>)",
  };
  for (std::string_view s : expected) {
    EXPECT_NE(csdl.find(s), std::string::npos) << s;
  }
  // The polymorphic owner has no single target set to bind.
  EXPECT_EQ(csdl.find(R"(<NavigationPropertyBinding Path="ownerid")"), std::string::npos);
  EXPECT_EQ(csdl.find("ChangeTracking"), std::string::npos);
}

TEST_F(MetadataWriterTest, CsdlBindsOnlyListedTargets) {
  const std::vector<const Table*> only_account = {&account_};
  const std::string csdl = WriteCsdl(only_account, false);
  EXPECT_EQ(CheckXml(csdl), "");
  EXPECT_EQ(csdl.find("NavigationPropertyBinding"), std::string::npos);
  EXPECT_NE(csdl.find(R"(<EntitySet Name="accounts" EntityType="Microsoft.Dynamics.CRM.account"/>)"),
            std::string::npos);
}

TEST_F(MetadataWriterTest, CsdlAnnotations) {
  const std::string csdl = WriteCsdl(tables_, true);
  const std::string account = Slice(csdl, R"(<EntityType Name="account")", "</EntityType>");
  EXPECT_NE(account.find(R"(<Property Name="createdon" Type="Edm.DateTimeOffset">)"
                         R"(<Annotation Term="Org.OData.Core.V1.Computed" Bool="true"/>)"
                         R"(<Annotation Term="Org.OData.Core.V1.Permissions" )"
                         R"(EnumMember="Org.OData.Core.V1.Permission/Read"/></Property>)"),
            std::string::npos)
      << account;
  EXPECT_NE(account.find(R"(<Property Name="versionnumber" Type="Edm.Int64">)"
                         R"(<Annotation Term="Org.OData.Core.V1.Computed")"),
            std::string::npos);
  // Writable columns are not computed.
  EXPECT_NE(account.find(R"(<Property Name="revenue" Type="Edm.Decimal" Scale="Variable"/>)"), std::string::npos);
  // Descriptions are escaped.
  EXPECT_NE(account.find(R"(<Annotation Term="Org.OData.Core.V1.Description" )"
                         R"(String="Business that represents a customer &amp; &lt;partner&gt; &quot;A&quot;"/>)"),
            std::string::npos)
      << account;
  EXPECT_NE(account.find(R"(String="Type the company &lt;or&gt; business name &amp; more")"), std::string::npos);

  const std::string accounts = Slice(csdl, R"(<EntitySet Name="accounts")", "</EntitySet>");
  EXPECT_NE(accounts.find(R"(<Annotation Term="Org.OData.Capabilities.V1.ChangeTracking">)"
                          R"(<Record><PropertyValue Property="Supported" Bool="true"/></Record></Annotation>)"),
            std::string::npos)
      << accounts;
  const std::string contacts = Slice(csdl, R"(<EntitySet Name="contacts")", "</EntitySet>");
  EXPECT_EQ(contacts.find("ChangeTracking"), std::string::npos);
  EXPECT_NE(csdl.find(R"(<edmx:Include Namespace="Org.OData.Core.V1" Alias="Core"/>)"), std::string::npos);
}

TEST_F(MetadataWriterTest, CsdlEscapesControlCharactersAndQuotes) {
  account_.description = "line1\nline2\t'q'\x01 end";
  const std::string csdl = WriteCsdl(tables_, true);
  EXPECT_EQ(CheckXml(csdl), "");
  EXPECT_NE(csdl.find(R"(String="line1&#xA;line2&#x9;&apos;q&apos; end")"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// EntityDefinitions

TEST_F(MetadataWriterTest, EntityDefinitionsAllProperties) {
  const Json doc = Parse(WriteEntityDefinitions(tables_, kRoot, {}));
  EXPECT_EQ(Str(doc, "@odata.context"), std::string(kRoot) + "$metadata#EntityDefinitions");
  ASSERT_EQ(doc.Find("value")->as_array().size(), 4u);
  const Json* account = Row(doc, "account");
  ASSERT_NE(account, nullptr);
  EXPECT_EQ(Keys(*account), (std::vector<std::string>{"MetadataId",
                                                      "LogicalName",
                                                      "SchemaName",
                                                      "EntitySetName",
                                                      "LogicalCollectionName",
                                                      "CollectionSchemaName",
                                                      "PrimaryIdAttribute",
                                                      "PrimaryNameAttribute",
                                                      "ObjectTypeCode",
                                                      "IsCustomEntity",
                                                      "IsActivity",
                                                      "IsIntersect",
                                                      "ChangeTrackingEnabled",
                                                      "IsAuditEnabled",
                                                      "IsOptimisticConcurrencyEnabled",
                                                      "OwnershipType",
                                                      "DisplayName",
                                                      "DisplayCollectionName",
                                                      "Description",
                                                      "IsValidForAdvancedFind",
                                                      "IconVectorName"}));
  EXPECT_EQ(Str(*account, "MetadataId"), G(1).ToString());
  EXPECT_EQ(Str(*account, "SchemaName"), "Account");
  EXPECT_EQ(Str(*account, "EntitySetName"), "accounts");
  EXPECT_EQ(Str(*account, "LogicalCollectionName"), "accounts");
  EXPECT_EQ(Str(*account, "CollectionSchemaName"), "Accounts");
  EXPECT_EQ(Str(*account, "PrimaryIdAttribute"), "accountid");
  EXPECT_EQ(Str(*account, "PrimaryNameAttribute"), "name");
  EXPECT_EQ(account->Find("ObjectTypeCode")->as_int(), 1);
  EXPECT_FALSE(account->Find("IsCustomEntity")->as_bool());
  EXPECT_FALSE(account->Find("IsActivity")->as_bool());
  EXPECT_FALSE(account->Find("IsIntersect")->as_bool());
  EXPECT_TRUE(account->Find("ChangeTrackingEnabled")->as_bool());
  const Json* audit = account->Find("IsAuditEnabled");
  EXPECT_FALSE(audit->Find("Value")->as_bool());
  EXPECT_TRUE(audit->Find("CanBeChanged")->as_bool());
  EXPECT_EQ(Str(*audit, "ManagedPropertyLogicalName"), "canmodifyauditsettings");
  EXPECT_TRUE(account->Find("IsOptimisticConcurrencyEnabled")->as_bool());
  EXPECT_TRUE(account->Find("IsValidForAdvancedFind")->as_bool());
  EXPECT_EQ(Str(*account, "OwnershipType"), "UserOwned");
  EXPECT_TRUE(account->Find("IconVectorName")->is_null());
  EXPECT_EQ(Str(*Row(doc, "systemuser"), "OwnershipType"), "None");
  EXPECT_FALSE(Row(doc, "contact")->Find("ChangeTrackingEnabled")->as_bool());
}

TEST_F(MetadataWriterTest, EntityDefinitionLabels) {
  const Json account = Parse(WriteEntityDefinition(account_, kRoot, {}));
  const Json& label = *account.Find("DisplayName");
  const auto& localized = label.Find("LocalizedLabels")->as_array();
  ASSERT_EQ(localized.size(), 1u);
  EXPECT_EQ(Keys(localized[0]),
            (std::vector<std::string>{"Label", "LanguageCode", "IsManaged", "MetadataId", "HasChanged"}));
  EXPECT_EQ(Str(localized[0], "Label"), "Account");
  EXPECT_EQ(localized[0].Find("LanguageCode")->as_int(), 1033);
  EXPECT_TRUE(localized[0].Find("IsManaged")->as_bool());
  EXPECT_TRUE(localized[0].Find("HasChanged")->is_null());
  EXPECT_TRUE(Guid::Parse(Str(localized[0], "MetadataId")).has_value());
  EXPECT_EQ(label.Find("UserLocalizedLabel")->Dump(), localized[0].Dump());
  // Each label has its own stable id.
  const Json& collection = *account.Find("DisplayCollectionName");
  EXPECT_NE(Str(collection.Find("LocalizedLabels")->as_array()[0], "MetadataId"), Str(localized[0], "MetadataId"));
  EXPECT_EQ(Parse(WriteEntityDefinition(account_, kRoot, {})).Dump(), account.Dump());
  // Special characters survive the JSON round trip.
  EXPECT_EQ(Str(account.Find("Description")->Find("LocalizedLabels")->as_array()[0], "Label"), account_.description);

  const Json contact = Parse(WriteEntityDefinition(contact_, kRoot, {}));
  EXPECT_EQ(contact.Find("DisplayCollectionName")->Dump(), R"({"LocalizedLabels":[],"UserLocalizedLabel":null})");
}

TEST_F(MetadataWriterTest, EntityDefinitionsSelect) {
  const Json doc = Parse(WriteEntityDefinitions(tables_, kRoot, {"EntitySetName", "LogicalName"}));
  EXPECT_EQ(Str(doc, "@odata.context"), std::string(kRoot) + "$metadata#EntityDefinitions(EntitySetName,LogicalName)");
  for (const Json& row : doc.Find("value")->as_array()) {
    EXPECT_EQ(Keys(row), (std::vector<std::string>{"MetadataId", "LogicalName", "EntitySetName"}));
  }
  EXPECT_EQ(Str(*Row(doc, "team"), "EntitySetName"), "teams");
}

TEST_F(MetadataWriterTest, EntityDefinitionKeyedGet) {
  const Json all = Parse(WriteEntityDefinition(account_, kRoot, {}));
  EXPECT_EQ(Str(all, "@odata.context"), std::string(kRoot) + "$metadata#EntityDefinitions/$entity");
  EXPECT_EQ(Str(all, "LogicalName"), "account");
  EXPECT_EQ(all.Find("value"), nullptr);

  const Json some = Parse(WriteEntityDefinition(account_, kRoot, {"DisplayName", "EntitySetName"}));
  EXPECT_EQ(Str(some, "@odata.context"),
            std::string(kRoot) + "$metadata#EntityDefinitions(DisplayName,EntitySetName)/$entity");
  EXPECT_EQ(Keys(some), (std::vector<std::string>{"@odata.context", "MetadataId", "EntitySetName", "DisplayName"}));
}

TEST_F(MetadataWriterTest, EntityDefinitionsUnknownSelect) {
  const std::string message =
      "Could not find a property named 'entitysetname' on type "
      "'Microsoft.Dynamics.CRM.EntityMetadata'.";
  ExpectQueryError(WriteEntityDefinitions(tables_, kRoot, {"LogicalName", "entitysetname"}).status(), message);
  ExpectQueryError(WriteEntityDefinition(account_, kRoot, {"entitysetname"}).status(), message);
  ExpectQueryError(WriteEntityDefinition(account_, kRoot, {"Attributes"}).status(),
                   "Could not find a property named 'Attributes' on type "
                   "'Microsoft.Dynamics.CRM.EntityMetadata'.");
}

TEST_F(MetadataWriterTest, CollectionSchemaNameFollowsTheEntitySet) {
  Table t;
  t.logical_name = "new_project";
  t.schema_name = "new_Project";
  t.entity_set_name = "new_projects";
  EXPECT_EQ(Str(Parse(WriteEntityDefinition(t, kRoot, {})), "CollectionSchemaName"), "new_Projects");
  t.logical_name = "opportunity";
  t.schema_name = "Opportunity";
  t.entity_set_name = "opportunities";
  EXPECT_EQ(Str(Parse(WriteEntityDefinition(t, kRoot, {})), "CollectionSchemaName"), "Opportunities");
  const Json row = Parse(WriteEntityDefinition(t, kRoot, {}));
  EXPECT_TRUE(row.Find("PrimaryNameAttribute")->is_null());  // no primary name
}

// ---------------------------------------------------------------------------------------------
// Attributes

TEST_F(MetadataWriterTest, AttributesTypesAndCommonFields) {
  const Json doc = Parse(WriteAttributes(account_, kRoot, {}));
  EXPECT_EQ(Str(doc, "@odata.context"),
            std::string(kRoot) + "$metadata#EntityDefinitions(" + G(1).ToString() + ")/Attributes");
  ASSERT_EQ(doc.Find("value")->as_array().size(), account_.columns.size());
  const struct {
    std::string_view column, odata_type, attribute_type, type_name;
  } cases[] = {
      {"accountid", "UniqueIdentifierAttributeMetadata", "Uniqueidentifier", "UniqueidentifierType"},
      {"name", "StringAttributeMetadata", "String", "StringType"},
      {"description", "MemoAttributeMetadata", "Memo", "MemoType"},
      {"numberofemployees", "IntegerAttributeMetadata", "Integer", "IntegerType"},
      {"versionnumber", "BigIntAttributeMetadata", "BigInt", "BigIntType"},
      {"exchangerate", "DecimalAttributeMetadata", "Decimal", "DecimalType"},
      {"new_score", "DoubleAttributeMetadata", "Double", "DoubleType"},
      {"revenue", "MoneyAttributeMetadata", "Money", "MoneyType"},
      {"donotphone", "BooleanAttributeMetadata", "Boolean", "BooleanType"},
      {"industrycode", "PicklistAttributeMetadata", "Picklist", "PicklistType"},
      {"new_tags", "MultiSelectPicklistAttributeMetadata", "Virtual", "MultiSelectPicklistType"},
      {"statecode", "StateAttributeMetadata", "State", "StateType"},
      {"statuscode", "StatusAttributeMetadata", "Status", "StatusType"},
      {"createdon", "DateTimeAttributeMetadata", "DateTime", "DateTimeType"},
      {"primarycontactid", "LookupAttributeMetadata", "Lookup", "LookupType"},
      {"ownerid", "LookupAttributeMetadata", "Owner", "OwnerType"},
  };
  for (const auto& c : cases) {
    const Json* row = Row(doc, c.column);
    ASSERT_NE(row, nullptr) << c.column;
    EXPECT_EQ(Str(*row, "@odata.type"), "#Microsoft.Dynamics.CRM." + std::string(c.odata_type));
    EXPECT_EQ(Str(*row, "AttributeType"), c.attribute_type);
    EXPECT_EQ(row->Find("AttributeTypeName")->Dump(), R"({"Value":")" + std::string(c.type_name) + R"("})");
    EXPECT_EQ(Str(*row, "EntityLogicalName"), "account");
    EXPECT_EQ(Str(*row, "SchemaName"), c.column);
    EXPECT_TRUE(Guid::Parse(Str(*row, "MetadataId")).has_value());
  }
  const Json& name = *Row(doc, "name");
  EXPECT_EQ(name.Find("RequiredLevel")->Dump(), R"({"Value":"ApplicationRequired","CanBeChanged":true,)"
                                                R"("ManagedPropertyLogicalName":"canmodifyrequirementlevelsettings"})");
  EXPECT_EQ(Str(*name.Find("DisplayName")->Find("UserLocalizedLabel"), "Label"), "Account Name");
  EXPECT_TRUE(name.Find("IsPrimaryName")->as_bool());
  EXPECT_FALSE(name.Find("IsPrimaryId")->as_bool());
  EXPECT_TRUE(name.Find("IsValidForCreate")->as_bool());
  EXPECT_EQ(Row(doc, "accountid")->Find("RequiredLevel")->Find("Value")->as_string(), "SystemRequired");
  EXPECT_FALSE(Row(doc, "accountid")->Find("RequiredLevel")->Find("CanBeChanged")->as_bool());
  EXPECT_TRUE(Row(doc, "accountid")->Find("IsPrimaryId")->as_bool());
  EXPECT_FALSE(Row(doc, "accountid")->Find("IsValidForUpdate")->as_bool());
  EXPECT_TRUE(Row(doc, "new_score")->Find("IsCustomAttribute")->as_bool());
  EXPECT_FALSE(Row(doc, "createdon")->Find("IsValidForCreate")->as_bool());
  EXPECT_TRUE(Row(doc, "createdon")->Find("IsValidForRead")->as_bool());
}

TEST_F(MetadataWriterTest, AttributesTypeSpecificFields) {
  const Json doc = Parse(WriteAttributes(account_, kRoot, {}));
  const Json& name = *Row(doc, "name");
  EXPECT_EQ(name.Find("MaxLength")->as_int(), 160);
  EXPECT_EQ(Str(name, "Format"), "Text");
  EXPECT_EQ(Str(*Row(doc, "emailaddress1"), "Format"), "Email");
  EXPECT_EQ(Row(doc, "emailaddress1")->Find("FormatName")->Dump(), R"({"Value":"Email"})");
  EXPECT_EQ(name.Find("Precision"), nullptr);
  EXPECT_EQ(name.Find("Targets"), nullptr);
  EXPECT_EQ(Row(doc, "description")->Find("MaxLength")->as_int(), 2000);

  const Json& employees = *Row(doc, "numberofemployees");
  EXPECT_EQ(employees.Find("MinValue")->as_int(), 0);
  EXPECT_EQ(employees.Find("MaxValue")->as_int(), 1000000);
  EXPECT_EQ(employees.Find("MaxLength"), nullptr);
  EXPECT_EQ(Row(doc, "versionnumber")->Find("MaxValue")->as_int(), INT64_MAX);
  EXPECT_EQ(Row(doc, "versionnumber")->Find("MinValue")->as_int(), INT64_MIN);

  const Json& revenue = *Row(doc, "revenue");
  EXPECT_EQ(revenue.Find("Precision")->as_int(), 2);
  EXPECT_EQ(revenue.Find("MinValue")->as_double(), -922337203685477.0);
  EXPECT_EQ(revenue.Find("MaxValue")->as_double(), 922337203685477.0);
  EXPECT_EQ(Row(doc, "exchangerate")->Find("Precision")->as_int(), 10);
  EXPECT_EQ(Row(doc, "new_score")->Find("MaxValue")->as_double(), 100000000000.0);

  EXPECT_FALSE(Row(doc, "donotphone")->Find("DefaultValue")->as_bool());

  const Json& createdon = *Row(doc, "createdon");
  EXPECT_EQ(createdon.Find("DateTimeBehavior")->Dump(), R"({"Value":"UserLocal"})");
  EXPECT_EQ(Str(createdon, "Format"), "DateAndTime");

  EXPECT_EQ(Row(doc, "primarycontactid")->Find("Targets")->Dump(), R"(["contact"])");
  EXPECT_EQ(Row(doc, "ownerid")->Find("Targets")->Dump(), R"(["systemuser","team"])");
  EXPECT_EQ(Row(doc, "industrycode")->Find("OptionSet"), nullptr);  // only with $expand

  const Json contact = Parse(WriteAttributes(contact_, kRoot, {}));
  const Json& birthdate = *Row(contact, "birthdate");
  EXPECT_EQ(birthdate.Find("DateTimeBehavior")->Dump(), R"({"Value":"DateOnly"})");
  EXPECT_EQ(Str(birthdate, "Format"), "DateOnly");
  EXPECT_EQ(Str(*Row(contact, "parentcustomerid"), "AttributeType"), "Customer");
  EXPECT_EQ(Row(contact, "parentcustomerid")->Find("Targets")->Dump(), R"(["account","contact"])");
}

TEST_F(MetadataWriterTest, AttributesSelect) {
  const Json doc = Parse(WriteAttributes(account_, kRoot, {"LogicalName", "MaxLength"}));
  EXPECT_EQ(Str(doc, "@odata.context"), std::string(kRoot) + "$metadata#EntityDefinitions(" + G(1).ToString() +
                                            ")/Attributes(LogicalName,MaxLength)");
  EXPECT_EQ(Keys(*Row(doc, "name")),
            (std::vector<std::string>{"@odata.type", "MetadataId", "LogicalName", "MaxLength"}));
  // MaxLength only where it applies.
  EXPECT_EQ(Keys(*Row(doc, "revenue")), (std::vector<std::string>{"@odata.type", "MetadataId", "LogicalName"}));

  ExpectQueryError(WriteAttributes(account_, kRoot, {"LogicalName", "Bogus"}).status(),
                   "Could not find a property named 'Bogus' on type "
                   "'Microsoft.Dynamics.CRM.AttributeMetadata'.");
}

TEST_F(MetadataWriterTest, SingleAttribute) {
  const Column& revenue = Col(account_, "revenue");
  const Json all = Parse(WriteAttribute(account_, revenue, kRoot, {}));
  EXPECT_EQ(Str(all, "@odata.context"),
            std::string(kRoot) + "$metadata#EntityDefinitions(" + G(1).ToString() + ")/Attributes/$entity");
  EXPECT_EQ(Str(all, "LogicalName"), "revenue");
  EXPECT_EQ(all.Find("Precision")->as_int(), 2);

  const Json some = Parse(WriteAttribute(account_, revenue, kRoot, {"Precision"}));
  EXPECT_EQ(Str(some, "@odata.context"),
            std::string(kRoot) + "$metadata#EntityDefinitions(" + G(1).ToString() + ")/Attributes(Precision)/$entity");
  EXPECT_EQ(Keys(some), (std::vector<std::string>{"@odata.context", "@odata.type", "MetadataId", "Precision"}));
  ExpectQueryError(WriteAttribute(account_, revenue, kRoot, {"precision"}).status(),
                   "Could not find a property named 'precision' on type "
                   "'Microsoft.Dynamics.CRM.AttributeMetadata'.");
}

TEST_F(MetadataWriterTest, AttributesCast) {
  AttributeQuery q;
  q.cast = "Microsoft.Dynamics.CRM.PicklistAttributeMetadata";
  q.select = {"LogicalName"};
  const Json doc = Parse(WriteAttributesAs(account_, kRoot, q));
  EXPECT_EQ(Str(doc, "@odata.context"),
            std::string(kRoot) + "$metadata#EntityDefinitions(" + G(1).ToString() +
                ")/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata(LogicalName)");
  const auto& rows = doc.Find("value")->as_array();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(Str(rows[0], "LogicalName"), "industrycode");

  q.cast = "LookupAttributeMetadata";  // namespace optional; covers lookup, customer, owner
  q.select = {"LogicalName", "Targets"};
  const Json lookups = Parse(WriteAttributesAs(account_, kRoot, q));
  EXPECT_EQ(lookups.Find("value")->as_array().size(), 2u);

  q.cast = "MoneyAttributeMetadata";
  q.select = {"Precision"};
  const Json money = Parse(WriteAttributesAs(account_, kRoot, q));
  ASSERT_EQ(money.Find("value")->as_array().size(), 1u);
  EXPECT_EQ(money.Find("value")->as_array()[0].Find("Precision")->as_int(), 2);

  // After a cast only that type's properties may be selected.
  q.cast = "PicklistAttributeMetadata";
  q.select = {"MaxLength"};
  ExpectQueryError(WriteAttributesAs(account_, kRoot, q).status(),
                   "Could not find a property named 'MaxLength' on type "
                   "'Microsoft.Dynamics.CRM.PicklistAttributeMetadata'.");
  q.cast = "NoSuchAttributeMetadata";
  q.select = {};
  const Status bad = WriteAttributesAs(account_, kRoot, q).status();
  EXPECT_EQ(bad.error_code(), 0x80060888u);

  q.cast = "StringAttributeMetadata";
  q.expand_option_set = true;
  ExpectQueryError(WriteAttributesAs(account_, kRoot, q).status(),
                   "Could not find a property named 'OptionSet' on type "
                   "'Microsoft.Dynamics.CRM.StringAttributeMetadata'.");
}

TEST_F(MetadataWriterTest, SingleAttributeCast) {
  AttributeQuery q;
  q.cast = "PicklistAttributeMetadata";
  const Json doc = Parse(WriteAttributeAs(account_, Col(account_, "industrycode"), kRoot, q));
  EXPECT_EQ(Str(doc, "@odata.context"), std::string(kRoot) + "$metadata#EntityDefinitions(" + G(1).ToString() +
                                            ")/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata/$entity");
  const Status wrong = WriteAttributeAs(account_, Col(account_, "name"), kRoot, q).status();
  EXPECT_EQ(wrong.code(), Code::kNotFound);
}

TEST_F(MetadataWriterTest, ExpandOptionSet) {
  AttributeQuery q;
  q.cast = "PicklistAttributeMetadata";
  q.select = {"LogicalName"};
  q.expand_option_set = true;
  q.expand_global_option_set = true;
  const Json doc = Parse(WriteAttributeAs(account_, Col(account_, "industrycode"), kRoot, q));
  const Json& set = *doc.Find("OptionSet");
  EXPECT_EQ(Str(set, "Name"), "industrycode");
  EXPECT_EQ(Str(set, "MetadataId"), G(0x51).ToString());
  EXPECT_TRUE(set.Find("IsGlobal")->as_bool());
  EXPECT_EQ(Str(set, "OptionSetType"), "Picklist");
  const auto& options = set.Find("Options")->as_array();
  ASSERT_EQ(options.size(), 2u);
  EXPECT_EQ(options[1].Find("Value")->as_int(), 2);
  EXPECT_EQ(Str(*options[1].Find("Label")->Find("UserLocalizedLabel"), "Label"), "Agriculture & Farming");
  EXPECT_EQ(doc.Find("GlobalOptionSet")->Dump(), set.Dump());

  q.cast = "StateAttributeMetadata";
  q.expand_global_option_set = false;
  const Json state = Parse(WriteAttributeAs(account_, Col(account_, "statecode"), kRoot, q));
  const auto& states = state.Find("OptionSet")->Find("Options")->as_array();
  ASSERT_EQ(states.size(), 2u);
  EXPECT_EQ(Str(states[1], "@odata.type"), "#Microsoft.Dynamics.CRM.StateOptionMetadata");
  EXPECT_EQ(states[1].Find("DefaultStatus")->as_int(), 2);
  EXPECT_EQ(Str(*state.Find("OptionSet"), "OptionSetType"), "State");

  q.cast = "StatusAttributeMetadata";
  const Json status = Parse(WriteAttributeAs(account_, Col(account_, "statuscode"), kRoot, q));
  const auto& statuses = status.Find("OptionSet")->Find("Options")->as_array();
  EXPECT_EQ(Str(statuses[1], "@odata.type"), "#Microsoft.Dynamics.CRM.StatusOptionMetadata");
  EXPECT_EQ(statuses[1].Find("State")->as_int(), 1);

  q.cast = "BooleanAttributeMetadata";
  q.expand_global_option_set = true;
  const Json boolean = Parse(WriteAttributeAs(account_, Col(account_, "donotphone"), kRoot, q));
  const Json& two = *boolean.Find("OptionSet");
  EXPECT_EQ(Str(two, "OptionSetType"), "Boolean");
  EXPECT_EQ(two.Find("TrueOption")->Find("Value")->as_int(), 1);
  EXPECT_EQ(Str(*two.Find("TrueOption")->Find("Label")->Find("UserLocalizedLabel"), "Label"), "Do Not Allow");
  EXPECT_EQ(Str(*two.Find("FalseOption")->Find("Label")->Find("UserLocalizedLabel"), "Label"), "Allow");
  EXPECT_TRUE(boolean.Find("GlobalOptionSet")->is_null());  // a local option set
}

TEST_F(MetadataWriterTest, ExpandOptionSetWithoutCastOnlyOnChoiceLikeColumns) {
  AttributeQuery q;
  q.select = {"LogicalName"};
  q.expand_option_set = true;
  const Json doc = Parse(WriteAttributesAs(account_, kRoot, q));
  EXPECT_NE(Row(doc, "new_tags")->Find("OptionSet"), nullptr);
  EXPECT_EQ(Row(doc, "name")->Find("OptionSet"), nullptr);
}

// ---------------------------------------------------------------------------------------------
// Keys

TEST_F(MetadataWriterTest, Keys) {
  const Json doc = Parse(WriteKeys(account_, kRoot));
  EXPECT_EQ(Str(doc, "@odata.context"),
            std::string(kRoot) + "$metadata#EntityDefinitions(" + G(1).ToString() + ")/Keys");
  const auto& keys = doc.Find("value")->as_array();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].Dump(), R"({"MetadataId":")" + G(0x60).ToString() +
                                R"(","LogicalName":"accountnumber_key","SchemaName":"AccountNumberKey",)"
                                R"("KeyAttributes":["accountnumber"],"EntityLogicalName":"account",)"
                                R"("EntityKeyIndexStatus":"Active","IsCustomizable":{"Value":true,"CanBeChanged":true,)"
                                R"("ManagedPropertyLogicalName":"iscustomizable"}})");
  EXPECT_EQ(Parse(WriteKeys(contact_, kRoot)).Find("value")->Dump(), "[]");
}

}  // namespace
}  // namespace tributary::odata

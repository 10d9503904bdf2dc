#include <gtest/gtest.h>

#include "tributary/catalog/schema.h"

namespace tributary::catalog {
namespace {

CatalogBuilder Standard() {
  CatalogBuilder b;
  auto doc = ParseSchemaDocument(StandardSchemaText());
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  Status s = b.Apply(*doc, true);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return b;
}

TEST(CatalogTest, StandardSchemaBuildsWithDataverseNames) {
  auto cat = Standard().Build(1);
  ASSERT_TRUE(cat.ok()) << cat.status().ToString();
  const Table* account = (*cat)->FindBySetName("Accounts");
  ASSERT_NE(account, nullptr);
  EXPECT_EQ(account->logical_name, "account");
  EXPECT_EQ(account->object_type_code, 1);
  EXPECT_EQ(account->primary_id, "accountid");
  EXPECT_EQ(account->primary_name, "name");
  for (const char* sys : {"createdon", "modifiedon", "createdby", "ownerid", "owningbusinessunit", "statecode",
                          "statuscode", "versionnumber", "transactioncurrencyid", "exchangerate", "revenue_base"})
    EXPECT_NE(account->FindColumn(sys), nullptr) << sys;
  EXPECT_NE(account->FindLookupProperty("_primarycontactid_value"), nullptr);
  const NavProperty* pc = account->FindNav("primarycontactid");
  ASSERT_NE(pc, nullptr);
  EXPECT_EQ(pc->kind, NavProperty::Kind::kSingle);
  EXPECT_EQ(pc->target->logical_name, "contact");
  const NavProperty* contacts = account->FindNav("contact_customer_accounts");
  ASSERT_NE(contacts, nullptr);
  EXPECT_EQ(contacts->kind, NavProperty::Kind::kCollection);
  const Table* contact = (*cat)->FindTable("contact");
  ASSERT_NE(contact->FindNav("parentcustomerid_account"), nullptr);
  ASSERT_NE(contact->FindNav("parentcustomerid_contact"), nullptr);
  EXPECT_EQ(contact->FindColumn("parentcustomerid")->type, ColumnType::kCustomer);
  const Table* user = (*cat)->FindTable("systemuser");
  EXPECT_NE(user->FindNav("systemuserroles_association"), nullptr);
  EXPECT_NE(user->FindNav("lk_accountbase_createdby"), nullptr);
  EXPECT_EQ(account->FindNav("ownerid")->kind, NavProperty::Kind::kPolymorphicOwner);
}

TEST(CatalogTest, CustomSchemaAddsTablesKeysAndRelationships) {
  CatalogBuilder b = Standard();
  auto doc = ParseSchemaDocument(R"(
version: 1
publisher: { prefix: new }
choices:
  - { name: new_priority, options: [ { value: 1, label: Low }, { value: 2, label: High } ] }
tables:
  - name: new_project
    columns:
      - { name: new_code, type: string, maxlength: 20 }
      - { name: new_priority, type: choice, choices: new_priority }
      - { name: new_accountid, type: lookup, target: account, ondelete: cascade }
      - { name: new_budget, type: money }
    keys:
      - { name: new_code_key, columns: [ new_code ] }
  - name: account
    columns:
      - { name: new_tier, type: integer }
relationships:
  - { name: new_project_contact, type: manytomany, entity1: new_project, entity2: contact }
)");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  ASSERT_TRUE(b.Apply(*doc).ok());
  auto cat = b.Build(2);
  ASSERT_TRUE(cat.ok()) << cat.status().ToString();
  const Table* p = (*cat)->FindBySetName("new_projects");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->primary_name, "new_name");
  EXPECT_TRUE(p->is_custom);
  EXPECT_GE(p->object_type_code, 10000);
  ASSERT_NE(p->FindKey("new_code_key"), nullptr);
  EXPECT_NE((*cat)->FindTable("account")->FindColumn("new_tier"), nullptr);
  EXPECT_NE((*cat)->FindTable("account")->FindNav("account_new_project_new_accountid"), nullptr);
  EXPECT_EQ(p->FindNav("new_project_contact")->kind, NavProperty::Kind::kManyToMany);
  EXPECT_EQ((*cat)->FindRelationship("account_new_project_new_accountid")->on_delete, CascadeDelete::kCascade);
}

TEST(CatalogTest, InvalidDocumentsAreRejectedWithPaths) {
  CatalogBuilder b = Standard();
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"version: 1\ntables: [ { name: new_x } ]", "publisher.prefix"},
      {"version: 1\npublisher: { prefix: new }\ntables: [ { name: foo_x } ]", "must start with the prefix"},
      {"version: 1\npublisher: { prefix: new }\ntables: [ { name: new_x, columns: [ { name: new_a, type: strng } ] } ]",
       "tables[0].columns[0].type: unknown column type 'strng'"},
      {"version: 1\npublisher: { prefix: new }\ntables: [ { name: new_x, columns: [ { name: new_a, type: lookup, "
       "target: nope } ] } ]",
       "no table named 'nope'"},
      {"version: 1\npublisher: { prefix: new }\ntables: [ { name: new_x, keys: [ { name: new_k, columns: [ new_missing "
       "] } ] } ]",
       "has no column 'new_missing'"},
      {"version: 2\ntables: []", "version: must be 1"},
      {"version: 1\npublisher: { prefix: new }\ntables: [ { name: account, columns: [ { name: name, type: integer } ] "
       "} ]",
       "exists with type"},
      {"{ not yaml", "not valid YAML"},
  };
  for (const auto& c : cases) {
    auto doc = ParseSchemaDocument(c.text);
    Status s = doc.ok() ? b.Apply(*doc) : doc.status();
    EXPECT_FALSE(s.ok()) << c.text;
    EXPECT_NE(s.message().find(c.expect), std::string::npos) << s.message();
  }
  // Nothing of the failed documents was merged.
  auto cat = b.Build(1);
  ASSERT_TRUE(cat.ok());
  EXPECT_EQ((*cat)->FindTable("new_x"), nullptr);
}

TEST(CatalogTest, SchemaDocumentsRoundTripThroughJson) {
  auto doc = ParseSchemaDocument(R"(
version: 1
publisher: { prefix: new }
choices: [ { name: new_size, options: [ { value: 1, label: "S \"small\"" } ] } ]
tables:
  - name: new_box
    schemaname: new_Box
    primaryname: { name: new_label, maxlength: 50 }
    columns:
      - { name: new_w, type: decimal, precision: 3, min: 0, max: 10.5, indexed: true }
      - { name: new_ok, type: boolean, default: true, truelabel: Fine }
      - { name: new_c, type: customer, relationships: { account: new_a, contact: new_b }, ondelete: cascade }
    keys: [ { name: new_k, columns: [ new_label ] } ]
relationships: [ { name: new_box_contact, type: manytomany, entity1: new_box, entity2: contact } ]
)");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  auto again = ParseSchemaDocument(SchemaDocToJson(*doc));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(SchemaDocToJson(*again), SchemaDocToJson(*doc));
  const auto& t = again->tables[0];
  EXPECT_EQ(t.schemaname, "new_Box");
  EXPECT_EQ(t.primaryname->maxlength, 50);
  EXPECT_EQ(t.columns[0].max, 10.5);
  EXPECT_TRUE(t.columns[0].indexed);
  EXPECT_EQ(t.columns[1].default_bool, true);
  EXPECT_EQ(t.columns[2].relationships.at("contact"), "new_b");
  EXPECT_EQ(again->choices[0].options[0].label, "S \"small\"");
  EXPECT_EQ(again->relationships[0].entity2, "contact");
}

TEST(CatalogTest, EntitySetNamesFollowDataverseRules) {
  EXPECT_EQ(DefaultEntitySetName("account"), "accounts");
  EXPECT_EQ(DefaultEntitySetName("opportunity"), "opportunities");
  EXPECT_EQ(DefaultEntitySetName("new_city"), "new_cities");
  EXPECT_EQ(DefaultEntitySetName("new_class"), "new_classes");
  EXPECT_EQ(DefaultEntitySetName("new_day"), "new_days");
  EXPECT_EQ(NameGuid("table:account"), NameGuid("table:account"));
  EXPECT_NE(NameGuid("table:account"), NameGuid("table:contact"));
}

}  // namespace
}  // namespace tributary::catalog

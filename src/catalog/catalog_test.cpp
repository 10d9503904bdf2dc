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

// A builder with the standard schema and a small custom schema: a project table with a key, a
// lookup to it from a task table and from account, a global choice and an N:N relationship.
CatalogBuilder WithProjects() {
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
      - { name: new_stage, type: choice, options: [ { value: 1, label: Plan } ] }
      - { name: new_flag, type: boolean }
    keys:
      - { name: new_code_key, columns: [ new_code ] }
  - name: new_task
    columns:
      - { name: new_projectid, type: lookup, target: new_project, relationship: new_project_tasks }
  - name: account
    columns:
      - { name: new_mainprojectid, type: lookup, target: new_project }
relationships:
  - { name: new_project_contact, type: manytomany, entity1: new_project, entity2: contact }
)");
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  Status s = b.Apply(*doc);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return b;
}

Status ApplyText(CatalogBuilder& b, std::string_view text) {
  auto doc = ParseSchemaDocument(text);
  if (!doc.ok()) return doc.status();
  return b.Apply(*doc);
}

CatalogPtr BuildOk(const CatalogBuilder& b) {
  auto cat = b.Build(1);
  EXPECT_TRUE(cat.ok()) << cat.status().ToString();
  return cat.ok() ? *cat : nullptr;
}

TEST(CatalogTest, DropAndUpdateSectionsRoundTripThroughJson) {
  auto doc = ParseSchemaDocument(R"(
version: 1
publisher: { prefix: new }
drop:
  tables: [ new_old ]
  columns: [ new_project.new_code, account.new_tier ]
  keys: [ new_project.new_code_key ]
  relationships: [ new_project_contact ]
  choices: [ new_size ]
update:
  tables:
    - name: new_project
      displayname: Project
      description: ""
      changetracking: false
      columns:
        - { name: new_code, maxlength: 200, required: recommended, min: -1.5, indexed: true }
        - { name: new_stage, options: [ { value: 1, label: Plan }, { value: 3, label: Ship } ] }
        - { name: new_flag, default: true, truelabel: Sure }
  choices:
    - { name: new_priority, displayname: Priority, options: [ { value: 1, label: Low } ] }
  relationships:
    - { name: new_project_tasks, ondelete: cascade }
)");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  std::string json = SchemaDocToJson(*doc);
  auto again = ParseSchemaDocument(json);
  ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << json;
  EXPECT_EQ(SchemaDocToJson(*again), json);
  EXPECT_EQ(again->drop.columns[1].table, "account");
  EXPECT_EQ(again->drop.columns[1].name, "new_tier");
  EXPECT_EQ(again->drop.keys[0].name, "new_code_key");
  const TableUpdate& tu = again->update.tables[0];
  EXPECT_EQ(tu.displayname, "Project");
  EXPECT_EQ(tu.description, "");  // present and empty: clears the description
  EXPECT_FALSE(tu.displaycollectionname.has_value());
  EXPECT_EQ(tu.changetracking, false);
  EXPECT_EQ(tu.columns[0].maxlength, 200);
  EXPECT_EQ(tu.columns[0].min, -1.5);
  EXPECT_EQ(tu.columns[0].indexed, true);
  EXPECT_FALSE(tu.columns[0].displayname.has_value());
  EXPECT_EQ(tu.columns[1].options->size(), 2u);
  EXPECT_EQ(tu.columns[2].truelabel, "Sure");
  EXPECT_EQ(again->update.relationships[0].ondelete, "cascade");

  for (const char* bad : {"version: 1\ndrop: { columns: [ nodot ] }", "version: 1\ndrop: { tables: new_x }",
                          "version: 1\ndrop: { views: [ a ] }",
                          "version: 1\nupdate: { tables: [ { name: a, columns: [ { name: b, type: memo } ] } ] }"}) {
    EXPECT_FALSE(ParseSchemaDocument(bad).ok()) << bad;
  }
}

TEST(CatalogTest, DroppingATableNeedsItsDependentsDroppedFirst) {
  CatalogBuilder b = WithProjects();
  Status s = ApplyText(b, "version: 1\npublisher: { prefix: new }\ndrop: { tables: [ new_project ] }");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.error_code(), kErrComponentInUse);
  for (const char* dep : {"new_task.new_projectid (relationship new_project_tasks)", "account.new_mainprojectid",
                          "N:N relationship new_project_contact", "referenced by 3 other components"})
    EXPECT_NE(s.message().find(dep), std::string::npos) << s.message();
  ASSERT_NE(BuildOk(b)->FindTable("new_project"), nullptr);  // nothing changed

  // Dropping the dependents in the same document (a relationship drop takes its lookup column).
  s = ApplyText(b, R"(
version: 1
publisher: { prefix: new }
drop:
  tables: [ new_project ]
  columns: [ account.new_mainprojectid ]
  relationships: [ new_project_tasks, new_project_contact ]
)");
  ASSERT_TRUE(s.ok()) << s.ToString();
  CatalogPtr cat = BuildOk(b);
  EXPECT_EQ(cat->FindTable("new_project"), nullptr);
  EXPECT_EQ(cat->FindTable("new_project_contact"), nullptr);  // its intersect table
  EXPECT_EQ(cat->FindRelationship("new_project_tasks"), nullptr);
  EXPECT_EQ(cat->FindTable("new_task")->FindColumn("new_projectid"), nullptr);
  EXPECT_EQ(cat->FindTable("account")->FindColumn("new_mainprojectid"), nullptr);
  EXPECT_EQ(cat->FindTable("account")->FindNav("new_project_account_new_mainprojectid"), nullptr);
  EXPECT_NE(cat->FindTable("new_task"), nullptr);
  // Drops are idempotent: dropping what is gone changes nothing and is no error.
  EXPECT_TRUE(ApplyText(b, "version: 1\npublisher: { prefix: new }\ndrop: { tables: [ new_project ] }").ok());
}

TEST(CatalogTest, SystemComponentsCannotBeDropped) {
  CatalogBuilder b = WithProjects();
  for (const char* drop :
       {"tables: [ account ]", "columns: [ account.name ]", "columns: [ new_project.createdon ]",
        "relationships: [ contact_customer_accounts ]", "relationships: [ lk_accountbase_createdby ]",
        "relationships: [ systemuserroles_association ]"}) {
    Status s = ApplyText(b, std::string("version: 1\npublisher: { prefix: new }\ndrop: { ") + drop + " }");
    ASSERT_FALSE(s.ok()) << drop;
    EXPECT_EQ(s.code(), Code::kPermissionDenied) << drop << ": " << s.message();
    EXPECT_EQ(s.error_code(), kErrSystemComponent) << drop;
    EXPECT_NE(s.message().find("system component"), std::string::npos) << s.message();
  }
  Status s = ApplyText(b, "version: 1\npublisher: { prefix: new }\ndrop: { columns: [ new_project.new_name ] }");
  EXPECT_NE(s.message().find("primary name column"), std::string::npos) << s.message();
  s = ApplyText(b, "version: 1\npublisher: { prefix: new }\ndrop: { tables: [ new_project_contact ] }");
  EXPECT_NE(s.message().find("intersect table"), std::string::npos) << s.message();
  ASSERT_NE(BuildOk(b)->FindTable("account")->FindColumn("name"), nullptr);
}

TEST(CatalogTest, ColumnsKeysAndChoicesDropWithTheirDependencies) {
  CatalogBuilder b = WithProjects();
  // A column in a key needs the key dropped too.
  Status s = ApplyText(b, "version: 1\npublisher: { prefix: new }\ndrop: { columns: [ new_project.new_code ] }");
  EXPECT_EQ(s.error_code(), kErrComponentInUse) << s.message();
  EXPECT_NE(s.message().find("alternate key new_project.new_code_key"), std::string::npos) << s.message();
  // A global choice in use by a column.
  s = ApplyText(b, "version: 1\npublisher: { prefix: new }\ndrop: { choices: [ new_priority ] }");
  EXPECT_EQ(s.error_code(), kErrOptionSetInUse) << s.message();
  EXPECT_NE(s.message().find("new_project.new_priority"), std::string::npos) << s.message();

  s = ApplyText(b, R"(
version: 1
publisher: { prefix: new }
drop:
  columns: [ new_project.new_code, new_project.new_priority ]
  keys: [ new_project.new_code_key ]
  choices: [ new_priority ]
)");
  ASSERT_TRUE(s.ok()) << s.ToString();
  CatalogPtr cat = BuildOk(b);
  const Table* p = cat->FindTable("new_project");
  EXPECT_EQ(p->FindColumn("new_code"), nullptr);
  EXPECT_EQ(p->FindKey("new_code_key"), nullptr);
  EXPECT_EQ(cat->FindGlobalChoice("new_priority"), nullptr);
  EXPECT_NE(p->FindColumn("new_stage"), nullptr);

  // A dropped component cannot come back in the same document, but can in the next one, as new.
  s = ApplyText(b, R"(
version: 1
publisher: { prefix: new }
drop: { columns: [ new_project.new_stage ] }
tables: [ { name: new_project, columns: [ { name: new_stage, type: integer } ] } ]
)");
  EXPECT_NE(s.message().find("dropped by this document"), std::string::npos) << s.message();
  ASSERT_TRUE(
      ApplyText(b, "version: 1\npublisher: { prefix: new }\ndrop: { columns: [ new_project.new_stage ] }").ok());
  ASSERT_TRUE(ApplyText(b,
                        "version: 1\npublisher: { prefix: new }\ntables: [ { name: new_project, columns: [ { "
                        "name: new_stage, type: integer } ] } ]")
                  .ok());
  EXPECT_EQ(BuildOk(b)->FindTable("new_project")->FindColumn("new_stage")->type, ColumnType::kInteger);
}

TEST(CatalogTest, UpdatesChangeLabelsLimitsOptionsAndCascades) {
  CatalogBuilder b = WithProjects();
  Status s = ApplyText(b, R"(
version: 1
publisher: { prefix: new }
update:
  tables:
    - name: new_project
      displayname: Venture
      displaycollectionname: Ventures
      description: Long-running work
      changetracking: true
      columns:
        - { name: new_code, displayname: Reference, maxlength: 400, required: applicationrequired, indexed: true }
        - { name: new_name, maxlength: 300 }
        - { name: new_stage, options: [ { value: 1, label: Planning }, { value: 2, label: Done } ] }
        - { name: new_flag, truelabel: Sure, falselabel: Nope, default: true }
    - name: account
      displayname: Company
      columns: [ { name: name, displayname: Company name } ]
  choices:
    - { name: new_priority, displayname: Urgency, options: [ { value: 2, label: High }, { value: 3, label: Critical } ] }
  relationships:
    - { name: new_project_tasks, ondelete: restrict }
)");
  ASSERT_TRUE(s.ok()) << s.ToString();
  CatalogPtr cat = BuildOk(b);
  const Table* p = cat->FindTable("new_project");
  EXPECT_EQ(p->display_name, "Venture");
  EXPECT_EQ(p->display_collection_name, "Ventures");
  EXPECT_EQ(p->description, "Long-running work");
  EXPECT_TRUE(p->change_tracking);
  const Column* code = p->FindColumn("new_code");
  EXPECT_EQ(code->display_name, "Reference");
  EXPECT_EQ(code->max_length, 400);
  EXPECT_EQ(code->required, RequiredLevel::kApplicationRequired);
  EXPECT_TRUE(code->indexed);
  EXPECT_EQ(code->type, ColumnType::kString);
  EXPECT_EQ(p->FindColumn("new_name")->max_length, 300);
  EXPECT_EQ(p->FindColumn("new_stage")->options->Find(2)->label, "Done");
  EXPECT_EQ(p->FindColumn("new_flag")->options->Find(1)->label, "Sure");
  EXPECT_EQ(p->FindColumn("new_flag")->default_bool, true);
  EXPECT_EQ(cat->FindTable("account")->display_name, "Company");
  EXPECT_EQ(cat->FindTable("account")->FindColumn("name")->display_name, "Company name");
  EXPECT_EQ(cat->FindGlobalChoice("new_priority")->options.size(), 2u);
  EXPECT_EQ(p->FindColumn("new_priority")->options->Find(3)->label, "Critical");
  EXPECT_EQ(p->FindColumn("new_priority")->options->Find(1), nullptr);
  EXPECT_EQ(cat->FindRelationship("new_project_tasks")->on_delete, CascadeDelete::kRestrict);

  struct Case {
    const char* update;
    const char* expect;
  } cases[] = {
      {"tables: [ { name: new_nope, displayname: X } ]", "no table named 'new_nope'"},
      {"tables: [ { name: new_project, columns: [ { name: createdon, displayname: X } ] } ]", "system column"},
      {"tables: [ { name: new_project, columns: [ { name: new_nope, displayname: X } ] } ]", "has no column"},
      {"tables: [ { name: new_project, columns: [ { name: new_flag, maxlength: 5 } ] } ]",
       "maxlength: applies to string and memo columns only"},
      {"tables: [ { name: new_project, columns: [ { name: new_code, maxlength: 5000 } ] } ]", "must be 1–4000"},
      {"tables: [ { name: new_project, columns: [ { name: new_priority, options: [ { value: 1, label: A } ] } ] } ]",
       "uses the global choice 'new_priority'"},
      {"tables: [ { name: new_project, columns: [ { name: new_stage, options: [ { value: 1, label: A }, { value: 1, "
       "label: B } ] } ] } ]",
       "the value 1 is used twice"},
      {"tables: [ { name: new_project, columns: [ { name: new_code, required: always } ] } ]",
       "update.tables[0].columns[0].required"},
      {"choices: [ { name: new_priority, options: [] } ]", "a choice needs options"},
      {"relationships: [ { name: new_project_tasks, ondelete: sometimes } ]",
       "must be removelink, cascade or restrict"},
      {"relationships: [ { name: new_project_contact, ondelete: cascade } ]", "N:N"},
      {"relationships: [ { name: lk_accountbase_createdby, ondelete: cascade } ]", "system relationship"},
  };
  for (const auto& c : cases) {
    Status bad = ApplyText(b, std::string("version: 1\npublisher: { prefix: new }\nupdate: { ") + c.update + " }");
    EXPECT_FALSE(bad.ok()) << c.update;
    EXPECT_NE(bad.message().find(c.expect), std::string::npos) << c.update << ": " << bad.message();
  }
  EXPECT_EQ(BuildOk(b)->FindTable("new_project")->FindColumn("new_code")->max_length, 400);  // unchanged
}

TEST(CatalogTest, ReplayingTheLogGivesTheSameCatalog) {
  // Documents as the environment stores them (written back as JSON), replayed in order.
  const char* texts[] = {
      "version: 1\npublisher: { prefix: new }\ntables: [ { name: new_a }, { name: new_b }, { name: new_c, columns: [ { "
      "name: new_bid, type: lookup, target: new_b } ] } ]",
      "version: 1\npublisher: { prefix: new }\nupdate: { tables: [ { name: new_b, displayname: Bee, columns: [ { name: "
      "new_name, maxlength: 20 } ] } ] }",
      "version: 1\npublisher: { prefix: new }\ndrop: { tables: [ new_a ], columns: [ new_c.new_bid ] }",
      "version: 1\npublisher: { prefix: new }\ntables: [ { name: new_d } ]",
  };
  CatalogBuilder live = Standard();
  std::vector<std::string> log;
  for (const char* t : texts) {
    auto doc = ParseSchemaDocument(t);
    ASSERT_TRUE(doc.ok()) << doc.status().ToString();
    ASSERT_TRUE(live.Apply(*doc).ok()) << t;
    log.push_back(SchemaDocToJson(*doc));
  }
  CatalogBuilder replayed = Standard();
  for (const auto& j : log) {
    auto doc = ParseSchemaDocument(j);
    ASSERT_TRUE(doc.ok()) << doc.status().ToString();
    ASSERT_TRUE(replayed.Apply(*doc).ok()) << j;
  }
  CatalogPtr a = BuildOk(live), b = BuildOk(replayed);
  ASSERT_EQ(a->tables().size(), b->tables().size());
  for (size_t i = 0; i < a->tables().size(); ++i) {
    const Table& x = *a->tables()[i];
    const Table& y = *b->tables()[i];
    EXPECT_EQ(x.logical_name, y.logical_name);
    EXPECT_EQ(x.display_name, y.display_name);
    EXPECT_EQ(x.object_type_code, y.object_type_code) << x.logical_name;
    ASSERT_EQ(x.columns.size(), y.columns.size()) << x.logical_name;
    for (size_t c = 0; c < x.columns.size(); ++c) {
      EXPECT_EQ(x.columns[c]->logical_name, y.columns[c]->logical_name);
      EXPECT_EQ(x.columns[c]->max_length, y.columns[c]->max_length);
    }
  }
  EXPECT_EQ(a->relationships().size(), b->relationships().size());
  // Object type codes are not reused or shifted by a drop: new_b keeps its code, new_d gets a new one.
  EXPECT_EQ(a->FindTable("new_a"), nullptr);
  EXPECT_EQ(a->FindTable("new_b")->object_type_code, 10001);
  EXPECT_EQ(a->FindTable("new_c")->object_type_code, 10002);
  EXPECT_EQ(a->FindTable("new_d")->object_type_code, 10003);
  EXPECT_EQ(a->FindTable("new_b")->display_name, "Bee");
  EXPECT_EQ(a->FindTable("new_b")->FindColumn("new_name")->max_length, 20);
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

// Tests of the metadata-update conversions: a PUT body (often a GET result sent back with a few
// edits) becomes an `update` holding only what differs; names and types cannot change; the option
// value actions become whole option lists.

#include "metadata_input.h"

#include <gtest/gtest.h>

namespace tributary::odata {
namespace {

catalog::CatalogPtr TestCatalog() {
  catalog::CatalogBuilder b;
  auto standard = catalog::ParseSchemaDocument(catalog::StandardSchemaText());
  EXPECT_TRUE(standard.ok());
  EXPECT_TRUE(b.Apply(*standard, true).ok());
  auto doc = catalog::ParseSchemaDocument(R"(
version: 1
publisher: { prefix: new }
choices: [ { name: new_size, displayname: Size, options: [ { value: 1, label: S }, { value: 5, label: L } ] } ]
tables:
  - name: new_box
    displayname: Box
    columns:
      - { name: new_code, type: string, maxlength: 20, displayname: Code }
      - { name: new_size, type: choice, choices: new_size }
      - { name: new_stage, type: choice, options: [ { value: 1, label: Plan } ] }
      - { name: new_on, type: datetime, behavior: dateonly }
)");
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  Status s = b.Apply(*doc);
  EXPECT_TRUE(s.ok()) << s.ToString();
  auto cat = b.Build(1);
  EXPECT_TRUE(cat.ok());
  return *cat;
}

Json Parse(std::string_view text) {
  auto j = ParseJson(text);
  EXPECT_TRUE(j.ok()) << text;
  return j.ok() ? *j : Json();
}

TEST(MetadataInputTest, AnEntityPutKeepsOnlyWhatChanged) {
  auto cat = TestCatalog();
  const catalog::Table& box = *cat->FindTable("new_box");
  // The GET answer sent back unchanged: nothing to do.
  auto same = EntityUpdateToSchema(box, Parse(R"({"LogicalName":"new_box","SchemaName":"new_box",
      "EntitySetName":"new_boxes","OwnershipType":"UserOwned","ChangeTrackingEnabled":false,
      "DisplayName":{"LocalizedLabels":[{"Label":"Box","LanguageCode":1033}],"UserLocalizedLabel":{"Label":"Box"}},
      "Description":{"LocalizedLabels":[],"UserLocalizedLabel":null}})"),
                                   false);
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_TRUE(same->update.empty());
  // The edited LocalizedLabels count, not the stale UserLocalizedLabel.
  auto edited = EntityUpdateToSchema(box, Parse(R"({"DisplayName":{"LocalizedLabels":[
      {"Label":"Crate","LanguageCode":1033}],"UserLocalizedLabel":{"Label":"Box"}},"ChangeTrackingEnabled":true})"),
                                     false);
  ASSERT_TRUE(edited.ok());
  ASSERT_EQ(edited->update.tables.size(), 1u);
  EXPECT_EQ(edited->update.tables[0].displayname, "Crate");
  EXPECT_EQ(edited->update.tables[0].changetracking, true);
  EXPECT_FALSE(edited->update.tables[0].description.has_value());
  // Merging labels of another language leaves ours; without merging, the one label replaces it.
  std::string french = R"({"DisplayName":{"LocalizedLabels":[{"Label":"Boîte","LanguageCode":1036}]}})";
  EXPECT_TRUE(EntityUpdateToSchema(box, Parse(french), true)->update.empty());
  EXPECT_EQ(EntityUpdateToSchema(box, Parse(french), false)->update.tables[0].displayname, "Boîte");
  // Names cannot change.
  for (const char* body : {R"({"LogicalName":"new_crate"})", R"({"SchemaName":"new_Crate"})",
                           R"({"EntitySetName":"crates"})", R"({"OwnershipType":"OrganizationOwned"})"}) {
    auto r = EntityUpdateToSchema(box, Parse(body), false);
    EXPECT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().error_code(), err::kPayloadError) << body;
  }
  EXPECT_TRUE(EntityUpdateToSchema(box, Parse(R"({"SchemaName":"NEW_BOX"})"), false)->update.empty());
}

TEST(MetadataInputTest, AnAttributePutKeepsOnlyWhatChangedAndNeverRetypes) {
  auto cat = TestCatalog();
  const catalog::Table& box = *cat->FindTable("new_box");
  const catalog::Column& code = *box.FindColumn("new_code");
  auto r = AttributeUpdateToSchema(box, code, "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                                   Parse(R"({"@odata.type":"#Microsoft.Dynamics.CRM.StringAttributeMetadata",
      "LogicalName":"new_code","MaxLength":200,"FormatName":{"Value":"Text"},
      "RequiredLevel":{"Value":"None"},"DisplayName":{"LocalizedLabels":[{"Label":"Code","LanguageCode":1033}]}})"),
                                   false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->update.tables.size(), 1u);
  const catalog::ColumnUpdate& u = r->update.tables[0].columns[0];
  EXPECT_EQ(u.maxlength, 200);
  EXPECT_FALSE(u.displayname.has_value());
  EXPECT_FALSE(u.required.has_value());
  EXPECT_FALSE(u.format.has_value());

  EXPECT_FALSE(
      AttributeUpdateToSchema(box, code, "Microsoft.Dynamics.CRM.MemoAttributeMetadata", Parse("{}"), false).ok());
  EXPECT_FALSE(AttributeUpdateToSchema(
                   box, code, "", Parse(R"({"@odata.type":"Microsoft.Dynamics.CRM.IntegerAttributeMetadata"})"), false)
                   .ok());
  EXPECT_FALSE(
      AttributeUpdateToSchema(box, code, "", Parse(R"({"RequiredLevel":{"Value":"SystemRequired"}})"), false).ok());
  auto behavior = AttributeUpdateToSchema(box, *box.FindColumn("new_on"), "",
                                          Parse(R"({"DateTimeBehavior":{"Value":"UserLocal"}})"), false);
  ASSERT_FALSE(behavior.ok());
  EXPECT_NE(behavior.status().message().find("cannot be changed"), std::string::npos);

  // Local options: the whole list when it differs; a global choice's column ignores OptionSet.
  auto stage =
      AttributeUpdateToSchema(box, *box.FindColumn("new_stage"), "",
                              Parse(R"({"OptionSet":{"Options":[{"Value":1,"Label":{"LocalizedLabels":[]}},{"Value":2,
      "Label":{"LocalizedLabels":[{"Label":"Done","LanguageCode":1033}]}}]}})"),
                              true);
  ASSERT_TRUE(stage.ok());
  const auto& options = *stage->update.tables[0].columns[0].options;
  ASSERT_EQ(options.size(), 2u);
  EXPECT_EQ(options[0].label, "Plan");  // no label given, merging: kept
  EXPECT_EQ(options[1].label, "Done");
  auto global = AttributeUpdateToSchema(box, *box.FindColumn("new_size"), "",
                                        Parse(R"({"OptionSet":{"Options":[{"Value":9}]}})"), false);
  ASSERT_TRUE(global.ok());
  EXPECT_TRUE(global->update.empty());
}

TEST(MetadataInputTest, AuditSettingsAreReadAsManagedPropertiesOrBooleans) {
  auto cat = TestCatalog();
  const catalog::Table& box = *cat->FindTable("new_box");
  const catalog::Table& account = *cat->FindTable("account");
  auto same = EntityUpdateToSchema(account, Parse(R"({"IsAuditEnabled":{"Value":true,"CanBeChanged":true}})"), false);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->update.empty());  // account is audited already
  auto on = EntityUpdateToSchema(box, Parse(R"({"IsAuditEnabled":{"Value":true}})"), false);
  ASSERT_TRUE(on.ok());
  ASSERT_EQ(on->update.tables.size(), 1u);
  EXPECT_EQ(on->update.tables[0].audit, std::optional<bool>(true));
  auto off = AttributeUpdateToSchema(box, *box.FindColumn("new_code"), "", Parse(R"({"IsAuditEnabled":false})"), false);
  ASSERT_TRUE(off.ok());
  ASSERT_EQ(off->update.tables.size(), 1u);
  EXPECT_EQ(off->update.tables[0].columns[0].audit, std::optional<bool>(false));
  auto created = EntityMetadataToSchema(Parse(R"({"SchemaName":"new_Crate","IsAuditEnabled":{"Value":true},
      "Attributes":[{"@odata.type":"Microsoft.Dynamics.CRM.StringAttributeMetadata","SchemaName":"new_Name",
      "IsPrimaryName":true},{"@odata.type":"Microsoft.Dynamics.CRM.StringAttributeMetadata","SchemaName":"new_Tag",
      "IsAuditEnabled":{"Value":false}}]})"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_TRUE(created->tables[0].audit);
  EXPECT_EQ(created->tables[0].columns[0].audit, std::optional<bool>(false));
}

TEST(MetadataInputTest, OptionValueActionsRewriteTheWholeList) {
  auto cat = TestCatalog();
  int value = 0;
  auto ins = OptionValueActionToSchema(
      *cat, "InsertOptionValue",
      Parse(R"({"OptionSetName":"new_size","Label":{"LocalizedLabels":[{"Label":"XL","LanguageCode":1033}]}})"), value);
  ASSERT_TRUE(ins.ok()) << ins.status().ToString();
  EXPECT_EQ(value, 6);
  ASSERT_EQ(ins->update.choices.size(), 1u);
  EXPECT_EQ(ins->update.choices[0].options->size(), 3u);
  EXPECT_EQ(ins->update.choices[0].options->back().label, "XL");

  auto upd = OptionValueActionToSchema(*cat, "UpdateOptionValue",
                                       Parse(R"({"EntityLogicalName":"new_box","AttributeLogicalName":"new_stage",
      "Value":1,"Label":{"LocalizedLabels":[{"Label":"Planning","LanguageCode":1033}]},"MergeLabels":false})"),
                                       value);
  ASSERT_TRUE(upd.ok()) << upd.status().ToString();
  EXPECT_EQ(upd->update.tables[0].name, "new_box");
  EXPECT_EQ((*upd->update.tables[0].columns[0].options)[0].label, "Planning");

  auto del =
      OptionValueActionToSchema(*cat, "DeleteOptionValue", Parse(R"({"OptionSetName":"new_size","Value":1})"), value);
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->update.choices[0].options->size(), 1u);

  EXPECT_EQ(
      OptionValueActionToSchema(*cat, "DeleteOptionValue", Parse(R"({"OptionSetName":"new_size","Value":7})"), value)
          .status()
          .code(),
      Code::kNotFound);
  EXPECT_EQ(OptionValueActionToSchema(*cat, "InsertOptionValue",
                                      Parse(R"({"OptionSetName":"new_size","Value":5,"Label":{"LocalizedLabels":[
      {"Label":"Again","LanguageCode":1033}]}})"),
                                      value)
                .status()
                .code(),
            Code::kInvalidArgument);
  EXPECT_FALSE(OptionValueActionToSchema(*cat, "UpdateOptionValue",
                                         Parse(R"({"EntityLogicalName":"new_box","AttributeLogicalName":"new_size",
      "Value":1})"),
                                         value)
                   .ok());
}

}  // namespace
}  // namespace tributary::odata

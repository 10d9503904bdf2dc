#include "tributary/data/audit.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "tributary/base/json.h"
#include "tributary/data/environment.h"

namespace tributary::data {
namespace {

namespace fs = std::filesystem;

// An audit row as stored.
struct Stored {
  int64_t action = 0, operation = 0;
  std::string objectid, objecttype, mask, changedata, userid, callinguserid, transactionid;
};

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("trib_audit_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto env = Environment::Open(
        {.data_dir = dir_.string(), .bootstrap_client_id = "test", .bootstrap_client_secret = "secret"});
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    env_ = std::move(env).value();
    caller_.user_id = env_->ids().admin_user_id;
    caller_.business_unit_id = env_->ids().root_business_unit_id;
  }
  void TearDown() override {
    env_.reset();
    fs::remove_all(dir_);
  }
  catalog::CatalogPtr Cat() { return env_->catalog().Get(); }
  const catalog::Table& T(const char* name) { return *env_->catalog().Get()->FindTable(name); }

  Result<Guid> Create(const char* table, std::vector<std::pair<const char*, Value>> values) {
    EntityInput in;
    in.table = &T(table);
    for (auto& [c, v] : values) in.fields.push_back(Field{in.table->FindColumn(c), std::move(v)});
    std::promise<Result<WriteResult>> p;
    env_->service().Create(caller_, std::move(in), std::nullopt,
                           [&](Result<WriteResult> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    if (!r.ok()) return r.status();
    return r->id;
  }
  Status Update(const char* table, const Guid& id, std::vector<std::pair<const char*, Value>> values) {
    EntityInput in;
    in.table = &T(table);
    for (auto& [c, v] : values) in.fields.push_back(Field{in.table->FindColumn(c), std::move(v)});
    std::promise<Result<WriteResult>> p;
    env_->service().Upsert(caller_, std::move(in), RecordKey{id, {}}, UpsertMode::kUpdateOnly, std::nullopt,
                           [&](Result<WriteResult> r) { p.set_value(std::move(r)); });
    return p.get_future().get().status();
  }
  Status Delete(const char* table, const Guid& id) {
    std::promise<Result<Guid>> p;
    env_->service().Delete(caller_, T(table), RecordKey{id, {}}, std::nullopt,
                           [&](Result<Guid> r) { p.set_value(std::move(r)); });
    return p.get_future().get().status();
  }
  Status Associate(const char* table, const Guid& id, const char* nav, const char* other_table, const Guid& other,
                   bool add) {
    const catalog::Table& t = T(table);
    std::promise<Result<Guid>> p;
    env_->service().Associate(caller_, t, RecordKey{id, {}}, *t.FindNav(nav),
                              BindTarget{&T(other_table), RecordKey{other, {}}}, add,
                              [&](Result<Guid> r) { p.set_value(std::move(r)); });
    return p.get_future().get().status();
  }
  Status Transact(std::function<Status(WriteScope&)> fn) {
    std::promise<Status> p;
    env_->service().Transact(caller_, std::move(fn), [&](Status s) { p.set_value(std::move(s)); });
    return p.get_future().get();
  }
  void AuditOn(bool on) {
    ASSERT_TRUE(Update("organization", env_->ids().organization_id, {{"isauditenabled", on}}).ok());
  }
  Status Apply(const std::string& yaml) {
    auto doc = catalog::ParseSchemaDocument(yaml);
    if (!doc.ok()) return doc.status();
    return env_->ApplySchema(*doc, yaml);
  }
  std::vector<Stored> Rows() {
    std::vector<Stored> out;
    auto r = env_->engine().Read();
    Status s = r->Query(
        "SELECT action, operation, objectid, objectid_type, attributemask, changedata, userid, callinguserid, "
        "transactionid FROM audit ORDER BY versionnumber",
        {}, [&](const storage::Row& row) {
          auto text = [&](int i) { return row.is_null(i) ? std::string() : std::string(row.Text(i)); };
          out.push_back(Stored{row.Int(0), row.Int(1), text(2), text(3), text(4), text(5), text(6), text(7), text(8)});
          return true;
        });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
  Json Data(const Stored& s) {
    auto j = ParseJson(s.changedata);
    EXPECT_TRUE(j.ok()) << s.changedata;
    return j.ok() ? *j : Json();
  }

  fs::path dir_;
  std::unique_ptr<Environment> env_;
  CallerContext caller_;
};

TEST_F(AuditTest, CatalogFlagsComeFromSchemaDocuments) {
  auto cat = Cat();
  EXPECT_TRUE(cat->FindTable("account")->audit_enabled);
  EXPECT_TRUE(cat->FindTable("systemuser")->audit_enabled);
  EXPECT_FALSE(cat->FindTable("transactioncurrency")->audit_enabled);
  const catalog::Table* account = cat->FindTable("account");
  EXPECT_TRUE(account->FindColumn("name")->audit_enabled);
  EXPECT_TRUE(account->FindColumn("ownerid")->audit_enabled);
  EXPECT_FALSE(account->FindColumn("modifiedon")->audit_enabled);  // maintained by the platform
  EXPECT_FALSE(account->FindColumn("versionnumber")->audit_enabled);
  const catalog::Table* audit = cat->FindTable("audit");
  ASSERT_NE(audit, nullptr);
  EXPECT_EQ(audit->entity_set_name, "audits");
  EXPECT_EQ(audit->object_type_code, 4567);
  EXPECT_TRUE(audit->FindColumn("objectid")->any_target);
  EXPECT_TRUE(audit->FindColumn("objectid")->IsPolymorphic());
  EXPECT_FALSE(audit->FindColumn("changedata")->valid_for_create);

  ASSERT_TRUE(Apply(R"(version: 1
publisher: { prefix: new }
tables:
  - name: new_project
    audit: true
    columns:
      - { name: new_code, type: string, audit: false }
      - { name: new_budget, type: money }
  - name: new_plain
)")
                  .ok());
  cat = Cat();
  EXPECT_TRUE(cat->FindTable("new_project")->audit_enabled);
  EXPECT_FALSE(cat->FindTable("new_project")->FindColumn("new_code")->audit_enabled);
  EXPECT_TRUE(cat->FindTable("new_project")->FindColumn("new_budget")->audit_enabled);
  EXPECT_FALSE(cat->FindTable("new_plain")->audit_enabled);  // tables default off

  // Updates change both flags; the document survives a round trip through JSON.
  std::string update = R"(version: 1
update:
  tables:
    - name: new_project
      audit: false
      columns: [ { name: new_code, audit: true } ]
    - name: account
      columns: [ { name: telephone1, audit: false } ]
)";
  auto doc = catalog::ParseSchemaDocument(update);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  auto again = catalog::ParseSchemaDocument(catalog::SchemaDocToJson(*doc));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_EQ(again->update.tables.size(), 2u);
  EXPECT_EQ(again->update.tables[0].audit, std::optional<bool>(false));
  EXPECT_EQ(again->update.tables[0].columns[0].audit, std::optional<bool>(true));
  ASSERT_TRUE(env_->ApplySchema(*again, update).ok());
  cat = Cat();
  EXPECT_FALSE(cat->FindTable("new_project")->audit_enabled);
  EXPECT_TRUE(cat->FindTable("new_project")->FindColumn("new_code")->audit_enabled);
  EXPECT_FALSE(cat->FindTable("account")->FindColumn("telephone1")->audit_enabled);
  // Audit flags of columns the platform maintains cannot be set.
  EXPECT_FALSE(Apply(R"(version: 1
update:
  tables: [ { name: account, columns: [ { name: modifiedon, audit: true } ] } ]
)")
                   .ok());
}

TEST_F(AuditTest, NothingIsAuditedUntilTheOrganizationTurnsAuditingOn) {
  ASSERT_TRUE(Create("account", {{"name", std::string("Quiet")}}).ok());
  EXPECT_TRUE(Rows().empty());
  AuditOn(true);
  ASSERT_TRUE(Create("account", {{"name", std::string("Loud")}}).ok());
  EXPECT_EQ(Rows().size(), 1u);
  AuditOn(false);  // the cached flag follows the organization row
  ASSERT_TRUE(Create("account", {{"name", std::string("Quiet again")}}).ok());
  EXPECT_EQ(Rows().size(), 1u);
}

TEST_F(AuditTest, CreateUpdateDeleteRecordValues) {
  AuditOn(true);
  auto id = Create("account", {{"name", std::string("Contoso")}, {"telephone1", std::string("555")}});
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto rows = Rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].action, 1);
  EXPECT_EQ(rows[0].operation, 1);
  EXPECT_EQ(rows[0].objectid, id->ToString());
  EXPECT_EQ(rows[0].objecttype, "account");
  EXPECT_EQ(rows[0].userid, env_->ids().admin_user_id.ToString());
  EXPECT_EQ(rows[0].callinguserid, "");
  Json created = Data(rows[0]);
  EXPECT_EQ(created.Find("v")->as_int(), 1);
  ASSERT_NE(created.Find("new"), nullptr);
  EXPECT_EQ(created.Find("new")->Find("name")->as_string(), "Contoso");
  EXPECT_EQ(created.Find("new")->Find("ownerid")->Find("table")->as_string(), "systemuser");
  EXPECT_EQ(created.Find("new")->Find("modifiedon"), nullptr);  // not audited
  EXPECT_EQ(created.Find("old"), nullptr);
  EXPECT_NE(rows[0].mask.find("name"), std::string::npos);

  // Only changed audited columns: telephone1 keeps its value, name changes.
  ASSERT_TRUE(Update("account", *id, {{"name", std::string("Contoso Ltd")}, {"telephone1", std::string("555")}}).ok());
  rows = Rows();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].action, 2);
  EXPECT_EQ(rows[1].operation, 2);
  EXPECT_EQ(rows[1].mask, "name");
  Json updated = Data(rows[1]);
  EXPECT_EQ(updated.Find("old")->Find("name")->as_string(), "Contoso");
  EXPECT_EQ(updated.Find("new")->Find("name")->as_string(), "Contoso Ltd");
  EXPECT_EQ(updated.Find("new")->Find("telephone1"), nullptr);

  // A PATCH that changes nothing audited writes nothing.
  ASSERT_TRUE(Update("account", *id, {{"name", std::string("Contoso Ltd")}}).ok());
  EXPECT_EQ(Rows().size(), 2u);

  ASSERT_TRUE(Delete("account", *id).ok());
  rows = Rows();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2].action, 3);
  EXPECT_EQ(rows[2].operation, 3);
  Json deleted = Data(rows[2]);
  EXPECT_EQ(deleted.Find("old")->Find("name")->as_string(), "Contoso Ltd");
  EXPECT_EQ(deleted.Find("old")->Find("telephone1")->as_string(), "555");
  EXPECT_EQ(deleted.Find("new"), nullptr);
  // Transactions differ per write job.
  EXPECT_NE(rows[0].transactionid, rows[1].transactionid);
}

TEST_F(AuditTest, DisabledTablesAndColumnsWriteNothing) {
  ASSERT_TRUE(Apply(R"(version: 1
publisher: { prefix: new }
tables:
  - name: new_plain
  - name: new_tracked
    audit: true
    columns: [ { name: new_secret, type: string, audit: false } ]
)")
                  .ok());
  AuditOn(true);
  ASSERT_TRUE(Create("new_plain", {{"new_name", std::string("x")}}).ok());
  EXPECT_TRUE(Rows().empty());
  auto id = Create("new_tracked", {{"new_name", std::string("y")}, {"new_secret", std::string("s1")}});
  ASSERT_TRUE(id.ok());
  auto rows = Rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(Data(rows[0]).Find("new")->Find("new_secret"), nullptr);
  ASSERT_TRUE(Update("new_tracked", *id, {{"new_secret", std::string("s2")}}).ok());
  EXPECT_EQ(Rows().size(), 1u);  // only an unaudited column changed
}

TEST_F(AuditTest, RoleAssignmentIsAuditedOnBothSides) {
  AuditOn(true);
  auto role = Create("role", {{"name", std::string("Salesperson")},
                              {"businessunitid", EntityRef{"businessunit", env_->ids().root_business_unit_id}}});
  ASSERT_TRUE(role.ok()) << role.status().ToString();
  size_t base = Rows().size();
  Guid user = env_->ids().admin_user_id;
  ASSERT_TRUE(Associate("systemuser", user, "systemuserroles_association", "role", *role, true).ok());
  auto rows = Rows();
  ASSERT_EQ(rows.size(), base + 2);
  EXPECT_EQ(rows[base].action, 55);
  EXPECT_EQ(rows[base].objectid, user.ToString());
  EXPECT_EQ(rows[base].objecttype, "systemuser");
  Json data = Data(rows[base]);
  EXPECT_EQ(data.Find("relationship")->as_string(), "systemuserroles_association");
  EXPECT_EQ(data.Find("targets")->as_array()[0].Find("id")->as_string(), role->ToString());
  EXPECT_EQ(rows[base + 1].objectid, role->ToString());
  EXPECT_EQ(rows[base].transactionid, rows[base + 1].transactionid);
  ASSERT_TRUE(Associate("systemuser", user, "systemuserroles_association", "role", *role, false).ok());
  rows = Rows();
  ASSERT_EQ(rows.size(), base + 4);
  EXPECT_EQ(rows[base + 2].action, 56);
  // Removing an association that does not exist records nothing.
  ASSERT_TRUE(Associate("systemuser", user, "systemuserroles_association", "role", *role, false).ok());
  EXPECT_EQ(Rows().size(), base + 4);
}

TEST_F(AuditTest, OwnerChangeIsAnAssign) {
  AuditOn(true);
  auto team = Create("team", {{"name", std::string("Owners")},
                              {"businessunitid", EntityRef{"businessunit", env_->ids().root_business_unit_id}}});
  ASSERT_TRUE(team.ok()) << team.status().ToString();
  auto id = Create("account", {{"name", std::string("Fabrikam")}});
  ASSERT_TRUE(id.ok());
  size_t base = Rows().size();
  ASSERT_TRUE(Update("account", *id, {{"ownerid", EntityRef{"team", *team}}, {"name", std::string("F2")}}).ok());
  auto rows = Rows();
  ASSERT_EQ(rows.size(), base + 2);
  EXPECT_EQ(rows[base].action, 13);
  EXPECT_EQ(rows[base].mask, "ownerid");
  Json assign = Data(rows[base]);
  EXPECT_EQ(assign.Find("old")->Find("ownerid")->Find("table")->as_string(), "systemuser");
  EXPECT_EQ(assign.Find("new")->Find("ownerid")->Find("id")->as_string(), team->ToString());
  EXPECT_EQ(rows[base + 1].action, 2);
  EXPECT_EQ(rows[base + 1].mask, "name");
}

TEST_F(AuditTest, FailedTransactionLeavesNoAuditRows) {
  AuditOn(true);
  size_t base = Rows().size();
  const catalog::Table& account = T("account");
  Status s = Transact([&](WriteScope& scope) -> Status {
    EntityInput in;
    in.table = &account;
    in.fields.push_back(Field{account.FindColumn("name"), std::string("Doomed")});
    RETURN_IF_ERROR(scope.Create(in, std::nullopt).status());
    return InvalidArgument("change set fails");
  });
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(Rows().size(), base);
  // The organization flag written by a failed job does not stick in the cache.
  s = Transact([&](WriteScope& scope) -> Status {
    EntityInput in;
    in.table = &T("organization");
    in.fields.push_back(Field{in.table->FindColumn("isauditenabled"), false});
    RETURN_IF_ERROR(
        scope.Upsert(in, RecordKey{env_->ids().organization_id, {}}, UpsertMode::kUpdateOnly, std::nullopt).status());
    return InvalidArgument("rolled back");
  });
  EXPECT_FALSE(s.ok());
  ASSERT_TRUE(Create("account", {{"name", std::string("Still audited")}}).ok());
  EXPECT_EQ(Rows().size(), base + 1);
}

TEST_F(AuditTest, ClientsCannotWriteAuditRows) {
  AuditOn(true);
  auto id = Create("account", {{"name", std::string("A")}});
  ASSERT_TRUE(id.ok());
  auto created = Create("audit", {{"attributemask", std::string("x")}});
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().code(), Code::kMethodNotAllowed);
  EXPECT_EQ(created.status().error_code(), kErrEntityDoesNotSupportMessage);
  auto rows = Rows();
  ASSERT_EQ(rows.size(), 1u);
  auto r = env_->engine().Read();
  std::string audit_id;
  ASSERT_TRUE(r->Query("SELECT auditid FROM audit", {}, [&](const storage::Row& row) {
                 audit_id = std::string(row.Text(0));
                 return false;
               }).ok());
  Guid aid = *Guid::Parse(audit_id);
  EXPECT_EQ(Update("audit", aid, {{"attributemask", std::string("y")}}).code(), Code::kMethodNotAllowed);
  EXPECT_EQ(Delete("audit", aid).code(), Code::kMethodNotAllowed);
  // Nor through the users' collection of their audit rows.
  EXPECT_EQ(Associate("systemuser", env_->ids().admin_user_id, "lk_audit_userid", "audit", aid, false).code(),
            Code::kMethodNotAllowed);
  EXPECT_EQ(Rows().size(), 1u);
}

TEST_F(AuditTest, ImpersonationRecordsTheCallingUser) {
  AuditOn(true);
  Guid real = GuidGenerator::NewSequential();
  caller_.initiating_user_id = real;
  ASSERT_TRUE(Create("account", {{"name", std::string("On behalf")}}).ok());
  auto rows = Rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].userid, env_->ids().admin_user_id.ToString());
  EXPECT_EQ(rows[0].callinguserid, real.ToString());
}

TEST_F(AuditTest, ShareAndAssignApi) {
  AuditOn(true);
  auto id = Create("account", {{"name", std::string("Shared")}});
  ASSERT_TRUE(id.ok());
  size_t base = Rows().size();
  auto cat = Cat();
  EntityRef user{"systemuser", env_->ids().admin_user_id};
  EntityRef team{"team", GuidGenerator::NewSequential()};
  Status s = Transact([&](WriteScope& scope) -> Status {
    int64_t version = 1000000;
    Auditor a(scope.connection(), *cat, caller_, Timestamp{1000}, nullptr, [&] { return version++; });
    RETURN_IF_ERROR(a.RecordShare(T("account"), *id, user, 0, 1));
    RETURN_IF_ERROR(a.RecordShare(T("account"), *id, user, 1, 3));
    RETURN_IF_ERROR(a.RecordShare(T("account"), *id, user, 3, 3));  // unchanged: nothing
    RETURN_IF_ERROR(a.RecordShare(T("account"), *id, user, 3, 0));
    return a.RecordAssign(T("account"), *id, user, team);
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto rows = Rows();
  ASSERT_EQ(rows.size(), base + 4);
  EXPECT_EQ(rows[base].action, 14);
  EXPECT_EQ(rows[base + 1].action, 48);
  EXPECT_EQ(rows[base + 2].action, 49);
  EXPECT_EQ(rows[base + 3].action, 13);
  Json share = Data(rows[base + 1]);
  EXPECT_EQ(share.Find("oldmask")->as_int(), 1);
  EXPECT_EQ(share.Find("newmask")->as_int(), 3);
}

TEST_F(AuditTest, ChangeHistoryDecodesNewestFirst) {
  AuditOn(true);
  auto id = Create("account", {{"name", std::string("H1")}, {"numberofemployees", int64_t{5}}});
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(Update("account", *id, {{"name", std::string("H2")}}).ok());
  ASSERT_TRUE(Update("account", *id, {{"numberofemployees", int64_t{7}}}).ok());
  int64_t total = 0;
  auto history = RetrieveRecordChangeHistory(env_->service(), caller_, T("account"), *id, 0, 5000, &total);
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ(total, 3);
  const AuditDetail& last = (*history)[0];
  EXPECT_EQ(last.kind, AuditDetail::Kind::kAttribute);
  ASSERT_EQ(last.old_values.size(), 1u);
  EXPECT_EQ(last.old_values[0].column->logical_name, "numberofemployees");
  EXPECT_EQ(std::get<int64_t>(last.old_values[0].value), 5);
  EXPECT_EQ(std::get<int64_t>(last.new_values[0].value), 7);
  const Value* action = last.record.Get("action");
  ASSERT_NE(action, nullptr);
  EXPECT_EQ(std::get<int64_t>(*action), 2);
  const Value* object = last.record.Get("objectid");
  ASSERT_NE(object, nullptr);
  EXPECT_EQ(std::get<EntityRef>(*object), (EntityRef{"account", *id}));
  EXPECT_EQ(std::get<int64_t>(*(*history)[2].record.Get("action")), 1);
  // Paging: skip and max.
  auto page = RetrieveRecordChangeHistory(env_->service(), caller_, T("account"), *id, 1, 1, &total);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ(total, 3);
  EXPECT_EQ(std::get<std::string>(*(*page)[0].record.Get("attributemask")), "name");
}

TEST_F(AuditTest, DecodeChangeDataTypesAndDeletedColumns) {
  const catalog::Table& account = T("account");
  AuditDetail d;
  ASSERT_TRUE(DecodeChangeData(&account,
                               R"({"v":1,"old":{"name":"A","revenue":12.5,"gone":"x",
                                   "primarycontactid":{"table":"contact","id":"0190a1b2-0000-7000-8000-000000000001"}},
                                   "new":{"name":null,"gone":"y"}})",
                               d)
                  .ok());
  EXPECT_EQ(d.kind, AuditDetail::Kind::kAttribute);
  ASSERT_EQ(d.old_values.size(), 3u);
  EXPECT_EQ(std::get<std::string>(d.old_values[0].value), "A");
  EXPECT_DOUBLE_EQ(std::get<double>(d.old_values[1].value), 12.5);
  EXPECT_EQ(std::get<EntityRef>(d.old_values[2].value).table, "contact");
  ASSERT_EQ(d.new_values.size(), 1u);
  EXPECT_TRUE(IsNull(d.new_values[0].value));
  EXPECT_EQ(d.deleted_attributes, std::vector<std::string>{"gone"});

  AuditDetail rel;
  ASSERT_TRUE(DecodeChangeData(&account,
                               R"({"v":1,"relationship":"r","targets":[{"table":"role",
                                   "id":"0190a1b2-0000-7000-8000-000000000002"}]})",
                               rel)
                  .ok());
  EXPECT_EQ(rel.kind, AuditDetail::Kind::kRelationship);
  ASSERT_EQ(rel.targets.size(), 1u);
  EXPECT_EQ(rel.targets[0].table, "role");

  AuditDetail bad;
  EXPECT_FALSE(DecodeChangeData(&account, "not json", bad).ok());
  EXPECT_FALSE(DecodeChangeData(&account, R"({"v":2})", bad).ok());
  EXPECT_FALSE(DecodeChangeData(&account, R"({"v":1,"old":[1]})", bad).ok());
}

}  // namespace
}  // namespace tributary::data

// Tests of FetchXML execution (fetch_exec.h): rows are created through the organization service in
// a temporary environment, queries are parsed with ParseFetchXml and run with ExecuteFetch, and
// the tests check the rows that come back (the SQL shape is the implementation's business).

#include "tributary/data/fetch_exec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <map>
#include <set>

#include "tributary/base/strings.h"
#include "tributary/data/environment.h"

namespace tributary::data {
namespace {

namespace fs = std::filesystem;

class FetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("trib_fetch_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto env = Environment::Open(
        {.data_dir = dir_.string(), .bootstrap_client_id = "test", .bootstrap_client_secret = "secret"});
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    env_ = std::move(env).value();
    cat_ = env_->catalog().Get();
    caller_ = {env_->ids().admin_user_id, env_->ids().root_business_unit_id};
  }
  void TearDown() override {
    env_.reset();
    fs::remove_all(dir_);
  }

  const catalog::Table& T(const char* name) { return *cat_->FindTable(name); }

  // Creates a record of `table` with the given column values; lookups are set through the
  // navigation property named in `binds` (nav name → target table and id).
  Guid Make(const char* table, std::vector<std::pair<const char*, Value>> fields,
            std::vector<std::pair<const char*, std::pair<const char*, Guid>>> binds = {}) {
    EntityInput in;
    in.table = &T(table);
    for (auto& [name, v] : fields) {
      const catalog::Column* c = in.table->FindColumn(name);
      EXPECT_NE(c, nullptr) << name;
      in.fields.push_back(Field{c, std::move(v)});
    }
    for (auto& [nav, target] : binds) {
      EntityInput::Bind b;
      b.nav = in.table->FindNav(nav);
      EXPECT_NE(b.nav, nullptr) << nav;
      BindTarget t;
      t.table = cat_->FindTable(target.first);
      t.key.id = target.second;
      b.target = t;
      in.binds.push_back(std::move(b));
    }
    std::promise<Result<WriteResult>> p;
    env_->service().Create(caller_, std::move(in), std::nullopt,
                           [&](Result<WriteResult> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->id : Guid();
  }

  void Associate(const char* table, Guid id, const char* nav, const char* target, Guid target_id) {
    RecordKey key;
    key.id = id;
    BindTarget t;
    t.table = cat_->FindTable(target);
    t.key.id = target_id;
    std::promise<Result<Guid>> p;
    env_->service().Associate(caller_, T(table), key, *T(table).FindNav(nav), t, true,
                              [&](Result<Guid> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  Result<FetchResult> Run(std::string_view xml, const FetchOptions& o = {}) {
    auto q = ParseFetchXml(xml);
    if (!q.ok()) return q.status();
    return ExecuteFetch(env_->service(), caller_, *q, o);
  }

  FetchResult MustRun(std::string_view xml, const FetchOptions& o = {}) {
    auto r = Run(xml, o);
    EXPECT_TRUE(r.ok()) << xml << "\n" << r.status().ToString();
    return r.ok() ? std::move(r).value() : FetchResult{};
  }

  // The value of column `name` in `row` (null when the column is not in the result).
  static Value Cell(const FetchResult& r, const FetchRow& row, std::string_view name) {
    for (size_t i = 0; i < r.columns.size(); ++i)
      if (r.columns[i].name == name) return row.values[i];
    return std::monostate{};
  }
  static bool HasColumn(const FetchResult& r, std::string_view name) {
    return std::any_of(r.columns.begin(), r.columns.end(), [&](const FetchColumn& c) { return c.name == name; });
  }
  static std::string Str(const Value& v) {
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
    return IsNull(v) ? "<null>" : "<not a string>";
  }
  // The string values of column `name`, in row order.
  static std::vector<std::string> Strings(const FetchResult& r, std::string_view name) {
    std::vector<std::string> out;
    for (const auto& row : r.rows) out.push_back(Str(Cell(r, row, name)));
    return out;
  }
  // The same, sorted (for queries without an order).
  static std::vector<std::string> Sorted(const FetchResult& r, std::string_view name) {
    auto v = Strings(r, name);
    std::sort(v.begin(), v.end());
    return v;
  }
  static int64_t Int(const Value& v) {
    if (const auto* i = std::get_if<int64_t>(&v)) return *i;
    ADD_FAILURE() << "not an integer";
    return -1;
  }

  // Five accounts and three contacts:
  //   Alpha (10 employees, revenue 100, city Oslo)  ← primary contact Ann (Alpha's contact)
  //   Beta  (20, 200, Oslo)                          ← primary contact Bob (Beta's contact)
  //   Gamma (30, 300, Bergen), Delta (null employees, 50, no city), O'Hara 50% (5, null, Oslo)
  //   Cid is a contact of Alpha, not anyone's primary contact.
  void Seed() {
    alpha_ = Make("account", {{"name", std::string("Alpha")},
                              {"numberofemployees", int64_t{10}},
                              {"revenue", 100.0},
                              {"address1_city", std::string("Oslo")}});
    beta_ = Make("account", {{"name", std::string("Beta")},
                             {"numberofemployees", int64_t{20}},
                             {"revenue", 200.0},
                             {"address1_city", std::string("Oslo")}});
    gamma_ = Make("account", {{"name", std::string("Gamma")},
                              {"numberofemployees", int64_t{30}},
                              {"revenue", 300.0},
                              {"address1_city", std::string("Bergen")}});
    delta_ = Make("account", {{"name", std::string("Delta")}, {"revenue", 50.0}});
    ohara_ = Make("account", {{"name", std::string("O'Hara 50%")},
                              {"numberofemployees", int64_t{5}},
                              {"address1_city", std::string("Oslo")}});
    ann_ = Make("contact", {{"firstname", std::string("Ann")}, {"lastname", std::string("Lee")}},
                {{"parentcustomerid_account", {"account", alpha_}}});
    bob_ = Make("contact", {{"firstname", std::string("Bob")}, {"lastname", std::string("Ray")}},
                {{"parentcustomerid_account", {"account", beta_}}});
    cid_ = Make("contact", {{"firstname", std::string("Cid")}, {"lastname", std::string("Moe")}},
                {{"parentcustomerid_account", {"account", alpha_}}});
    SetPrimaryContact(alpha_, ann_);
    SetPrimaryContact(beta_, bob_);
  }

  void SetPrimaryContact(Guid account, Guid contact) {
    EntityInput in;
    in.table = &T("account");
    EntityInput::Bind b;
    b.nav = in.table->FindNav("primarycontactid");
    b.target = BindTarget{&T("contact"), RecordKey{contact, {}}};
    in.binds.push_back(std::move(b));
    RecordKey key;
    key.id = account;
    std::promise<Result<WriteResult>> p;
    env_->service().Upsert(caller_, std::move(in), key, UpsertMode::kUpdateOnly, std::nullopt,
                           [&](Result<WriteResult> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  std::vector<std::string> Names(std::string_view filter_xml) {
    auto r = MustRun("<fetch><entity name='account'><attribute name='name'/>" + std::string(filter_xml) +
                     "</entity></fetch>");
    return Sorted(r, "name");
  }

  fs::path dir_;
  std::unique_ptr<Environment> env_;
  catalog::CatalogPtr cat_;
  CallerContext caller_;
  Guid alpha_, beta_, gamma_, delta_, ohara_, ann_, bob_, cid_;
};

using V = std::vector<std::string>;

TEST_F(FetchTest, SelectsAttributesAndAlwaysThePrimaryId) {
  Seed();
  auto r = MustRun(
      "<fetch><entity name='account'><attribute name='name'/><attribute name='revenue'/>"
      "<order attribute='name'/></entity></fetch>");
  ASSERT_EQ(r.rows.size(), 5u);
  EXPECT_EQ(Strings(r, "name"), (V{"Alpha", "Beta", "Delta", "Gamma", "O'Hara 50%"}));
  EXPECT_TRUE(HasColumn(r, "accountid"));
  EXPECT_EQ(std::get<Guid>(Cell(r, r.rows[0], "accountid")), alpha_);
  EXPECT_EQ(r.rows[0].id, alpha_);
  EXPECT_GT(r.rows[0].version, 0);
  EXPECT_DOUBLE_EQ(std::get<double>(Cell(r, r.rows[0], "revenue")), 100.0);
  EXPECT_TRUE(IsNull(Cell(r, r.rows[4], "revenue")));  // O'Hara has none
  EXPECT_FALSE(r.more_records);
  EXPECT_TRUE(r.paging_cookie.empty());

  // No attributes: only the primary id.
  auto none = MustRun("<fetch><entity name='account'/></fetch>");
  ASSERT_EQ(none.columns.size(), 1u);
  EXPECT_EQ(none.columns[0].name, "accountid");
  EXPECT_EQ(none.rows.size(), 5u);

  // all-attributes: every readable column, lookups included.
  auto all = MustRun(
      "<fetch><entity name='account'><all-attributes/><filter><condition attribute='name' "
      "operator='eq' value='Alpha'/></filter></entity></fetch>");
  ASSERT_EQ(all.rows.size(), 1u);
  EXPECT_TRUE(HasColumn(all, "ownerid"));
  EXPECT_TRUE(HasColumn(all, "address1_city"));
  auto owner = Cell(all, all.rows[0], "ownerid");
  ASSERT_TRUE(std::holds_alternative<EntityRef>(owner));
  EXPECT_EQ(std::get<EntityRef>(owner).table, "systemuser");
  EXPECT_EQ(std::get<EntityRef>(owner).id, caller_.user_id);

  // An aliased attribute is an AliasedValue under its alias.
  auto aliased = MustRun(
      "<fetch><entity name='account'><attribute name='name' alias='n'/>"
      "<filter><condition attribute='name' operator='eq' value='Beta'/></filter></entity></fetch>");
  ASSERT_EQ(aliased.rows.size(), 1u);
  EXPECT_EQ(Str(Cell(aliased, aliased.rows[0], "n")), "Beta");
  EXPECT_TRUE(aliased.columns[0].aliased);
}

TEST_F(FetchTest, ComparisonAndTextOperators) {
  Seed();
  EXPECT_EQ(Names("<filter><condition attribute='name' operator='eq' value='alpha'/></filter>"), (V{"Alpha"}));
  EXPECT_EQ(Names("<filter><condition attribute='numberofemployees' operator='gt' value='10'/></filter>"),
            (V{"Beta", "Gamma"}));
  EXPECT_EQ(Names("<filter><condition attribute='numberofemployees' operator='le' value='10'/></filter>"),
            (V{"Alpha", "O'Hara 50%"}));
  // ne excludes nulls, as SQL does.
  EXPECT_EQ(Names("<filter><condition attribute='numberofemployees' operator='ne' value='10'/></filter>"),
            (V{"Beta", "Gamma", "O'Hara 50%"}));
  EXPECT_EQ(Names("<filter><condition attribute='numberofemployees' operator='null'/></filter>"), (V{"Delta"}));
  EXPECT_EQ(Names("<filter><condition attribute='address1_city' operator='not-null'/></filter>"),
            (V{"Alpha", "Beta", "Gamma", "O'Hara 50%"}));
  EXPECT_EQ(Names("<filter><condition attribute='name' operator='like' value='%a'/></filter>"),
            (V{"Alpha", "Beta", "Delta", "Gamma"}));
  EXPECT_EQ(Names("<filter><condition attribute='name' operator='like' value='_eta'/></filter>"), (V{"Beta"}));
  EXPECT_EQ(Names("<filter><condition attribute='name' operator='not-like' value='%a'/></filter>"), (V{"O'Hara 50%"}));
  EXPECT_EQ(Names("<filter><condition attribute='name' operator='begins-with' value='g'/></filter>"), (V{"Gamma"}));
  EXPECT_EQ(Names("<filter><condition attribute='name' operator='not-begin-with' value='g'/></filter>"),
            (V{"Alpha", "Beta", "Delta", "O'Hara 50%"}));
  EXPECT_EQ(Names("<filter><condition attribute='name' operator='ends-with' value='50%'/></filter>"),
            (V{"O'Hara 50%"}));
  EXPECT_EQ(Names("<filter><condition attribute='name' operator='not-end-with' value='TA'/></filter>"),
            (V{"Alpha", "Gamma", "O'Hara 50%"}));
  // Not-text operators never match null values.
  EXPECT_EQ(Names("<filter><condition attribute='address1_city' operator='not-like' value='O%'/></filter>"),
            (V{"Gamma"}));
  EXPECT_EQ(Names("<filter><condition attribute='name' operator='eq' value=\"O'Hara 50%\"/></filter>"),
            (V{"O'Hara 50%"}));
}

TEST_F(FetchTest, ListRangeAndNestedFilters) {
  Seed();
  EXPECT_EQ(Names("<filter><condition attribute='name' operator='in'><value>Beta</value><value>gamma</value>"
                  "<value>nobody</value></condition></filter>"),
            (V{"Beta", "Gamma"}));
  EXPECT_EQ(Names("<filter><condition attribute='numberofemployees' operator='not-in'><value>10</value>"
                  "<value>20</value></condition></filter>"),
            (V{"Gamma", "O'Hara 50%"}));
  EXPECT_EQ(Names("<filter><condition attribute='revenue' operator='between'><value>100</value><value>250</value>"
                  "</condition></filter>"),
            (V{"Alpha", "Beta"}));
  EXPECT_EQ(Names("<filter><condition attribute='revenue' operator='not-between'><value>100</value>"
                  "<value>250</value></condition></filter>"),
            (V{"Delta", "Gamma"}));
  // city = Oslo and (employees >= 20 or employees < 8 or name = Delta)
  EXPECT_EQ(Names("<filter type='and'><condition attribute='address1_city' operator='eq' value='Oslo'/>"
                  "<filter type='or'><condition attribute='numberofemployees' operator='ge' value='20'/>"
                  "<condition attribute='numberofemployees' operator='lt' value='8'/>"
                  "<condition attribute='name' operator='eq' value='Delta'/></filter></filter>"),
            (V{"Beta", "O'Hara 50%"}));
  // Two <filter> children of the entity are and-ed; an empty filter restricts nothing.
  EXPECT_EQ(Names("<filter><condition attribute='address1_city' operator='eq' value='Oslo'/></filter>"
                  "<filter><condition attribute='revenue' operator='gt' value='150'/></filter><filter/>"),
            (V{"Beta"}));
  // Lookups compare with GUIDs (braces allowed); in on a lookup.
  EXPECT_EQ(Names("<filter><condition attribute='primarycontactid' operator='eq' value='{" + ann_.ToString() +
                  "}'/></filter>"),
            (V{"Alpha"}));
  EXPECT_EQ(Names("<filter><condition attribute='primarycontactid' operator='in'><value>" + ann_.ToString() +
                  "</value><value>" + bob_.ToString() + "</value></condition></filter>"),
            (V{"Alpha", "Beta"}));
  // Calling user and business unit.
  EXPECT_EQ(Names("<filter><condition attribute='ownerid' operator='eq-userid'/>"
                  "<condition attribute='name' operator='begins-with' value='A'/></filter>"),
            (V{"Alpha"}));
  EXPECT_TRUE(Names("<filter><condition attribute='ownerid' operator='ne-userid'/></filter>").empty());
  EXPECT_EQ(Names("<filter><condition attribute='owningbusinessunit' operator='eq-businessid'/></filter>").size(), 5u);
  // Column comparison within the row.
  EXPECT_EQ(Names("<filter><condition attribute='revenue' operator='gt' valueof='numberofemployees'/></filter>"),
            (V{"Alpha", "Beta", "Gamma"}));
}

TEST_F(FetchTest, LinkEntitiesJoinWithAliasesAndOuterJoins) {
  Seed();
  // Inner join N:1 with an alias: accounts that have a primary contact.
  auto inner = MustRun(
      "<fetch><entity name='account'><attribute name='name'/><order attribute='name'/>"
      "<link-entity name='contact' from='contactid' to='primarycontactid' alias='pc'>"
      "<attribute name='firstname'/><attribute name='parentcustomerid'/></link-entity></entity></fetch>");
  EXPECT_EQ(Strings(inner, "name"), (V{"Alpha", "Beta"}));
  EXPECT_EQ(Strings(inner, "pc.firstname"), (V{"Ann", "Bob"}));
  const FetchColumn* fc = nullptr;
  for (const auto& c : inner.columns)
    if (c.name == "pc.firstname") fc = &c;
  ASSERT_NE(fc, nullptr);
  EXPECT_TRUE(fc->aliased);
  EXPECT_EQ(fc->table->logical_name, "contact");
  auto parent = Cell(inner, inner.rows[0], "pc.parentcustomerid");
  ASSERT_TRUE(std::holds_alternative<EntityRef>(parent));
  EXPECT_EQ(std::get<EntityRef>(parent).id, alpha_);
  EXPECT_EQ(std::get<EntityRef>(parent).table, "account");

  // Outer join without an alias: the link's name and sequence number prefix its columns; rows
  // without a match stay with null link columns.
  auto outer = MustRun(
      "<fetch><entity name='account'><attribute name='name'/><order attribute='name'/>"
      "<link-entity name='contact' from='contactid' to='primarycontactid' link-type='outer'>"
      "<attribute name='firstname'/></link-entity></entity></fetch>");
  EXPECT_EQ(Strings(outer, "name"), (V{"Alpha", "Beta", "Delta", "Gamma", "O'Hara 50%"}));
  EXPECT_EQ(Strings(outer, "contact1.firstname"), (V{"Ann", "Bob", "<null>", "<null>", "<null>"}));

  // Outer join + a null condition on the link (entityname): accounts without a primary contact.
  EXPECT_EQ(Names("<link-entity name='contact' from='contactid' to='primarycontactid' link-type='outer' alias='c'/>"
                  "<filter><condition entityname='c' attribute='contactid' operator='null'/></filter>"),
            (V{"Delta", "Gamma", "O'Hara 50%"}));
  // A filter inside an outer link restricts the join, not the rows.
  auto on_clause = MustRun(
      "<fetch><entity name='account'><attribute name='name'/><order attribute='name'/>"
      "<link-entity name='contact' from='contactid' to='primarycontactid' link-type='outer' alias='c'>"
      "<attribute name='firstname'/><filter><condition attribute='firstname' operator='eq' value='Bob'/></filter>"
      "</link-entity></entity></fetch>");
  EXPECT_EQ(Strings(on_clause, "c.firstname"), (V{"<null>", "Bob", "<null>", "<null>", "<null>"}));
  // ... and inside an inner link it does.
  EXPECT_EQ(Names("<link-entity name='contact' from='contactid' to='primarycontactid' alias='c'>"
                  "<filter><condition attribute='firstname' operator='eq' value='Bob'/></filter></link-entity>"),
            (V{"Beta"}));

  // 1:N join (one row per contact), from/to inferred from the relationship, nested link.
  auto one_to_many = MustRun(
      "<fetch><entity name='account'><attribute name='name'/><order attribute='name'/>"
      "<link-entity name='contact' to='accountid' alias='kid'><attribute name='firstname'/>"
      "<order attribute='firstname'/>"
      "<link-entity name='systemuser' from='systemuserid' to='ownerid' alias='owner'>"
      "<attribute name='systemuserid'/></link-entity></link-entity></entity></fetch>");
  EXPECT_EQ(Strings(one_to_many, "name"), (V{"Alpha", "Alpha", "Beta"}));
  EXPECT_EQ(Strings(one_to_many, "kid.firstname"), (V{"Ann", "Cid", "Bob"}));
  EXPECT_EQ(std::get<Guid>(Cell(one_to_many, one_to_many.rows[0], "owner.systemuserid")), caller_.user_id);

  // Column comparison across a link (valueof with alias.attribute).
  EXPECT_EQ(Names("<link-entity name='contact' from='contactid' to='primarycontactid' alias='c'/>"
                  "<filter><condition attribute='accountid' operator='eq' valueof='c.parentcustomerid'/></filter>"),
            (V{"Alpha", "Beta"}));
}

TEST_F(FetchTest, ExistsAnyAllAndNotAny) {
  Seed();
  // Accounts with a contact whose first name starts with C (only Alpha has Cid).
  EXPECT_EQ(Names("<link-entity name='contact' from='parentcustomerid' to='accountid' link-type='exists'>"
                  "<filter><condition attribute='firstname' operator='begins-with' value='C'/></filter>"
                  "</link-entity>"),
            (V{"Alpha"}));
  EXPECT_EQ(Names("<link-entity name='contact' from='parentcustomerid' to='accountid' link-type='in'/>"),
            (V{"Alpha", "Beta"}));
  const std::string contact = "<link-entity name='contact' from='parentcustomerid' to='accountid' link-type='";
  const std::string not_ann =
      "'><filter><condition attribute='firstname' operator='ne' value='Ann'/></filter>"
      "</link-entity>";
  EXPECT_EQ(Names("<filter>" + contact + "any" + not_ann + "</filter>"), (V{"Alpha", "Beta"}));
  EXPECT_EQ(Names("<filter>" + contact + "not any" + not_ann + "</filter>"), (V{"Delta", "Gamma", "O'Hara 50%"}));
  // all: related rows exist and none matches the filter (Alpha's are Ann and Cid, Beta's is Bob).
  const std::string is_bob =
      "'><filter><condition attribute='firstname' operator='eq' value='Bob'/></filter>"
      "</link-entity>";
  EXPECT_EQ(Names("<filter>" + contact + "all" + is_bob + "</filter>"), (V{"Alpha"}));
  EXPECT_EQ(Names("<filter>" + contact + "not all" + is_bob + "</filter>"), (V{"Beta"}));
  // Links in an or-filter combine with conditions.
  EXPECT_EQ(Names("<filter type='or'><condition attribute='name' operator='eq' value='Gamma'/>" + contact + "any" +
                  is_bob + "</filter>"),
            (V{"Beta", "Gamma"}));
}

TEST_F(FetchTest, ManyToManyThroughTheIntersectTable) {
  Seed();
  Guid red = Make("team", {{"name", std::string("Red")}});
  Guid blue = Make("team", {{"name", std::string("Blue")}});
  Make("team", {{"name", std::string("Idle")}});
  Associate("systemuser", caller_.user_id, "teammembership_association", "team", red);
  Associate("systemuser", caller_.user_id, "teammembership_association", "team", blue);
  auto r = MustRun(
      "<fetch><entity name='team'><attribute name='name'/><order attribute='name'/>"
      "<link-entity name='teammembership' from='teamid' to='teamid' intersect='true' visible='false'>"
      "<link-entity name='systemuser' from='systemuserid' to='systemuserid' alias='u'>"
      "<attribute name='systemuserid'/></link-entity></link-entity></entity></fetch>");
  // Dataverse also has a default team per business unit; only Red and Blue have members here.
  EXPECT_EQ(Strings(r, "name"), (V{"Blue", "Red"}));
  EXPECT_EQ(std::get<Guid>(Cell(r, r.rows[0], "u.systemuserid")), caller_.user_id);
  // from/to inferred on both steps.
  auto inferred = MustRun(
      "<fetch><entity name='systemuser'><attribute name='systemuserid'/>"
      "<link-entity name='teammembership' intersect='true'><link-entity name='team' alias='t'>"
      "<attribute name='name'/><order attribute='name' descending='true'/></link-entity></link-entity>"
      "</entity></fetch>");
  EXPECT_EQ(Strings(inferred, "t.name"), (V{"Red", "Blue"}));
}

TEST_F(FetchTest, PagesWithTheCookieUntilTheLastPage) {
  for (int i = 0; i < 8; ++i)
    Make("account", {{"name", std::string("P") + std::to_string(i)}, {"numberofemployees", int64_t{i % 3}}});
  const std::string head = "<fetch count='3' page='";
  const std::string body =
      "'><entity name='account'><attribute name='name'/>"
      "<order attribute='numberofemployees' descending='true'/><order attribute='name'/>"
      "</entity></fetch>";
  std::vector<std::string> seen;
  std::string cookie;
  int page = 1;
  for (; page < 10; ++page) {
    std::string xml = "<fetch count='3' page='" + std::to_string(page) + "'";
    if (!cookie.empty()) {
      std::string escaped;
      AppendXmlEscaped(escaped, cookie);
      xml += " paging-cookie='" + escaped + "'";
    }
    xml += body.substr(1);
    auto r = MustRun(xml);
    EXPECT_EQ(r.page, page);
    for (auto& n : Strings(r, "name")) seen.push_back(n);
    if (!r.more_records) {
      EXPECT_TRUE(r.paging_cookie.empty());
      break;
    }
    EXPECT_EQ(r.rows.size(), 3u);
    EXPECT_TRUE(r.paging_cookie.starts_with("<cookie page=\"" + std::to_string(page) + "\"><numberofemployees last=\""))
        << r.paging_cookie;
    EXPECT_NE(r.paging_cookie.find("<accountid last=\"{"), std::string::npos) << r.paging_cookie;
    cookie = r.paging_cookie;
  }
  EXPECT_EQ(page, 3);
  EXPECT_EQ(seen, (V{"P2", "P5", "P1", "P4", "P7", "P0", "P3", "P6"}));

  // Without the cookie, page N is read by offset: the same rows.
  auto second = MustRun(head + "2" + body);
  EXPECT_EQ(Strings(second, "name"), (V{"P4", "P7", "P0"}));
  // A cookie that does not fit the query's orders is ignored (offset again).
  auto mismatched = MustRun(
      "<fetch count='3' page='2' paging-cookie='&lt;cookie page=\"1\"&gt;&lt;name last=\"P9\" /&gt;&lt;/cookie&gt;'" +
      body.substr(1));
  EXPECT_EQ(Strings(mismatched, "name"), (V{"P4", "P7", "P0"}));
  // Past the end: empty, no more records.
  auto past = MustRun(head + "9" + body);
  EXPECT_TRUE(past.rows.empty());
  EXPECT_FALSE(past.more_records);
  // top ignores paging.
  auto top = MustRun("<fetch top='2'" + body.substr(1));
  EXPECT_EQ(Strings(top, "name"), (V{"P2", "P5"}));
  EXPECT_FALSE(top.more_records);
  // The default page size comes from the options (Prefer: odata.maxpagesize).
  FetchOptions o;
  o.page_size = 5;
  auto sized = MustRun("<fetch" + body.substr(1), o);
  EXPECT_EQ(sized.rows.size(), 5u);
  EXPECT_TRUE(sized.more_records);
}

TEST_F(FetchTest, TheCookieReadsOnFromTheLastRowEvenWhenRowsAreAddedBefore) {
  for (const char* n : {"b", "c", "d", "e"}) Make("account", {{"name", std::string(n)}});
  const std::string body = "><entity name='account'><attribute name='name'/><order attribute='name'/></entity></fetch>";
  auto first = MustRun("<fetch count='2' page='1'" + body);
  EXPECT_EQ(Strings(first, "name"), (V{"b", "c"}));
  Make("account", {{"name", std::string("a")}});  // sorts before the page already read
  std::string escaped;
  AppendXmlEscaped(escaped, first.paging_cookie);
  auto keyset = MustRun("<fetch count='2' page='2' paging-cookie='" + escaped + "'" + body);
  EXPECT_EQ(Strings(keyset, "name"), (V{"d", "e"}));
  auto offset = MustRun("<fetch count='2' page='2'" + body);
  EXPECT_EQ(Strings(offset, "name"), (V{"c", "d"}));
}

TEST_F(FetchTest, CookiePagingKeepsTextWithSpecialCharactersAndNulls) {
  const V names = {"a\"b", "a&b", "a<b>", "a%20b", "a'b", "plain"};
  for (const auto& n : names) Make("account", {{"name", n}});
  Make("account", {{"name", std::string("zz")}, {"address1_city", std::string("x")}});
  std::vector<std::string> seen;
  std::string cookie;
  for (int page = 1; page < 10; ++page) {
    std::string xml = "<fetch count='2' page='" + std::to_string(page) + "'";
    if (!cookie.empty()) {
      std::string escaped;
      AppendXmlEscaped(escaped, cookie);
      xml += " paging-cookie=\"" + escaped + "\"";
    }
    xml +=
        "><entity name='account'><attribute name='name'/><order attribute='address1_city'/><order attribute='name' "
        "descending='true'/></entity></fetch>";
    auto r = MustRun(xml);
    for (auto& n : Strings(r, "name")) seen.push_back(n);
    if (!r.more_records) break;
    cookie = r.paging_cookie;
  }
  // Nulls sort first ascending: the six without a city by name descending, then zz.
  EXPECT_EQ(seen, (V{"plain", "a<b>", "a'b", "a&b", "a%20b", "a\"b", "zz"}));
}

TEST_F(FetchTest, OneToManyJoinsPageByOffsetWithAPageOnlyCookie) {
  Seed();
  auto r = MustRun(
      "<fetch count='2' page='1'><entity name='account'><attribute name='name'/><order attribute='name'/>"
      "<link-entity name='contact' from='parentcustomerid' to='accountid' alias='k'><attribute name='firstname'/>"
      "<order attribute='firstname'/></link-entity></entity></fetch>");
  EXPECT_EQ(Strings(r, "k.firstname"), (V{"Ann", "Cid"}));
  EXPECT_TRUE(r.more_records);
  EXPECT_EQ(r.paging_cookie, "<cookie page=\"1\"></cookie>");
  auto next = MustRun(
      "<fetch count='2' page='2' paging-cookie='&lt;cookie page=\"1\"&gt;&lt;/cookie&gt;'><entity name='account'>"
      "<attribute name='name'/><order attribute='name'/><link-entity name='contact' from='parentcustomerid' "
      "to='accountid' alias='k'><attribute name='firstname'/><order attribute='firstname'/></link-entity>"
      "</entity></fetch>");
  EXPECT_EQ(Strings(next, "k.firstname"), (V{"Bob"}));
  EXPECT_FALSE(next.more_records);
}

TEST_F(FetchTest, DistinctAndTotalRecordCount) {
  Seed();
  auto d = MustRun(
      "<fetch distinct='true'><entity name='account'><attribute name='address1_city'/>"
      "<order attribute='address1_city'/></entity></fetch>");
  EXPECT_EQ(Strings(d, "address1_city"), (V{"<null>", "Bergen", "Oslo"}));
  EXPECT_FALSE(HasColumn(d, "accountid"));
  EXPECT_FALSE(d.rows[0].id.has_value());

  auto c = MustRun(
      "<fetch count='2' returntotalrecordcount='true'><entity name='account'>"
      "<attribute name='name'/></entity></fetch>");
  EXPECT_EQ(c.rows.size(), 2u);
  ASSERT_TRUE(c.total_record_count.has_value());
  EXPECT_EQ(*c.total_record_count, 5);
  EXPECT_FALSE(c.total_record_count_limit_exceeded);
  auto no_count = MustRun("<fetch><entity name='account'/></fetch>");
  EXPECT_FALSE(no_count.total_record_count.has_value());
}

TEST_F(FetchTest, MatchFirstRowReturnsOneRelatedRow) {
  Seed();
  auto r = MustRun(
      "<fetch><entity name='account'><attribute name='name'/><order attribute='name'/>"
      "<link-entity name='contact' from='parentcustomerid' to='accountid' link-type='matchfirstrowusingcrossapply' "
      "alias='k'><attribute name='firstname'/></link-entity></entity></fetch>");
  EXPECT_EQ(Strings(r, "name"), (V{"Alpha", "Beta"}));
  EXPECT_EQ(r.rows.size(), 2u);
}

TEST_F(FetchTest, Aggregates) {
  Seed();
  auto totals = MustRun(
      "<fetch aggregate='true'><entity name='account'>"
      "<attribute name='accountid' alias='n' aggregate='count'/>"
      "<attribute name='numberofemployees' alias='with_staff' aggregate='countcolumn'/>"
      "<attribute name='address1_city' alias='cities' aggregate='countcolumn' distinct='true'/>"
      "<attribute name='revenue' alias='total' aggregate='sum'/>"
      "<attribute name='numberofemployees' alias='avg_staff' aggregate='avg'/>"
      "<attribute name='revenue' alias='low' aggregate='min'/>"
      "<attribute name='revenue' alias='high' aggregate='max'/>"
      "</entity></fetch>");
  ASSERT_EQ(totals.rows.size(), 1u);
  const FetchRow& t = totals.rows[0];
  EXPECT_EQ(Int(Cell(totals, t, "n")), 5);
  EXPECT_EQ(Int(Cell(totals, t, "with_staff")), 4);
  EXPECT_EQ(Int(Cell(totals, t, "cities")), 2);
  EXPECT_DOUBLE_EQ(std::get<double>(Cell(totals, t, "total")), 650.0);
  EXPECT_EQ(Int(Cell(totals, t, "avg_staff")), 16);  // (10+20+30+5)/4, truncated like SQL Server
  EXPECT_DOUBLE_EQ(std::get<double>(Cell(totals, t, "low")), 50.0);
  EXPECT_DOUBLE_EQ(std::get<double>(Cell(totals, t, "high")), 300.0);
  EXPECT_FALSE(t.id.has_value());

  // Group by a column, order by an aggregate alias.
  auto by_city = MustRun(
      "<fetch aggregate='true'><entity name='account'>"
      "<attribute name='address1_city' alias='city' groupby='true'/>"
      "<attribute name='accountid' alias='n' aggregate='count'/>"
      "<attribute name='revenue' alias='rev' aggregate='sum'/>"
      "<order alias='n' descending='true'/></entity></fetch>");
  ASSERT_EQ(by_city.rows.size(), 3u);
  EXPECT_EQ(Str(Cell(by_city, by_city.rows[0], "city")), "Oslo");
  EXPECT_EQ(Int(Cell(by_city, by_city.rows[0], "n")), 3);
  EXPECT_DOUBLE_EQ(std::get<double>(Cell(by_city, by_city.rows[0], "rev")), 300.0);
  // The remaining two groups (Bergen, null) have one row each: ordered by the group value then.
  EXPECT_TRUE(IsNull(Cell(by_city, by_city.rows[1], "city")));
  EXPECT_EQ(Str(Cell(by_city, by_city.rows[2], "city")), "Bergen");

  // Group by a lookup and by a link-entity attribute, with a filter.
  auto by_parent = MustRun(
      "<fetch aggregate='true'><entity name='contact'>"
      "<attribute name='parentcustomerid' alias='parent' groupby='true'/>"
      "<attribute name='contactid' alias='n' aggregate='count'/>"
      "<link-entity name='account' from='accountid' to='parentcustomerid' alias='a'>"
      "<attribute name='name' alias='account_name' groupby='true'/></link-entity>"
      "<order alias='account_name'/></entity></fetch>");
  ASSERT_EQ(by_parent.rows.size(), 2u);
  auto parent = Cell(by_parent, by_parent.rows[0], "parent");
  ASSERT_TRUE(std::holds_alternative<EntityRef>(parent));
  EXPECT_EQ(std::get<EntityRef>(parent).id, alpha_);
  EXPECT_EQ(std::get<EntityRef>(parent).table, "account");
  EXPECT_EQ(Str(Cell(by_parent, by_parent.rows[0], "account_name")), "Alpha");
  EXPECT_EQ(Int(Cell(by_parent, by_parent.rows[0], "n")), 2);
  EXPECT_EQ(Int(Cell(by_parent, by_parent.rows[1], "n")), 1);

  // Aggregate over nothing: one row, count 0, sum null.
  auto empty = MustRun(
      "<fetch aggregate='true'><entity name='account'><attribute name='accountid' alias='n' aggregate='count'/>"
      "<attribute name='revenue' alias='s' aggregate='sum'/>"
      "<filter><condition attribute='name' operator='eq' value='none'/></filter></entity></fetch>");
  ASSERT_EQ(empty.rows.size(), 1u);
  EXPECT_EQ(Int(Cell(empty, empty.rows[0], "n")), 0);
  EXPECT_TRUE(IsNull(Cell(empty, empty.rows[0], "s")));
}

TEST_F(FetchTest, DateGrouping) {
  auto opp = [&](const char* name, const char* date, double value) {
    Make("opportunity",
         {{"name", std::string(name)}, {"estimatedclosedate", *ParseDate(date)}, {"estimatedvalue", value}});
  };
  opp("a", "2023-01-01", 1);  // a Sunday: week 1
  opp("b", "2023-01-07", 2);  // Saturday: week 1
  opp("c", "2023-01-08", 4);  // Sunday: week 2
  opp("d", "2023-05-31", 8);  // Q2
  opp("e", "2024-12-31", 16);
  auto by = [&](const char* grouping) {
    return MustRun(std::string("<fetch aggregate='true'><entity name='opportunity'>"
                               "<attribute name='estimatedclosedate' alias='g' groupby='true' dategrouping='") +
                   grouping +
                   "'/><attribute name='estimatedvalue' alias='v' aggregate='sum'/><order alias='g'/>"
                   "</entity></fetch>");
  };
  auto pairs = [&](const FetchResult& r) {
    std::vector<std::pair<int64_t, double>> out;
    for (const auto& row : r.rows) out.emplace_back(Int(Cell(r, row, "g")), std::get<double>(Cell(r, row, "v")));
    return out;
  };
  using P = std::vector<std::pair<int64_t, double>>;
  EXPECT_EQ(pairs(by("year")), (P{{2023, 15}, {2024, 16}}));
  EXPECT_EQ(pairs(by("fiscal-year")), (P{{2023, 15}, {2024, 16}}));
  EXPECT_EQ(pairs(by("quarter")), (P{{1, 7}, {2, 8}, {4, 16}}));
  EXPECT_EQ(pairs(by("fiscal-period")), (P{{1, 7}, {2, 8}, {4, 16}}));
  EXPECT_EQ(pairs(by("month")), (P{{1, 7}, {5, 8}, {12, 16}}));
  EXPECT_EQ(pairs(by("day")), (P{{1, 1}, {7, 2}, {8, 4}, {31, 24}}));
  EXPECT_EQ(pairs(by("week")), (P{{1, 3}, {2, 4}, {22, 8}, {53, 16}}));

  // Date and time columns group by their UTC date.
  Guid acct = Make("account", {{"name", std::string("x")}});
  for (const char* at : {"2023-03-01T23:59:59Z", "2023-03-02T00:00:00Z", "2023-04-10T12:00:00Z"})
    Make("incident", {{"title", std::string("t")}, {"followupby", *ParseTimestamp(at)}},
         {{"customerid_account", {"account", acct}}});
  auto days = MustRun(
      "<fetch aggregate='true'><entity name='incident'>"
      "<attribute name='followupby' alias='m' groupby='true' dategrouping='month'/>"
      "<attribute name='followupby' alias='d' groupby='true' dategrouping='day'/>"
      "<attribute name='incidentid' alias='n' aggregate='count'/><order alias='m'/><order alias='d'/>"
      "</entity></fetch>");
  ASSERT_EQ(days.rows.size(), 3u);
  EXPECT_EQ(Int(Cell(days, days.rows[0], "d")), 1);
  EXPECT_EQ(Int(Cell(days, days.rows[1], "d")), 2);
  EXPECT_EQ(Int(Cell(days, days.rows[2], "m")), 4);
}

TEST_F(FetchTest, AggregateRecordLimit) {
  Seed();
  FetchOptions o;
  o.aggregate_record_limit = 4;
  auto r =
      Run("<fetch aggregate='true'><entity name='account'><attribute name='address1_city' alias='c' groupby='true'/>"
          "</entity></fetch>",
          o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().error_code(), 0x8004E023u);
  EXPECT_NE(r.status().message().find("AggregateQueryRecordLimit"), std::string::npos);
  o.aggregate_record_limit = 5;
  EXPECT_TRUE(Run("<fetch aggregate='true'><entity name='account'><attribute name='accountid' alias='c' "
                  "aggregate='count'/></entity></fetch>",
                  o)
                  .ok());
}

TEST_F(FetchTest, ErrorsNameTheProblem) {
  Seed();
  auto err = [&](std::string_view xml) {
    auto r = Run(xml);
    EXPECT_FALSE(r.ok()) << xml;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().ToString();
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_EQ(err("<fetch><entity name='account'><attribute name='nme'/></entity></fetch>"),
            "'account' entity doesn't contain attribute with Name = 'nme' and NameMapping = 'Logical'.");
  EXPECT_NE(err("<fetch><entity name='nosuch'/></fetch>").find("'nosuch'"), std::string::npos);
  EXPECT_NE(err("<fetch><entity name='account'><link-entity name='contact' from='contactid' to='nope'/></entity>"
                "</fetch>")
                .find("Name = 'nope'"),
            std::string::npos);
  EXPECT_NE(err("<fetch><entity name='account'><filter><condition attribute='numberofemployees' operator='eq' "
                "value='many'/></filter></entity></fetch>")
                .find("'many'"),
            std::string::npos);
  EXPECT_NE(err("<fetch><entity name='account'><filter><condition entityname='x' attribute='name' "
                "operator='null'/></filter></entity></fetch>")
                .find("'x'"),
            std::string::npos);
  EXPECT_NE(err("<fetch><entity name='account'><link-entity name='role'/></entity></fetch>").find("'from'"),
            std::string::npos);
  EXPECT_NE(err("<fetch aggregate='true'><entity name='account'><attribute name='name' alias='s' aggregate='sum'/>"
                "</entity></fetch>")
                .find("'sum'"),
            std::string::npos);
  EXPECT_NE(err("<fetch aggregate='true'><entity name='account'><attribute name='name' alias='g' groupby='true' "
                "dategrouping='month'/></entity></fetch>")
                .find("dategrouping"),
            std::string::npos);
  EXPECT_NE(err("<fetch aggregate='true'><entity name='account'><attribute name='name' alias='g' groupby='true'/>"
                "<order alias='nope'/></entity></fetch>")
                .find("'nope'"),
            std::string::npos);
  EXPECT_NE(err("<fetch><entity name='account'><attribute name='name'/><attribute name='revenue' alias='name'/>"
                "</entity></fetch>")
                .find("'name'"),
            std::string::npos);
  // A condition inside a join link can't use a link joined after it.
  EXPECT_FALSE(Run("<fetch><entity name='account'><link-entity name='contact' from='contactid' to='primarycontactid' "
                   "alias='a'><filter><condition entityname='b' attribute='name' operator='null'/></filter>"
                   "</link-entity><link-entity name='account' from='accountid' to='parentaccountid' alias='b'/>"
                   "</entity></fetch>")
                   .ok());
  // More than 15 link-entities.
  std::string many = "<fetch><entity name='account'>";
  for (int i = 0; i < 16; ++i)
    many += "<link-entity name='contact' from='contactid' to='primarycontactid' link-type='outer'/>";
  EXPECT_NE(err(many + "</entity></fetch>").find("link"), std::string::npos);
  // Simple paging stops at 50,000 records.
  EXPECT_EQ(Run("<fetch count='5000' page='11'><entity name='account'/></fetch>").status().error_code(), 0x8004430Au);
  // Hierarchy operators are not supported.
  EXPECT_NE(err("<fetch><entity name='account'><filter><condition attribute='accountid' operator='under' value='" +
                alpha_.ToString() + "'/></filter></entity></fetch>")
                .find("Under"),
            std::string::npos);
}

TEST_F(FetchTest, ComplexShapesRun) {
  Seed();
  // matchfirstrowusingcrossapply with a filter and a nested exists link.
  auto first = MustRun(
      "<fetch><entity name='account'><attribute name='name'/><order attribute='name'/>"
      "<link-entity name='contact' from='parentcustomerid' to='accountid' link-type='matchfirstrowusingcrossapply' "
      "alias='k'><attribute name='firstname'/><filter><condition attribute='firstname' operator='ne' value='Ann'/>"
      "</filter><link-entity name='account' from='accountid' to='parentcustomerid' link-type='exists'>"
      "<filter><condition attribute='address1_city' operator='eq' value='Oslo'/></filter></link-entity>"
      "</link-entity></entity></fetch>");
  EXPECT_EQ(Strings(first, "name"), (V{"Alpha", "Beta"}));
  EXPECT_EQ(Strings(first, "k.firstname"), (V{"Cid", "Bob"}));
  // A condition in a link's filter may use a link joined before it.
  EXPECT_EQ(Names("<link-entity name='contact' from='contactid' to='primarycontactid' alias='a'/>"
                  "<link-entity name='contact' from='parentcustomerid' to='accountid' alias='b'>"
                  "<filter><condition attribute='contactid' operator='ne' valueof='a.contactid'/></filter>"
                  "</link-entity>"),
            (V{"Alpha"}));
  // An outer link with an inner link under it, ordered by an aliased attribute of the link.
  auto nested = MustRun(
      "<fetch><entity name='contact'><attribute name='firstname'/>"
      "<link-entity name='account' from='accountid' to='parentcustomerid' link-type='outer' alias='a'>"
      "<attribute name='name' alias='company'/><order attribute='name' descending='true'/>"
      "<link-entity name='systemuser' from='systemuserid' to='ownerid' alias='o'/></link-entity>"
      "<order attribute='firstname'/></entity></fetch>");
  EXPECT_EQ(Strings(nested, "firstname"), (V{"Ann", "Bob", "Cid"}));
  EXPECT_EQ(Strings(nested, "company"), (V{"Alpha", "Beta", "Alpha"}));
  // Distinct over a link column, paged by offset.
  auto distinct = MustRun(
      "<fetch distinct='true' count='1' page='2'><entity name='contact'>"
      "<link-entity name='account' from='accountid' to='parentcustomerid' alias='a'><attribute name='name'/>"
      "<order attribute='name'/></link-entity></entity></fetch>");
  EXPECT_EQ(Strings(distinct, "a.name"), (V{"Beta"}));
  EXPECT_FALSE(distinct.more_records);
  // Aggregates over an outer join: rows of accounts without contacts count once, with no contact.
  auto agg = MustRun(
      "<fetch aggregate='true'><entity name='account'><attribute name='accountid' alias='rows' aggregate='count'/>"
      "<link-entity name='contact' from='parentcustomerid' to='accountid' link-type='outer' alias='k'>"
      "<attribute name='contactid' alias='contacts' aggregate='countcolumn'/>"
      "<attribute name='parentcustomerid' alias='parents' aggregate='countcolumn' distinct='true'/>"
      "</link-entity></entity></fetch>");
  ASSERT_EQ(agg.rows.size(), 1u);
  EXPECT_EQ(Int(Cell(agg, agg.rows[0], "rows")), 6);  // Alpha twice, Beta, Gamma, Delta, O'Hara
  EXPECT_EQ(Int(Cell(agg, agg.rows[0], "contacts")), 3);
  EXPECT_EQ(Int(Cell(agg, agg.rows[0], "parents")), 2);
  // The extra filter of the options ($apply's filter(...)) restricts the entity's rows.
  auto extra = std::make_unique<Expr>();
  extra->kind = Expr::Kind::kCompare;
  extra->op = CompareOp::kEq;
  auto prop = std::make_unique<Expr>();
  prop->kind = Expr::Kind::kProperty;
  prop->path = {"address1_city"};
  auto lit = std::make_unique<Expr>();
  lit->kind = Expr::Kind::kLiteral;
  lit->literal = Literal{Literal::Kind::kString, "Bergen"};
  extra->children.push_back(std::move(prop));
  extra->children.push_back(std::move(lit));
  FetchOptions o;
  o.filter = extra.get();
  auto filtered = MustRun("<fetch><entity name='account'><attribute name='name'/></entity></fetch>", o);
  EXPECT_EQ(Strings(filtered, "name"), (V{"Gamma"}));
}

TEST_F(FetchTest, LongConditionListsStayWithinSqliteLimits) {
  Seed();
  std::string conditions;
  for (int i = 0; i < 3000; ++i)
    conditions += "<condition attribute='name' operator='eq' value='n" + std::to_string(i) + "'/>";
  EXPECT_EQ(Names("<filter type='or'>" + conditions + "<condition attribute='name' operator='eq' value='Beta'/>" +
                  "</filter>"),
            (V{"Beta"}));
  EXPECT_TRUE(Names("<filter type='and'>" + conditions + "</filter>").empty());
  std::string values;
  for (int i = 0; i < 3000; ++i) values += "<value>v" + std::to_string(i) + "</value>";
  EXPECT_EQ(Names("<filter><condition attribute='name' operator='not-in'>" + values + "</condition></filter>").size(),
            5u);
}

// The date and user operators become Dataverse query functions; these tests need the binder's
// date functions (query_functions.cpp).
TEST_F(FetchTest, DateAndUserOperators) {
  Guid acct = Make("account", {{"name", std::string("x")}});
  auto incident = [&](const char* title, const char* at) {
    Make("incident", {{"title", std::string(title)}, {"followupby", *ParseTimestamp(at)}},
         {{"customerid_account", {"account", acct}}});
  };
  incident("old", "2023-01-15T10:00:00Z");
  incident("recent", "2024-06-09T10:00:00Z");
  incident("today", "2024-06-10T08:00:00Z");
  incident("soon", "2024-06-12T08:00:00Z");
  FetchOptions o;
  o.now = *ParseTimestamp("2024-06-10T12:00:00Z");  // a Monday
  auto titles = [&](const std::string& condition) {
    auto r = MustRun(
        "<fetch><entity name='incident'><attribute name='title'/><filter>" + condition + "</filter></entity></fetch>",
        o);
    return Sorted(r, "title");
  };
  EXPECT_EQ(titles("<condition attribute='followupby' operator='today'/>"), (V{"today"}));
  EXPECT_EQ(titles("<condition attribute='followupby' operator='yesterday'/>"), (V{"recent"}));
  EXPECT_EQ(titles("<condition attribute='followupby' operator='last-x-days' value='3'/>"), (V{"recent", "today"}));
  EXPECT_EQ(titles("<condition attribute='followupby' operator='next-x-days' value='3'/>"),
            (V{"soon"}));  // from now on
  EXPECT_EQ(titles("<condition attribute='followupby' operator='on' value='2024-06-12'/>"), (V{"soon"}));
  EXPECT_EQ(titles("<condition attribute='followupby' operator='on-or-before' value='2024-06-09'/>"),
            (V{"old", "recent"}));
  EXPECT_EQ(titles("<condition attribute='followupby' operator='on-or-after' value='2024-06-10'/>"),
            (V{"soon", "today"}));
  EXPECT_EQ(titles("<condition attribute='followupby' operator='olderthan-x-months' value='6'/>"), (V{"old"}));
  EXPECT_EQ(titles("<condition attribute='followupby' operator='in-fiscal-year' value='2023'/>"), (V{"old"}));
  EXPECT_EQ(titles("<condition attribute='followupby' operator='this-month'/>"), (V{"recent", "soon", "today"}));
  EXPECT_EQ(titles("<condition attribute='followupby' operator='in-fiscal-period-and-year'><value>1</value>"
                   "<value>2023</value></condition>"),
            (V{"old"}));
  EXPECT_EQ(titles("<condition attribute='ownerid' operator='eq-useroruserteams'/>").size(), 4u);
}

}  // namespace
}  // namespace tributary::data

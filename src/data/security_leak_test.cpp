// No-leak tests of record-level security (platform.md §2.5): a user who may read their own accounts
// and no contacts (or only their own contacts) must learn nothing about other records through
// $expand, $filter on related columns, $orderby, counts, FetchXML links, lambdas, or the errors
// of bulk messages and transactions. Every such path answers as if the unreadable record were
// absent, or with an error that names no other record's data; writes that fail are undone whole.

#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <functional>
#include <future>
#include <optional>
#include <set>

#include "tributary/data/environment.h"
#include "tributary/data/fetch_exec.h"
#include "tributary/data/fetchxml.h"

namespace tributary::data {
namespace {

namespace fs = std::filesystem;
using security::Depth;
using security::Verb;

// Text that only the unreadable records hold: no answer to the subject may contain it.
constexpr std::array<std::string_view, 5> kSecrets = {"Secretname", "Hiddenname", "Confidential", "Childhidden",
                                                      "555-0199"};

ExprPtr Prop(std::vector<std::string> path) {
  auto e = std::make_unique<Expr>();
  e->kind = Expr::Kind::kProperty;
  e->path = std::move(path);
  return e;
}
ExprPtr Str(std::string text) {
  auto e = std::make_unique<Expr>();
  e->kind = Expr::Kind::kLiteral;
  e->literal = Literal{Literal::Kind::kString, std::move(text)};
  return e;
}
ExprPtr Null() {
  auto e = std::make_unique<Expr>();
  e->kind = Expr::Kind::kLiteral;
  e->literal = Literal{Literal::Kind::kNull, ""};
  return e;
}
ExprPtr Eq(ExprPtr l, ExprPtr r) {
  auto e = std::make_unique<Expr>();
  e->kind = Expr::Kind::kCompare;
  e->op = CompareOp::kEq;
  e->children.push_back(std::move(l));
  e->children.push_back(std::move(r));
  return e;
}
ExprPtr Fn(std::string name, ExprPtr prop, ExprPtr lit) {
  auto e = std::make_unique<Expr>();
  e->kind = Expr::Kind::kFunction;
  e->name = std::move(name);
  e->children.push_back(std::move(prop));
  e->children.push_back(std::move(lit));
  return e;
}
// nav/any(c: c/<column> eq '<value>'), or nav/any() without a predicate; "all" likewise.
ExprPtr Lambda(std::string op, std::string nav, std::optional<std::pair<std::string, std::string>> eq) {
  auto e = std::make_unique<Expr>();
  e->kind = Expr::Kind::kLambda;
  e->name = std::move(op);
  e->path = {std::move(nav)};
  e->variable = "c";
  if (eq) e->children.push_back(Eq(Prop({"c", eq->first}), Str(eq->second)));
  return e;
}

class SecurityLeakTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("trib_secleak_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto env = Environment::Open({.data_dir = dir_.string(),
                                  .bootstrap_client_id = "test",
                                  .bootstrap_client_secret = "secret",
                                  .clock = &clock_});
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    env_ = std::move(env).value();
    cat_ = env_->catalog().Get();
    platform_ = {env_->ids().admin_user_id, env_->ids().root_business_unit_id};
    const Guid admin = env_->ids().admin_user_id;

    Guid bu = Make("businessunit", {{"name", std::string("Sales")},
                                    {"parentbusinessunitid", EntityRef{"businessunit", platform_.business_unit_id}}});
    user_ = Make("systemuser", {{"firstname", std::string("Lee")},
                                {"lastname", std::string("Reader")},
                                {"businessunitid", EntityRef{"businessunit", bu}}});
    role_ = Make("role", {{"name", std::string("leak test")},
                          {"businessunitid", EntityRef{"businessunit", platform_.business_unit_id}}});
    Associate(platform_, "systemuser", user_, "systemuserroles_association", "role", role_);
    EntityRef mine{"systemuser", user_}, theirs{"systemuser", admin};

    // Contacts the subject may not read, and one of their own.
    zed_ = Make("contact",
                {{"firstname", std::string("Zed")}, {"lastname", std::string("Secretname")}, {"ownerid", theirs}});
    adam_ = Make("contact",
                 {{"firstname", std::string("Adam")}, {"lastname", std::string("Hiddenname")}, {"ownerid", theirs}});
    own_contact_ =
        Make("contact", {{"firstname", std::string("Mia")}, {"lastname", std::string("Mine")}, {"ownerid", mine}});
    // The subject's accounts (created in this order, so their ids sort the same way): two point
    // at unreadable contacts, one at none.
    a1_ =
        Make("account",
             {{"name", std::string("Mine One")}, {"ownerid", mine}, {"primarycontactid", EntityRef{"contact", zed_}}});
    a2_ =
        Make("account",
             {{"name", std::string("Mine Two")}, {"ownerid", mine}, {"primarycontactid", EntityRef{"contact", adam_}}});
    a3_ = Make("account", {{"name", std::string("Mine Three")}, {"ownerid", mine}});
    other_ = Make("account", {{"name", std::string("Other Corp Confidential")},
                              {"telephone1", std::string("555-0199")},
                              {"ownerid", theirs},
                              {"primarycontactid", EntityRef{"contact", own_contact_}}});
    // An unreadable child contact of a1.
    child_ = Make("contact", {{"firstname", std::string("Kid")},
                              {"lastname", std::string("Childhidden")},
                              {"ownerid", theirs},
                              {"parentcustomerid", EntityRef{"account", a1_}}});
    SetRights(Depth::kNone);
  }
  void TearDown() override {
    env_.reset();
    fs::remove_all(dir_);
  }

  const catalog::Table& T(std::string_view name) { return *cat_->FindTable(name); }

  Guid Make(std::string_view table, std::vector<std::pair<const char*, Value>> values) {
    EntityInput in;
    in.table = &T(table);
    for (auto& [name, v] : values) {
      const catalog::Column* c = in.table->FindColumn(name);
      EXPECT_NE(c, nullptr) << name;
      in.fields.push_back(Field{c, std::move(v)});
    }
    std::promise<Result<WriteResult>> p;
    env_->service().Create(platform_, std::move(in), std::nullopt,
                           [&p](Result<WriteResult> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.ok()) << table << ": " << r.status().ToString();
    return r.ok() ? r->id : Guid();
  }

  void Associate(const CallerContext& caller, std::string_view table, const Guid& id, std::string_view nav,
                 std::string_view target, const Guid& target_id) {
    std::promise<Result<Guid>> p;
    env_->service().Associate(caller, T(table), RecordKey{id, {}}, *T(table).FindNav(nav),
                              BindTarget{&T(target), RecordKey{target_id, {}}}, true,
                              [&p](Result<Guid> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  // The subject's role: every account privilege at Basic level; Read on contact at `contact_read`.
  void SetRights(Depth contact_read) {
    Status s = env_->engine().WriteSync([&](storage::Connection& c) -> Status {
      RETURN_IF_ERROR(
          c.Exec("DELETE FROM roleprivileges WHERE roleid = ?", std::vector<storage::SqlValue>{role_.ToString()})
              .status());
      std::vector<std::pair<std::string, Depth>> grants;
      for (Verb v : security::kAllVerbs) grants.emplace_back(security::PrivilegeName(v, "Account"), Depth::kBasic);
      if (contact_read != Depth::kNone) grants.emplace_back("prvReadContact", contact_read);
      for (const auto& [name, depth] : grants) {
        std::vector<storage::SqlValue> p = {GuidGenerator::NewSequential().ToString(), role_.ToString(),
                                            security::PrivilegeId(name).ToString(),
                                            int64_t{security::DepthMask(depth)}};
        RETURN_IF_ERROR(c.Exec("INSERT INTO roleprivileges (roleprivilegesid, roleid, privilegeid, privilegedepthmask) "
                               "VALUES (?, ?, ?, ?)",
                               p)
                            .status());
      }
      return Status::Ok();
    });
    ASSERT_TRUE(s.ok()) << s.ToString();
    env_->security().Invalidate();
    auto c = env_->ResolveUser(user_);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    subject_ = *c;
  }

  // No secret text in an error.
  static void ExpectNoSecret(const Status& s, const std::string& what) {
    for (auto secret : kSecrets)
      EXPECT_EQ(s.message().find(secret), std::string::npos) << what << " reveals '" << secret << "': " << s.message();
  }
  // No secret text anywhere in the rows (their fields and expansions).
  static void ExpectNoSecret(const std::vector<Entity>& rows, const std::string& what) {
    for (const auto& e : rows) {
      for (const auto& f : e.fields)
        if (const auto* text = std::get_if<std::string>(&f.value))
          for (auto secret : kSecrets)
            EXPECT_EQ(text->find(secret), std::string::npos) << what << " reveals '" << secret << "'";
      for (const auto& x : e.expanded) ExpectNoSecret(x.rows, what);
    }
  }
  // A denial that names nothing it should not: 403 PrivilegeDenied.
  static void ExpectPrivilegeDenied(const Status& s, const std::string& what) {
    EXPECT_EQ(s.code(), Code::kPermissionDenied) << what << ": " << s.ToString();
    EXPECT_EQ(s.error_code(), err::kPrivilegeDenied) << what << ": " << s.ToString();
    ExpectNoSecret(s, what);
  }

  static std::vector<Guid> Ids(const Page& p) {
    std::vector<Guid> out;
    for (const auto& e : p.rows) out.push_back(e.id);
    return out;
  }

  Result<Page> Accounts(QueryOptions o, PageRequest pr = {}) {
    return env_->service().RetrieveMultiple(subject_, T("account"), o, pr);
  }
  QueryOptions Filter(ExprPtr e) {
    QueryOptions o;
    o.filter = std::move(e);
    return o;
  }
  QueryOptions ExpandOf(std::string nav) {
    QueryOptions o;
    o.expand.push_back(Expand{std::move(nav), false, {}});
    return o;
  }

  Result<FetchResult> Fetch(const std::string& xml) {
    auto q = ParseFetchXml(xml);
    if (!q.ok()) return q.status();
    return ExecuteFetch(env_->service(), subject_, *q);
  }
  // The names of the accounts a FetchXML query returns (its first column is the name).
  std::vector<std::string> FetchNames(const std::string& inner) {
    auto r = Fetch("<fetch><entity name='account'><attribute name='name'/><order attribute='name'/>" + inner +
                   "</entity></fetch>");
    EXPECT_TRUE(r.ok()) << inner << ": " << r.status().ToString();
    std::vector<std::string> out;
    if (!r.ok()) return out;
    for (const auto& row : r->rows)
      out.push_back(std::holds_alternative<std::string>(row.values[0]) ? std::get<std::string>(row.values[0]) : "");
    return out;
  }

  // Runs `fn` as the subject in one transaction; the status it ends with.
  Status Transact(const std::function<Status(WriteScope&)>& fn) {
    std::promise<Status> p;
    env_->service().Transact(subject_, fn, [&p](Status s) { p.set_value(std::move(s)); });
    return p.get_future().get();
  }

  // Reads as the platform (no checks).
  std::optional<Entity> Peek(std::string_view table, const Guid& id) {
    auto e = env_->service().Retrieve(platform_, T(table), RecordKey{id, {}}, {});
    if (!e.ok()) return std::nullopt;
    return *e;
  }
  // Whether the account's telephone1 is empty.
  bool PhoneEmpty(const Guid& id) {
    auto e = Peek("account", id);
    if (!e) return false;
    const Value* v = e->Get("telephone1");
    return !v || IsNull(*v);
  }
  int64_t CountAll(std::string_view table) {
    auto n = env_->service().Count(platform_, T(table), nullptr);
    EXPECT_TRUE(n.ok());
    return n.ok() ? *n : -1;
  }

  fs::path dir_;
  ManualClock clock_{Timestamp{1'700'000'000'000}};
  std::unique_ptr<Environment> env_;
  catalog::CatalogPtr cat_;
  CallerContext platform_, subject_;
  Guid user_, role_;
  Guid zed_, adam_, own_contact_, a1_, a2_, a3_, other_, child_;
};

TEST_F(SecurityLeakTest, TheSubjectSeesOnlyTheirAccounts) {
  auto p = Accounts({}, PageRequest{.page_size = 5000, .skiptoken = "", .count = true});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(Ids(*p), (std::vector<Guid>{a1_, a2_, a3_}));
  EXPECT_EQ(p->count.value_or(-1), 3);
  auto n = env_->service().Count(subject_, T("account"), nullptr);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 3);
  auto other = env_->service().Retrieve(subject_, T("account"), RecordKey{other_, {}}, {});
  EXPECT_EQ(other.status().error_code(), err::kRecordAccessDenied) << other.status().ToString();
  ExpectNoSecret(other.status(), "Retrieve of another's account");
  // Related rows and the security reads of another's record: 403 too.
  auto related = env_->service().RetrieveRelated(subject_, T("account"), RecordKey{other_, {}},
                                                 *T("account").FindNav("contact_customer_accounts"), {}, {});
  EXPECT_EQ(related.status().error_code(), err::kRecordAccessDenied) << related.status().ToString();
  auto access = env_->service().PrincipalAccess(subject_, subject_, T("account"), other_);
  EXPECT_EQ(access.status().error_code(), err::kRecordAccessDenied) << access.status().ToString();
  auto shares = env_->service().SharedPrincipals(subject_, T("account"), other_);
  EXPECT_EQ(shares.status().error_code(), err::kRecordAccessDenied) << shares.status().ToString();
  ExpectNoSecret(shares.status(), "RetrieveSharedPrincipalsAndAccess");
  // The contacts: no privilege at all.
  ExpectPrivilegeDenied(env_->service().RetrieveMultiple(subject_, T("contact"), {}, {}).status(), "contacts");
  ExpectPrivilegeDenied(env_->service().Retrieve(subject_, T("contact"), RecordKey{zed_, {}}, {}).status(), "contact");
}

// $expand of a lookup to a record the subject may not read: null (or, without any Read privilege
// on the target table, PrivilegeDenied for the whole query).
TEST_F(SecurityLeakTest, ExpandSingleValued) {
  for (Depth d : {Depth::kNone, Depth::kBasic}) {
    SetRights(d);
    const std::string what =
        std::string("$expand=primarycontactid, contact Read ") + std::string(security::DepthName(d));
    auto p = Accounts(ExpandOf("primarycontactid"));
    if (!p.ok()) {
      ExpectPrivilegeDenied(p.status(), what);
      EXPECT_EQ(d, Depth::kNone) << what << ": " << p.status().ToString();
      continue;
    }
    ExpectNoSecret(p->rows, what);
    ASSERT_EQ(p->rows.size(), 3u);
    for (const auto& e : p->rows) {
      ASSERT_EQ(e.expanded.size(), 1u) << what;
      EXPECT_TRUE(e.expanded[0].rows.empty()) << what << ": an unreadable contact was expanded";
    }
    auto one = env_->service().Retrieve(subject_, T("account"), RecordKey{a1_, {}}, ExpandOf("primarycontactid"));
    ASSERT_TRUE(one.ok()) << one.status().ToString();
    ASSERT_EQ(one->expanded.size(), 1u);
    EXPECT_TRUE(one->expanded[0].rows.empty()) << what;
  }
  // With Read on contacts at Organization level the contacts do expand (the test sees them).
  SetRights(Depth::kGlobal);
  auto p = Accounts(ExpandOf("primarycontactid"));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->rows.size(), 3u);
  EXPECT_EQ(p->rows[0].expanded[0].rows.size(), 1u);
}

// A collection expand and the related collection: only readable rows, or an error.
TEST_F(SecurityLeakTest, ExpandCollection) {
  for (Depth d : {Depth::kNone, Depth::kBasic}) {
    SetRights(d);
    const std::string what =
        std::string("$expand=contact_customer_accounts, contact Read ") + std::string(security::DepthName(d));
    auto p = Accounts(ExpandOf("contact_customer_accounts"));
    if (!p.ok()) {
      ExpectPrivilegeDenied(p.status(), what);
    } else {
      ExpectNoSecret(p->rows, what);
      for (const auto& e : p->rows) EXPECT_TRUE(e.expanded.at(0).rows.empty()) << what;
    }
    auto related = env_->service().RetrieveRelated(subject_, T("account"), RecordKey{a1_, {}},
                                                   *T("account").FindNav("contact_customer_accounts"), {}, {});
    if (!related.ok()) {
      ExpectPrivilegeDenied(related.status(), what + " (related)");
    } else {
      EXPECT_TRUE(related->rows.empty()) << what;
    }
  }
}

// $filter through a lookup: an unreadable contact behaves as if the lookup were empty.
TEST_F(SecurityLeakTest, FilterOnRelatedColumns) {
  for (Depth d : {Depth::kNone, Depth::kBasic}) {
    SetRights(d);
    const std::string what = std::string("contact Read ") + std::string(security::DepthName(d));
    auto exact = Accounts(Filter(Eq(Prop({"primarycontactid", "lastname"}), Str("Secretname"))));
    if (!exact.ok()) {
      ExpectPrivilegeDenied(exact.status(), what);
      continue;
    }
    EXPECT_TRUE(exact->rows.empty()) << what << ": the filter matched a hidden contact's name";
    auto prefix = Accounts(Filter(Fn("startswith", Prop({"primarycontactid", "lastname"}), Str("Hid"))));
    ASSERT_TRUE(prefix.ok());
    EXPECT_TRUE(prefix->rows.empty()) << what;
    // As if absent: "eq null" holds for all three accounts.
    auto null = Accounts(Filter(Eq(Prop({"primarycontactid", "lastname"}), Null())));
    ASSERT_TRUE(null.ok());
    EXPECT_EQ(Ids(*null), (std::vector<Guid>{a1_, a2_, a3_})) << what;
    auto n = env_->service().Count(subject_, T("account"),
                                   Eq(Prop({"primarycontactid", "lastname"}), Str("Secretname")).get());
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 0) << what;
  }
}

// $orderby on a related column: unreadable values sort as null, so the order says nothing.
TEST_F(SecurityLeakTest, OrderByRelatedColumn) {
  for (Depth d : {Depth::kNone, Depth::kBasic}) {
    SetRights(d);
    const std::string what = std::string("contact Read ") + std::string(security::DepthName(d));
    std::vector<std::vector<Guid>> orders;
    for (bool desc : {false, true}) {
      QueryOptions o;
      o.orderby.push_back(OrderBy{{"primarycontactid", "lastname"}, desc});
      auto p = Accounts(std::move(o), PageRequest{.page_size = 2, .skiptoken = "", .count = false});
      if (!p.ok()) {
        ExpectPrivilegeDenied(p.status(), what);
        break;
      }
      std::vector<Guid> ids = Ids(*p);
      std::string token = p->next_skiptoken;
      while (!token.empty()) {
        QueryOptions again;
        again.orderby.push_back(OrderBy{{"primarycontactid", "lastname"}, desc});
        auto next = Accounts(std::move(again), PageRequest{.page_size = 2, .skiptoken = token, .count = false});
        ASSERT_TRUE(next.ok()) << next.status().ToString();
        for (const Guid& id : Ids(*next)) ids.push_back(id);
        token = next->next_skiptoken;
      }
      orders.push_back(ids);
    }
    if (orders.size() == 2) {
      EXPECT_EQ(orders[0], (std::vector<Guid>{a1_, a2_, a3_})) << what << ": ascending";
      EXPECT_EQ(orders[1], (std::vector<Guid>{a1_, a2_, a3_})) << what << ": descending";
    }
  }
}

// FetchXML links to contacts: the rows of an unreadable contact are absent.
TEST_F(SecurityLeakTest, FetchXmlLinks) {
  SetRights(Depth::kNone);
  auto denied = Fetch(
      "<fetch><entity name='account'><attribute name='name'/><link-entity name='contact' from='contactid' "
      "to='primarycontactid' link-type='outer' alias='pc'><attribute name='lastname'/></link-entity></entity></fetch>");
  if (!denied.ok()) ExpectPrivilegeDenied(denied.status(), "FetchXML link without contact Read");

  SetRights(Depth::kBasic);
  // Outer link: the accounts, with empty link columns.
  auto outer = Fetch(
      "<fetch><entity name='account'><attribute name='name'/><order attribute='name'/><link-entity name='contact' "
      "from='contactid' to='primarycontactid' link-type='outer' alias='pc'><attribute name='lastname'/>"
      "</link-entity></entity></fetch>");
  ASSERT_TRUE(outer.ok()) << outer.status().ToString();
  ASSERT_EQ(outer->rows.size(), 3u);
  for (const auto& row : outer->rows)
    for (size_t i = 0; i < outer->columns.size(); ++i)
      if (outer->columns[i].name == "pc.lastname") EXPECT_TRUE(IsNull(row.values[i])) << "outer link column leaked";
  // Inner link and a condition on the link: nothing (as if the contacts were absent).
  EXPECT_TRUE(FetchNames("<link-entity name='contact' from='contactid' to='primarycontactid'/>").empty());
  EXPECT_TRUE(FetchNames("<link-entity name='contact' from='contactid' to='primarycontactid' link-type='outer' "
                         "alias='pc'/><filter><condition entityname='pc' attribute='lastname' operator='eq' "
                         "value='Secretname'/></filter>")
                  .empty());
  EXPECT_TRUE(
      FetchNames("<link-entity name='contact' from='parentcustomerid' to='accountid' link-type='exists'/>").empty());
  EXPECT_TRUE(
      FetchNames("<link-entity name='contact' from='parentcustomerid' to='accountid' link-type='in'/>").empty());
  // Filter links over the child contacts: a1's only child is unreadable, so a1 answers like a3,
  // which has none.
  const std::string link = "<filter><link-entity name='contact' from='parentcustomerid' to='accountid' link-type='";
  const std::string cond =
      "'><filter><condition attribute='lastname' operator='eq' value='nomatch'/></filter>"
      "</link-entity></filter>";
  using V = std::vector<std::string>;
  EXPECT_EQ(FetchNames(link + "any" + cond), V{});
  EXPECT_EQ(FetchNames(link + "not any" + cond), (V{"Mine One", "Mine Three", "Mine Two"}));
  EXPECT_EQ(FetchNames(link + "all" + cond), V{}) << "link-type all saw an unreadable related row";
  EXPECT_EQ(FetchNames(link + "not all" + cond), V{});
  // Aggregates count readable rows only.
  auto count = Fetch(
      "<fetch aggregate='true'><entity name='contact'><attribute name='contactid' aggregate='count' alias='n'/>"
      "</entity></fetch>");
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  ASSERT_EQ(count->rows.size(), 1u);
  EXPECT_EQ(std::get<int64_t>(count->rows[0].values[0]), 1);  // the subject's own contact
}

// any()/all() lambdas see only readable related rows.
TEST_F(SecurityLeakTest, Lambdas) {
  for (Depth d : {Depth::kNone, Depth::kBasic}) {
    SetRights(d);
    const std::string what = std::string("contact Read ") + std::string(security::DepthName(d));
    auto any = Accounts(Filter(Lambda("any", "contact_customer_accounts", std::make_pair("lastname", "Childhidden"))));
    if (!any.ok()) {
      ExpectPrivilegeDenied(any.status(), what);
      continue;
    }
    EXPECT_TRUE(any->rows.empty()) << what;
    auto any_row = Accounts(Filter(Lambda("any", "contact_customer_accounts", std::nullopt)));
    ASSERT_TRUE(any_row.ok());
    EXPECT_TRUE(any_row->rows.empty()) << what;
    // all() over no readable rows holds, as for an account without contacts.
    auto all = Accounts(Filter(Lambda("all", "contact_customer_accounts", std::make_pair("lastname", "nomatch"))));
    ASSERT_TRUE(all.ok());
    EXPECT_EQ(Ids(*all), (std::vector<Guid>{a1_, a2_, a3_})) << what;
  }
}

// Bulk messages: one denied item undoes the whole call, and the error names only the item.
TEST_F(SecurityLeakTest, BulkIsAllOrNothing) {
  auto run = [&](BulkOperation op, std::vector<BulkItem> items) {
    std::promise<Result<std::vector<Guid>>> p;
    env_->service().ExecuteBulk(subject_, T("account"), op, std::move(items),
                                [&p](Result<std::vector<Guid>> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  };
  auto update = [&](const Guid& id) {
    BulkItem item;
    item.input.table = &T("account");
    item.input.fields.push_back(Field{T("account").FindColumn("telephone1"), std::string("123")});
    item.key.id = id;
    return item;
  };
  std::vector<BulkItem> updates;
  updates.push_back(update(a1_));
  updates.push_back(update(other_));
  auto r = run(BulkOperation::kUpdate, std::move(updates));
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied) << r.status().ToString();
  EXPECT_EQ(r.status().error_code(), err::kRecordAccessDenied);
  EXPECT_NE(r.status().message().find("Targets[1]"), std::string::npos) << r.status().message();
  ExpectNoSecret(r.status(), "UpdateMultiple");
  EXPECT_TRUE(PhoneEmpty(a1_)) << "the allowed update was kept";

  const int64_t before = CountAll("account");
  std::vector<BulkItem> creates(2);
  for (auto& c : creates) {
    c.input.table = &T("account");
    c.input.fields.push_back(Field{T("account").FindColumn("name"), std::string("new")});
  }
  creates[1].input.fields.push_back(
      Field{T("account").FindColumn("ownerid"), EntityRef{"systemuser", env_->ids().admin_user_id}});
  r = run(BulkOperation::kCreate, std::move(creates));
  EXPECT_EQ(r.status().code(), Code::kPermissionDenied) << r.status().ToString();
  EXPECT_EQ(CountAll("account"), before);

  std::vector<BulkItem> deletes(2);
  deletes[0].key.id = a3_;
  deletes[1].key.id = other_;
  r = run(BulkOperation::kDelete, std::move(deletes));
  EXPECT_EQ(r.status().error_code(), err::kRecordAccessDenied) << r.status().ToString();
  ExpectNoSecret(r.status(), "DeleteMultiple");
  EXPECT_TRUE(Peek("account", a3_).has_value()) << "the allowed delete was kept";
}

// A transaction with several operations, one of them denied: nothing of it stays.
TEST_F(SecurityLeakTest, TransactionWithADeniedOperation) {
  const int64_t before = CountAll("account");
  Guid created;
  Status s = Transact([&](WriteScope& scope) -> Status {
    EntityInput in;
    in.table = &T("account");
    in.fields.push_back(Field{T("account").FindColumn("name"), std::string("made in the transaction")});
    ASSIGN_OR_RETURN(WriteResult w, scope.Create(in, std::nullopt));
    created = w.id;
    EntityInput up;
    up.table = &T("account");
    up.fields.push_back(Field{T("account").FindColumn("telephone1"), std::string("999")});
    RETURN_IF_ERROR(scope.Upsert(up, RecordKey{a1_, {}}, UpsertMode::kUpdateOnly, std::nullopt).status());
    return scope.Delete(T("account"), RecordKey{other_, {}}, std::nullopt).status();
  });
  EXPECT_EQ(s.error_code(), err::kRecordAccessDenied) << s.ToString();
  ExpectNoSecret(s, "transaction");
  EXPECT_EQ(CountAll("account"), before);
  EXPECT_FALSE(Peek("account", created).has_value());
  EXPECT_TRUE(PhoneEmpty(a1_)) << "the update of the failed transaction stayed";
  EXPECT_TRUE(Peek("account", other_).has_value());

  // Pointing an own account at a contact the subject may not append to: denied, naming only the
  // privilege.
  SetRights(Depth::kBasic);
  s = Transact([&](WriteScope& scope) {
    EntityInput up;
    up.table = &T("account");
    up.fields.push_back(Field{T("account").FindColumn("primarycontactid"), EntityRef{"contact", child_}});
    return scope.Upsert(up, RecordKey{a3_, {}}, UpsertMode::kUpdateOnly, std::nullopt).status();
  });
  ExpectPrivilegeDenied(s, "set primarycontactid to a hidden contact");
  EXPECT_NE(s.message().find("prvAppendToContact"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace tributary::data

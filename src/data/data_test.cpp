#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <set>

#include "tributary/data/environment.h"

namespace tributary::data {
namespace {

namespace fs = std::filesystem;

ExprPtr Prop(std::vector<std::string> path) {
  auto e = std::make_unique<Expr>();
  e->kind = Expr::Kind::kProperty;
  e->path = std::move(path);
  return e;
}
ExprPtr Lit(Literal::Kind k, std::string text) {
  auto e = std::make_unique<Expr>();
  e->kind = Expr::Kind::kLiteral;
  e->literal = Literal{k, std::move(text)};
  return e;
}
ExprPtr Cmp(ExprPtr l, CompareOp op, ExprPtr r) {
  auto e = std::make_unique<Expr>();
  e->kind = Expr::Kind::kCompare;
  e->op = op;
  e->children.push_back(std::move(l));
  e->children.push_back(std::move(r));
  return e;
}
ExprPtr Bin(Expr::Kind k, ExprPtr l, ExprPtr r) {
  auto e = std::make_unique<Expr>();
  e->kind = k;
  e->children.push_back(std::move(l));
  e->children.push_back(std::move(r));
  return e;
}

class DataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("trib_data_" + std::to_string(::getpid()) + "_" +
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
  Field F(const catalog::Table& t, const char* col, Value v) { return Field{t.FindColumn(col), std::move(v)}; }

  Result<WriteResult> Create(EntityInput in, std::optional<Guid> id = std::nullopt) {
    std::promise<Result<WriteResult>> p;
    env_->service().Create(caller_, std::move(in), id, [&](Result<WriteResult> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  Result<WriteResult> Upsert(EntityInput in, RecordKey key, UpsertMode mode, std::optional<int64_t> v = std::nullopt) {
    std::promise<Result<WriteResult>> p;
    env_->service().Upsert(caller_, std::move(in), std::move(key), mode, v,
                           [&](Result<WriteResult> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  Result<Guid> Delete(const catalog::Table& t, RecordKey key) {
    std::promise<Result<Guid>> p;
    env_->service().Delete(caller_, t, std::move(key), std::nullopt,
                           [&](Result<Guid> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  Guid Account(const std::string& name, std::optional<int64_t> employees = std::nullopt) {
    EntityInput in;
    in.table = &T("account");
    in.fields.push_back(F(T("account"), "name", name));
    if (employees) in.fields.push_back(F(T("account"), "numberofemployees", *employees));
    auto r = Create(std::move(in));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->id : Guid();
  }

  fs::path dir_;
  std::unique_ptr<Environment> env_;
  catalog::CatalogPtr cat_;
  CallerContext caller_;
};

TEST_F(DataTest, FilterTranslatesToParameterisedSql) {
  // name eq 'O''Brien' and (numberofemployees gt 5 or primarycontactid/fullname eq 'x')
  auto e = Bin(Expr::Kind::kAnd, Cmp(Prop({"name"}), CompareOp::kEq, Lit(Literal::Kind::kString, "O'Brien")),
               Bin(Expr::Kind::kOr, Cmp(Prop({"numberofemployees"}), CompareOp::kGt, Lit(Literal::Kind::kInteger, "5")),
                   Cmp(Prop({"primarycontactid", "fullname"}), CompareOp::kEq, Lit(Literal::Kind::kString, "x"))));
  SqlFragment out;
  ASSERT_TRUE(AppendFilterSql(*cat_, T("account"), *e, "t0", out).ok());
  EXPECT_EQ(out.sql,
            "((t0.\"name\" COLLATE NOCASE = ?) AND ((t0.\"numberofemployees\" > ?) OR ((SELECT f1.\"fullname\" FROM "
            "\"contact\" f1 WHERE f1.\"contactid\" = t0.\"primarycontactid\") COLLATE NOCASE = ?)))");
  ASSERT_EQ(out.params.size(), 3u);
  EXPECT_EQ(std::get<std::string>(out.params[0]), "O'Brien");  // bound, never spliced
  EXPECT_EQ(std::get<int64_t>(out.params[1]), 5);
}

TEST_F(DataTest, FilterErrorsNameTheProblem) {
  SqlFragment out;
  auto unknown = Cmp(Prop({"nosuch"}), CompareOp::kEq, Lit(Literal::Kind::kInteger, "1"));
  Status s = AppendFilterSql(*cat_, T("account"), *unknown, "t0", out);
  EXPECT_EQ(s.error_code(), err::kQueryError);
  EXPECT_NE(s.message().find("'nosuch'"), std::string::npos);
  auto wrong_type = Cmp(Prop({"numberofemployees"}), CompareOp::kEq, Lit(Literal::Kind::kString, "abc"));
  EXPECT_FALSE(AppendFilterSql(*cat_, T("account"), *wrong_type, "t0", out).ok());
  auto lookup_as_value = Cmp(Prop({"primarycontactid"}), CompareOp::kEq, Lit(Literal::Kind::kNull, ""));
  EXPECT_FALSE(AppendFilterSql(*cat_, T("account"), *lookup_as_value, "t0", out).ok());
  auto gt_null = Cmp(Prop({"name"}), CompareOp::kGt, Lit(Literal::Kind::kNull, ""));
  EXPECT_FALSE(AppendFilterSql(*cat_, T("account"), *gt_null, "t0", out).ok());
}

TEST_F(DataTest, BootstrapCreatesTheEnvironment) {
  EXPECT_TRUE(env_->created());
  auto user = env_->service().Retrieve(caller_, T("systemuser"), RecordKey{env_->ids().admin_user_id, {}}, {});
  ASSERT_TRUE(user.ok()) << user.status().ToString();
  auto cred = env_->FindCredential("test");
  ASSERT_TRUE(cred.ok() && cred->has_value());
  EXPECT_NE((*cred)->secret_hash, "secret");
  EXPECT_EQ((*cred)->user_id, env_->ids().admin_user_id);
  auto ctx = env_->ResolveUser(env_->ids().admin_user_id);
  ASSERT_TRUE(ctx.ok());
  EXPECT_EQ(ctx->business_unit_id, env_->ids().root_business_unit_id);
}

TEST_F(DataTest, CreateFillsSystemColumnsAndValidates) {
  Guid id = Account("Contoso", 10);
  auto e = env_->service().Retrieve(caller_, T("account"), RecordKey{id, {}}, {});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(std::get<std::string>(*e->Get("name")), "Contoso");
  EXPECT_EQ(std::get<int64_t>(*e->Get("statecode")), 0);
  EXPECT_EQ(std::get<int64_t>(*e->Get("statuscode")), 1);
  EXPECT_EQ(std::get<EntityRef>(*e->Get("ownerid")).id, caller_.user_id);
  EXPECT_EQ(std::get<EntityRef>(*e->Get("ownerid")).table, "systemuser");
  EXPECT_GT(e->version, 0);

  EntityInput too_long;
  too_long.table = &T("account");
  too_long.fields.push_back(F(T("account"), "name", std::string(161, 'x')));
  auto r = Create(std::move(too_long));
  EXPECT_EQ(r.status().error_code(), err::kValidation);

  EntityInput bad_choice;
  bad_choice.table = &T("account");
  bad_choice.fields.push_back(F(T("account"), "industrycode", int64_t{999999}));
  EXPECT_EQ(Create(std::move(bad_choice)).status().error_code(), err::kPicklistOutOfRange);

  EntityInput dup;
  dup.table = &T("account");
  EXPECT_EQ(Create(std::move(dup), id).status().error_code(), err::kDuplicateRecord);
}

TEST_F(DataTest, UpsertMatrixAndConcurrency) {
  Guid id = GuidGenerator::NewSequential();
  auto in = [&](const char* name) {
    EntityInput e;
    e.table = &T("account");
    e.fields.push_back(F(T("account"), "name", std::string(name)));
    return e;
  };
  EXPECT_EQ(Upsert(in("a"), RecordKey{id, {}}, UpsertMode::kUpdateOnly).status().code(), Code::kNotFound);
  auto created = Upsert(in("a"), RecordKey{id, {}}, UpsertMode::kUpsert);
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->id, id);
  EXPECT_EQ(Upsert(in("b"), RecordKey{id, {}}, UpsertMode::kCreateOnly).status().code(), Code::kFailedPrecondition);
  auto updated = Upsert(in("c"), RecordKey{id, {}}, UpsertMode::kUpsert);
  ASSERT_TRUE(updated.ok());
  EXPECT_FALSE(updated->created);
  auto e = env_->service().Retrieve(caller_, T("account"), RecordKey{id, {}}, {});
  EXPECT_EQ(std::get<std::string>(*e->Get("name")), "c");
  auto stale = Upsert(in("d"), RecordKey{id, {}}, UpsertMode::kUpdateOnly, e->version - 1);
  EXPECT_EQ(stale.status().error_code(), err::kConcurrencyVersionMismatch);
  EXPECT_TRUE(Upsert(in("d"), RecordKey{id, {}}, UpsertMode::kUpdateOnly, e->version).ok());
}

TEST_F(DataTest, PagingWalksEveryRowOnceInOrder) {
  for (int i = 0; i < 23; ++i) Account("acc" + std::to_string(i % 5), i % 3 == 0 ? std::optional<int64_t>() : i);
  QueryOptions q;
  q.select = {"name", "numberofemployees"};
  q.orderby.push_back(OrderBy{{"numberofemployees"}, true});
  q.orderby.push_back(OrderBy{{"name"}, false});
  PageRequest pr;
  pr.page_size = 4;
  pr.count = true;
  std::set<Guid> seen;
  int pages = 0;
  std::optional<int64_t> prev_emp;
  bool saw_null = false;
  for (;;) {
    auto page = env_->service().RetrieveMultiple(caller_, T("account"), q, pr);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ++pages;
    if (pages == 1) EXPECT_EQ(page->count.value_or(-1), 23);
    for (const auto& row : page->rows) {
      EXPECT_TRUE(seen.insert(row.id).second);
      const Value* v = row.Get("numberofemployees");
      if (IsNull(*v))
        saw_null = true;  // NULLs sort last when descending
      else {
        EXPECT_FALSE(saw_null);
        if (prev_emp) EXPECT_LE(std::get<int64_t>(*v), *prev_emp);
        prev_emp = std::get<int64_t>(*v);
      }
    }
    if (page->next_skiptoken.empty()) break;
    pr.skiptoken = page->next_skiptoken;
    pr.count = false;
  }
  EXPECT_EQ(seen.size(), 23u);
  EXPECT_EQ(pages, 6);
  pr.skiptoken = "<cookie pagenumber=\"2\" pagingcookie=\"garbage\" />";
  EXPECT_EQ(env_->service().RetrieveMultiple(caller_, T("account"), q, pr).status().error_code(), err::kQueryError);
}

TEST_F(DataTest, DeleteCascadesAndRemovesLinks) {
  Guid acc = Account("Parent");
  EntityInput contact;
  contact.table = &T("contact");
  contact.fields.push_back(F(T("contact"), "lastname", std::string("Child")));
  contact.fields.push_back(F(T("contact"), "parentcustomerid", EntityRef{"account", acc}));
  auto c = Create(std::move(contact));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EntityInput acc2;
  acc2.table = &T("account");
  acc2.fields.push_back(F(T("account"), "name", std::string("Other")));
  acc2.fields.push_back(F(T("account"), "primarycontactid", EntityRef{"contact", c->id}));
  auto a2 = Create(std::move(acc2));
  ASSERT_TRUE(a2.ok());
  ASSERT_TRUE(Delete(T("account"), RecordKey{acc, {}}).ok());
  // contact.parentcustomerid cascades (parental) per the standard schema; account.primarycontactid is cleared.
  auto gone = env_->service().Retrieve(caller_, T("contact"), RecordKey{c->id, {}}, {});
  EXPECT_EQ(gone.status().code(), Code::kNotFound);
  auto other = env_->service().Retrieve(caller_, T("account"), RecordKey{a2->id, {}}, {});
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(IsNull(*other->Get("primarycontactid")));
  EXPECT_EQ(Delete(T("account"), RecordKey{acc, {}}).status().error_code(), err::kObjectDoesNotExist);
}

TEST_F(DataTest, FullNameIsComputed) {
  EntityInput in;
  in.table = &T("contact");
  in.fields.push_back(F(T("contact"), "firstname", std::string("Ada")));
  in.fields.push_back(F(T("contact"), "lastname", std::string("Lovelace")));
  in.fields.push_back(F(T("contact"), "fullname", std::string("ignored")));
  auto r = Create(std::move(in));
  ASSERT_TRUE(r.ok());
  auto e = env_->service().Retrieve(caller_, T("contact"), RecordKey{r->id, {}}, {});
  EXPECT_EQ(std::get<std::string>(*e->Get("fullname")), "Ada Lovelace");
  EntityInput up;
  up.table = &T("contact");
  up.fields.push_back(F(T("contact"), "firstname", std::string("Augusta")));
  ASSERT_TRUE(Upsert(std::move(up), RecordKey{r->id, {}}, UpsertMode::kUpdateOnly).ok());
  e = env_->service().Retrieve(caller_, T("contact"), RecordKey{r->id, {}}, {});
  EXPECT_EQ(std::get<std::string>(*e->Get("fullname")), "Augusta Lovelace");
}

TEST_F(DataTest, ReopenKeepsDataAndVersionsKeepGrowing) {
  Guid id = Account("Durable");
  auto before = env_->service().Retrieve(caller_, T("account"), RecordKey{id, {}}, {});
  env_.reset();
  auto env = Environment::Open(
      {.data_dir = dir_.string(), .bootstrap_client_id = "test", .bootstrap_client_secret = "secret"});
  ASSERT_TRUE(env.ok());
  env_ = std::move(env).value();
  cat_ = env_->catalog().Get();
  EXPECT_FALSE(env_->created());
  auto after = env_->service().Retrieve(caller_, T("account"), RecordKey{id, {}}, {});
  ASSERT_TRUE(after.ok());
  Guid id2 = Account("Later");
  auto later = env_->service().Retrieve(caller_, T("account"), RecordKey{id2, {}}, {});
  EXPECT_GT(later->version, before->version);
}

}  // namespace
}  // namespace tributary::data

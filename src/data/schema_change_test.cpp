// Tests of schema changes on a live environment (Environment::ApplySchema with drop and update
// sections): the SQL tables, columns and indexes that go with dropped components, the files of
// dropped tables and file columns, data checks that refuse a change atomically, and the replay of
// the _t_schema log at start-up.

#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <set>

#include "tributary/catalog/schema.h"
#include "tributary/data/environment.h"

namespace tributary::data {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSchema = R"(
version: 1
publisher: { prefix: new }
tables:
  - name: new_shelf
    columns:
      - { name: new_code, type: string, maxlength: 50, indexed: true }
      - { name: new_size, type: integer, indexed: true }
      - { name: new_manual, type: file }
      - { name: new_photo, type: image }
    keys:
      - { name: new_code_key, columns: [ new_code ] }
  - name: new_book
    columns:
      - { name: new_shelfid, type: lookup, target: new_shelf }
relationships:
  - { name: new_shelf_contact, type: manytomany, entity1: new_shelf, entity2: contact }
)";

class SchemaChangeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("trib_schema_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    Open();
    ASSERT_TRUE(Apply(kSchema).ok());
  }
  void TearDown() override {
    env_.reset();
    fs::remove_all(dir_);
  }

  void Open() {
    env_.reset();
    auto env = Environment::Open({.data_dir = dir_.string(),
                                  .bootstrap_client_id = "test",
                                  .bootstrap_client_secret = "secret",
                                  .clock = &clock_});
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    env_ = std::move(env).value();
    caller_ = {env_->ids().admin_user_id, env_->ids().root_business_unit_id};
  }

  Status Apply(std::string_view text) {
    auto doc = catalog::ParseSchemaDocument(text);
    if (!doc.ok()) return doc.status();
    return env_->ApplySchema(*doc, text);
  }

  Guid Create(const char* table, std::vector<std::pair<const char*, Value>> values) {
    auto cat = env_->catalog().Get();
    EntityInput in;
    in.table = cat->FindTable(table);
    for (auto& [name, v] : values) in.fields.push_back(Field{in.table->FindColumn(name), std::move(v)});
    std::promise<Result<WriteResult>> p;
    env_->service().Create(caller_, std::move(in), std::nullopt,
                           [&p](Result<WriteResult> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->id : Guid();
  }

  std::set<std::string> Strings(const std::string& sql, std::vector<storage::SqlValue> params = {}) {
    std::set<std::string> out;
    auto r = env_->engine().Read();
    Status s = r->Query(sql, params, [&](const storage::Row& row) {
      out.insert(std::string(row.Text(0)));
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
  std::set<std::string> SqlColumns(const std::string& table) {
    return Strings("SELECT name FROM pragma_table_info(?)", {table});
  }
  std::set<std::string> SqlIndexes(const std::string& table) {
    return Strings("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", {table});
  }
  bool SqlTable(const std::string& table) {
    return !Strings("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", {table}).empty();
  }
  int64_t Count(const std::string& sql) {
    int64_t n = -1;
    auto r = env_->engine().Read();
    EXPECT_TRUE(r->Query(sql, {}, [&](const storage::Row& row) {
                   n = row.Int(0);
                   return false;
                 }).ok());
    return n;
  }
  // A stored file of a record's column, written the way the file store writes it.
  void AddFile(const char* table, const char* column, const Guid& record) {
    std::string id = GuidGenerator::NewRandom().ToString();
    ASSERT_TRUE(
        env_->engine()
            .WriteSync([&](storage::Connection& c) {
              std::vector<storage::SqlValue> f = {id, std::string(table), std::string(column), record.ToString()};
              RETURN_IF_ERROR(c.Exec("INSERT INTO _t_file (fileid, tablename, columnname, recordid, filename, "
                                     "mimetype, size, created) VALUES (?, ?, ?, ?, 'a.bin', '', 3, 0)",
                                     f)
                                  .status());
              std::vector<storage::SqlValue> k = {id, storage::Blob{"abc"}};
              return c.Exec("INSERT INTO _t_file_chunk (fileid, start, bytes) VALUES (?, 0, ?)", k).status();
            })
            .ok());
  }

  fs::path dir_;
  ManualClock clock_{Timestamp{1'700'000'000'000}};
  std::unique_ptr<Environment> env_;
  CallerContext caller_;
};

TEST_F(SchemaChangeTest, DroppingColumnsKeysAndRelationshipsChangesTheSqlAndKeepsTheRest) {
  Guid shelf =
      Create("new_shelf", {{"new_name", std::string("A")}, {"new_code", std::string("A-1")}, {"new_size", int64_t{3}}});
  AddFile("new_shelf", "new_manual", shelf);
  AddFile("new_shelf", "new_photo", shelf);
  ASSERT_TRUE(SqlColumns("new_book").count("new_shelfid"));
  ASSERT_TRUE(SqlIndexes("new_shelf").count("ak_new_shelf_new_code_key"));
  ASSERT_TRUE(SqlIndexes("new_shelf").count("ix_new_shelf_new_size"));

  Status s = Apply(R"(
drop:
  columns: [ new_shelf.new_code, new_shelf.new_size, new_shelf.new_manual ]
  keys: [ new_shelf.new_code_key ]
  relationships: [ new_shelf_new_book_new_shelfid, new_shelf_contact ]
version: 1
)");
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto cols = SqlColumns("new_shelf");
  for (const char* gone : {"new_code", "new_size", "new_manual", "new_manual_name"})
    EXPECT_FALSE(cols.count(gone)) << gone;
  for (const char* kept : {"new_shelfid", "new_name", "new_photo", "new_photoid", "createdon"})
    EXPECT_TRUE(cols.count(kept)) << kept;
  EXPECT_FALSE(SqlIndexes("new_shelf").count("ak_new_shelf_new_code_key"));
  EXPECT_FALSE(SqlIndexes("new_shelf").count("ix_new_shelf_new_size"));
  EXPECT_FALSE(SqlColumns("new_book").count("new_shelfid"));  // the 1:N relationship took its lookup
  EXPECT_FALSE(SqlIndexes("new_book").count("ix_new_book_new_shelfid"));
  EXPECT_FALSE(SqlTable("new_shelf_contact"));  // the N:N intersect table
  // The file column's files went with it; the image column's stayed.
  EXPECT_EQ(Count("SELECT count(*) FROM _t_file WHERE columnname = 'new_manual'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM _t_file WHERE columnname = 'new_photo'"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM _t_file_chunk"), 1);
  // The record and the rest of its data are intact.
  auto cat = env_->catalog().Get();
  const catalog::Table* t = cat->FindTable("new_shelf");
  EXPECT_EQ(t->FindColumn("new_code"), nullptr);
  RecordKey key;
  key.id = shelf;
  auto rec = env_->service().Retrieve(caller_, *t, key, {});
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(std::get<std::string>(*rec->Get("new_name")), "A");
  // The same column name can come back later, as a new (empty) column.
  ASSERT_TRUE(Apply("version: 1\npublisher: { prefix: new }\ntables: [ { name: new_shelf, columns: [ { name: new_size, "
                    "type: string } ] } ]")
                  .ok());
  EXPECT_TRUE(SqlColumns("new_shelf").count("new_size"));
  EXPECT_EQ(Count("SELECT count(*) FROM new_shelf WHERE new_size IS NOT NULL"), 0);
}

TEST_F(SchemaChangeTest, AColumnThatLeadsAnAlternateKeyHasOnlyTheKeysIndex) {
  // new_code is indexed and leads new_code_key: the unique index serves its lookups alone.
  auto indexes = SqlIndexes("new_shelf");
  EXPECT_TRUE(indexes.count("ak_new_shelf_new_code_key"));
  EXPECT_FALSE(indexes.count("ix_new_shelf_new_code"));
  // Without the key the column gets its own index back.
  ASSERT_TRUE(Apply("drop:\n  keys: [ new_shelf.new_code_key ]\nversion: 1\n").ok());
  indexes = SqlIndexes("new_shelf");
  EXPECT_FALSE(indexes.count("ak_new_shelf_new_code_key"));
  EXPECT_TRUE(indexes.count("ix_new_shelf_new_code"));
  // And loses it again when a key leads with it.
  ASSERT_TRUE(Apply("version: 1\npublisher: { prefix: new }\ntables: [ { name: new_shelf, keys: [ { name: "
                    "new_code2_key, columns: [ new_code, new_size ] } ] } ]")
                  .ok());
  indexes = SqlIndexes("new_shelf");
  EXPECT_TRUE(indexes.count("ak_new_shelf_new_code2_key"));
  EXPECT_FALSE(indexes.count("ix_new_shelf_new_code"));
}

TEST_F(SchemaChangeTest, DroppingATableDropsItsSqlTablesAndFiles) {
  Guid shelf = Create("new_shelf", {{"new_name", std::string("A")}});
  AddFile("new_shelf", "new_manual", shelf);
  AddFile("new_book", "new_other", shelf);  // another table's file stays
  Status s = Apply("version: 1\ndrop: { tables: [ new_shelf ] }");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error_code(), catalog::kErrComponentInUse) << s.message();
  EXPECT_TRUE(SqlTable("new_shelf"));

  s = Apply(R"(
version: 1
drop:
  tables: [ new_shelf ]
  relationships: [ new_shelf_new_book_new_shelfid, new_shelf_contact ]
)");
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE(SqlTable("new_shelf"));
  EXPECT_FALSE(SqlTable("new_shelf_contact"));
  EXPECT_TRUE(SqlTable("new_book"));
  EXPECT_TRUE(SqlIndexes("new_shelf").empty());
  EXPECT_EQ(Count("SELECT count(*) FROM _t_file WHERE tablename = 'new_shelf'"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM _t_file WHERE tablename = 'new_book'"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM _t_file_chunk"), 1);
  EXPECT_EQ(env_->catalog().Get()->FindTable("new_shelf"), nullptr);
  EXPECT_EQ(env_->catalog().Get()->FindBySetName("new_shelfs"), nullptr);
}

TEST_F(SchemaChangeTest, ARefusedChangeLeavesNothingChanged) {
  Create("new_book", {{"new_name", std::string("Same")}});
  Create("new_book", {{"new_name", std::string("same")}});  // text compares case-insensitively
  Create("new_shelf", {{"new_name", std::string("S")}, {"new_code", std::string("0123456789")}});
  int64_t logged = Count("SELECT count(*) FROM _t_schema");
  int64_t version = env_->catalog().Get()->version();

  // A new key over duplicate data, together with other changes: all refused.
  Status s = Apply(R"(
version: 1
publisher: { prefix: new }
drop: { columns: [ new_shelf.new_size ] }
tables:
  - name: new_book
    columns: [ { name: new_extra, type: integer } ]
    keys: [ { name: new_name_key, columns: [ new_name ] } ]
)");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kAlreadyExists);
  EXPECT_EQ(s.error_code(), err::kDuplicateRecordEntityKey);
  EXPECT_NE(s.message().find("new_name_key"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("2 records"), std::string::npos) << s.message();
  // A string column shorter than a stored value: refused.
  s = Apply("version: 1\nupdate: { tables: [ { name: new_shelf, columns: [ { name: new_code, maxlength: 5 } ] } ] }");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error_code(), err::kValidation);
  EXPECT_NE(s.message().find("longer than 5"), std::string::npos) << s.message();

  EXPECT_EQ(Count("SELECT count(*) FROM _t_schema"), logged);
  EXPECT_EQ(env_->catalog().Get()->version(), version);
  EXPECT_TRUE(SqlColumns("new_shelf").count("new_size"));
  EXPECT_FALSE(SqlColumns("new_book").count("new_extra"));
  EXPECT_FALSE(SqlIndexes("new_book").count("ak_new_book_new_name_key"));
  EXPECT_EQ(env_->catalog().Get()->FindTable("new_shelf")->FindColumn("new_code")->max_length, 50);

  // Once the data fits, the same changes go through.
  ASSERT_TRUE(
      Apply("version: 1\nupdate: { tables: [ { name: new_shelf, columns: [ { name: new_code, maxlength: 10 } ] } ] }")
          .ok());
  ASSERT_TRUE(Apply("version: 1\npublisher: { prefix: new }\ntables: [ { name: new_shelf, keys: [ { name: "
                    "new_name_key, columns: [ new_name ] } ] } ]")
                  .ok());
  EXPECT_TRUE(SqlIndexes("new_shelf").count("ak_new_shelf_new_name_key"));
}

TEST_F(SchemaChangeTest, TheLogReplaysToTheSameCatalogAtStartUp) {
  Guid book = Create("new_book", {{"new_name", std::string("Kept")}});
  ASSERT_TRUE(Apply(R"(
version: 1
drop:
  tables: [ new_shelf ]
  relationships: [ new_shelf_new_book_new_shelfid, new_shelf_contact ]
update:
  tables:
    - name: new_book
      displayname: Volume
      columns: [ { name: new_name, maxlength: 300, displayname: Title } ]
)")
                  .ok());
  ASSERT_TRUE(Apply("version: 1\npublisher: { prefix: new }\ntables: [ { name: new_shelf, columns: [ { name: new_code, "
                    "type: memo } ] } ]")
                  .ok());
  auto before = env_->catalog().Get();
  Open();
  auto after = env_->catalog().Get();
  ASSERT_EQ(before->tables().size(), after->tables().size());
  for (size_t i = 0; i < before->tables().size(); ++i) {
    const catalog::Table& a = *before->tables()[i];
    const catalog::Table& b = *after->tables()[i];
    EXPECT_EQ(a.logical_name, b.logical_name);
    EXPECT_EQ(a.display_name, b.display_name);
    EXPECT_EQ(a.object_type_code, b.object_type_code);
    ASSERT_EQ(a.columns.size(), b.columns.size()) << a.logical_name;
    for (size_t c = 0; c < a.columns.size(); ++c) {
      EXPECT_EQ(a.columns[c]->logical_name, b.columns[c]->logical_name);
      EXPECT_EQ(a.columns[c]->type, b.columns[c]->type);
      EXPECT_EQ(a.columns[c]->max_length, b.columns[c]->max_length);
    }
  }
  EXPECT_EQ(before->relationships().size(), after->relationships().size());
  const catalog::Table* t = after->FindTable("new_book");
  EXPECT_EQ(t->display_name, "Volume");
  EXPECT_EQ(t->FindColumn("new_name")->display_name, "Title");
  EXPECT_EQ(t->FindColumn("new_shelfid"), nullptr);
  EXPECT_EQ(after->FindTable("new_shelf")->FindColumn("new_code")->type, catalog::ColumnType::kMemo);
  EXPECT_FALSE(SqlColumns("new_shelf").count("new_size"));  // the re-created table is new
  RecordKey key;
  key.id = book;
  auto rec = env_->service().Retrieve(caller_, *t, key, {});
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_EQ(std::get<std::string>(*rec->Get("new_name")), "Kept");
}

}  // namespace
}  // namespace tributary::data

// Tests of file and image columns: the catalog types and their companion columns, and the file
// store (single and chunked uploads, ranged reads, replacement, deletes, session expiry).

#include "tributary/data/files.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>

#include "tributary/catalog/schema.h"
#include "tributary/data/environment.h"

namespace tributary::data {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSchema = R"(
version: 1
publisher: { prefix: new }
tables:
  - name: new_doc
    entitysetname: new_docs
    columns:
      - { name: new_file, type: file, max_size_kb: 20480 }
      - { name: new_small, type: file, max_size_kb: 1 }
      - { name: new_photo, type: image }
)";

// Deterministic bytes whose value depends on the position, so misplaced ranges show.
std::string Pattern(size_t n, int seed = 0) {
  std::string s(n, '\0');
  uint32_t x = 2166136261u ^ static_cast<uint32_t>(seed);
  for (size_t i = 0; i < n; ++i) {
    x = (x ^ static_cast<uint32_t>(i)) * 16777619u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

std::string Png(size_t n) {
  std::string s = std::string("\x89PNG\r\n\x1a\n", 8);
  s += Pattern(n > 8 ? n - 8 : 0, 7);
  return s;
}

template <typename T, typename Fn>
Result<T> Wait(Fn start) {
  std::promise<Result<T>> p;
  start([&p](Result<T> r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

Result<catalog::SchemaDoc> Parse(std::string_view text) { return catalog::ParseSchemaDocument(text); }

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("trib_files_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto env = Environment::Open({.data_dir = dir_.string(),
                                  .bootstrap_client_id = "test",
                                  .bootstrap_client_secret = "secret",
                                  .clock = &clock_});
    ASSERT_TRUE(env.ok()) << env.status().ToString();
    env_ = std::move(env).value();
    auto doc = Parse(kSchema);
    ASSERT_TRUE(doc.ok()) << doc.status().ToString();
    ASSERT_TRUE(env_->ApplySchema(*doc, kSchema).ok());
    cat_ = env_->catalog().Get();
    table_ = cat_->FindTable("new_doc");
    ASSERT_NE(table_, nullptr);
    caller_ = {env_->ids().admin_user_id, env_->ids().root_business_unit_id};
    files_ = std::make_unique<FileStore>(env_->service(), clock_);
  }
  void TearDown() override {
    files_.reset();
    env_.reset();
    fs::remove_all(dir_);
  }

  const catalog::Column& Col(const char* name) { return *table_->FindColumn(name); }
  RecordKey Key(const Guid& id) {
    RecordKey k;
    k.id = id;
    return k;
  }

  Guid NewDoc() {
    EntityInput in;
    in.table = table_;
    in.fields.push_back(Field{table_->FindColumn("new_name"), std::string("doc")});
    auto r = Wait<WriteResult>(
        [&](auto done) { env_->service().Create(caller_, std::move(in), std::nullopt, std::move(done)); });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->id : Guid();
  }

  Result<FileInfo> Upload(const Guid& id, const char* col, std::string bytes, std::string name = "a.bin") {
    auto shared = std::make_shared<const std::string>(std::move(bytes));
    return Wait<FileInfo>([&](auto done) {
      files_->Upload(caller_, *table_, Col(col), Key(id), std::move(name), "", shared, std::move(done));
    });
  }

  Result<UploadStarted> Begin(const Guid& id, const char* col, std::string name = "big.bin") {
    return Wait<UploadStarted>([&](auto done) {
      files_->BeginUpload(caller_, *table_, Col(col), Key(id), std::move(name), "", std::move(done));
    });
  }

  Result<PieceAccepted> Piece(const Guid& id, const char* col, const std::string& token, int64_t first,
                              std::string bytes, int64_t total) {
    UploadPiece p;
    p.first = first;
    p.last = first + static_cast<int64_t>(bytes.size()) - 1;
    p.total = total;
    p.bytes = std::make_shared<const std::string>(std::move(bytes));
    return Wait<PieceAccepted>([&](auto done) {
      files_->AppendPiece(caller_, *table_, Col(col), Key(id), token, std::move(p), std::move(done));
    });
  }

  // Reads [offset, offset + length) (length < 0: to the end) of the column's file.
  Result<std::string> ReadBytes(const Guid& id, const char* col, int64_t offset = 0, int64_t length = -1) {
    std::string out;
    auto info = files_->Read(
        *table_, Col(col), Key(id),
        [&](const FileInfo& f) -> Result<ByteSpan> {
          return ByteSpan{offset, length < 0 ? f.size - offset : length};
        },
        [&](std::string_view b) { out.append(b); });
    if (!info.ok()) return info.status();
    return out;
  }

  Result<Entity> Record(const Guid& id) { return env_->service().Retrieve(caller_, *table_, Key(id), {}); }

  int64_t Count(const std::string& sql) {
    int64_t n = -1;
    auto r = env_->engine().Read();
    EXPECT_TRUE(r->Query(sql, {}, [&](const storage::Row& row) {
                   n = row.Int(0);
                   return false;
                 }).ok());
    return n;
  }

  ManualClock clock_{Timestamp{1'700'000'000'000}};
  fs::path dir_;
  std::unique_ptr<Environment> env_;
  catalog::CatalogPtr cat_;
  const catalog::Table* table_ = nullptr;
  CallerContext caller_;
  std::unique_ptr<FileStore> files_;
};

TEST(FileCatalogTest, FileAndImageColumnsGetSizesAndCompanions) {
  catalog::CatalogBuilder b;
  auto standard = catalog::ParseSchemaDocument(catalog::StandardSchemaText());
  ASSERT_TRUE(standard.ok());
  ASSERT_TRUE(b.Apply(*standard, true).ok());
  auto doc = Parse(R"(
version: 1
publisher: { prefix: new }
tables:
  - name: new_x
    columns:
      - { name: new_f, type: file }
      - { name: new_i, type: image }
      - { name: new_g, type: file, max_size_kb: 10485760 }
)");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  ASSERT_TRUE(b.Apply(*doc).ok());
  auto cat = b.Build(1);
  ASSERT_TRUE(cat.ok());
  const catalog::Table* t = (*cat)->FindTable("new_x");
  const catalog::Column* f = t->FindColumn("new_f");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->type, catalog::ColumnType::kFile);
  EXPECT_EQ(f->max_size_kb, 32768);
  EXPECT_FALSE(f->valid_for_create);
  EXPECT_FALSE(f->valid_for_update);
  EXPECT_EQ(catalog::ColumnTypeName(f->type), "Virtual");
  const catalog::Column* name = t->FindColumn("new_f_name");
  ASSERT_NE(name, nullptr);
  EXPECT_EQ(name->type, catalog::ColumnType::kString);
  EXPECT_FALSE(name->valid_for_update);
  EXPECT_TRUE(name->is_custom);
  const catalog::Column* i = t->FindColumn("new_i");
  EXPECT_EQ(i->type, catalog::ColumnType::kImage);
  EXPECT_EQ(i->max_size_kb, 10240);
  EXPECT_EQ(t->FindColumn("new_iid")->type, catalog::ColumnType::kUniqueIdentifier);
  EXPECT_EQ(t->FindColumn("new_i_timestamp")->type, catalog::ColumnType::kBigInt);
  EXPECT_EQ(t->FindColumn("new_i_url")->type, catalog::ColumnType::kString);
  EXPECT_EQ(t->FindColumn("new_g")->max_size_kb, 10485760);
  // The schema writer keeps max_size_kb.
  auto round = Parse(catalog::SchemaDocToJson(*doc));
  ASSERT_TRUE(round.ok());
  EXPECT_EQ(round->tables[0].columns[2].max_size_kb, 10485760);
  EXPECT_EQ(round->tables[0].columns[0].type, "file");
}

TEST(FileCatalogTest, BadSizesAndTakenCompanionNamesAreErrors) {
  auto apply = [](std::string_view text) {
    catalog::CatalogBuilder b;
    auto standard = catalog::ParseSchemaDocument(catalog::StandardSchemaText());
    EXPECT_TRUE(b.Apply(*standard, true).ok());
    auto doc = catalog::ParseSchemaDocument(text);
    EXPECT_TRUE(doc.ok()) << doc.status().ToString();
    return b.Apply(*doc);
  };
  Status s = apply(R"(
version: 1
publisher: { prefix: new }
tables:
  - name: new_x
    columns:
      - { name: new_f, type: file, max_size_kb: 10485761 }
      - { name: new_i, type: image, max_size_kb: 30721 }
      - { name: new_s, type: string, max_size_kb: 5 }
)");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("tables[0].columns[0].max_size_kb: must be 1–10485760"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("tables[0].columns[1].max_size_kb: must be 1–30720"), std::string::npos);
  EXPECT_NE(s.message().find("tables[0].columns[2].max_size_kb: applies to file and image columns only"),
            std::string::npos);
  s = apply(R"(
version: 1
publisher: { prefix: new }
tables:
  - name: new_x
    columns:
      - { name: new_f_name, type: string }
      - { name: new_f, type: file }
)");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'new_f_name' is taken"), std::string::npos) << s.message();
}

TEST_F(FilesTest, SingleUploadIsReadBackAndShownOnTheRecord) {
  Guid id = NewDoc();
  auto before = Record(id);
  ASSERT_TRUE(before.ok());
  EXPECT_TRUE(IsNull(*before->Get("new_file")));
  clock_.Advance(1000);
  std::string bytes = Pattern(10'000);
  auto info = Upload(id, "new_file", bytes, "report.pdf");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, 10'000);
  EXPECT_EQ(info->file_name, "report.pdf");
  EXPECT_EQ(info->mime_type, "application/pdf");
  EXPECT_EQ(info->record_id, id);
  auto read = ReadBytes(id, "new_file");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(*read, bytes);
  auto after = Record(id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(std::get<Guid>(*after->Get("new_file")), info->file_id);
  EXPECT_EQ(std::get<std::string>(*after->Get("new_file_name")), "report.pdf");
  // The upload moves the record's version and modifiedon, as any change of the row does.
  EXPECT_GT(after->version, before->version);
  EXPECT_EQ(std::get<Timestamp>(*after->Get("modifiedon")).ms, clock_.Now().ms);
}

TEST_F(FilesTest, RangesAcrossChunkBoundariesAndReplacement) {
  Guid id = NewDoc();
  std::string bytes = Pattern(2 * kFileChunkBytes + 12345, 3);
  ASSERT_TRUE(Upload(id, "new_file", bytes).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM _t_file_chunk"), 3);
  for (auto [off, len] : std::vector<std::pair<int64_t, int64_t>>{{0, 1},
                                                                  {kFileChunkBytes - 5, 10},
                                                                  {kFileChunkBytes, kFileChunkBytes},
                                                                  {1, 2 * kFileChunkBytes + 12344},
                                                                  {2 * kFileChunkBytes + 12344, 1},
                                                                  {77, 0}}) {
    auto r = ReadBytes(id, "new_file", off, len);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, bytes.substr(off, len)) << off << "+" << len;
  }
  // A second upload replaces the first: its chunks are gone.
  ASSERT_TRUE(Upload(id, "new_file", "second", "b.txt").ok());
  EXPECT_EQ(Count("SELECT count(*) FROM _t_file_chunk"), 1);
  EXPECT_EQ(Count("SELECT count(*) FROM _t_file"), 1);
  EXPECT_EQ(*ReadBytes(id, "new_file"), "second");
}

TEST_F(FilesTest, UploadErrors) {
  Guid id = NewDoc();
  auto big = Upload(id, "new_small", std::string(1025, 'x'));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().error_code(), err::kFileTooLarge);
  EXPECT_TRUE(Upload(id, "new_small", std::string(1024, 'x')).ok());
  auto missing = Upload(GuidGenerator::NewSequential(), "new_file", "x");
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_EQ(Upload(id, "new_file", "x", "").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Upload(id, "new_file", "x", "bad\r\nname").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Upload(id, "new_file", "x", "\xff.txt").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Upload(id, "new_file", "x", std::string(256, 'n')).status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Upload(id, "new_small", "x", std::string(255, 'n')).ok());
  auto not_file = Wait<FileInfo>([&](auto done) {
    files_->Upload(caller_, *table_, Col("new_name"), Key(id), "a", "", std::make_shared<const std::string>("x"),
                   std::move(done));
  });
  EXPECT_EQ(not_file.status().code(), Code::kInvalidArgument);
  // Nothing of the failed uploads was kept.
  EXPECT_EQ(Count("SELECT count(*) FROM _t_file"), 1);
  EXPECT_EQ(ReadBytes(id, "new_file").status().code(), Code::kNotFound);
  EXPECT_EQ(ReadBytes(GuidGenerator::NewSequential(), "new_file").status().code(), Code::kNotFound);
}

TEST_F(FilesTest, ChunkedUploadInAnyOrderWithTheTrailingEmptyPiece) {
  Guid id = NewDoc();
  std::string bytes = Pattern(2 * kFileChunkBytes, 5);
  auto s = Begin(id, "new_file", "two.bin");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->record_id, id);
  EXPECT_GE(s->token.size(), 30u);
  int64_t total = static_cast<int64_t>(bytes.size());
  auto second = Piece(id, "new_file", s->token, kFileChunkBytes, bytes.substr(kFileChunkBytes), total);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_FALSE(second->complete);
  EXPECT_EQ(second->received, kFileChunkBytes);
  // Nothing shows on the record until the upload completes.
  EXPECT_TRUE(IsNull(*Record(id)->Get("new_file")));
  auto overlap = Piece(id, "new_file", s->token, kFileChunkBytes + 10, "abc", total);
  EXPECT_EQ(overlap.status().error_code(), err::kInvalidContentRange);
  auto other_total = Piece(id, "new_file", s->token, 0, "abc", total + 1);
  EXPECT_EQ(other_total.status().error_code(), err::kInvalidContentRange);
  auto too_big = Piece(id, "new_file", s->token, 0, std::string(kFileChunkBytes + 1, 'x'), total);
  EXPECT_EQ(too_big.status().error_code(), err::kChunkSizeExceeded);
  auto outside = Piece(id, "new_file", s->token, total - 1, "ab", total);
  EXPECT_EQ(outside.status().error_code(), err::kInvalidContentRange);
  auto first = Piece(id, "new_file", s->token, 0, bytes.substr(0, kFileChunkBytes), total);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->complete);
  EXPECT_EQ(*ReadBytes(id, "new_file"), bytes);
  EXPECT_EQ(std::get<std::string>(*Record(id)->Get("new_file_name")), "two.bin");
  // dynamics-web-api sends "bytes N-(N-1)/N" after an upload whose size is a multiple of 4 MiB.
  auto trailing = Piece(id, "new_file", s->token, total, "", total);
  ASSERT_TRUE(trailing.ok()) << trailing.status().ToString();
  EXPECT_TRUE(trailing->complete);
  auto late = Piece(id, "new_file", s->token, 0, "x", total);
  EXPECT_EQ(late.status().error_code(), err::kInvalidContentRange);
  EXPECT_EQ(*ReadBytes(id, "new_file"), bytes);
}

TEST_F(FilesTest, ChunkedUploadLimitsAndSessions) {
  Guid id = NewDoc();
  Guid other = NewDoc();
  auto s = Begin(id, "new_small", "s.txt");
  ASSERT_TRUE(s.ok());
  auto too_large = Piece(id, "new_small", s->token, 0, "x", 1025);
  EXPECT_EQ(too_large.status().error_code(), err::kFileTooLarge);
  EXPECT_EQ(Piece(id, "new_small", "no-such-token", 0, "x", 1).status().code(), Code::kNotFound);
  EXPECT_EQ(Piece(other, "new_small", s->token, 0, "x", 1).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Piece(id, "new_file", s->token, 0, "x", 1).status().code(), Code::kInvalidArgument);
  // An empty file is an upload of one empty piece: "bytes 0--1/0".
  auto empty = Piece(id, "new_small", s->token, 0, "", 0);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->complete);
  EXPECT_EQ(*ReadBytes(id, "new_small"), "");
  EXPECT_TRUE(Begin(GuidGenerator::NewSequential(), "new_small").status().code() == Code::kNotFound);
}

TEST_F(FilesTest, ExpiredSessionsAreRefusedAndCleanedUp) {
  Guid id = NewDoc();
  auto s = Begin(id, "new_file");
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(Piece(id, "new_file", s->token, 0, "abc", 10).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM _t_file_chunk"), 1);
  clock_.Advance(kUploadSessionMs);
  auto late = Piece(id, "new_file", s->token, 3, "defghij", 10);
  EXPECT_EQ(late.status().code(), Code::kNotFound);
  // The next session start removes the expired one and its chunks.
  ASSERT_TRUE(Begin(id, "new_file").ok());
  EXPECT_EQ(Count("SELECT count(*) FROM _t_file_chunk"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM _t_file_upload"), 1);
}

TEST_F(FilesTest, DeleteTheFileOrTheRecord) {
  Guid id = NewDoc();
  ASSERT_TRUE(Upload(id, "new_file", Pattern(100)).ok());
  ASSERT_TRUE(Upload(id, "new_photo", Png(300)).ok());
  auto pending = Begin(id, "new_small");
  ASSERT_TRUE(pending.ok());
  ASSERT_TRUE(Piece(id, "new_small", pending->token, 0, "ab", 4).ok());
  int64_t version = Record(id)->version;
  auto removed =
      Wait<bool>([&](auto done) { files_->Delete(caller_, *table_, Col("new_file"), Key(id), std::move(done)); });
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(*removed);
  auto rec = Record(id);
  EXPECT_TRUE(IsNull(*rec->Get("new_file")));
  EXPECT_TRUE(IsNull(*rec->Get("new_file_name")));
  EXPECT_GT(rec->version, version);
  EXPECT_EQ(ReadBytes(id, "new_file").status().code(), Code::kNotFound);
  auto again =
      Wait<bool>([&](auto done) { files_->Delete(caller_, *table_, Col("new_file"), Key(id), std::move(done)); });
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  // Deleting the record deletes the image and the unfinished upload with it.
  EXPECT_EQ(Count("SELECT count(*) FROM _t_file"), 1);
  auto del =
      Wait<Guid>([&](auto done) { env_->service().Delete(caller_, *table_, Key(id), std::nullopt, std::move(done)); });
  ASSERT_TRUE(del.ok()) << del.status().ToString();
  EXPECT_EQ(Count("SELECT count(*) FROM _t_file"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM _t_file_chunk"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM _t_file_upload"), 0);
}

TEST_F(FilesTest, ImagesAreCheckedAndSmallOnesTravelWithTheRecord) {
  Guid id = NewDoc();
  auto not_image = Upload(id, "new_photo", "plain text", "a.png");
  EXPECT_EQ(not_image.status().code(), Code::kInvalidArgument);
  std::string small = Png(2000);
  auto info = Upload(id, "new_photo", small, "face.png");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->mime_type, "image/png");
  auto rec = Record(id);
  EXPECT_EQ(std::get<std::string>(*rec->Get("new_photo")), small);
  EXPECT_EQ(std::get<Guid>(*rec->Get("new_photoid")), info->file_id);
  EXPECT_EQ(std::get<int64_t>(*rec->Get("new_photo_timestamp")), clock_.Now().ms);
  EXPECT_EQ(std::get<std::string>(*rec->Get("new_photo_url")),
            "/api/data/v9.2/new_docs(" + id.ToString() + ")/new_photo/$value?size=full");
  // A large image is stored and readable, but not carried on the record.
  std::string large = Png(kInlineImageBytes + 1);
  ASSERT_TRUE(Upload(id, "new_photo", large, "big.png").ok());
  rec = Record(id);
  EXPECT_TRUE(IsNull(*rec->Get("new_photo")));
  EXPECT_FALSE(IsNull(*rec->Get("new_photoid")));
  EXPECT_EQ(*ReadBytes(id, "new_photo"), large);
  // Chunked image uploads check the first piece.
  auto s = Begin(id, "new_photo", "c.jpg");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(Piece(id, "new_photo", s->token, 0, "GIFnope", 7).status().code(), Code::kInvalidArgument);
  std::string gif = "GIF89a" + Pattern(50);
  ASSERT_TRUE(Piece(id, "new_photo", s->token, 6, gif.substr(6), 56).ok());
  auto done = Piece(id, "new_photo", s->token, 0, gif.substr(0, 6), 56);
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_TRUE(done->complete);
  EXPECT_EQ(std::get<std::string>(*Record(id)->Get("new_photo")), gif);
}

TEST_F(FilesTest, FilesSurviveReopening) {
  Guid id = NewDoc();
  std::string bytes = Pattern(kFileChunkBytes + 1);
  ASSERT_TRUE(Upload(id, "new_file", bytes, "keep.bin").ok());
  files_.reset();
  env_.reset();
  auto env = Environment::Open({.data_dir = dir_.string(),
                                .bootstrap_client_id = "test",
                                .bootstrap_client_secret = "secret",
                                .clock = &clock_});
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  env_ = std::move(env).value();
  cat_ = env_->catalog().Get();
  table_ = cat_->FindTable("new_doc");
  files_ = std::make_unique<FileStore>(env_->service(), clock_);
  EXPECT_EQ(*ReadBytes(id, "new_file"), bytes);
}

TEST(MimeTypeTest, FromTheExtension) {
  EXPECT_EQ(MimeTypeForFileName("a.PDF"), "application/pdf");
  EXPECT_EQ(MimeTypeForFileName("x.tar.gz"), "application/gzip");
  EXPECT_EQ(MimeTypeForFileName("sheet.xlsx"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
  EXPECT_EQ(MimeTypeForFileName("noext"), "application/octet-stream");
  EXPECT_EQ(MimeTypeForFileName("odd.zzz"), "application/octet-stream");
}

}  // namespace
}  // namespace tributary::data

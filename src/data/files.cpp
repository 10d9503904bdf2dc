// The file store of file and image columns (tributary/data/files.h): uploads in one piece or in
// chunks, ranged reads, deletes, and the cleanup that runs when a record is deleted.

#include "tributary/data/files.h"

#include <simdjson.h>

#include <algorithm>
#include <optional>

#include "internal.h"
#include "tributary/base/strings.h"
#include "tributary/security/token.h"

namespace tributary::data {

using catalog::Column;
using catalog::ColumnType;
using catalog::Table;
using storage::SqlValue;

namespace {

constexpr size_t kMaxFileNameChars = 255;

Status InvalidRange(std::string msg) { return InvalidArgument(std::move(msg), err::kInvalidContentRange); }

Status TooLarge(const Column& col, int64_t size) {
  return InvalidArgument("Attachment file size is too big. The file has " + std::to_string(size) +
                             " bytes; the column '" + col.logical_name + "' accepts at most " +
                             std::to_string(col.max_size_kb) + " KB.",
                         err::kFileTooLarge);
}

Status CheckColumn(const Table& t, const Column& col) {
  if (!col.IsFileOrImage() || t.FindColumn(col.logical_name) != &col)
    return InvalidArgument("'" + col.logical_name + "' is not a file or image column of '" + t.logical_name + "'.");
  return Status::Ok();
}

Status CheckSize(const Column& col, int64_t size) {
  if (size > static_cast<int64_t>(col.max_size_kb) * 1024) return TooLarge(col, size);
  return Status::Ok();
}

Status CheckFileName(std::string_view name) {
  if (name.empty()) return InvalidArgument("A file name is required.");
  if (!simdjson::validate_utf8(name.data(), name.size())) return InvalidArgument("The file name is not valid UTF-8.");
  size_t chars = 0;
  for (char ch : name) {
    auto u = static_cast<unsigned char>(ch);
    if (u < 0x20 || u == 0x7f) return InvalidArgument("The file name contains a control character.");
    chars += (u & 0xC0) != 0x80;
  }
  if (chars > kMaxFileNameChars)
    return InvalidArgument("The file name is longer than " + std::to_string(kMaxFileNameChars) + " characters.");
  return Status::Ok();
}

// The MIME type of an image from its first bytes; nullopt when they are not a supported image
// (Dataverse's image columns take jpg, png, gif, bmp and tif).
std::optional<std::string> ImageMimeType(std::string_view b) {
  auto starts = [&](std::string_view magic) { return b.substr(0, magic.size()) == magic; };
  if (starts("\x89PNG\r\n\x1a\n")) return "image/png";
  if (starts("\xff\xd8\xff")) return "image/jpeg";
  if (starts("GIF87a") || starts("GIF89a")) return "image/gif";
  if (starts("BM")) return "image/bmp";
  if (starts(std::string_view("II*\0", 4)) || starts(std::string_view("MM\0*", 4))) return "image/tiff";
  return std::nullopt;
}

Status NotAnImage(const Column& col) {
  return InvalidArgument("The image column '" + col.logical_name +
                         "' accepts jpg, png, gif, bmp and tif images; the bytes sent are none of these.");
}

// The record's id by key, inside the caller's transaction or snapshot.
Result<Guid> FindRecord(storage::Connection& c, const Table& t, const RecordKey& key) {
  ASSIGN_OR_RETURN(KeySql k, KeyToSql(t, key));
  std::optional<Guid> id;
  RETURN_IF_ERROR(
      c.Query("SELECT t0." + Q(t.PrimaryId()->sql_name) + " FROM " + Q(t.sql_table) + " t0 WHERE " + k.where, k.params,
              [&](const storage::Row& r) {
                id = Guid::Parse(r.Text(0));
                return false;
              }));
  if (!id) return NotFoundFor(t, k);
  return *id;
}

Result<std::optional<FileInfo>> FindFile(storage::Connection& c, const Table& t, const Column& col,
                                         const Guid& record) {
  std::optional<FileInfo> info;
  std::vector<SqlValue> p = {t.logical_name, record.ToString(), col.logical_name};
  RETURN_IF_ERROR(
      c.Query("SELECT fileid, filename, mimetype, size, created FROM _t_file WHERE tablename = ? AND recordid = ? AND "
              "columnname = ?",
              p, [&](const storage::Row& r) {
                FileInfo f;
                if (auto g = Guid::Parse(r.Text(0))) f.file_id = *g;
                f.record_id = record;
                f.file_name = std::string(r.Text(1));
                f.mime_type = std::string(r.Text(2));
                f.size = r.Int(3);
                f.created = Timestamp{r.Int(4)};
                info = std::move(f);
                return false;
              }));
  return info;
}

// Stores `bytes` as chunks of `file_id` starting at byte `first`.
Status StoreChunks(storage::Connection& c, const Guid& file_id, int64_t first, std::string_view bytes) {
  for (size_t off = 0; off < bytes.size(); off += kFileChunkBytes) {
    std::string_view piece = bytes.substr(off, kFileChunkBytes);
    std::vector<SqlValue> p = {file_id.ToString(), first + static_cast<int64_t>(off),
                               storage::Blob{std::string(piece)}};
    RETURN_IF_ERROR(c.Exec("INSERT INTO _t_file_chunk (fileid, start, bytes) VALUES (?, ?, ?)", p).status());
  }
  return Status::Ok();
}

// Calls `sink` with the bytes [offset, offset + length) of a file's chunks; fails when some are
// missing. Chunks are at most kFileChunkBytes long, so only those starting after
// offset - kFileChunkBytes can overlap the span.
Status ReadChunks(storage::Connection& c, const Guid& file_id, int64_t offset, int64_t length,
                  const std::function<void(std::string_view)>& sink) {
  if (length <= 0) return Status::Ok();
  int64_t end = offset + length, next = offset;
  std::vector<SqlValue> p = {file_id.ToString(), offset - kFileChunkBytes, end};
  Status gap;
  RETURN_IF_ERROR(
      c.Query("SELECT start, bytes FROM _t_file_chunk WHERE fileid = ? AND start > ? AND start < ? ORDER BY start", p,
              [&](const storage::Row& r) {
                int64_t start = r.Int(0);
                std::string_view bytes = r.Text(1);
                int64_t stop = start + static_cast<int64_t>(bytes.size());
                if (stop <= next) return true;
                if (start > next) {
                  gap = Internal("file " + file_id.ToString() + " is missing bytes at " + std::to_string(next));
                  return false;
                }
                int64_t to = std::min(stop, end);
                sink(bytes.substr(static_cast<size_t>(next - start), static_cast<size_t>(to - next)));
                next = to;
                return next < end;
              }));
  RETURN_IF_ERROR(gap);
  if (next != end) return Internal("file " + file_id.ToString() + " is missing bytes at " + std::to_string(next));
  return Status::Ok();
}

// Deletes the column's file (chunks and row); answers whether there was one.
Result<bool> RemoveFile(storage::Connection& c, const Table& t, const Column& col, const Guid& record) {
  ASSIGN_OR_RETURN(auto existing, FindFile(c, t, col, record));
  if (!existing) return false;
  std::vector<SqlValue> p = {existing->file_id.ToString()};
  RETURN_IF_ERROR(c.Exec("DELETE FROM _t_file_chunk WHERE fileid = ?", p).status());
  RETURN_IF_ERROR(c.Exec("DELETE FROM _t_file WHERE fileid = ?", p).status());
  return true;
}

// Writes the record's columns that show the file (files.h): `info` null clears them.
Status SetRecordColumns(storage::Connection& c, const Table& t, const Column& col, const Guid& record,
                        const FileInfo* info, std::string_view image_bytes) {
  std::string sets;
  std::vector<SqlValue> p;
  auto set = [&](const std::string& name, SqlValue v) {
    const Column* target = t.FindColumn(name);
    if (!target) return;
    sets += (sets.empty() ? "" : ", ") + Q(target->sql_name) + " = ?";
    p.push_back(info ? std::move(v) : SqlValue());
  };
  const std::string& name = col.logical_name;
  if (col.type == ColumnType::kFile) {
    set(name, info ? info->file_id.ToString() : "");
    set(name + "_name", info ? info->file_name : "");
  } else {
    bool inline_bytes = info && info->size <= kInlineImageBytes;
    set(name, inline_bytes ? SqlValue(storage::Blob{std::string(image_bytes)}) : SqlValue());
    set(name + "id", info ? info->file_id.ToString() : "");
    set(name + "_timestamp", info ? info->created.ms : 0);
    set(name + "_url",
        info ? "/api/data/v9.2/" + t.entity_set_name + "(" + record.ToString() + ")/" + name + "/$value?size=full"
             : "");
  }
  p.push_back(record.ToString());
  return c.Exec("UPDATE " + Q(t.sql_table) + " SET " + sets + " WHERE " + Q(t.PrimaryId()->sql_name) + " = ?", p)
      .status();
}

// Makes `info` (whose chunks are stored) the column's file, replacing the previous one.
Status Attach(storage::Connection& c, const Table& t, const Column& col, const FileInfo& info,
              std::string_view image_bytes) {
  RETURN_IF_ERROR(RemoveFile(c, t, col, info.record_id).status());
  std::vector<SqlValue> p = {info.file_id.ToString(), t.logical_name, col.logical_name, info.record_id.ToString(),
                             info.file_name,          info.mime_type, info.size,        info.created.ms};
  RETURN_IF_ERROR(c.Exec("INSERT INTO _t_file (fileid, tablename, columnname, recordid, filename, mimetype, size, "
                         "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         p)
                      .status());
  return SetRecordColumns(c, t, col, info.record_id, &info, image_bytes);
}

// Removes upload sessions that expired, with the chunks of those that never completed (a
// completed session's chunks are its file's).
Status CleanExpiredSessions(storage::Connection& c, Timestamp now) {
  std::vector<SqlValue> p = {now.ms};
  RETURN_IF_ERROR(c.Exec("DELETE FROM _t_file_chunk WHERE fileid IN (SELECT fileid FROM _t_file_upload WHERE expires "
                         "<= ? AND completed = 0)",
                         p)
                      .status());
  return c.Exec("DELETE FROM _t_file_upload WHERE expires <= ?", p).status();
}

struct Session {
  Guid file_id;
  std::string table, column;
  Guid record_id;
  std::string file_name, mime_type;
  std::optional<int64_t> total;
  int64_t received = 0;
  bool completed = false;
  int64_t expires = 0;
};

Result<std::optional<Session>> LoadSession(storage::Connection& c, const std::string& token) {
  std::optional<Session> s;
  std::vector<SqlValue> p = {token};
  RETURN_IF_ERROR(c.Query(
      "SELECT fileid, tablename, columnname, recordid, filename, mimetype, total, received, completed, expires FROM "
      "_t_file_upload WHERE token = ?",
      p, [&](const storage::Row& r) {
        Session x;
        if (auto g = Guid::Parse(r.Text(0))) x.file_id = *g;
        x.table = std::string(r.Text(1));
        x.column = std::string(r.Text(2));
        if (auto g = Guid::Parse(r.Text(3))) x.record_id = *g;
        x.file_name = std::string(r.Text(4));
        x.mime_type = std::string(r.Text(5));
        if (!r.is_null(6)) x.total = r.Int(6);
        x.received = r.Int(7);
        x.completed = r.Int(8) != 0;
        x.expires = r.Int(9);
        s = std::move(x);
        return false;
      }));
  return s;
}

// Adds one piece to a session; see FileStore::AppendPiece.
Result<std::pair<PieceAccepted, std::optional<Guid>>> AppendPieceJob(storage::Connection& c, const Table& t,
                                                                     const Column& col, const RecordKey& key,
                                                                     const std::string& token, const UploadPiece& piece,
                                                                     Timestamp now) {
  using Out = std::pair<PieceAccepted, std::optional<Guid>>;
  ASSIGN_OR_RETURN(auto found, LoadSession(c, token));
  if (!found || found->expires <= now.ms)
    return NotFound("The upload session '" + token + "' does not exist or has expired; start the upload again.");
  Session& s = *found;
  ASSIGN_OR_RETURN(Guid record, FindRecord(c, t, key));
  if (s.table != t.logical_name || s.column != col.logical_name || s.record_id != record)
    return InvalidArgument("The upload session '" + token + "' belongs to the column '" + s.column + "' of " + s.table +
                           " With Id = " + s.record_id.ToString() + ".");
  std::string_view bytes = piece.bytes ? std::string_view(*piece.bytes) : std::string_view();
  int64_t len = static_cast<int64_t>(bytes.size());
  std::string range =
      "bytes " + std::to_string(piece.first) + "-" + std::to_string(piece.last) + "/" + std::to_string(piece.total);
  if (s.completed) {
    if (len == 0 && s.total && piece.first == *s.total && piece.total == *s.total)
      return Out{PieceAccepted{true, *s.total, *s.total}, std::nullopt};
    return InvalidRange("The upload session '" + token + "' is complete; the range " + range + " is not expected.");
  }
  if (len > kFileChunkBytes)
    return InvalidArgument("The chunk has " + std::to_string(len) + " bytes; at most " +
                               std::to_string(kFileChunkBytes) + " bytes are accepted per chunk.",
                           err::kChunkSizeExceeded);
  if (piece.first < 0 || piece.total < 0 || piece.last != piece.first + len - 1)
    return InvalidRange("The Content-Range " + range + " does not match the " + std::to_string(len) + " bytes sent.");
  if (s.total && *s.total != piece.total)
    return InvalidRange("The Content-Range " + range + " gives another total than the earlier chunks (" +
                        std::to_string(*s.total) + ").");
  RETURN_IF_ERROR(CheckSize(col, piece.total));
  if (piece.first + len > piece.total || (len == 0 && piece.first != piece.total))
    return InvalidRange("The Content-Range " + range + " lies outside the file.");
  if (col.type == ColumnType::kImage && piece.total == 0) return NotAnImage(col);
  // Only chunks starting after first - kFileChunkBytes can reach into this one.
  bool overlap = false;
  if (len > 0) {
    std::vector<SqlValue> p = {s.file_id.ToString(), piece.first - kFileChunkBytes, piece.first + len, piece.first};
    RETURN_IF_ERROR(c.Query(
        "SELECT 1 FROM _t_file_chunk WHERE fileid = ? AND start > ? AND start < ? AND start + length(bytes) > ? "
        "LIMIT 1",
        p, [&](const storage::Row&) {
          overlap = true;
          return false;
        }));
  }
  if (overlap) return InvalidRange("The Content-Range " + range + " overlaps bytes already received.");
  if (col.type == ColumnType::kImage && piece.first == 0 && len > 0) {
    auto mime = ImageMimeType(bytes);
    if (!mime) return NotAnImage(col);
    s.mime_type = *mime;
  }
  RETURN_IF_ERROR(StoreChunks(c, s.file_id, piece.first, bytes));
  s.received += len;
  bool complete = s.received == piece.total;
  std::vector<SqlValue> p = {piece.total, s.received, s.mime_type, int64_t{complete ? 1 : 0}, token};
  RETURN_IF_ERROR(
      c.Exec("UPDATE _t_file_upload SET total = ?, received = ?, mimetype = ?, completed = ? WHERE token = ?", p)
          .status());
  if (!complete) return Out{PieceAccepted{false, s.received, piece.total}, std::nullopt};
  FileInfo info{s.file_id, record, s.file_name, s.mime_type, piece.total, now};
  std::string image;
  if (col.type == ColumnType::kImage && info.size <= kInlineImageBytes)
    RETURN_IF_ERROR(ReadChunks(c, info.file_id, 0, info.size, [&](std::string_view b) { image.append(b); }));
  RETURN_IF_ERROR(Attach(c, t, col, info, image));
  return Out{PieceAccepted{true, s.received, piece.total}, record};
}

// Runs `fn` in a transaction of the organization service and hands its value to `done` after the
// commit. File changes and the record's new versionnumber/modifiedon/modifiedby (Touch) commit
// together.
template <typename T, typename Fn>
void RunJob(OrganizationService& svc, const CallerContext& caller, Fn fn, Done<T> done) {
  auto result = std::make_shared<std::optional<T>>();
  svc.Transact(
      caller,
      [fn = std::move(fn), result](WriteScope& s) -> Status {
        Result<T> r = fn(s);
        if (!r.ok()) return r.status();
        *result = std::move(r).value();
        return Status::Ok();
      },
      [result, done = std::move(done)](Status s) {
        if (!s.ok())
          done(std::move(s));
        else
          done(std::move(**result));
      });
}

// An empty update of the record: it moves versionnumber, modifiedon and modifiedby, as a file
// change does in Dataverse (the file id is a column of the row).
Status Touch(WriteScope& s, const Table& table, const Guid& record) {
  EntityInput in;
  in.table = &table;
  RecordKey key;
  key.id = record;
  return s.Upsert(in, key, UpsertMode::kUpdateOnly, std::nullopt).status();
}

}  // namespace

Status DeleteRecordFiles(storage::Connection& c, const Table& t, const Guid& record) {
  bool has_files =
      std::any_of(t.columns.begin(), t.columns.end(), [](const auto& col) { return col->IsFileOrImage(); });
  if (!has_files) return Status::Ok();
  std::vector<SqlValue> p = {t.logical_name, record.ToString()};
  RETURN_IF_ERROR(
      c.Exec("DELETE FROM _t_file_chunk WHERE fileid IN (SELECT fileid FROM _t_file WHERE tablename = ? AND "
             "recordid = ?)",
             p)
          .status());
  RETURN_IF_ERROR(c.Exec("DELETE FROM _t_file WHERE tablename = ? AND recordid = ?", p).status());
  RETURN_IF_ERROR(c.Exec("DELETE FROM _t_file_chunk WHERE fileid IN (SELECT fileid FROM _t_file_upload WHERE tablename "
                         "= ? AND recordid = ? AND completed = 0)",
                         p)
                      .status());
  return c.Exec("DELETE FROM _t_file_upload WHERE tablename = ? AND recordid = ?", p).status();
}

FileStore::FileStore(OrganizationService& service, const Clock& clock) : svc_(service), clock_(clock) {}

void FileStore::Upload(const CallerContext& caller, const Table& table, const Column& column, RecordKey key,
                       std::string file_name, std::string mime_type, std::shared_ptr<const std::string> bytes,
                       Done<FileInfo> done) {
  Timestamp now = clock_.Now();
  RunJob<FileInfo>(
      svc_, caller,
      [&table, &column, key = std::move(key), name = std::move(file_name), mime = std::move(mime_type), bytes,
       now](WriteScope& s) -> Result<FileInfo> {
        storage::Connection& c = s.connection();
        RETURN_IF_ERROR(CheckColumn(table, column));
        RETURN_IF_ERROR(CheckFileName(name));
        std::string_view data = bytes ? std::string_view(*bytes) : std::string_view();
        ASSIGN_OR_RETURN(Guid record, FindRecord(c, table, key));
        RETURN_IF_ERROR(CheckSize(column, static_cast<int64_t>(data.size())));
        FileInfo info{GuidGenerator::NewSequential(), record, name, mime, static_cast<int64_t>(data.size()), now};
        if (column.type == ColumnType::kImage) {
          auto image = ImageMimeType(data);
          if (!image) return NotAnImage(column);
          info.mime_type = *image;
        } else if (info.mime_type.empty()) {
          info.mime_type = MimeTypeForFileName(name);
        }
        RETURN_IF_ERROR(StoreChunks(c, info.file_id, 0, data));
        RETURN_IF_ERROR(Attach(c, table, column, info, data));
        RETURN_IF_ERROR(Touch(s, table, record));
        return info;
      },
      std::move(done));
}

void FileStore::BeginUpload(const CallerContext& caller, const Table& table, const Column& column, RecordKey key,
                            std::string file_name, std::string mime_type, Done<UploadStarted> done) {
  Timestamp now = clock_.Now();
  RunJob<UploadStarted>(
      svc_, caller,
      [&table, &column, key = std::move(key), name = std::move(file_name), mime = std::move(mime_type),
       now](WriteScope& s) -> Result<UploadStarted> {
        storage::Connection& c = s.connection();
        RETURN_IF_ERROR(CheckColumn(table, column));
        RETURN_IF_ERROR(CheckFileName(name));
        RETURN_IF_ERROR(CleanExpiredSessions(c, now));
        ASSIGN_OR_RETURN(Guid record, FindRecord(c, table, key));
        UploadStarted started{security::RandomSecret(24), record};
        std::vector<SqlValue> p = {started.token,
                                   GuidGenerator::NewSequential().ToString(),
                                   table.logical_name,
                                   column.logical_name,
                                   record.ToString(),
                                   name,
                                   mime.empty() ? MimeTypeForFileName(name) : mime,
                                   now.ms,
                                   now.ms + kUploadSessionMs};
        RETURN_IF_ERROR(c.Exec("INSERT INTO _t_file_upload (token, fileid, tablename, columnname, recordid, filename, "
                               "mimetype, total, received, completed, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?, "
                               "NULL, 0, 0, ?, ?)",
                               p)
                            .status());
        return started;
      },
      std::move(done));
}

void FileStore::AppendPiece(const CallerContext& caller, const Table& table, const Column& column, RecordKey key,
                            std::string token, UploadPiece piece, Done<PieceAccepted> done) {
  using Out = std::pair<PieceAccepted, std::optional<Guid>>;
  Timestamp now = clock_.Now();
  RunJob<PieceAccepted>(
      svc_, caller,
      [&table, &column, key = std::move(key), token = std::move(token), piece = std::move(piece),
       now](WriteScope& s) -> Result<PieceAccepted> {
        RETURN_IF_ERROR(CheckColumn(table, column));
        ASSIGN_OR_RETURN(Out out, AppendPieceJob(s.connection(), table, column, key, token, piece, now));
        if (out.second) RETURN_IF_ERROR(Touch(s, table, *out.second));
        return out.first;
      },
      std::move(done));
}

void FileStore::Delete(const CallerContext& caller, const Table& table, const Column& column, RecordKey key,
                       Done<bool> done) {
  RunJob<bool>(
      svc_, caller,
      [&table, &column, key = std::move(key)](WriteScope& s) -> Result<bool> {
        storage::Connection& c = s.connection();
        RETURN_IF_ERROR(CheckColumn(table, column));
        ASSIGN_OR_RETURN(Guid record, FindRecord(c, table, key));
        ASSIGN_OR_RETURN(bool existed, RemoveFile(c, table, column, record));
        if (existed) {
          RETURN_IF_ERROR(SetRecordColumns(c, table, column, record, nullptr, {}));
          RETURN_IF_ERROR(Touch(s, table, record));
        }
        return existed;
      },
      std::move(done));
}

Result<FileInfo> FileStore::Read(const Table& table, const Column& column, const RecordKey& key,
                                 const std::function<Result<ByteSpan>(const FileInfo&)>& plan,
                                 const std::function<void(std::string_view)>& sink) {
  RETURN_IF_ERROR(CheckColumn(table, column));
  auto lease = svc_.engine().Read();
  storage::Connection& c = *lease;
  // One read transaction: the file's row and its chunks come from the same snapshot even when an
  // upload replaces the file meanwhile.
  RETURN_IF_ERROR(c.Exec("BEGIN").status());
  auto read = [&]() -> Result<FileInfo> {
    ASSIGN_OR_RETURN(Guid record, FindRecord(c, table, key));
    ASSIGN_OR_RETURN(auto info, FindFile(c, table, column, record));
    if (!info)
      return NotFound("No file is attached to the column '" + column.logical_name + "' of " + table.logical_name +
                      " With Id = " + record.ToString() + ".");
    ASSIGN_OR_RETURN(ByteSpan span, plan(*info));
    if (span.offset < 0 || span.length < 0 || span.offset + span.length > info->size)
      return Internal("a read plan asked for bytes outside the file");
    RETURN_IF_ERROR(ReadChunks(c, info->file_id, span.offset, span.length, sink));
    return std::move(*info);
  };
  Result<FileInfo> r = read();
  Status end = c.Exec("COMMIT").status();
  if (!end.ok()) (void)c.Exec("ROLLBACK");
  return r;
}

std::string MimeTypeForFileName(std::string_view name) {
  static const std::pair<std::string_view, std::string_view> kTypes[] = {
      {"pdf", "application/pdf"},
      {"txt", "text/plain"},
      {"csv", "text/csv"},
      {"htm", "text/html"},
      {"html", "text/html"},
      {"md", "text/markdown"},
      {"xml", "application/xml"},
      {"json", "application/json"},
      {"rtf", "application/rtf"},
      {"zip", "application/zip"},
      {"gz", "application/gzip"},
      {"7z", "application/x-7z-compressed"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"bmp", "image/bmp"},
      {"tif", "image/tiff"},
      {"tiff", "image/tiff"},
      {"svg", "image/svg+xml"},
      {"webp", "image/webp"},
      {"ico", "image/x-icon"},
      {"mp3", "audio/mpeg"},
      {"wav", "audio/wav"},
      {"mp4", "video/mp4"},
      {"mov", "video/quicktime"},
      {"doc", "application/msword"},
      {"dot", "application/msword"},
      {"xls", "application/vnd.ms-excel"},
      {"ppt", "application/vnd.ms-powerpoint"},
      {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
      {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
      {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
      {"msg", "application/vnd.ms-outlook"},
      {"eml", "message/rfc822"},
  };
  auto dot = name.rfind('.');
  if (dot != std::string_view::npos) {
    std::string ext = ToLower(name.substr(dot + 1));
    for (const auto& [e, type] : kTypes)
      if (e == ext) return std::string(type);
  }
  return "application/octet-stream";
}

}  // namespace tributary::data

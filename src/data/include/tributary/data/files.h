#pragma once
// The file store: the bytes of file and image columns, kept in the environment's store beside the
// records (tables _t_file, _t_file_chunk and _t_file_upload; docs/formats/store.md).
//
// A file belongs to one (table, record, column). Uploading replaces the column's previous file;
// deleting the record deletes its files in the same transaction (Writer::Delete calls
// DeleteRecordFiles). The record row carries what Dataverse returns with the record, kept up to
// date by this store:
//   file column  <col>            the file id (Edm.Guid), null without a file
//                <col>_name       the file name
//   image column <col>            the image bytes (Edm.Binary) when the image is at most
//                                 kInlineImageBytes, else null: Dataverse returns a 144×144
//                                 thumbnail there, and Tributary does not resize images
//                <col>id          the image's file id
//                <col>_timestamp  upload time, milliseconds since 1970
//                <col>_url        "/api/data/v9.2/{set}({id})/{col}/$value?size=full"
// The record's versionnumber, modifiedon and modifiedby change with every upload and delete, in
// the same transaction as the file change.
//
// Bytes are stored in chunks of at most kFileChunkBytes keyed by their byte offset, so a ranged
// read touches only the chunks it needs. Large uploads arrive in pieces through an upload session
// (Dataverse's chunked upload): each piece is stored as it arrives and becomes the column's file
// when the last byte is in. Sessions live kUploadSessionMs; expired ones are removed when the next
// session starts.
//
// Threading: writes run as jobs on the store's writer thread; `done` is called on that thread once
// the change is durable (hand the result off, as with OrganizationService). Reads run on the
// calling thread with a pooled read connection. Tables and columns passed in must outlive the
// call: hold the catalog snapshot they come from.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "tributary/base/status.h"
#include "tributary/base/time.h"
#include "tributary/data/service.h"

namespace tributary::err {
// Platform error numbers of file operations (Dataverse's names), all HTTP 400.
inline constexpr uint32_t kFileTooLarge = 0x80044a02;         // unManagedidsattachmentinvalidfilesize
inline constexpr uint32_t kInvalidContentRange = 0x80090005;  // InvalidContentRangeForFileUpload
inline constexpr uint32_t kChunkSizeExceeded = 0x80090008;
inline constexpr uint32_t kMultipleRangesNotSupported = 0x80090017;
}  // namespace tributary::err

namespace tributary::data {

// Largest piece of a chunked upload, and the unit of storage (x-ms-chunk-size).
inline constexpr int64_t kFileChunkBytes = 4 << 20;
// Images up to this size are also returned with the record (<col>); larger ones read as null there.
inline constexpr int64_t kInlineImageBytes = 128 << 10;
// How long a chunked upload may take, from its start.
inline constexpr int64_t kUploadSessionMs = 24LL * 3600 * 1000;

struct FileInfo {
  Guid file_id;
  Guid record_id;
  std::string file_name;
  std::string mime_type;
  int64_t size = 0;
  Timestamp created;
};

// One piece of a chunked upload: "Content-Range: bytes first-last/total" and the bytes sent.
// An empty piece has last = first - 1.
struct UploadPiece {
  int64_t first = 0;
  int64_t last = -1;
  int64_t total = 0;
  std::shared_ptr<const std::string> bytes;
};

struct UploadStarted {
  std::string token;  // URL-safe; names the session in later pieces
  Guid record_id;
};

struct PieceAccepted {
  bool complete = false;  // every byte is in: the file replaced the column's previous one
  int64_t received = 0;
  int64_t total = 0;
};

// A byte range to read: [offset, offset + length).
struct ByteSpan {
  int64_t offset = 0;
  int64_t length = 0;
};

class FileStore {
 public:
  // Cheap to construct and stateless: operations may complete after the FileStore is gone.
  // `service` and `clock` must outlive every operation.
  FileStore(OrganizationService& service, const Clock& clock);

  // Stores `bytes` as the file of `column` on the record, replacing any previous file.
  // `mime_type` empty: from the file name's extension (images: from their content). Fails with
  // NotFound when the record does not exist, err::kFileTooLarge beyond the column's MaxSizeInKB,
  // and InvalidArgument for a bad file name or, on image columns, bytes that are not an image.
  void Upload(const CallerContext& caller, const catalog::Table& table, const catalog::Column& column, RecordKey key,
              std::string file_name, std::string mime_type, std::shared_ptr<const std::string> bytes,
              Done<FileInfo> done);

  // Starts a chunked upload to `column` of the record (which must exist).
  void BeginUpload(const CallerContext& caller, const catalog::Table& table, const catalog::Column& column,
                   RecordKey key, std::string file_name, std::string mime_type, Done<UploadStarted> done);

  // Adds one piece to the session `token`, which must belong to this record and column. Pieces
  // may come in any order but must not overlap; the total must be the same in every piece. When
  // the last byte is in, the file replaces the column's previous one. After completion, an empty
  // piece at the end ("bytes N-(N-1)/N", which dynamics-web-api sends when the size is a multiple
  // of the chunk size) is accepted and changes nothing. Errors: NotFound for an unknown or
  // expired session, err::kInvalidContentRange for ranges that do not fit, err::kChunkSizeExceeded
  // for a piece over kFileChunkBytes, err::kFileTooLarge for a total over MaxSizeInKB.
  void AppendPiece(const CallerContext& caller, const catalog::Table& table, const catalog::Column& column,
                   RecordKey key, std::string token, UploadPiece piece, Done<PieceAccepted> done);

  // Removes the column's file (the record stays; the column reads null). Answers whether there
  // was a file. NotFound when the record does not exist.
  void Delete(const CallerContext& caller, const catalog::Table& table, const catalog::Column& column, RecordKey key,
              Done<bool> done);

  // Reads the column's file in one consistent snapshot: `plan` sees the file's info and returns
  // the span to read (or an error, returned as is); `sink` then receives the span's bytes in
  // order, in pieces. NotFound when the record does not exist or has no file in the column.
  Result<FileInfo> Read(const catalog::Table& table, const catalog::Column& column, const RecordKey& key,
                        const std::function<Result<ByteSpan>(const FileInfo&)>& plan,
                        const std::function<void(std::string_view)>& sink);

 private:
  OrganizationService& svc_;
  const Clock& clock_;
};

// The MIME type for a file name's extension ("report.pdf" → "application/pdf");
// "application/octet-stream" when the extension is unknown.
std::string MimeTypeForFileName(std::string_view file_name);

}  // namespace tributary::data

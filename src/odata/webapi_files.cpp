// File and image columns of the Web API (dataverse-webapi.md §5.8): uploads in one request or in
// chunks through an upload session, downloads with Range (raw bytes from …/{col}/$value, or the
// base64 JSON that dynamics-web-api's downloadFile reads from …/{col}?size=full), and DELETE of
// the file. The bytes live in the file store (tributary/data/files.h).

#include <simdjson.h>

#include <optional>

#include "tributary/base/strings.h"
#include "tributary/data/files.h"
#include "tributary/odata/errors.h"
#include "webapi_internal.h"

namespace tributary::odata {

bool IsFileColumn(const catalog::Column& col) { return col.IsFileOrImage(); }

namespace {

using catalog::Column;
using catalog::Table;
using data::kFileChunkBytes;

// The server's list plus the headers of file responses, so that browsers may read them.
constexpr const char* kExposeFileHeaders =
    "Preference-Applied, OData-EntityId, Location, ETag, OData-Version, Content-Encoding, Transfer-Encoding, "
    "Content-Length, Retry-After, x-ms-dop-hint, x-ms-chunk-size, x-ms-file-name, x-ms-file-size, mimetype, "
    "Content-Range, Content-Disposition, Accept-Ranges";

// A request's "Range: bytes=…" header: first-last, first- or -suffix.
struct RangeRequest {
  std::optional<int64_t> first, last, suffix;
};

std::optional<int64_t> ParseCount(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  int64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return std::nullopt;
    v = v * 10 + (ch - '0');
  }
  return v;
}

Result<std::optional<RangeRequest>> ParseRange(const std::string* header) {
  if (!header) return std::optional<RangeRequest>();
  std::string_view h = Trim(*header);
  auto bad = [&] {
    return InvalidArgument("The Range header '" + *header + "' is not valid; send bytes=first-last, e.g. bytes=0-" +
                           std::to_string(kFileChunkBytes - 1) + ".");
  };
  if (!StartsWithIgnoreCase(h, "bytes=")) return bad();
  h.remove_prefix(6);
  if (h.find(',') != std::string_view::npos)
    return InvalidArgument("Only one byte range can be requested at a time.", err::kMultipleRangesNotSupported);
  auto dash = h.find('-');
  if (dash == std::string_view::npos) return bad();
  std::string_view a = Trim(h.substr(0, dash)), b = Trim(h.substr(dash + 1));
  RangeRequest r;
  if (a.empty()) {
    r.suffix = ParseCount(b);
    if (!r.suffix) return bad();
    return std::optional<RangeRequest>(r);
  }
  r.first = ParseCount(a);
  if (!r.first) return bad();
  if (!b.empty()) {
    r.last = ParseCount(b);
    if (!r.last || *r.last < *r.first) return bad();
  }
  return std::optional<RangeRequest>(r);
}

// "Content-Range: bytes first-last/total" of an upload piece. An empty piece is written
// "bytes N-(N-1)/N" (so "bytes 0--1/0" for an empty file).
Result<data::UploadPiece> ParseContentRange(const std::string& header) {
  auto bad = [&] {
    return InvalidArgument("The Content-Range header '" + header + "' is not valid; send bytes first-last/total.",
                           err::kInvalidContentRange);
  };
  std::string_view h = Trim(header);
  if (!StartsWithIgnoreCase(h, "bytes ")) return bad();
  h = Trim(h.substr(6));
  auto slash = h.find('/');
  auto dash = h.find('-');
  if (slash == std::string_view::npos || dash == std::string_view::npos || dash > slash) return bad();
  std::string_view last = h.substr(dash + 1, slash - dash - 1);
  bool negative = !last.empty() && last.front() == '-';
  if (negative) last.remove_prefix(1);
  auto first = ParseCount(h.substr(0, dash));
  auto last_v = ParseCount(last);
  auto total = ParseCount(h.substr(slash + 1));
  if (!first || !last_v || !total) return bad();
  data::UploadPiece p;
  p.first = *first;
  p.last = negative ? -*last_v : *last_v;
  p.total = *total;
  return p;
}

// The file name of an upload: the x-ms-file-name header, else the query option of that name
// (percent-decoded UTF-8). Header bytes that are not UTF-8 are read as ISO-8859-1, which is what
// Node and browsers send for characters up to U+00FF.
std::string FileNameOf(const WebApi::Call& c) {
  if (const std::string* h = c.http.Header("x-ms-file-name")) {
    std::string_view v = Trim(*h);
    if (simdjson::validate_utf8(v.data(), v.size())) return std::string(v);
    std::string out;
    for (char ch : v) AppendUtf8(out, static_cast<unsigned char>(ch));
    return out;
  }
  if (const std::string* q = c.Option("x-ms-file-name")) return *q;
  return {};
}

Status NeedFileName() {
  return InvalidArgument(
      "The file name is missing: send it in the x-ms-file-name header or the x-ms-file-name query option.");
}

// A UTF-8 name as a header value. HTTP clients (Node, Python, .NET) read header bytes as
// ISO-8859-1, so names whose characters all fit are sent that way; others stay UTF-8 bytes.
std::string HeaderText(std::string_view utf8) {
  std::string out;
  for (size_t i = 0; i < utf8.size(); ++i) {
    auto b = static_cast<unsigned char>(utf8[i]);
    if (b < 0x80) {
      out.push_back(static_cast<char>(b));
    } else if ((b == 0xC2 || b == 0xC3) && i + 1 < utf8.size()) {
      out.push_back(static_cast<char>(((b & 0x03) << 6) | (static_cast<unsigned char>(utf8[++i]) & 0x3F)));
    } else {
      return std::string(utf8);
    }
  }
  return out;
}

// "attachment; filename=\"…\"", with filename* for names beyond ASCII.
std::string ContentDisposition(std::string_view name) {
  std::string ascii;
  bool wide = false;
  for (char ch : name) {
    if (static_cast<unsigned char>(ch) >= 0x80) {
      wide = true;
      ascii.push_back('_');
      continue;
    }
    if (ch == '"' || ch == '\\') ascii.push_back('\\');
    ascii.push_back(ch);
  }
  std::string out = "attachment; filename=\"" + ascii + "\"";
  if (wide) out += "; filename*=UTF-8''" + PercentEncode(name);
  return out;
}

// Base64 of bytes that arrive in pieces, appended to `out` as they come.
class Base64Appender {
 public:
  explicit Base64Appender(std::string& out) : out_(out) {}
  void Add(std::string_view b) {
    while (!b.empty() && (carry_.size() % 3) != 0) {
      carry_.push_back(b.front());
      b.remove_prefix(1);
      if (carry_.size() == 3) {
        out_ += Base64Encode(carry_);
        carry_.clear();
      }
    }
    size_t whole = b.size() - b.size() % 3;
    if (whole) out_ += Base64Encode(b.substr(0, whole));
    carry_.append(b.substr(whole));
  }
  void Finish() {
    if (!carry_.empty()) out_ += Base64Encode(carry_);
    carry_.clear();
  }

 private:
  std::string& out_;
  std::string carry_;  // 0–2 bytes not yet encoded
};

void AddFileHeaders(HttpResponse& r, const data::FileInfo& f) {
  r.Set("x-ms-file-name", HeaderText(f.file_name));
  r.Set("x-ms-file-size", std::to_string(f.size));
  r.Set("mimetype", f.mime_type);
  r.Set("Content-Disposition", ContentDisposition(f.file_name));
  r.Set("Accept-Ranges", "bytes");
  r.Set("Access-Control-Expose-Headers", kExposeFileHeaders);
}

}  // namespace

void WebApi::FileColumn(CallPtr c, const Table& table, data::RecordKey key, const Column& col) {
  const std::string& m = c->http.method;
  const Segment& s1 = c->segs[1];
  bool raw = c->segs.size() == 3 && c->segs[2].name == "$value";
  if (c->segs.size() > (raw ? 3u : 2u)) return c->Fail(NotFoundSegment(c->segs.back().name));
  if (s1.has_parens || !s1.keys.empty()) return c->Fail(QueryError("The column '" + s1.name + "' takes no key."));
  if (c->changeset)
    return c->Fail(InvalidArgument("File and image columns cannot be uploaded, downloaded or deleted inside $batch.",
                                   err::kNotSupported));
  data::FileStore files(env_.service(), env_.clock());
  const std::string set = table.entity_set_name;

  if (m == "GET") {
    // …/{col}/$value answers the bytes; …/{col} (dynamics-web-api's downloadFile, with ?size=full)
    // answers {"value":"<base64>"}. Both honour one Range; images are always served at full size.
    auto range = ParseRange(c->http.Header("range"));
    if (!range.ok()) return c->Fail(range.status());
    HttpResponse r;
    bool unsatisfiable = false;
    int64_t file_size = 0;
    std::optional<Base64Appender> b64;
    auto info = files.Read(
        table, col, key,
        [&](const data::FileInfo& f) -> Result<data::ByteSpan> {
          file_size = f.size;
          data::ByteSpan span{0, f.size};
          if (*range) {
            const RangeRequest& rr = **range;
            int64_t first = rr.suffix ? std::max<int64_t>(0, f.size - *rr.suffix) : *rr.first;
            if (first > f.size || (rr.suffix && *rr.suffix == 0)) {
              unsatisfiable = true;
              return InvalidArgument("The range " + *c->http.Header("range") + " lies outside the file of " +
                                     std::to_string(f.size) + " bytes.");
            }
            int64_t last = rr.last ? std::min(*rr.last, f.size - 1) : f.size - 1;
            span = {first, std::max<int64_t>(0, last - first + 1)};
            r.status = 206;
            // A range that starts at the end is empty (dynamics-web-api asks for one after a file
            // whose size is a multiple of its 4 MiB chunk).
            r.Set("Content-Range", span.length ? "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" +
                                                     std::to_string(f.size)
                                               : "bytes */" + std::to_string(f.size));
            r.Set("x-ms-chunk-size", std::to_string(kFileChunkBytes));
          }
          if (raw) {
            r.body.reserve(static_cast<size_t>(span.length));
          } else {
            std::string context = c->root + "$metadata#" + set + "(" + f.record_id.ToString() + ")/" + col.logical_name;
            r.body.reserve(context.size() + 40 + static_cast<size_t>(span.length / 3 + 1) * 4);
            r.body = "{\"@odata.context\":";
            AppendJsonString(r.body, context);
            r.body += ",\"value\":\"";  // the base64 text is streamed in; base64 needs no escaping
            b64.emplace(r.body);
          }
          return span;
        },
        [&](std::string_view bytes) {
          if (b64)
            b64->Add(bytes);
          else
            r.body.append(bytes);
        });
    if (!info.ok()) {
      HttpResponse e = ErrorResponse(info.status());
      if (unsatisfiable) {
        e.status = 416;  // Range Not Satisfiable
        e.Set("Content-Range", "bytes */" + std::to_string(file_size));
      }
      return c->Reply(std::move(e));
    }
    if (b64) {
      b64->Finish();
      r.body += "\"}";
      r.Set("Content-Type", kJsonContentType);
    } else {
      r.Set("Content-Type", "application/octet-stream");
    }
    AddFileHeaders(r, *info);
    AddODataHeaders(r);
    return c->Reply(std::move(r));
  }

  if (raw) return c->Fail(MethodNotAllowed(m, "the $value of a file column (upload to …/" + col.logical_name + ")"));

  if (m == "DELETE") {
    return files.Delete(c->caller, table, col, std::move(key), [this, c](Result<bool> r) {
      Hop([c, r = std::move(r)]() {
        if (!r.ok()) return c->Fail(r.status());
        c->Reply(NoContent());
      });
    });
  }

  if (m != "PATCH")
    return c->Fail(MethodNotAllowed(m, "a file column (upload with PATCH, download with GET, remove with DELETE)"));

  const std::string* content_range = c->http.Header("content-range");
  if (const std::string* token = c->Option("sessiontoken")) {
    // One piece of a chunked upload.
    if (!content_range)
      return c->Fail(InvalidArgument("The chunks of an upload need a Content-Range header (bytes first-last/total).",
                                     err::kInvalidContentRange));
    auto piece = ParseContentRange(*content_range);
    if (!piece.ok()) return c->Fail(piece.status());
    piece->bytes = std::make_shared<const std::string>(std::move(c->http.body));
    return files.AppendPiece(c->caller, table, col, std::move(key), *token, std::move(piece).value(),
                             [this, c](Result<data::PieceAccepted> r) {
                               Hop([c, r = std::move(r)]() {
                                 if (!r.ok()) return c->Fail(r.status());
                                 HttpResponse resp = NoContent();
                                 if (!r->complete) resp.status = 206;
                                 c->Reply(std::move(resp));
                               });
                             });
  }
  if (content_range)
    return c->Fail(InvalidArgument(
        "A Content-Range needs an upload session: start one with x-ms-transfer-mode: chunked and send the chunks to "
        "the Location it answers.",
        err::kInvalidContentRange));
  std::string name = FileNameOf(*c);
  if (name.empty()) return c->Fail(NeedFileName());
  const std::string* mode = c->http.Header("x-ms-transfer-mode");
  if (mode && EqualsIgnoreCase(Trim(*mode), "chunked")) {
    if (!c->http.body.empty())
      return c->Fail(InvalidArgument(
          "The request that starts a chunked upload has no body; send the bytes to the Location it answers."));
    return files.BeginUpload(c->caller, table, col, std::move(key), std::move(name), "",
                             [this, c, set, column = col.logical_name](Result<data::UploadStarted> r) {
                               Hop([c, set, column, r = std::move(r)]() {
                                 if (!r.ok()) return c->Fail(r.status());
                                 // An empty body and no OData-EntityId: dynamics-web-api reads Location only then.
                                 HttpResponse resp;
                                 resp.status = 200;
                                 resp.Set("Location", c->root + set + "(" + r->record_id.ToString() + ")/" + column +
                                                          "?sessiontoken=" + r->token);
                                 resp.Set("x-ms-chunk-size", std::to_string(kFileChunkBytes));
                                 resp.Set("Accept-Ranges", "bytes");
                                 resp.Set("Access-Control-Expose-Headers", kExposeFileHeaders);
                                 AddODataHeaders(resp);
                                 c->Reply(std::move(resp));
                               });
                             });
  }
  if (mode && !Trim(*mode).empty())
    return c->Fail(InvalidArgument("The x-ms-transfer-mode '" + *mode + "' is not supported; use chunked."));
  // One request with the whole file.
  std::string mime;
  if (const std::string* ct = c->http.Header("content-type")) {
    std::string type = ToLower(Trim(std::string_view(*ct).substr(0, ct->find(';'))));
    if (type == "application/json")
      return c->Fail(InvalidArgument("Send the file's bytes with Content-Type: application/octet-stream, not JSON."));
    if (type.find('/') != std::string::npos && type != "application/octet-stream") mime = type;
  }
  auto bytes = std::make_shared<const std::string>(std::move(c->http.body));
  files.Upload(c->caller, table, col, std::move(key), std::move(name), std::move(mime), std::move(bytes),
               [this, c](Result<data::FileInfo> r) {
                 Hop([c, r = std::move(r)]() {
                   if (!r.ok()) return c->Fail(r.status());
                   c->Reply(NoContent());
                 });
               });
}

}  // namespace tributary::odata

#include "batch.h"

#include <charconv>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tributary/base/guid.h"
#include "tributary/base/strings.h"

namespace tributary::odata {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr size_t kMaxBoundary = 70;  // RFC 2046 §5.1.1

bool IsBlankChar(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && IsBlankChar(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlankChar(s.back())) s.remove_suffix(1);
  return s;
}

// Client text quoted in an error message: at most 60 bytes, anything but printable ASCII as '?',
// so that messages stay valid UTF-8 inside JSON error bodies.
std::string Quote(std::string_view s) {
  constexpr size_t kMax = 60;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  if (s.size() > kMax) out += "...";
  out += "'";
  return out;
}

// Where a problem is, for messages: "$batch part 3" or "$batch part 3, change set part 2".
std::string Where(size_t part, size_t sub = 0) {
  std::string s = "$batch part " + std::to_string(part);
  if (sub != 0) s += ", change set part " + std::to_string(sub);
  return s;
}

// One line of `s` starting at `begin`: `text` without its line break (LF or CRLF); `next` is the
// offset after the break (s.size() for a last line without one).
struct Line {
  std::string_view text;
  size_t begin = 0;
  size_t next = 0;
};

Line ReadLine(std::string_view s, size_t begin) {
  size_t lf = s.find('\n', begin);
  size_t end = lf == std::string_view::npos ? s.size() : lf;
  Line line;
  line.begin = begin;
  line.next = lf == std::string_view::npos ? s.size() : lf + 1;
  if (end > begin && s[end - 1] == '\r') --end;
  line.text = s.substr(begin, end - begin);
  return line;
}

// ---- Content-Type -------------------------------------------------------------------------------

struct MediaType {
  std::string type;                                         // "type/subtype", lower-case
  std::vector<std::pair<std::string, std::string>> params;  // names lower-case, values unquoted

  const std::string* Param(std::string_view name) const {
    for (const auto& [k, v] : params)
      if (k == name) return &v;
    return nullptr;
  }
};

// Parses `type/subtype *(; name=value)` with quoted-string values (RFC 9110 §8.3.1), leniently:
// white space is allowed around ';' and '='. Fails only on an unterminated quoted string.
Result<MediaType> ParseMediaType(std::string_view s, const std::string& where) {
  MediaType mt;
  size_t semi = s.find(';');
  mt.type = ToLower(TrimBlanks(s.substr(0, semi)));
  size_t i = semi == std::string_view::npos ? s.size() : semi;
  while (i < s.size()) {
    ++i;  // past ';'
    size_t name_begin = i;
    while (i < s.size() && s[i] != '=' && s[i] != ';') ++i;
    std::string name = ToLower(TrimBlanks(s.substr(name_begin, i - name_begin)));
    std::string value;
    if (i < s.size() && s[i] == '=') {
      ++i;
      while (i < s.size() && IsBlankChar(s[i])) ++i;
      if (i < s.size() && s[i] == '"') {
        ++i;
        bool closed = false;
        while (i < s.size()) {
          char c = s[i++];
          if (c == '"') {
            closed = true;
            break;
          }
          if (c == '\\' && i < s.size()) c = s[i++];
          value.push_back(c);
        }
        if (!closed) return PayloadError(where + ": unterminated quoted string in Content-Type " + Quote(s) + ".");
        while (i < s.size() && s[i] != ';') ++i;  // ignore anything between the quote and ';'
      } else {
        size_t value_begin = i;
        while (i < s.size() && s[i] != ';') ++i;
        value = std::string(TrimBlanks(s.substr(value_begin, i - value_begin)));
      }
    }
    if (!name.empty()) mt.params.emplace_back(std::move(name), std::move(value));
  }
  return mt;
}

// The boundary of a multipart/mixed Content-Type value.
Result<std::string> MultipartBoundary(std::string_view content_type, const std::string& where) {
  ASSIGN_OR_RETURN(MediaType mt, ParseMediaType(content_type, where));
  if (mt.type != "multipart/mixed")
    return PayloadError(where + ": expected Content-Type multipart/mixed, got " + Quote(content_type) + ".");
  const std::string* b = mt.Param("boundary");
  if (b == nullptr) return PayloadError(where + ": the multipart/mixed Content-Type has no boundary parameter.");
  if (b->empty() || b->size() > kMaxBoundary)
    return PayloadError(where + ": the multipart boundary must be 1 to 70 characters long.");
  for (char c : *b) {
    if (c < 0x20 || c > 0x7e || c == '"')
      return PayloadError(where + ": invalid character in the multipart boundary " + Quote(*b) + ".");
  }
  if (b->back() == ' ') return PayloadError(where + ": the multipart boundary must not end in a space.");
  return *b;
}

// ---- multipart framing --------------------------------------------------------------------------

enum class Delimiter { kNone, kPart, kClose };

// Whether `line` is "--boundary" or "--boundary--", each optionally followed by blanks.
Delimiter ClassifyLine(std::string_view line, std::string_view boundary) {
  if (line.size() < boundary.size() + 2 || line[0] != '-' || line[1] != '-' ||
      line.substr(2, boundary.size()) != boundary)
    return Delimiter::kNone;
  std::string_view rest = line.substr(boundary.size() + 2);
  bool close = rest.starts_with("--");
  if (close) rest.remove_prefix(2);
  for (char c : rest)
    if (!IsBlankChar(c)) return Delimiter::kNone;
  return close ? Delimiter::kClose : Delimiter::kPart;
}

// Splits a multipart body into its body parts: the bytes between a delimiter line and the next one,
// without the one line break that belongs to the next delimiter. Preamble and epilogue are dropped.
Status SplitMultipart(std::string_view body, std::string_view boundary, const std::string& where,
                      std::vector<std::string_view>& parts) {
  bool open = false;
  size_t part_begin = 0;
  for (size_t pos = 0; pos < body.size();) {
    Line line = ReadLine(body, pos);
    pos = line.next;
    Delimiter d = ClassifyLine(line.text, boundary);
    if (d == Delimiter::kNone) continue;
    if (open) {
      std::string_view part = body.substr(part_begin, line.begin - part_begin);
      if (part.ends_with("\r\n"))
        part.remove_suffix(2);
      else if (part.ends_with('\n'))
        part.remove_suffix(1);
      parts.push_back(part);
    }
    if (d == Delimiter::kClose) return Status::Ok();
    open = true;
    part_begin = line.next;
  }
  std::string delimiter = "--" + std::string(boundary);
  if (!open) return PayloadError(where + ": no boundary delimiter " + Quote(delimiter) + " found.");
  return PayloadError(where + ": missing closing delimiter " + Quote(delimiter + "--") + ".");
}

// ---- headers ------------------------------------------------------------------------------------

// Reads header lines from `pos` until an empty (or all-blank) line, which is consumed, or the end
// of `s`. Names are lower-cased and values trimmed; a line starting with a blank continues the
// previous value. `ended` tells whether the empty line was seen.
Status ReadHeaders(std::string_view s, size_t& pos, const std::string& where, Headers& out, bool& ended) {
  ended = false;
  while (pos < s.size()) {
    Line line = ReadLine(s, pos);
    pos = line.next;
    if (TrimBlanks(line.text).empty()) {
      ended = true;
      return Status::Ok();
    }
    if (IsBlankChar(line.text.front())) {
      if (out.empty()) return PayloadError(where + ": header continuation line without a header.");
      std::string& v = out.back().second;
      if (!v.empty()) v.push_back(' ');
      v.append(TrimBlanks(line.text));
      continue;
    }
    size_t colon = line.text.find(':');
    std::string_view name =
        colon == std::string_view::npos ? std::string_view() : TrimBlanks(line.text.substr(0, colon));
    bool valid = !name.empty();
    for (char c : name)
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) valid = false;
    if (!valid) return PayloadError(where + ": malformed header line " + Quote(line.text) + ".");
    out.emplace_back(ToLower(name), std::string(TrimBlanks(line.text.substr(colon + 1))));
  }
  return Status::Ok();
}

const std::string* FindHeader(const Headers& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

// ---- one HTTP request ---------------------------------------------------------------------------

bool IsKnownMethod(std::string_view m) {
  return m == "GET" || m == "POST" || m == "PATCH" || m == "PUT" || m == "DELETE" || m == "HEAD";
}

bool IsValidVersion(std::string_view v) {
  if (!StartsWithIgnoreCase(v, "HTTP/") || v.size() == 5) return false;
  for (char c : v.substr(5))
    if (!(c >= '0' && c <= '9') && c != '.') return false;
  return true;
}

// Parses an application/http part body: request line, headers, body.
Status ParseHttpRequest(std::string_view s, const std::string& where, const BatchLimits& limits, HttpRequest& req) {
  size_t pos = 0;
  Line line;
  do {  // tolerate blank lines before the request line
    if (pos >= s.size()) return PayloadError(where + ": missing request line.");
    line = ReadLine(s, pos);
    pos = line.next;
  } while (TrimBlanks(line.text).empty());

  std::string_view text = TrimBlanks(line.text);
  size_t sp = text.find_first_of(" \t");
  std::string_view method = text.substr(0, sp);
  std::string_view rest = sp == std::string_view::npos ? std::string_view() : TrimBlanks(text.substr(sp));
  if (!IsKnownMethod(method)) return PayloadError(where + ": unknown HTTP method " + Quote(method) + ".");
  // The target runs to the last blank when an HTTP version follows it (a lenient reading that
  // keeps unencoded spaces in the target); the version is optional.
  std::string_view target = rest;
  size_t last = rest.find_last_of(" \t");
  if (last != std::string_view::npos && StartsWithIgnoreCase(rest.substr(last + 1), "HTTP/")) {
    std::string_view version = rest.substr(last + 1);
    if (!IsValidVersion(version)) return PayloadError(where + ": malformed HTTP version " + Quote(version) + ".");
    target = TrimBlanks(rest.substr(0, last));
  } else if (last == std::string_view::npos && StartsWithIgnoreCase(rest, "HTTP/")) {
    target = {};
  }
  if (target.empty()) return PayloadError(where + ": the request line has no target.");
  if (target.size() > limits.max_url)
    return InvalidArgument(where + ": the request URL is " + std::to_string(target.size()) +
                           " characters long; the maximum in a batch is " + std::to_string(limits.max_url) + ".");
  for (char c : target) {
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
      return PayloadError(where + ": control character in the request target.");
  }

  bool ended = false;
  Headers headers;
  RETURN_IF_ERROR(ReadHeaders(s, pos, where, headers, ended));
  std::string_view body = s.substr(pos);
  // Content-Length is a hint: honoured when only white space follows it (a trailing line break),
  // ignored when it disagrees with the content (clients that count UTF-16 units, not bytes).
  if (const std::string* cl = FindHeader(headers, "content-length")) {
    size_t n = 0;
    auto [end, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), n);
    if (ec == std::errc() && end == cl->data() + cl->size() && n <= body.size() && Trim(body.substr(n)).empty())
      body = body.substr(0, n);
  }
  req.method = std::string(method);
  req.target = std::string(target);
  req.headers = std::move(headers);
  req.body = std::string(body);
  return Status::Ok();
}

// ---- one MIME part ------------------------------------------------------------------------------

enum class PartKind { kHttp, kMultipart };

struct MimePart {
  PartKind kind = PartKind::kHttp;
  std::string boundary;  // kMultipart only
  std::string content_id;
  std::string_view body;
};

Status ParseMimePart(std::string_view s, const std::string& where, MimePart& out) {
  size_t pos = 0;
  bool ended = false;
  Headers headers;
  RETURN_IF_ERROR(ReadHeaders(s, pos, where, headers, ended));
  if (!ended) return PayloadError(where + ": the part headers are not followed by a blank line.");
  const std::string* ct = FindHeader(headers, "content-type");
  if (ct == nullptr) return PayloadError(where + ": the part has no Content-Type (expected application/http).");
  ASSIGN_OR_RETURN(MediaType mt, ParseMediaType(*ct, where));
  if (mt.type == "application/http") {
    out.kind = PartKind::kHttp;
  } else if (mt.type == "multipart/mixed") {
    out.kind = PartKind::kMultipart;
    ASSIGN_OR_RETURN(out.boundary, MultipartBoundary(*ct, where));
  } else {
    return PayloadError(where + ": unsupported part Content-Type " + Quote(*ct) +
                        " (expected application/http or multipart/mixed).");
  }
  if (const std::string* cte = FindHeader(headers, "content-transfer-encoding")) {
    if (!EqualsIgnoreCase(*cte, "binary") && !EqualsIgnoreCase(*cte, "8bit") && !EqualsIgnoreCase(*cte, "7bit"))
      return PayloadError(where + ": unsupported Content-Transfer-Encoding " + Quote(*cte) + " (expected binary).");
  }
  if (const std::string* id = FindHeader(headers, "content-id")) out.content_id = *id;
  out.body = s.substr(pos);
  return Status::Ok();
}

// Parses an application/http part into `op`, counting it against the limits.
Status ParseOperation(const MimePart& part, const std::string& where, const BatchLimits& limits, size_t& count,
                      BatchOperation& op) {
  if (++count > limits.max_operations)
    return InvalidArgument(where + ": the batch contains more than " + std::to_string(limits.max_operations) +
                           " requests.");
  RETURN_IF_ERROR(ParseHttpRequest(part.body, where, limits, op.request));
  op.content_id = part.content_id;
  if (op.content_id.empty()) {
    if (const std::string* id = op.request.Header("content-id")) op.content_id = *id;
  }
  return Status::Ok();
}

Status ParseChangeSet(const MimePart& set, const std::string& batch_boundary, size_t index, const BatchLimits& limits,
                      size_t& count, BatchItem& item) {
  std::string where = Where(index);
  if (set.boundary == batch_boundary)
    return PayloadError(where + ": the change set boundary must differ from the batch boundary.");
  std::vector<std::string_view> parts;
  RETURN_IF_ERROR(SplitMultipart(set.body, set.boundary, where + " (change set)", parts));
  item.is_changeset = true;
  item.operations.reserve(parts.size());
  std::unordered_set<std::string> content_ids;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string inner = Where(index, i + 1);
    MimePart part;
    RETURN_IF_ERROR(ParseMimePart(parts[i], inner, part));
    if (part.kind != PartKind::kHttp) return InvalidArgument(inner + ": change sets cannot be nested.");
    BatchOperation& op = item.operations.emplace_back();
    RETURN_IF_ERROR(ParseOperation(part, inner, limits, count, op));
    if (op.request.method == "GET" || op.request.method == "HEAD")
      return InvalidArgument(inner + ": " + op.request.method + " requests are not allowed in a change set.");
    if (!op.content_id.empty() && !content_ids.insert(op.content_id).second)
      return InvalidArgument(inner + ": duplicate Content-ID " + Quote(op.content_id) + " in the change set.");
  }
  return Status::Ok();
}

// ---- writer -------------------------------------------------------------------------------------

constexpr std::string_view kCrlf = "\r\n";

// Appends header text with CR/LF made spaces and braces percent-encoded (see batch.h).
void AppendSanitized(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n')
      out.push_back(' ');
    else if (c == '{')
      out += "%7B";
    else if (c == '}')
      out += "%7D";
    else
      out.push_back(c);
  }
}

void AppendHeader(std::string& out, std::string_view name, std::string_view value) {
  AppendSanitized(out, name);
  out += ": ";
  AppendSanitized(out, value);
  out += kCrlf;
}

// "application/json; odata.metadata=<level>; odata.streaming=true" for a JSON Content-Type, or ""
// when `value` is not JSON.
std::string JsonPartContentType(std::string_view value) {
  auto mt = ParseMediaType(value, "");
  if (!mt.ok() || mt->type != "application/json") return {};
  const std::string* level = mt->Param("odata.metadata");
  return "application/json; odata.metadata=" + (level && !level->empty() ? ToLower(*level) : "minimal") +
         "; odata.streaming=true";
}

// Writes one application/http body part (headers, blank line, response), without its trailing CRLF.
void AppendResponsePart(std::string& out, const BatchResult& r) {
  out += "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n";
  if (!r.content_id.empty()) AppendHeader(out, "Content-ID", r.content_id);
  out += kCrlf;
  int status = r.response.status >= 100 && r.response.status <= 599 ? r.response.status : 500;
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += ReasonPhrase(status);
  out += kCrlf;
  for (const auto& [name, value] : r.response.headers) {
    if (EqualsIgnoreCase(name, "content-type")) {
      if (std::string json = JsonPartContentType(value); !json.empty()) {
        AppendHeader(out, name, json);
        continue;
      }
    }
    AppendHeader(out, name, value);
  }
  out += kCrlf;
  out += r.response.body;
}

}  // namespace

Result<std::vector<BatchItem>> ParseBatch(std::string_view content_type, std::string_view body,
                                          const BatchLimits& limits) {
  ASSIGN_OR_RETURN(std::string boundary, MultipartBoundary(content_type, "$batch request"));
  std::vector<BatchItem> items;
  if (Trim(body).empty()) return items;
  std::vector<std::string_view> parts;
  RETURN_IF_ERROR(SplitMultipart(body, boundary, "$batch request", parts));
  items.reserve(parts.size());
  size_t count = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string where = Where(i + 1);
    MimePart part;
    RETURN_IF_ERROR(ParseMimePart(parts[i], where, part));
    BatchItem& item = items.emplace_back();
    if (part.kind == PartKind::kMultipart) {
      RETURN_IF_ERROR(ParseChangeSet(part, boundary, i + 1, limits, count, item));
    } else {
      RETURN_IF_ERROR(ParseOperation(part, where, limits, count, item.operations.emplace_back()));
    }
  }
  return items;
}

std::string_view ReasonPhrase(int status) {
  static constexpr std::pair<int, std::string_view> kPhrases[] = {
      {100, "Continue"},
      {200, "OK"},
      {201, "Created"},
      {202, "Accepted"},
      {204, "No Content"},
      {206, "Partial Content"},
      {304, "Not Modified"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {406, "Not Acceptable"},
      {409, "Conflict"},
      {410, "Gone"},
      {411, "Length Required"},
      {412, "Precondition Failed"},
      {413, "Payload Too Large"},
      {414, "URI Too Long"},
      {415, "Unsupported Media Type"},
      {416, "Range Not Satisfiable"},
      {422, "Unprocessable Entity"},
      {428, "Precondition Required"},
      {429, "Too Many Requests"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
  };
  for (const auto& [code, phrase] : kPhrases)
    if (code == status) return phrase;
  if (status >= 200 && status < 300) return "Success";
  if (status >= 300 && status < 400) return "Redirection";
  if (status >= 400 && status < 500) return "Client Error";
  if (status >= 500 && status < 600) return "Server Error";
  return "Unknown";
}

std::string WriteBatchResponse(const std::vector<BatchResultItem>& items, std::string& content_type) {
  const std::string boundary = "batchresponse_" + GuidGenerator::NewRandom().ToString();
  content_type = "multipart/mixed; boundary=" + boundary;
  std::string out;
  // "--boundary" or "--boundary--", then CRLF.
  auto delimiter = [&out](std::string_view b, bool close = false) {
    out += "--";
    out += b;
    if (close) out += "--";
    out += kCrlf;
  };
  // A body part with its trailing CRLF (which belongs to the next delimiter).
  auto part = [&out](const BatchResult& r) {
    AppendResponsePart(out, r);
    out += kCrlf;
  };
  for (const auto& item : items) {
    if (!item.is_changeset) {
      for (const auto& r : item.results) {
        delimiter(boundary);
        part(r);
      }
      continue;
    }
    if (item.results.empty()) continue;
    const std::string set = "changesetresponse_" + GuidGenerator::NewRandom().ToString();
    delimiter(boundary);
    out += "Content-Type: multipart/mixed; boundary=";
    out += set;
    out += "\r\n\r\n";
    for (const auto& r : item.results) {
      delimiter(set);
      part(r);
    }
    delimiter(set, /*close=*/true);
  }
  delimiter(boundary, /*close=*/true);
  return out;
}

}  // namespace tributary::odata

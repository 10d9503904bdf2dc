#include "batch.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <map>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "tributary/base/status.h"

namespace tributary::odata {
namespace {

constexpr char kRoot[] = "https://contoso.crm4.dynamics.com/api/data/v9.2/";
constexpr char kAccountId[] = "5531d753-95af-e711-a94e-000d3a11e605";

// The test texts are written with "\n"; this turns them into the CRLF form clients send.
std::string Crlf(std::string_view lf) {
  std::string out;
  for (char c : lf) {
    if (c == '\n') out.push_back('\r');
    out.push_back(c);
  }
  return out;
}

std::string Replace(std::string s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

std::vector<BatchItem> MustParse(std::string_view content_type, std::string_view body, const BatchLimits& limits = {}) {
  auto r = ParseBatch(content_type, body, limits);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? std::move(r).value() : std::vector<BatchItem>{};
}

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// ---- parser: the formats real clients send ------------------------------------------------------

// The example of the reference §6.1 (Microsoft's documentation), with a quoted boundary.
std::string DocExample() {
  return Replace(Crlf(R"(--batch_AAA123
Content-Type: application/http
Content-Transfer-Encoding: binary

GET {root}accounts?$select=name HTTP/1.1
Accept: application/json

--batch_AAA123
Content-Type: multipart/mixed; boundary=changeset_BBB456

--changeset_BBB456
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 1

POST {root}contacts HTTP/1.1
Content-Type: application/json; type=entry

{"firstname":"Joe"}
--changeset_BBB456
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 2

POST {root}salesorders HTTP/1.1
Content-Type: application/json

{"name":"x","customerid_contact@odata.bind":"$1"}
--changeset_BBB456--
--batch_AAA123--
)"),
                 "{root}", kRoot);
}

TEST(BatchParseTest, DocumentationExample) {
  auto items = MustParse(R"(multipart/mixed; boundary="batch_AAA123")", DocExample());
  ASSERT_EQ(items.size(), 2u);

  ASSERT_FALSE(items[0].is_changeset);
  ASSERT_EQ(items[0].operations.size(), 1u);
  const HttpRequest& get = items[0].operations[0].request;
  EXPECT_EQ(get.method, "GET");
  EXPECT_EQ(get.target, std::string(kRoot) + "accounts?$select=name");
  EXPECT_EQ(get.headers, (HeaderList{{"accept", "application/json"}}));
  EXPECT_EQ(get.body, "");
  EXPECT_EQ(items[0].operations[0].content_id, "");

  ASSERT_TRUE(items[1].is_changeset);
  ASSERT_EQ(items[1].operations.size(), 2u);
  const BatchOperation& c1 = items[1].operations[0];
  EXPECT_EQ(c1.content_id, "1");
  EXPECT_EQ(c1.request.method, "POST");
  EXPECT_EQ(c1.request.target, std::string(kRoot) + "contacts");
  EXPECT_EQ(c1.request.headers, (HeaderList{{"content-type", "application/json; type=entry"}}));
  EXPECT_EQ(c1.request.body, R"({"firstname":"Joe"})");
  const BatchOperation& c2 = items[1].operations[1];
  EXPECT_EQ(c2.content_id, "2");
  EXPECT_EQ(c2.request.target, std::string(kRoot) + "salesorders");
  EXPECT_EQ(c2.request.body, R"({"name":"x","customerid_contact@odata.bind":"$1"})");
}

TEST(BatchParseTest, DocumentationExampleWithLfOnly) {
  std::string lf = Replace(DocExample(), "\r\n", "\n");
  auto items = MustParse("multipart/mixed;boundary=batch_AAA123", lf);
  ASSERT_EQ(items.size(), 2u);
  ASSERT_EQ(items[1].operations.size(), 2u);
  EXPECT_EQ(items[0].operations[0].request.headers, (HeaderList{{"accept", "application/json"}}));
  EXPECT_EQ(items[1].operations[0].request.body, R"({"firstname":"Joe"})");
  EXPECT_EQ(items[1].operations[1].request.body, R"({"name":"x","customerid_contact@odata.bind":"$1"})");
}

TEST(BatchParseTest, MixedLineEndings) {
  // LF after some lines and CRLF after others, as string-joining clients produce.
  std::string body = std::string(
                         "--b\n"
                         "Content-Type: multipart/mixed;boundary=cs\r\n"
                         "\n"
                         "--cs\r\n"
                         "Content-Type: application/http\n"
                         "Content-Transfer-Encoding:binary\r\n"
                         "Content-ID: 1\n"
                         "\r\n"
                         "POST /api/data/v9.2/tasks HTTP/1.1\n"
                         "Content-Type: application/json;type=entry\n"
                         "\r\n") +
                     R"({"subject":"a"})" +
                     "\n--cs--\r\n"
                     "--b--";
  auto items = MustParse("multipart/mixed; boundary=b", body);
  ASSERT_EQ(items.size(), 1u);
  ASSERT_EQ(items[0].operations.size(), 1u);
  EXPECT_EQ(items[0].operations[0].content_id, "1");
  EXPECT_EQ(items[0].operations[0].request.target, "/api/data/v9.2/tasks");
  EXPECT_EQ(items[0].operations[0].request.body, R"({"subject":"a"})");
}

// What dynamics-web-api 2.5 writes (convertToBatch): parts joined with CRLF, every delimiter
// preceded by an extra CRLF, an unquoted boundary without a space after ';', absolute URLs,
// Content-IDs from 100001, a "$n" target, bodies followed by an empty line.
TEST(BatchParseTest, DynamicsWebApiBatch) {
  const std::string batch = "dwa_batch_0b6a6c8e-58b4-4d5f-9a0e-3f1c1b1f9d11";
  const std::string cs = "changeset_9f1d3c2a-7e1b-4c1e-8f7a-2d4b5c6e7f80";
  const std::string contact = R"({"firstname":"Zoë","lastname":"Čapek – 東京","description":"naïve café"})";
  const std::string link =
      R"({"parentcustomerid_account@odata.bind":")" + std::string(kRoot) + "accounts(" + kAccountId + ")\"}";
  std::vector<std::string> lines = {
      "\r\n--" + batch,
      "Content-Type: multipart/mixed;boundary=" + cs,
      "\r\n--" + cs,
      "Content-Type: application/http",
      "Content-Transfer-Encoding: binary",
      "Content-ID: 100001",
      "\r\nPOST " + std::string(kRoot) + "contacts HTTP/1.1",
      "Content-Type: application/json; charset=utf-8",
      "MSCRM.SuppressDuplicateDetection: false",
      "\r\n" + contact,
      "\r\n--" + cs,
      "Content-Type: application/http",
      "Content-Transfer-Encoding: binary",
      "Content-ID: 100002",
      "\r\nPATCH $100001 HTTP/1.1",
      "Content-Type: application/json; charset=utf-8",
      "If-Match: *",
      "\r\n" + link,
      "\r\n--" + cs,
      "Content-Type: application/http",
      "Content-Transfer-Encoding: binary",
      "Content-ID: 100003",
      "\r\nDELETE " + std::string(kRoot) + "tasks(" + kAccountId + ") HTTP/1.1",
      "Content-Type: application/json",
      "\r\n--" + cs + "--",
      "\r\n--" + batch,
      "Content-Type: application/http",
      "Content-Transfer-Encoding: binary",
      "\r\nGET " + std::string(kRoot) + "contacts?$select=fullname&$filter=lastname%20eq%20'%C4%8Capek' HTTP/1.1",
      "Accept: application/json",
      "Prefer: odata.include-annotations=\"*\"",
      "\r\n--" + batch + "--\r\n",
  };
  std::string body;
  for (size_t i = 0; i < lines.size(); ++i) body += (i ? "\r\n" : "") + lines[i];

  auto items = MustParse("multipart/mixed;boundary=" + batch, body);
  ASSERT_EQ(items.size(), 2u);
  ASSERT_TRUE(items[0].is_changeset);
  ASSERT_EQ(items[0].operations.size(), 3u);
  const auto& ops = items[0].operations;
  EXPECT_EQ(ops[0].content_id, "100001");
  EXPECT_EQ(ops[0].request.method, "POST");
  EXPECT_EQ(ops[0].request.target, std::string(kRoot) + "contacts");
  EXPECT_EQ(ops[0].request.headers, (HeaderList{{"content-type", "application/json; charset=utf-8"},
                                                {"mscrm.suppressduplicatedetection", "false"}}));
  // The CRLF before the delimiter belongs to the delimiter; the empty line DWA adds stays.
  EXPECT_EQ(ops[0].request.body, contact + "\r\n");
  EXPECT_EQ(ops[1].content_id, "100002");
  EXPECT_EQ(ops[1].request.method, "PATCH");
  EXPECT_EQ(ops[1].request.target, "$100001");
  EXPECT_EQ(*ops[1].request.Header("if-match"), "*");
  EXPECT_EQ(ops[1].request.body, link + "\r\n");
  EXPECT_EQ(ops[2].content_id, "100003");
  EXPECT_EQ(ops[2].request.method, "DELETE");
  EXPECT_EQ(ops[2].request.body, "");

  ASSERT_FALSE(items[1].is_changeset);
  const HttpRequest& get = items[1].operations[0].request;
  EXPECT_EQ(get.method, "GET");
  EXPECT_EQ(get.target, std::string(kRoot) + "contacts?$select=fullname&$filter=lastname%20eq%20'%C4%8Capek'");
  EXPECT_EQ(get.headers, (HeaderList{{"accept", "application/json"}, {"prefer", "odata.include-annotations=\"*\""}}));
  EXPECT_EQ(get.body, "");
}

// What dataverse-webapi writes: one change set with Content-IDs 1..n, relative request lines,
// "Content-Transfer-Encoding:binary", then the GETs.
TEST(BatchParseTest, DataverseWebApiBatch) {
  std::string body = Replace(Crlf(R"(--batch_7c4b0c0e-1d2f-4d4b-9a51-51c3b0a1e2f3
Content-Type: multipart/mixed;boundary=changeset_2c8f1f4a-5b7e-4c3a-8d2e-6a9b0c1d2e3f

--changeset_2c8f1f4a-5b7e-4c3a-8d2e-6a9b0c1d2e3f
Content-Type: application/http
Content-Transfer-Encoding:binary
Content-ID: 1

POST /api/data/v9.2/accounts HTTP/1.1
Content-Type: application/json;type=entry

{"name":"Ärzte GmbH","address1_city":"Zürich"}
--changeset_2c8f1f4a-5b7e-4c3a-8d2e-6a9b0c1d2e3f
Content-Type: application/http
Content-Transfer-Encoding:binary
Content-ID: 2

PATCH /api/data/v9.2/contacts({id}) HTTP/1.1
Content-Type: application/json;type=entry

{"parentcustomerid_account@odata.bind":"$1"}
--changeset_2c8f1f4a-5b7e-4c3a-8d2e-6a9b0c1d2e3f--

--batch_7c4b0c0e-1d2f-4d4b-9a51-51c3b0a1e2f3
Content-Type: application/http
Content-Transfer-Encoding:binary

GET /api/data/v9.2/accounts?$select=name&$top=3 HTTP/1.1
Accept: application/json

--batch_7c4b0c0e-1d2f-4d4b-9a51-51c3b0a1e2f3
Content-Type: application/http
Content-Transfer-Encoding:binary

GET /api/data/v9.2/contacts({id})?$select=fullname HTTP/1.1
Accept: application/json


--batch_7c4b0c0e-1d2f-4d4b-9a51-51c3b0a1e2f3--)"),
                             "{id}", kAccountId);
  auto items = MustParse("multipart/mixed;boundary=batch_7c4b0c0e-1d2f-4d4b-9a51-51c3b0a1e2f3", body);
  ASSERT_EQ(items.size(), 3u);
  ASSERT_TRUE(items[0].is_changeset);
  ASSERT_EQ(items[0].operations.size(), 2u);
  EXPECT_EQ(items[0].operations[0].content_id, "1");
  EXPECT_EQ(items[0].operations[0].request.target, "/api/data/v9.2/accounts");
  EXPECT_EQ(items[0].operations[0].request.body, R"({"name":"Ärzte GmbH","address1_city":"Zürich"})");
  EXPECT_EQ(items[0].operations[1].content_id, "2");
  EXPECT_EQ(items[0].operations[1].request.method, "PATCH");
  EXPECT_EQ(items[0].operations[1].request.target, std::string("/api/data/v9.2/contacts(") + kAccountId + ")");
  EXPECT_EQ(items[0].operations[1].request.body, R"({"parentcustomerid_account@odata.bind":"$1"})");
  EXPECT_EQ(items[1].operations[0].request.target, "/api/data/v9.2/accounts?$select=name&$top=3");
  EXPECT_EQ(items[2].operations[0].request.target,
            std::string("/api/data/v9.2/contacts(") + kAccountId + ")?$select=fullname");
  EXPECT_EQ(items[2].operations[0].request.body, "");
  for (const auto& item : items)
    for (const auto& op : item.operations) EXPECT_EQ(op.request.base_url, "");
}

TEST(BatchParseTest, ContentTypeVariants) {
  const std::string body = Crlf("--b_1\nContent-Type: application/http\n\nGET accounts HTTP/1.1\n\n--b_1--\n");
  for (const char* ct :
       {"multipart/mixed;boundary=b_1", "multipart/mixed; boundary=b_1", "multipart/mixed; boundary=\"b_1\"",
        "Multipart/Mixed; BOUNDARY=b_1", "multipart/mixed ;  Boundary = b_1 ",
        "multipart/mixed; charset=utf-8; boundary=\"b_1\"; x=y", "multipart/mixed;boundary=\"b\\_1\""}) {
    auto r = ParseBatch(ct, body);
    ASSERT_TRUE(r.ok()) << ct << ": " << r.status().message();
    ASSERT_EQ(r->size(), 1u) << ct;
    EXPECT_EQ((*r)[0].operations[0].request.target, "accounts");
  }
  // A quoted boundary may hold characters a token cannot: space, ':' , '='.
  std::string odd = Crlf("--a b:c=d\nContent-Type: application/http\n\nGET x\n--a b:c=d--");
  auto items = MustParse(R"(multipart/mixed; boundary="a b:c=d")", odd);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].operations[0].request.target, "x");
}

TEST(BatchParseTest, PreambleEpilogueAndTransportPadding) {
  std::string body = Crlf(
      "This is a preamble.\n--b\nContent-Type: application/http\n\nDELETE accounts(1) HTTP/1.1\n\n"
      "--b  \t\nContent-Type: application/http\n\nGET accounts\n--b-- \nepilogue\n--b\nnot a part\n");
  auto items = MustParse("multipart/mixed; boundary=b", body);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].operations[0].request.method, "DELETE");
  EXPECT_EQ(items[1].operations[0].request.target, "accounts");
  EXPECT_EQ(items[1].operations[0].request.headers.size(), 0u);
}

TEST(BatchParseTest, BoundaryLookalikesInBodiesAreContent) {
  const std::string payload = Crlf(
      "--batch_x-not-a-delimiter\n"
      "--batch_x--x\n"
      " --batch_x\n"
      "x--batch_x\n"
      "--batch_\n"
      "--changeset_y\n"  // the change set boundary, but outside the change set
      "--batch_x---\n"
      "end");
  const std::string in_set = Crlf("--changeset_y-\n--changeset_yy\n--batch_x\t!\nend");
  std::string body = Crlf("--batch_x\nContent-Type: application/http\n\nPOST notes HTTP/1.1\n\n") + payload +
                     Crlf(
                         "\n--batch_x\nContent-Type: multipart/mixed; boundary=changeset_y\n\n--changeset_y\n"
                         "Content-Type: application/http\nContent-ID: 1\n\nPOST notes HTTP/1.1\n\n") +
                     in_set + Crlf("\n--changeset_y--\n--batch_x--\n");
  auto items = MustParse("multipart/mixed; boundary=batch_x", body);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].operations[0].request.body, payload);
  ASSERT_EQ(items[1].operations.size(), 1u);
  EXPECT_EQ(items[1].operations[0].request.body, in_set);
}

TEST(BatchParseTest, BodyKeepsInnerBlankLinesAndTrailingBreaks) {
  std::string body =
      Crlf("--b\nContent-Type: application/http\n\nPUT a(1)/description HTTP/1.1\n\nline 1\n\nline 3\n\n\n--b--");
  auto items = MustParse("multipart/mixed; boundary=b", body);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].operations[0].request.body, "line 1\r\n\r\nline 3\r\n\r\n");
}

TEST(BatchParseTest, ContentLength) {
  auto part = [](std::string_view cl, std::string_view payload) {
    return Crlf("--b\nContent-Type: application/http\n\nPOST accounts HTTP/1.1\nContent-Length: ") + std::string(cl) +
           "\r\n\r\n" + std::string(payload) + "\r\n";
  };
  const std::string json = R"({"name":"a"})";
  const std::string umlaut = R"({"name":"Müller"})";  // 18 bytes, 17 UTF-16 units
  std::string body = part("12", json + "\r\n\r\n") + part("17", umlaut) + part("99", json) + part("x", json + "\r\n") +
                     part("0", "\r\n") + "--b--";
  auto items = MustParse("multipart/mixed; boundary=b", body);
  ASSERT_EQ(items.size(), 5u);
  EXPECT_EQ(items[0].operations[0].request.body, json);           // consistent: cut to the length
  EXPECT_EQ(items[1].operations[0].request.body, umlaut);         // counted in UTF-16 units: ignored
  EXPECT_EQ(items[2].operations[0].request.body, json);           // longer than the part: ignored
  EXPECT_EQ(items[3].operations[0].request.body, json + "\r\n");  // not a number: ignored
  EXPECT_EQ(items[4].operations[0].request.body, "");
  EXPECT_EQ(*items[0].operations[0].request.Header("content-length"), "12");
}

TEST(BatchParseTest, ContentIdSourcesAndHeaderDetails) {
  std::string body = Crlf(R"(--b
Content-Type: multipart/mixed; boundary=c

--c
Content-Type: application/http
content-transfer-encoding: BINARY
content-id:  7 

POST accounts HTTP/1.1
Content-ID: 99
X-Folded: first
  second
If-Match:W/"12"
Prefer: return=representation
Prefer: odata.include-annotations="*"

{}
--c
Content-Type: application/http

POST contacts HTTP/1.1
Content-ID: 8

{}
--c--
--b--)");
  auto items = MustParse("multipart/mixed; boundary=b", body);
  ASSERT_EQ(items.size(), 1u);
  ASSERT_EQ(items[0].operations.size(), 2u);
  const auto& a = items[0].operations[0];
  EXPECT_EQ(a.content_id, "7");  // the MIME header wins
  EXPECT_EQ(a.request.headers, (HeaderList{{"content-id", "99"},
                                           {"x-folded", "first second"},
                                           {"if-match", "W/\"12\""},
                                           {"prefer", "return=representation"},
                                           {"prefer", "odata.include-annotations=\"*\""}}));
  EXPECT_EQ(items[0].operations[1].content_id, "8");  // fallback: the HTTP header
}

TEST(BatchParseTest, AllBlankLineEndsHeaders) {
  std::string body =
      Crlf("--b\nContent-Type: application/http\n \t\nPOST accounts HTTP/1.1\nAccept: */*\n  \n{}\n--b--");
  auto items = MustParse("multipart/mixed; boundary=b", body);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].operations[0].request.headers, (HeaderList{{"accept", "*/*"}}));
  EXPECT_EQ(items[0].operations[0].request.body, "{}");
}

TEST(BatchParseTest, RequestLineForms) {
  std::string body = Crlf(
      "--b\nContent-Type: application/http\n\n\nGET accounts?$filter=name eq 'a b' HTTP/1.1\n\n"
      "--b\nContent-Type: application/http\n\nGET   /api/data/v9.2/WhoAmI\n\n"
      "--b\nContent-Type: application/http\n\nHEAD accounts http/1.0\n\n"
      "--b\nContent-Type: application/http\n\nGET $1/primarycontactid HTTP/1.1\n\n--b--");
  auto items = MustParse("multipart/mixed; boundary=b", body);
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[0].operations[0].request.target, "accounts?$filter=name eq 'a b'");
  EXPECT_EQ(items[1].operations[0].request.target, "/api/data/v9.2/WhoAmI");
  EXPECT_EQ(items[2].operations[0].request.method, "HEAD");
  EXPECT_EQ(items[2].operations[0].request.target, "accounts");
  EXPECT_EQ(items[3].operations[0].request.target, "$1/primarycontactid");
}

TEST(BatchParseTest, EmptyBatches) {
  EXPECT_TRUE(MustParse("multipart/mixed; boundary=b", "").empty());
  EXPECT_TRUE(MustParse("multipart/mixed; boundary=b", "\r\n  \r\n").empty());
  EXPECT_TRUE(MustParse("multipart/mixed; boundary=b", "--b--").empty());
  EXPECT_TRUE(MustParse("multipart/mixed; boundary=b", "preamble\r\n--b--\r\n").empty());
  auto items = MustParse("multipart/mixed; boundary=b",
                         Crlf("--b\nContent-Type: multipart/mixed; boundary=c\n\n--c--\n--b--\n"));
  ASSERT_EQ(items.size(), 1u);
  EXPECT_TRUE(items[0].is_changeset);
  EXPECT_TRUE(items[0].operations.empty());
}

TEST(BatchParseTest, LimitsAreInclusive) {
  std::string body;
  for (int i = 0; i < 3; ++i) body += Crlf("--b\nContent-Type: application/http\n\nGET abcd\n");
  body += Crlf("--b\nContent-Type: multipart/mixed; boundary=c\n\n--c\nContent-Type: application/http\n\nPOST abcd\n");
  body += Crlf("--c--\n--b--");
  BatchLimits limits;
  limits.max_operations = 4;
  limits.max_url = 4;
  EXPECT_EQ(MustParse("multipart/mixed; boundary=b", body, limits).size(), 4u);
  limits.max_operations = 3;
  auto r = ParseBatch("multipart/mixed; boundary=b", body, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().error_code(), err::kInvalidArgument);
  EXPECT_NE(r.status().message().find("more than 3 requests"), std::string::npos) << r.status().message();
  limits.max_operations = 4;
  limits.max_url = 3;
  r = ParseBatch("multipart/mixed; boundary=b", body, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("$batch part 1: the request URL is 4 characters long"), std::string::npos)
      << r.status().message();
}

TEST(BatchParseTest, ThousandOperationsAndLongUrlsByDefault) {
  std::string body;
  const std::string url = "accounts?fetchXml=" + std::string(65536 - 18, 'x');
  ASSERT_EQ(url.size(), 65536u);
  for (int i = 0; i < 1000; ++i)
    body += "--b\r\nContent-Type: application/http\r\n\r\nGET " + (i == 0 ? url : "accounts") + " HTTP/1.1\r\n\r\n";
  auto ok = ParseBatch("multipart/mixed; boundary=b", body + "--b--");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->size(), 1000u);
  EXPECT_EQ((*ok)[0].operations[0].request.target, url);
  body += "--b\r\nContent-Type: application/http\r\n\r\nGET accounts HTTP/1.1\r\n\r\n--b--";
  auto too_many = ParseBatch("multipart/mixed; boundary=b", body);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.status().message().find("$batch part 1001"), std::string::npos);
}

// ---- parser: malformed input --------------------------------------------------------------------

struct BadCase {
  const char* name;
  std::string content_type;
  std::string body;
  uint32_t error_code;
  const char* message_part;
};

const std::string kGet = "Content-Type: application/http\r\n\r\nGET accounts HTTP/1.1\r\n";
const std::string kPost = "Content-Type: application/http\r\n\r\nPOST accounts HTTP/1.1\r\n\r\n{}\r\n";

std::string SetOf(std::string_view parts) {
  return "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n" + std::string(parts) + "--c--\r\n--b--\r\n";
}

std::vector<BadCase> BadCases() {
  const std::string ct = "multipart/mixed; boundary=b";
  const uint32_t payload = err::kPayloadError;
  const uint32_t rule = err::kInvalidArgument;
  return {
      {"not multipart", "application/json", "{}", payload, "expected Content-Type multipart/mixed"},
      {"empty content type", "", "--b--", payload, "expected Content-Type multipart/mixed"},
      {"multipart/related", "multipart/related; boundary=b", "--b--", payload, "multipart/mixed"},
      {"no boundary", "multipart/mixed", "--b--", payload, "no boundary parameter"},
      {"boundary without value", "multipart/mixed; boundary", "--b--", payload, "1 to 70 characters"},
      {"empty boundary", "multipart/mixed; boundary=\"\"", "----", payload, "1 to 70 characters"},
      {"boundary too long", "multipart/mixed; boundary=" + std::string(71, 'x'), "--b--", payload,
       "1 to 70 characters"},
      {"unterminated quote", "multipart/mixed; boundary=\"b", "--b--", payload, "unterminated quoted string"},
      {"control character in boundary", "multipart/mixed; boundary=\"a\x01\"", "--b--", payload, "invalid character"},
      {"boundary ends in space", "multipart/mixed; boundary=\"b \"", "--b--", payload, "must not end in a space"},
      {"no delimiter", ct, "garbage\r\nmore garbage\r\n", payload, "no boundary delimiter '--b' found"},
      {"only a lookalike delimiter", ct, "--bb\r\n--b-\r\n", payload, "no boundary delimiter"},
      {"missing close delimiter", ct, "--b\r\n" + kGet, payload, "missing closing delimiter '--b--'"},
      {"opening delimiter only", ct, "--b", payload, "missing closing delimiter"},
      {"change set not closed", ct, "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n" + kPost + "--b--",
       payload, "$batch part 1 (change set): missing closing delimiter '--c--'"},
      {"part without Content-Type", ct, "--b\r\nContent-ID: 1\r\n\r\nGET x\r\n--b--", payload, "has no Content-Type"},
      {"unsupported part Content-Type", ct, "--b\r\nContent-Type: text/plain\r\n\r\nGET x\r\n--b--", payload,
       "unsupported part Content-Type 'text/plain'"},
      {"no blank line after part headers", ct, "--b\r\nContent-Type: application/http\r\n--b--", payload,
       "not followed by a blank line"},
      {"malformed part header", ct, "--b\r\nContent-Type application/http\r\n\r\nGET x\r\n--b--", payload,
       "malformed header line"},
      {"header name with a space", ct, "--b\r\nContent Type: application/http\r\n\r\nGET x\r\n--b--", payload,
       "malformed header line"},
      {"continuation without header", ct, "--b\r\n  folded\r\nContent-Type: application/http\r\n\r\nGET x\r\n--b--",
       payload, "continuation line without a header"},
      {"base64 transfer encoding", ct,
       "--b\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: base64\r\n\r\nR0VUIHg=\r\n--b--", payload,
       "unsupported Content-Transfer-Encoding 'base64'"},
      {"missing request line", ct, "--b\r\nContent-Type: application/http\r\n\r\n\r\n\r\n--b--", payload,
       "$batch part 1: missing request line"},
      {"unknown method", ct, "--b\r\nContent-Type: application/http\r\n\r\nFETCH accounts HTTP/1.1\r\n--b--", payload,
       "unknown HTTP method 'FETCH'"},
      {"lower-case method", ct, "--b\r\nContent-Type: application/http\r\n\r\nget accounts HTTP/1.1\r\n--b--", payload,
       "unknown HTTP method 'get'"},
      {"status line instead of request", ct, "--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 200 OK\r\n--b--",
       payload, "unknown HTTP method"},
      {"method only", ct, "--b\r\nContent-Type: application/http\r\n\r\nGET\r\n--b--", payload, "has no target"},
      {"version without target", ct, "--b\r\nContent-Type: application/http\r\n\r\nGET HTTP/1.1\r\n--b--", payload,
       "has no target"},
      {"malformed version", ct, "--b\r\nContent-Type: application/http\r\n\r\nGET accounts HTTP/one\r\n--b--", payload,
       "malformed HTTP version 'HTTP/one'"},
      {"control character in target", ct,
       "--b\r\nContent-Type: application/http\r\n\r\nGET acc\x01ounts HTTP/1.1\r\n--b--", payload, "control character"},
      {"malformed request header", ct,
       "--b\r\nContent-Type: application/http\r\n\r\nGET accounts HTTP/1.1\r\nAccept\r\n\r\n--b--", payload,
       "malformed header line 'Accept'"},
      {"second part malformed", ct, "--b\r\n" + kGet + "--b\r\nContent-Type: application/http\r\n\r\nGOT x\r\n--b--",
       payload, "$batch part 2: unknown HTTP method 'GOT'"},
      {"change set without boundary", ct, "--b\r\nContent-Type: multipart/mixed\r\n\r\n--c--\r\n--b--", payload,
       "$batch part 1: the multipart/mixed Content-Type has no boundary parameter"},
      {"change set boundary equals batch boundary", ct,
       "--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\r\n--b--", payload,
       "must differ from the batch boundary"},
      {"nested change set", ct,
       SetOf("--c\r\nContent-Type: multipart/mixed; boundary=d\r\n\r\n--d\r\n" + kPost + "--d--\r\n"), rule,
       "$batch part 1, change set part 1: change sets cannot be nested"},
      {"GET in change set", ct, SetOf("--c\r\n" + kPost + "--c\r\n" + kGet), rule,
       "$batch part 1, change set part 2: GET requests are not allowed in a change set"},
      {"HEAD in change set", ct,
       SetOf("--c\r\nContent-Type: application/http\r\nContent-ID: 1\r\n\r\nHEAD accounts(1)\r\n"), rule,
       "HEAD requests are not allowed in a change set"},
      {"duplicate Content-ID", ct,
       SetOf("--c\r\nContent-Type: application/http\r\nContent-ID: 1\r\n\r\nPOST a\r\n"
             "--c\r\nContent-Type: application/http\r\nContent-ID: 2\r\n\r\nPOST a\r\n"
             "--c\r\nContent-Type: application/http\r\nContent-ID: 1\r\n\r\nPOST a\r\n"),
       rule, "$batch part 1, change set part 3: duplicate Content-ID '1' in the change set"},
      {"duplicate Content-ID via fallback", ct,
       SetOf("--c\r\nContent-Type: application/http\r\nContent-ID: 5\r\n\r\nPOST a\r\n"
             "--c\r\nContent-Type: application/http\r\n\r\nPOST a\r\nContent-ID: 5\r\n"),
       rule, "duplicate Content-ID '5'"},
      {"malformed part in change set", ct, SetOf("--c\r\nContent-Type: application/http\r\n\r\nPOST\r\n"), payload,
       "$batch part 1, change set part 1: the request line has no target"},
      {"URL too long", ct,
       "--b\r\nContent-Type: application/http\r\n\r\nGET " + std::string(65537, 'a') + " HTTP/1.1\r\n--b--", rule,
       "the request URL is 65537 characters long; the maximum in a batch is 65536"},
      {"non-ASCII in messages is replaced", ct,
       "--b\r\nContent-Type: application/http\r\n\r\n\xC3\xA9\xFF accounts HTTP/1.1\r\n--b--", payload,
       "unknown HTTP method '?\?\?'"},
  };
}

TEST(BatchParseTest, MalformedInputIsRejected) {
  auto cases = BadCases();
  EXPECT_GE(cases.size(), 30u);
  for (const auto& c : cases) {
    auto r = ParseBatch(c.content_type, c.body);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << c.name;
    EXPECT_EQ(r.status().error_code(), c.error_code) << c.name << ": " << r.status().message();
    EXPECT_NE(r.status().message().find(c.message_part), std::string::npos)
        << c.name << ": got \"" << r.status().message() << "\"";
    for (char ch : r.status().message())
      EXPECT_TRUE(ch >= 0x20 && ch < 0x7f) << c.name << ": non-printable byte in the message";
  }
}

TEST(BatchParseTest, TruncationsOfAValidBatchNeverCrash) {
  const std::string body = DocExample();
  size_t ok = 0;
  for (size_t n = 0; n <= body.size(); ++n) {
    auto r = ParseBatch("multipart/mixed; boundary=batch_AAA123", std::string_view(body).substr(0, n));
    if (r.ok()) ++ok;
  }
  EXPECT_GE(ok, 3u);  // empty, and the full body with or without the final line break
}

// ---- writer ---------------------------------------------------------------------------------------

// A reader that does what the clients do (reference §6.2): the delimiter is the first CRLF-ended
// line (dataverse-webapi, DWA) and must match xrm-webapi-client's regex; change set parts are found
// by "--changesetresponse_"; the status comes from DWA's regex; the JSON runs from the first '{' to
// the last '}' of the part.
struct ClientPart {
  bool in_changeset = false;
  int status = 0;
  std::string reason;
  std::string content_id;
  std::map<std::string, std::string> headers;  // lower-case names, from after the status line
  std::string json;
  std::string raw;
};

std::vector<std::string> SplitOn(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  size_t from = 0;
  for (size_t at = s.find(sep); at != std::string::npos; at = s.find(sep, from)) {
    out.push_back(s.substr(from, at - from));
    from = at + sep.size();
  }
  out.push_back(s.substr(from));
  return out;
}

ClientPart ReadClientPart(const std::string& part, bool in_changeset) {
  static const std::regex kStatus(R"(HTTP\/?\s*[\d.]*\s+(\d{3})\s+([\w\s]*)$)");
  static const std::regex kHeader(R"(^([^()<>@,;:\\"/[\]?={} \t]+)\s?:\s?(.*)$)");
  ClientPart p;
  p.in_changeset = in_changeset;
  p.raw = part;
  std::vector<std::string> lines = SplitOn(part, "\r\n");
  bool after_status = false;
  for (const auto& line : lines) {
    std::smatch m;
    if (!after_status && std::regex_search(line, m, kStatus)) {
      p.status = std::stoi(m[1]);
      p.reason = m[2];
      after_status = true;
      continue;
    }
    if (std::regex_match(line, m, kHeader)) {
      std::string name = m[1];
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!after_status && name == "content-id") p.content_id = m[2];
      if (after_status) p.headers[name] = m[2];
    } else if (after_status && line.empty()) {
      break;
    }
  }
  size_t open = part.find('{');
  size_t close = part.rfind('}');
  if (open != std::string::npos && close != std::string::npos && close > open)
    p.json = part.substr(open, close - open + 1);
  return p;
}

std::vector<ClientPart> ReadAsClient(const std::string& content_type, const std::string& body) {
  std::vector<ClientPart> out;
  static const std::regex kContentType(
      R"(^multipart/mixed; boundary=(batchresponse_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$)");
  std::smatch ct;
  EXPECT_TRUE(std::regex_match(content_type, ct, kContentType)) << content_type;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\n') continue;
    EXPECT_TRUE(i > 0 && body[i - 1] == '\r') << "bare LF at " << i;
  }
  size_t eol = body.find("\r\n");
  if (eol == std::string::npos) {
    ADD_FAILURE() << "no CRLF in the body";
    return out;
  }
  const std::string delimiter = body.substr(0, eol);
  EXPECT_TRUE(std::regex_match(delimiter, std::regex("^--batchresponse_[a-fA-F0-9-]+$"))) << delimiter;
  if (ct.size() > 1) {
    EXPECT_EQ(delimiter, "--" + ct[1].str());
  }
  std::vector<std::string> parts = SplitOn(body, delimiter);
  EXPECT_EQ(parts.front(), "");
  EXPECT_EQ(parts.back(), "--\r\n");
  for (size_t i = 1; i + 1 < parts.size(); ++i) {
    std::string part = parts[i];
    if (part.find("--changesetresponse_") == std::string::npos) {
      out.push_back(ReadClientPart(part, false));
      continue;
    }
    size_t start = part.find("\r\n\r\n");
    EXPECT_NE(start, std::string::npos);
    std::string inner = part.substr(start + 4);
    size_t inner_eol = inner.find("\r\n");
    std::string set_delimiter = inner.substr(0, inner_eol);
    EXPECT_TRUE(std::regex_match(set_delimiter, std::regex("^--changesetresponse_[a-f0-9-]{36}$"))) << set_delimiter;
    EXPECT_NE(part.find("Content-Type: multipart/mixed; boundary=" + set_delimiter.substr(2) + "\r\n"),
              std::string::npos);
    std::vector<std::string> sub = SplitOn(inner, set_delimiter);
    EXPECT_EQ(sub.front(), "");
    EXPECT_EQ(sub.back(), "--\r\n");
    for (size_t j = 1; j + 1 < sub.size(); ++j) out.push_back(ReadClientPart(sub[j], true));
  }
  return out;
}

BatchResult Answer(std::string content_id, int status, HeaderList headers, std::string body = {}) {
  BatchResult r;
  r.content_id = std::move(content_id);
  r.response.status = status;
  r.response.headers = std::move(headers);
  r.response.body = std::move(body);
  return r;
}

TEST(BatchWriteTest, ExactFormat) {
  const std::string entity = std::string(kRoot) + "contacts(" + kAccountId + ")";
  std::vector<BatchResultItem> items(2);
  items[0].is_changeset = true;
  items[0].results.push_back(
      Answer("1", 204, {{"OData-Version", "4.0"}, {"Location", entity}, {"OData-EntityId", entity}}));
  items[1].results.push_back(
      Answer("", 200, {{"Content-Type", "application/json; odata.metadata=minimal"}, {"OData-Version", "4.0"}},
             R"({"@odata.context":"ctx","value":[]})"));
  std::string content_type;
  std::string body = WriteBatchResponse(items, content_type);

  std::smatch m;
  ASSERT_TRUE(std::regex_search(content_type, m, std::regex("boundary=(batchresponse_[0-9a-f-]{36})$")));
  body = Replace(body, m[1].str(), "B");
  ASSERT_TRUE(std::regex_search(body, m, std::regex("changesetresponse_[0-9a-f-]{36}")));
  body = Replace(body, m[0].str(), "C");
  EXPECT_EQ(body, Replace(Crlf(R"(--B
Content-Type: multipart/mixed; boundary=C

--C
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 1

HTTP/1.1 204 No Content
OData-Version: 4.0
Location: {entity}
OData-EntityId: {entity}


--C--
--B
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 200 OK
Content-Type: application/json; odata.metadata=minimal; odata.streaming=true
OData-Version: 4.0

{"@odata.context":"ctx","value":[]}
--B--
)"),
                          "{entity}", entity));
}

TEST(BatchWriteTest, FreshLowercaseBoundariesEveryTime) {
  std::vector<BatchResultItem> items(1);
  items[0].is_changeset = true;
  items[0].results.push_back(Answer("1", 204, {}));
  std::string ct1, ct2;
  std::string b1 = WriteBatchResponse(items, ct1);
  std::string b2 = WriteBatchResponse(items, ct2);
  EXPECT_NE(ct1, ct2);
  EXPECT_NE(b1, b2);
  EXPECT_TRUE(std::regex_search(b1, std::regex("\r\n--changesetresponse_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-")));
  ReadAsClient(ct1, b1);
}

TEST(BatchWriteTest, EmptyResponseAndEmptyChangeSet) {
  std::string ct;
  std::string empty = WriteBatchResponse({}, ct);
  EXPECT_EQ(Replace(empty, ct.substr(ct.find('=') + 1), "B"), "--B--\r\n");
  std::vector<BatchResultItem> items(2);
  items[0].is_changeset = true;  // no results: left out
  items[1].results.push_back(Answer("", 204, {}));
  auto parts = ReadAsClient(ct, WriteBatchResponse(items, ct));
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].status, 204);
  EXPECT_FALSE(parts[0].in_changeset);
}

TEST(BatchWriteTest, ReasonPhrases) {
  const std::map<int, std::string> want = {
      {200, "OK"},
      {201, "Created"},
      {204, "No Content"},
      {304, "Not Modified"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {409, "Conflict"},
      {412, "Precondition Failed"},
      {413, "Payload Too Large"},
      {415, "Unsupported Media Type"},
      {429, "Too Many Requests"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {503, "Service Unavailable"},
  };
  for (const auto& [code, phrase] : want) EXPECT_EQ(ReasonPhrase(code), phrase) << code;
  const std::regex words(R"(^[A-Za-z ]+$)");
  for (int code = 100; code < 600; ++code)
    EXPECT_TRUE(std::regex_match(std::string(ReasonPhrase(code)), words)) << code;
  EXPECT_EQ(ReasonPhrase(299), "Success");
  EXPECT_EQ(ReasonPhrase(0), "Unknown");
}

TEST(BatchWriteTest, ClientsReadEveryKindOfPart) {
  const std::string entity = std::string(kRoot) + "accounts(" + kAccountId + ")";
  const std::string error =
      R"({"error":{"code":"0x80044331","message":"A validation error occurred.  The length of the 'subject' attribute of the 'task' entity exceeded the maximum allowed length of '200'."}})";
  std::vector<BatchResultItem> items(5);
  items[0].is_changeset = true;
  items[0].results.push_back(Answer("100001", 204, {{"OData-Version", "4.0"}, {"OData-EntityId", entity}}));
  items[0].results.push_back(Answer("100002", 201,
                                    {{"Content-Type", "application/json; odata.metadata=minimal"},
                                     {"OData-Version", "4.0"},
                                     {"ETag", "W/\"1234\""},
                                     {"Location", entity}},
                                    R"({"@odata.etag":"W/\"1234\"","name":"Zoë"})"));
  items[1].results.push_back(Answer("", 200, {{"Content-Type", "text/plain"}, {"OData-Version", "4.0"}}, "42"));
  items[2].is_changeset = true;
  items[2].results.push_back(
      Answer("1", 400, {{"REQ_ID", "b5f1"}, {"Content-Type", "application/json; odata.metadata=minimal"}}, error));
  items[3].results.push_back(Answer("", 429, {{"Retry-After", "5"}}));
  items[4].results.push_back(Answer("", 299, {{"Content-Type", "Application/JSON; charset=utf-8"}}, "{}"));
  std::string ct;
  std::string body = WriteBatchResponse(items, ct);
  auto parts = ReadAsClient(ct, body);
  ASSERT_EQ(parts.size(), 6u);

  EXPECT_TRUE(parts[0].in_changeset);
  EXPECT_EQ(parts[0].status, 204);
  EXPECT_EQ(parts[0].reason, "No Content");
  EXPECT_EQ(parts[0].content_id, "100001");
  EXPECT_EQ(parts[0].json, "");
  EXPECT_EQ(parts[0].headers["odata-entityid"], entity);
  // DWA takes the GUID at the end of the OData-EntityId line.
  EXPECT_TRUE(std::regex_search(parts[0].raw, std::regex(std::string(kAccountId) + "\\)\r\n")));

  EXPECT_EQ(parts[1].status, 201);
  EXPECT_EQ(parts[1].reason, "Created");
  EXPECT_EQ(parts[1].content_id, "100002");
  EXPECT_EQ(parts[1].json, R"({"@odata.etag":"W/\"1234\"","name":"Zoë"})");
  EXPECT_EQ(parts[1].headers["content-type"], "application/json; odata.metadata=minimal; odata.streaming=true");
  EXPECT_EQ(parts[1].headers["etag"], "W/\"1234\"");

  EXPECT_FALSE(parts[2].in_changeset);
  EXPECT_EQ(parts[2].status, 200);
  EXPECT_EQ(parts[2].headers["content-type"], "text/plain");
  EXPECT_TRUE(parts[2].raw.ends_with("\r\n\r\n42\r\n"));

  EXPECT_TRUE(parts[3].in_changeset);
  EXPECT_EQ(parts[3].status, 400);
  EXPECT_EQ(parts[3].reason, "Bad Request");
  EXPECT_EQ(parts[3].json, error);
  EXPECT_EQ(parts[3].headers["req_id"], "b5f1");

  EXPECT_EQ(parts[4].status, 429);
  EXPECT_EQ(parts[4].reason, "Too Many Requests");
  EXPECT_EQ(parts[4].headers["retry-after"], "5");

  EXPECT_EQ(parts[5].status, 299);
  EXPECT_EQ(parts[5].reason, "Success");
  EXPECT_EQ(parts[5].headers["content-type"], "application/json; odata.metadata=minimal; odata.streaming=true");
}

TEST(BatchWriteTest, HeadersCannotBreakTheFraming) {
  std::vector<BatchResultItem> items(2);
  items[0].results.push_back(Answer("7\r\nX-Injected: 1", 204,
                                    {{"Location", "accounts(name='{x}')"},
                                     {"X-Evil", "a\r\n\r\n{\"json\":1}\r\n--batchresponse_x"},
                                     {"Content-Type", "application/json; odata.metadata=full"}}));
  items[1].results.push_back(Answer("", 600, {}));
  std::string ct;
  std::string body = WriteBatchResponse(items, ct);
  auto parts = ReadAsClient(ct, body);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].json, "");  // no braces left in headers
  EXPECT_EQ(parts[0].content_id, "7  X-Injected: 1");
  EXPECT_EQ(parts[0].headers["location"], "accounts(name='%7Bx%7D')");
  EXPECT_EQ(parts[0].headers.count("x-injected"), 0u);
  EXPECT_EQ(parts[0].headers["content-type"], "application/json; odata.metadata=full; odata.streaming=true");
  EXPECT_EQ(parts[1].status, 500);
  EXPECT_EQ(parts[1].reason, "Internal Server Error");
}

// Parse a client batch, answer each operation, write, read back as a client: every answer lands
// in order, with its Content-ID and JSON, in the right kind of part.
TEST(BatchRoundTripTest, ParseAnswerWriteRead) {
  auto items = MustParse(R"(multipart/mixed; boundary="batch_AAA123")", DocExample());
  std::vector<BatchResultItem> results;
  int n = 0;
  for (const auto& item : items) {
    BatchResultItem& out = results.emplace_back();
    out.is_changeset = item.is_changeset;
    for (const auto& op : item.operations) {
      std::string json = R"({"n":)" + std::to_string(++n) + R"(,"method":")" + op.request.method + R"("})";
      out.results.push_back(
          Answer(op.content_id, op.request.method == "GET" ? 200 : 201,
                 {{"Content-Type", "application/json; odata.metadata=minimal"}, {"OData-Version", "4.0"}}, json));
    }
  }
  std::string ct;
  auto parts = ReadAsClient(ct, WriteBatchResponse(results, ct));
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_FALSE(parts[0].in_changeset);
  EXPECT_EQ(parts[0].status, 200);
  EXPECT_EQ(parts[0].json, R"({"n":1,"method":"GET"})");
  EXPECT_EQ(parts[0].content_id, "");
  EXPECT_TRUE(parts[1].in_changeset);
  EXPECT_EQ(parts[1].content_id, "1");
  EXPECT_EQ(parts[1].json, R"({"n":2,"method":"POST"})");
  EXPECT_TRUE(parts[2].in_changeset);
  EXPECT_EQ(parts[2].content_id, "2");
  EXPECT_EQ(parts[2].status, 201);
}

// The writer's output is itself valid multipart: the request parser frames it the same way
// (parts and change sets), although it rejects the status lines as request lines.
TEST(BatchRoundTripTest, WriterOutputFramesAsMultipart) {
  std::vector<BatchResultItem> items(2);
  items[0].results.push_back(Answer("", 204, {}));
  items[1].is_changeset = true;
  items[1].results.push_back(Answer("1", 204, {}));
  std::string ct;
  std::string body = WriteBatchResponse(items, ct);
  auto r = ParseBatch(ct, body);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("$batch part 1: unknown HTTP method 'HTTP/1.1'"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace tributary::odata

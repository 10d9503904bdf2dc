#include <gtest/gtest.h>

#include <set>

#include "tributary/base/guid.h"
#include "tributary/base/json.h"
#include "tributary/base/strings.h"
#include "tributary/base/time.h"

namespace tributary {
namespace {

TEST(GuidTest, ParsesAnyCaseAndBraces) {
  auto g = Guid::Parse("{7EB682F1-CA75-E511-80D4-00155D2A68D1}");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->ToString(), "7eb682f1-ca75-e511-80d4-00155d2a68d1");
  EXPECT_FALSE(Guid::Parse("7eb682f1-ca75-e511-80d4-00155d2a68d"));
  EXPECT_FALSE(Guid::Parse("7eb682f1xca75-e511-80d4-00155d2a68d1"));
  EXPECT_FALSE(Guid::Parse("7eb682f1-ca75-e511-80d4-00155d2a68dz"));
}

TEST(GuidTest, SequentialGuidsSortInCreationOrderAsText) {
  std::string prev;
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    std::string s = GuidGenerator::NewSequential().ToString();
    EXPECT_GT(s, prev);
    EXPECT_TRUE(seen.insert(s).second);
    prev = s;
  }
}

TEST(TimeTest, FormatsAndParses) {
  auto t = ParseTimestamp("2023-04-07T21:59:01Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(FormatTimestamp(*t), "2023-04-07T21:59:01Z");
  auto off = ParseTimestamp("2021-04-04T12:00:00-08:00");
  ASSERT_TRUE(off);
  EXPECT_EQ(FormatTimestamp(*off), "2021-04-04T20:00:00Z");
  EXPECT_EQ(FormatTimestamp(*ParseTimestamp("2020-02-29")), "2020-02-29T00:00:00Z");
  EXPECT_EQ(ParseTimestamp("2023-04-07T21:59:01.123Z")->ms % 1000, 123);
  EXPECT_FALSE(ParseTimestamp("2023-02-30"));
  EXPECT_FALSE(ParseTimestamp("2023-04-07T25:00:00Z"));
  EXPECT_FALSE(ParseTimestamp("2023-04-07T21:59:01Zjunk"));
  EXPECT_EQ(FormatTimestamp(Timestamp{-1000}), "1969-12-31T23:59:59Z");
  EXPECT_EQ(FormatDate(*ParseDate("1753-01-01")), "1753-01-01");
}

TEST(JsonTest, WriterEscapesAndSeparates) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("a\"b");
  w.String("line\nnext\x01");
  w.Key("n");
  w.BeginArray();
  w.Int(-5);
  w.Double(2.5);
  w.Fixed(5000000, 4);
  w.Null();
  w.EndArray();
  w.Key("t");
  w.Bool(true);
  w.EndObject();
  EXPECT_EQ(out, R"({"a\"b":"line\nnext\u0001","n":[-5,2.5,5000000.0000,null],"t":true})");
}

TEST(JsonTest, ParsesUnicodeEscapesAndKeepsOrder) {
  auto j = ParseJson(R"({"z":1,"name":"Caf\u00e9 \ud83d\ude00","arr":[true,null,1.5]})");
  ASSERT_TRUE(j.ok());
  ASSERT_TRUE(j->is_object());
  EXPECT_EQ(j->as_object()[0].first, "z");
  EXPECT_EQ(j->Find("name")->as_string(), "Café 😀");
  EXPECT_EQ(j->Find("arr")->as_array()[2].as_double(), 1.5);
  EXPECT_FALSE(ParseJson("{\"a\":").ok());
  EXPECT_FALSE(ParseJson("").ok());
  EXPECT_EQ(ParseJson("{\"a\":").status().error_code(), err::kPayloadError);
}

TEST(StringsTest, IsUtf8AcceptsWellFormedTextOnly) {
  EXPECT_TRUE(IsUtf8(""));
  EXPECT_TRUE(IsUtf8("plain ascii"));
  EXPECT_TRUE(IsUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));  // é € 😀
  EXPECT_FALSE(IsUtf8("\xC3"));                                      // cut short
  EXPECT_FALSE(IsUtf8("\xC0\xAF"));                                  // overlong '/'
  EXPECT_FALSE(IsUtf8("\xED\xA0\x80"));                              // a surrogate
  EXPECT_FALSE(IsUtf8("\xF4\x90\x80\x80"));                          // past U+10FFFF
  EXPECT_FALSE(
      IsUtf8("a\x80"
             "b"));  // a lone continuation byte
}

TEST(StringsTest, PercentDecoding) {
  std::string out;
  EXPECT_TRUE(PercentDecode("a%20b+c%2B", out, true));
  EXPECT_EQ(out, "a b c+");
  EXPECT_FALSE(PercentDecode("bad%2", out, true));
  EXPECT_FALSE(PercentDecode("bad%zz", out, true));
  EXPECT_FALSE(PercentDecode("%", out, true));
}

TEST(StringsTest, XmlEscapingRoundTrips) {
  std::string out;
  AppendXmlEscaped(out, "a&b<c>\"d'e\tf\r\ng\x01");
  EXPECT_EQ(out, "a&amp;b&lt;c&gt;&quot;d&apos;e&#x9;f&#xD;&#xA;g");
  EXPECT_EQ(XmlUnescape(out), "a&b<c>\"d'e\tf\r\ng");
  EXPECT_EQ(XmlUnescape("&#65;&#x42;&unknown;&"), "AB&unknown;&");
}

TEST(StringsTest, Base64RoundTrip) {
  std::string decoded;
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    ASSERT_TRUE(Base64Decode(Base64Encode(s), decoded));
    EXPECT_EQ(decoded, s);
    ASSERT_TRUE(Base64UrlDecode(Base64UrlEncode(s), decoded));
    EXPECT_EQ(decoded, s);
  }
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_FALSE(Base64Decode("Zm9v!", decoded));
}

}  // namespace
}  // namespace tributary

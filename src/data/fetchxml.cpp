#include "tributary/data/fetchxml.h"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tributary/base/status.h"
#include "tributary/base/strings.h"

namespace tributary::data {
namespace {

// ---------------------------------------------------------------------------------------------
// Operators

enum class Arity : uint8_t {
  kNone,         // null, today, eq-userid, …
  kOne,          // eq, like, on, …
  kOneInteger,   // last-x-days, in-fiscal-year, …
  kTwo,          // between, not-between
  kTwoIntegers,  // in-fiscal-period-and-year (period, year), …
  kOneOrMore,    // in, not-in, contain-values, not-contain-values
};

struct OperatorInfo {
  std::string_view name;
  Arity arity;
};

// The `operator` enumeration of the FetchXML schema (Fetch.xsd), in its order.
constexpr OperatorInfo kOperators[] = {
    {"eq", Arity::kOne},
    {"neq", Arity::kOne},
    {"ne", Arity::kOne},
    {"gt", Arity::kOne},
    {"ge", Arity::kOne},
    {"le", Arity::kOne},
    {"lt", Arity::kOne},
    {"like", Arity::kOne},
    {"not-like", Arity::kOne},
    {"in", Arity::kOneOrMore},
    {"not-in", Arity::kOneOrMore},
    {"between", Arity::kTwo},
    {"not-between", Arity::kTwo},
    {"null", Arity::kNone},
    {"not-null", Arity::kNone},
    {"yesterday", Arity::kNone},
    {"today", Arity::kNone},
    {"tomorrow", Arity::kNone},
    {"last-seven-days", Arity::kNone},
    {"next-seven-days", Arity::kNone},
    {"last-week", Arity::kNone},
    {"this-week", Arity::kNone},
    {"next-week", Arity::kNone},
    {"last-month", Arity::kNone},
    {"this-month", Arity::kNone},
    {"next-month", Arity::kNone},
    {"on", Arity::kOne},
    {"on-or-before", Arity::kOne},
    {"on-or-after", Arity::kOne},
    {"last-year", Arity::kNone},
    {"this-year", Arity::kNone},
    {"next-year", Arity::kNone},
    {"last-x-hours", Arity::kOneInteger},
    {"next-x-hours", Arity::kOneInteger},
    {"last-x-days", Arity::kOneInteger},
    {"next-x-days", Arity::kOneInteger},
    {"last-x-weeks", Arity::kOneInteger},
    {"next-x-weeks", Arity::kOneInteger},
    {"last-x-months", Arity::kOneInteger},
    {"next-x-months", Arity::kOneInteger},
    {"olderthan-x-months", Arity::kOneInteger},
    {"olderthan-x-years", Arity::kOneInteger},
    {"olderthan-x-weeks", Arity::kOneInteger},
    {"olderthan-x-days", Arity::kOneInteger},
    {"olderthan-x-hours", Arity::kOneInteger},
    {"olderthan-x-minutes", Arity::kOneInteger},
    {"last-x-years", Arity::kOneInteger},
    {"next-x-years", Arity::kOneInteger},
    {"eq-userid", Arity::kNone},
    {"ne-userid", Arity::kNone},
    {"eq-userteams", Arity::kNone},
    {"eq-useroruserteams", Arity::kNone},
    {"eq-useroruserhierarchy", Arity::kNone},
    {"eq-useroruserhierarchyandteams", Arity::kNone},
    {"eq-businessid", Arity::kNone},
    {"ne-businessid", Arity::kNone},
    {"eq-userlanguage", Arity::kNone},
    {"this-fiscal-year", Arity::kNone},
    {"this-fiscal-period", Arity::kNone},
    {"next-fiscal-year", Arity::kNone},
    {"next-fiscal-period", Arity::kNone},
    {"last-fiscal-year", Arity::kNone},
    {"last-fiscal-period", Arity::kNone},
    {"last-x-fiscal-years", Arity::kOneInteger},
    {"last-x-fiscal-periods", Arity::kOneInteger},
    {"next-x-fiscal-years", Arity::kOneInteger},
    {"next-x-fiscal-periods", Arity::kOneInteger},
    {"in-fiscal-year", Arity::kOneInteger},
    {"in-fiscal-period", Arity::kOneInteger},
    {"in-fiscal-period-and-year", Arity::kTwoIntegers},
    {"in-or-before-fiscal-period-and-year", Arity::kTwoIntegers},
    {"in-or-after-fiscal-period-and-year", Arity::kTwoIntegers},
    {"begins-with", Arity::kOne},
    {"not-begin-with", Arity::kOne},
    {"ends-with", Arity::kOne},
    {"not-end-with", Arity::kOne},
    {"under", Arity::kOne},
    {"eq-or-under", Arity::kOne},
    {"not-under", Arity::kOne},
    {"above", Arity::kOne},
    {"eq-or-above", Arity::kOne},
    {"contain-values", Arity::kOneOrMore},
    {"not-contain-values", Arity::kOneOrMore},
};

const OperatorInfo* FindOperator(std::string_view op) {
  for (const OperatorInfo& info : kOperators)
    if (info.name == op) return &info;
  return nullptr;
}

// Column comparisons (valueof) support only these.
constexpr std::string_view kValueOfOperators[] = {"eq", "neq", "ne", "gt", "ge", "lt", "le"};

// ---------------------------------------------------------------------------------------------
// Message helpers

constexpr size_t kMaxQuoted = 64;

// 'text' for messages, cut (at a UTF-8 boundary) when long. The input is valid UTF-8 by then.
std::string Quote(std::string_view s) {
  if (s.size() <= kMaxQuoted) return "'" + std::string(s) + "'";
  size_t cut = kMaxQuoted;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return "'" + std::string(s.substr(0, cut)) + "…'";
}

// A name from the input, cut like Quote but without the quotes (for "<name>").
std::string Clip(std::string_view s) {
  std::string q = Quote(s);
  return q.substr(1, q.size() - 2);
}

// "line L, column C" of byte offset `at` (columns count characters).
std::string Position(std::string_view in, size_t at) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < at && i < in.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    if (c == '\n') {
      ++line;
      column = 1;
    } else if ((c & 0xC0) != 0x80) {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

std::string Join(std::span<const std::string_view> items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += i + 1 == items.size() ? " or " : ", ";
    out += items[i];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// XML reader: a strict, non-validating reader for the subset FetchXML needs. It builds a small
// element tree; recursion-free (an explicit stack) and linear in the input size.

// Deep enough for kMaxFetchNesting filters/link-entities under fetch and entity, plus condition
// and value; anything deeper is rejected while reading, before any recursive processing.
constexpr size_t kMaxXmlDepth = kMaxFetchNesting + 4;

struct XmlAttribute {
  std::string name;
  std::string value;  // references decoded, whitespace normalized
};

struct XmlElement {
  std::string name;
  size_t offset = 0;  // of '<'
  std::vector<XmlAttribute> attributes;
  std::string text;        // character data directly inside (references decoded, CDATA included)
  size_t text_offset = 0;  // of the first non-whitespace character data
  bool has_text = false;   // the character data holds more than whitespace
  std::vector<XmlElement> children;
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9') || c == '-' || c == '.'; }

// The Char production of XML 1.0.
bool IsXmlChar(uint32_t cp) {
  return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) ||
         (cp >= 0x10000 && cp <= 0x10FFFF);
}

class XmlReader {
 public:
  explicit XmlReader(std::string_view in) : in_(in) {}

  // Reads the whole document into `root`.
  Status Read(XmlElement& root) {
    RETURN_IF_ERROR(CheckCharacters());
    if (Next("\xEF\xBB\xBF")) pos_ += 3;
    if (AtDeclaration()) RETURN_IF_ERROR(ReadDeclaration());
    RETURN_IF_ERROR(ReadMisc(/*before_root=*/true));
    RETURN_IF_ERROR(ReadElements(root));
    return ReadMisc(/*before_root=*/false);
  }

 private:
  bool AtEnd() const { return pos_ >= in_.size(); }
  bool Next(std::string_view s) const { return in_.substr(pos_).starts_with(s); }
  bool AtDeclaration() const {
    return Next("<?xml") && pos_ + 5 < in_.size() && (IsSpace(in_[pos_ + 5]) || in_[pos_ + 5] == '?');
  }
  bool SkipSpace() {
    size_t start = pos_;
    while (!AtEnd() && IsSpace(in_[pos_])) ++pos_;
    return pos_ != start;
  }

  Status Fail(size_t at, const std::string& msg) const {
    return QueryError("Invalid FetchXML at " + Position(in_, at) + ": " + msg);
  }

  // The whole input must be UTF-8 made of XML characters; later steps (and messages) rely on it.
  Status CheckCharacters() const {
    size_t i = 0;
    while (i < in_.size()) {
      unsigned char b = static_cast<unsigned char>(in_[i]);
      uint32_t cp;
      size_t len;
      if (b < 0x80) {
        cp = b;
        len = 1;
      } else if (b >= 0xC2 && b <= 0xDF) {
        cp = b & 0x1F;
        len = 2;
      } else if (b >= 0xE0 && b <= 0xEF) {
        cp = b & 0x0F;
        len = 3;
      } else if (b >= 0xF0 && b <= 0xF4) {
        cp = b & 0x07;
        len = 4;
      } else {
        return Fail(i, "the text is not valid UTF-8.");
      }
      if (i + len > in_.size()) return Fail(i, "the text is not valid UTF-8.");
      for (size_t k = 1; k < len; ++k) {
        unsigned char c = static_cast<unsigned char>(in_[i + k]);
        if ((c & 0xC0) != 0x80) return Fail(i, "the text is not valid UTF-8.");
        cp = cp << 6 | (c & 0x3F);
      }
      if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
        return Fail(i, "the text is not valid UTF-8.");
      if (!IsXmlChar(cp)) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "U+%04X", cp);
        return Fail(i, std::string("the character ") + buf + " is not allowed in XML.");
      }
      i += len;
    }
    return Status::Ok();
  }

  Status ReadName(std::string& out, const char* what) {
    size_t start = pos_;
    if (AtEnd() || !IsNameStart(in_[pos_])) return Fail(pos_, std::string("expected ") + what + ".");
    while (!AtEnd() && IsNameChar(in_[pos_])) ++pos_;
    out.assign(in_.substr(start, pos_ - start));
    return Status::Ok();
  }

  // <?xml version="1.0" encoding="…" standalone="…"?> at the very start.
  Status ReadDeclaration() {
    size_t start = pos_;
    pos_ += 5;
    static constexpr std::string_view kOrder[] = {"version", "encoding", "standalone"};
    size_t next = 0;  // index in kOrder of the next pseudo-attribute allowed
    while (true) {
      bool space = SkipSpace();
      if (AtEnd()) return Fail(start, "the XML declaration is not closed with '?>'.");
      if (Next("?>")) {
        pos_ += 2;
        break;
      }
      if (!space) return Fail(pos_, "expected whitespace or '?>' in the XML declaration.");
      size_t at = pos_;
      std::string name;
      RETURN_IF_ERROR(ReadName(name, "a pseudo-attribute name in the XML declaration"));
      if (next == 0 && name != "version") return Fail(at, "the XML declaration must start with version.");
      while (next < std::size(kOrder) && kOrder[next] != name) ++next;
      if (next == std::size(kOrder))
        return Fail(at,
                    "unexpected " + Quote(name) + " in the XML declaration (expected version, encoding, standalone).");
      ++next;
      SkipSpace();
      if (AtEnd() || in_[pos_] != '=') return Fail(pos_, "expected '=' after " + Quote(name) + ".");
      ++pos_;
      SkipSpace();
      if (AtEnd() || (in_[pos_] != '"' && in_[pos_] != '\'')) return Fail(pos_, "expected a quoted value.");
      char quote = in_[pos_++];
      size_t end = in_.find(quote, pos_);
      if (end == std::string_view::npos) return Fail(at, "the value of " + Quote(name) + " is not closed.");
      std::string_view value = in_.substr(pos_, end - pos_);
      pos_ = end + 1;
      bool valid = !value.empty();
      if (name == "version") {
        valid = value.size() >= 3 && value.starts_with("1.") &&
                std::all_of(value.begin() + 2, value.end(), [](char c) { return c >= '0' && c <= '9'; });
      } else if (name == "encoding") {
        valid = valid && std::all_of(value.begin(), value.end(), [](char c) {
                  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                         c == '_' || c == '-';
                });
      } else {
        valid = value == "yes" || value == "no";
      }
      if (!valid) return Fail(at, "invalid " + name + " " + Quote(value) + " in the XML declaration.");
    }
    if (next == 0) return Fail(start, "the XML declaration must have a version.");
    return Status::Ok();
  }

  // Whitespace and comments before or after the root element.
  Status ReadMisc(bool before_root) {
    while (true) {
      SkipSpace();
      if (AtEnd()) return before_root ? Fail(pos_, "the document has no root element.") : Status::Ok();
      if (Next("<!--")) {
        RETURN_IF_ERROR(ReadComment());
      } else if (Next("<?")) {
        return AtDeclaration() ? Fail(pos_, "the XML declaration is only allowed at the very start of the document.")
                               : Fail(pos_, "processing instructions are not allowed.");
      } else if (Next("<!DOCTYPE")) {
        return Fail(pos_, "DTDs (<!DOCTYPE>) are not allowed.");
      } else if (Next("<!")) {
        return Fail(pos_, "unexpected markup '<!'.");
      } else if (in_[pos_] == '<') {
        if (before_root) return Status::Ok();
        return Fail(pos_, "only one root element is allowed.");
      } else {
        return Fail(pos_, before_root ? "text is not allowed before the root element."
                                      : "text is not allowed after the root element.");
      }
    }
  }

  Status ReadComment() {
    size_t start = pos_;
    pos_ += 4;
    size_t dashes = in_.find("--", pos_);
    if (dashes == std::string_view::npos) return Fail(start, "the comment is not closed with '-->'.");
    if (dashes + 2 >= in_.size() || in_[dashes + 2] != '>')
      return Fail(dashes, "'--' is not allowed inside a comment.");
    pos_ = dashes + 3;
    return Status::Ok();
  }

  // A reference at '&': the five predefined entities or a character reference.
  Status ReadReference(std::string& out) {
    size_t start = pos_++;
    if (!AtEnd() && in_[pos_] == '#') {
      ++pos_;
      int base = 10;
      if (!AtEnd() && in_[pos_] == 'x') {
        base = 16;
        ++pos_;
      }
      uint32_t cp = 0;
      size_t digits = 0;
      while (!AtEnd()) {
        char c = in_[pos_];
        int d = c >= '0' && c <= '9'                 ? c - '0'
                : base == 16 && c >= 'a' && c <= 'f' ? c - 'a' + 10
                : base == 16 && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                     : -1;
        if (d < 0) break;
        if (cp <= 0x10FFFF)
          cp = cp * static_cast<uint32_t>(base) + static_cast<uint32_t>(d);  // stops growing past the range
        ++digits;
        ++pos_;
      }
      if (digits == 0 || AtEnd() || in_[pos_] != ';')
        return Fail(start, "malformed character reference (expected &#NN; or &#xHH;).");
      ++pos_;
      if (!IsXmlChar(cp))
        return Fail(start, "the character reference " + Quote(in_.substr(start, pos_ - start)) +
                               " is not an allowed XML character.");
      AppendUtf8(out, cp);
      return Status::Ok();
    }
    size_t name_start = pos_;
    while (!AtEnd() && pos_ - name_start < 16 && IsNameChar(in_[pos_])) ++pos_;
    std::string_view name = in_.substr(name_start, pos_ - name_start);
    if (name.empty() || AtEnd() || in_[pos_] != ';')
      return Fail(start, "'&' must be written as &amp; (or start an entity or character reference ending in ';').");
    ++pos_;
    if (name == "lt") {
      out.push_back('<');
    } else if (name == "gt") {
      out.push_back('>');
    } else if (name == "amp") {
      out.push_back('&');
    } else if (name == "quot") {
      out.push_back('"');
    } else if (name == "apos") {
      out.push_back('\'');
    } else {
      return Fail(start, "unknown entity " + Quote(in_.substr(start, pos_ - start)) +
                             " (only &lt; &gt; &amp; &quot; &apos; and character references are allowed).");
    }
    return Status::Ok();
  }

  // A start tag at '<'; `empty` is set for <x/>.
  Status ReadStartTag(XmlElement& e, bool& empty) {
    e.offset = pos_++;
    RETURN_IF_ERROR(ReadName(e.name, "an element name after '<'"));
    while (true) {
      bool space = SkipSpace();
      if (AtEnd()) return Fail(e.offset, "the start tag of <" + e.name + "> is not closed.");
      if (in_[pos_] == '>') {
        ++pos_;
        empty = false;
        break;
      }
      if (Next("/>")) {
        pos_ += 2;
        empty = true;
        break;
      }
      if (!space) return Fail(pos_, "expected whitespace, '>' or '/>' in the start tag of <" + e.name + ">.");
      XmlAttribute& a = e.attributes.emplace_back();
      size_t at = pos_;
      RETURN_IF_ERROR(ReadName(a.name, "an attribute name"));
      SkipSpace();
      if (AtEnd() || in_[pos_] != '=')
        return Fail(pos_, "expected '=' after the attribute name " + Quote(a.name) + ".");
      ++pos_;
      SkipSpace();
      if (AtEnd() || (in_[pos_] != '"' && in_[pos_] != '\''))
        return Fail(pos_, "the value of the attribute " + Quote(a.name) + " must be in single or double quotes.");
      char quote = in_[pos_++];
      while (true) {
        if (AtEnd()) return Fail(at, "the value of the attribute " + Quote(a.name) + " is not closed.");
        char c = in_[pos_];
        if (c == quote) {
          ++pos_;
          break;
        }
        if (c == '<') return Fail(pos_, "'<' is not allowed in attribute values (write &lt;).");
        if (c == '&') {
          RETURN_IF_ERROR(ReadReference(a.value));
          continue;
        }
        if (c == '\r' && pos_ + 1 < in_.size() && in_[pos_ + 1] == '\n') ++pos_;
        a.value.push_back(IsSpace(c) ? ' ' : c);  // attribute-value normalization
        ++pos_;
      }
    }
    if (e.attributes.size() > 1) {
      std::vector<std::string_view> names;
      names.reserve(e.attributes.size());
      for (const XmlAttribute& a : e.attributes) names.push_back(a.name);
      std::sort(names.begin(), names.end());
      auto dup = std::adjacent_find(names.begin(), names.end());
      if (dup != names.end())
        return Fail(e.offset, "the attribute " + Quote(*dup) + " appears more than once on <" + e.name + ">.");
    }
    return Status::Ok();
  }

  // Appends character data up to the next '<' (or the end) to `e`.
  Status ReadText(XmlElement& e) {
    size_t start = pos_;
    size_t first = e.text.size();
    while (!AtEnd() && in_[pos_] != '<') {
      char c = in_[pos_];
      if (c == '&') {
        RETURN_IF_ERROR(ReadReference(e.text));
        continue;
      }
      if (c == ']' && Next("]]>")) return Fail(pos_, "']]>' is not allowed in text.");
      if (c == '\r') {
        if (pos_ + 1 < in_.size() && in_[pos_ + 1] == '\n') ++pos_;
        c = '\n';
      }
      e.text.push_back(c);
      ++pos_;
    }
    NoteText(e, first, start);
    return Status::Ok();
  }

  // Records whether text appended to `e` from index `first` (read from input offset `at`) holds
  // more than whitespace, and roughly where.
  void NoteText(XmlElement& e, size_t first, size_t at) const {
    if (e.has_text) return;
    for (size_t i = first; i < e.text.size(); ++i) {
      if (!IsSpace(e.text[i])) {
        while (at < in_.size() && IsSpace(in_[at])) ++at;
        e.has_text = true;
        e.text_offset = at;
        return;
      }
    }
  }

  Status ReadCData(XmlElement& e) {
    size_t start = pos_;
    pos_ += 9;
    size_t end = in_.find("]]>", pos_);
    if (end == std::string_view::npos) return Fail(start, "the CDATA section is not closed with ']]>'.");
    size_t first = e.text.size();
    for (; pos_ < end; ++pos_) {
      char c = in_[pos_];
      if (c == '\r') {
        if (pos_ + 1 < end && in_[pos_ + 1] == '\n') ++pos_;
        c = '\n';
      }
      e.text.push_back(c);
    }
    pos_ = end + 3;
    NoteText(e, first, start);
    return Status::Ok();
  }

  Status ReadEndTag(const XmlElement& open) {
    size_t start = pos_;
    pos_ += 2;
    std::string name;
    RETURN_IF_ERROR(ReadName(name, "an element name after '</'"));
    if (name != open.name)
      return Fail(start, "the end tag </" + Clip(name) + "> does not match the start tag <" + Clip(open.name) +
                             "> at " + Position(in_, open.offset) + ".");
    SkipSpace();
    if (AtEnd() || in_[pos_] != '>') return Fail(pos_, "expected '>' to end </" + name + ">.");
    ++pos_;
    return Status::Ok();
  }

  // The root element and everything inside it, with an explicit stack of open elements.
  Status ReadElements(XmlElement& root) {
    bool empty = false;
    RETURN_IF_ERROR(ReadStartTag(root, empty));
    if (empty) return Status::Ok();
    std::vector<XmlElement*> open = {&root};
    while (!open.empty()) {
      XmlElement& cur = *open.back();
      RETURN_IF_ERROR(ReadText(cur));
      if (AtEnd()) return Fail(cur.offset, "the element <" + cur.name + "> is not closed.");
      if (Next("</")) {
        RETURN_IF_ERROR(ReadEndTag(cur));
        open.pop_back();
      } else if (Next("<!--")) {
        RETURN_IF_ERROR(ReadComment());
      } else if (Next("<![CDATA[")) {
        RETURN_IF_ERROR(ReadCData(cur));
      } else if (Next("<!DOCTYPE")) {
        return Fail(pos_, "DTDs (<!DOCTYPE>) are not allowed.");
      } else if (Next("<!")) {
        return Fail(pos_, "unexpected markup '<!'.");
      } else if (Next("<?")) {
        return Fail(pos_, "processing instructions are not allowed.");
      } else {
        if (open.size() >= kMaxXmlDepth)
          return Fail(pos_, "elements are nested more than " + std::to_string(kMaxXmlDepth) + " levels deep.");
        XmlElement& child = cur.children.emplace_back();
        RETURN_IF_ERROR(ReadStartTag(child, empty));
        if (!empty) open.push_back(&child);  // cur.children does not grow until child is closed
      }
    }
    return Status::Ok();
  }

  std::string_view in_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// FetchXML: the schema and the rules, over the element tree.

using Names = std::span<const std::string_view>;

// Per element: attributes read, attributes accepted and ignored (hints, UI data, legacy), and
// attributes rejected because they would change the results in ways Tributary does not support.
constexpr std::string_view kFetchAttrs[] = {"version",   "mapping", "distinct",      "top",
                                            "count",     "page",    "paging-cookie", "returntotalrecordcount",
                                            "aggregate", "no-lock", "output-format"};
constexpr std::string_view kFetchIgnored[] = {"latematerialize", "options", "min-active-row-version", "aggregatelimit",
                                              "useraworderby"};
constexpr std::string_view kFetchUnsupported[] = {"utc-offset", "datasource"};
constexpr std::string_view kEntityAttrs[] = {"name"};
constexpr std::string_view kEntityIgnored[] = {"enableprefiltering", "prefilterparametername", "forceseek"};
constexpr std::string_view kAttributeAttrs[] = {"name", "alias", "aggregate", "groupby", "dategrouping", "distinct"};
constexpr std::string_view kAttributeIgnored[] = {"build", "addedby", "usertimezone"};
constexpr std::string_view kAttributeUnsupported[] = {"rowaggregate"};
constexpr std::string_view kOrderAttrs[] = {"attribute", "alias", "descending"};
constexpr std::string_view kOrderUnsupported[] = {"entityname"};
constexpr std::string_view kFilterAttrs[] = {"type"};
constexpr std::string_view kFilterIgnored[] = {"hint", "isquickfindfields", "overridequickfindrecordlimitenabled",
                                               "overridequickfindrecordlimitdisabled"};
constexpr std::string_view kConditionAttrs[] = {"attribute", "operator", "value", "valueof", "entityname"};
constexpr std::string_view kConditionIgnored[] = {"uiname", "uitype", "uihidden"};
constexpr std::string_view kConditionUnsupported[] = {"column", "aggregate", "alias", "rowaggregate"};
constexpr std::string_view kValueIgnored[] = {"uiname", "uitype"};
constexpr std::string_view kLinkAttrs[] = {"name", "from", "to", "alias", "link-type", "visible", "intersect"};
constexpr std::string_view kLinkIgnored[] = {"enableprefiltering", "prefilterparametername"};

constexpr std::string_view kMappings[] = {"logical", "internal"};
constexpr std::string_view kOutputFormats[] = {"xml-ado", "xml-auto", "xml-elements", "xml-raw", "xml-platform"};
constexpr std::string_view kAggregates[] = {"count", "countcolumn", "sum", "avg", "min", "max"};
constexpr std::string_view kDateGroupings[] = {"day",  "week",          "month",      "quarter",
                                               "year", "fiscal-period", "fiscal-year"};
constexpr std::string_view kFilterTypes[] = {"and", "or"};
constexpr std::string_view kJoinLinkTypes[] = {"inner", "outer", "exists", "in", "matchfirstrowusingcrossapply"};
constexpr std::string_view kFilterLinkTypes[] = {"any", "not any", "all", "not all"};
constexpr std::string_view kColumnLinkTypes[] = {"inner", "outer", "matchfirstrowusingcrossapply"};

bool Contains(Names names, std::string_view s) { return std::find(names.begin(), names.end(), s) != names.end(); }

const std::string* FindAttribute(const XmlElement& e, std::string_view name) {
  for (const XmlAttribute& a : e.attributes)
    if (a.name == name) return &a.value;
  return nullptr;
}

// Parses a non-negative integer (digits only, leading zeros allowed); nullopt when malformed or
// larger than `max`.
std::optional<int64_t> ParsePositive(std::string_view s, int64_t max) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v > max) return std::nullopt;
  return v;
}

// Nesting of filters and link-entities (each counts one level).
int Depth(const FetchFilter& f);
int Depth(const FetchLink& l) {
  int d = l.filter ? Depth(*l.filter) : 0;
  for (const FetchLink& c : l.links) d = std::max(d, Depth(c));
  return d + 1;
}
int Depth(const FetchFilter& f) {
  int d = 0;
  for (const FetchFilter& c : f.filters) d = std::max(d, Depth(c));
  for (const FetchLink& c : f.links) d = std::max(d, Depth(c));
  return d + 1;
}

// Adds a filter element's content to an entity's filter: several filters are and-ed.
void AddFilter(std::optional<FetchFilter>& target, FetchFilter f) {
  if (!target) {
    target = std::move(f);
    return;
  }
  if (target->is_or) {
    FetchFilter both;
    both.filters.push_back(std::move(*target));
    target = std::move(both);
  }
  if (f.is_or) {
    target->filters.push_back(std::move(f));
    return;
  }
  for (FetchCondition& c : f.conditions) target->conditions.push_back(std::move(c));
  for (FetchFilter& c : f.filters) target->filters.push_back(std::move(c));
  for (FetchLink& c : f.links) target->links.push_back(std::move(c));
}

class FetchParser {
 public:
  explicit FetchParser(std::string_view in) : in_(in) {}

  Status Parse(const XmlElement& root, FetchQuery& q) {
    if (root.name != "fetch")
      return QueryError("Invalid FetchXML: the root element must be <fetch>, not <" + Clip(root.name) + ">.");
    RETURN_IF_ERROR(CheckAttributes(root, kFetchAttrs, kFetchIgnored, kFetchUnsupported));
    RETURN_IF_ERROR(CheckEnum(root, "mapping", kMappings, nullptr));
    RETURN_IF_ERROR(CheckEnum(root, "output-format", kOutputFormats, nullptr));
    RETURN_IF_ERROR(GetBool(root, "distinct", q.distinct));
    RETURN_IF_ERROR(GetBool(root, "aggregate", q.aggregate));
    RETURN_IF_ERROR(GetBool(root, "returntotalrecordcount", q.returntotalrecordcount));
    RETURN_IF_ERROR(GetBool(root, "no-lock", q.no_lock));
    RETURN_IF_ERROR(GetPositive(root, "top", kMaxFetchPageSize, q.top));
    RETURN_IF_ERROR(GetPositive(root, "count", kMaxFetchPageSize, q.count));
    RETURN_IF_ERROR(GetPositive(root, "page", INT32_MAX, q.page));
    if (const std::string* cookie = FindAttribute(root, "paging-cookie")) q.paging_cookie = *cookie;
    if (q.top && q.page) return QueryError("The top attribute can't be specified with paging attribute page");
    if (q.top && q.count) return QueryError("The top attribute can't be specified with paging attribute count");
    aggregate_ = q.aggregate;

    RETURN_IF_ERROR(NoText(root));
    const XmlElement* entity = nullptr;
    for (const XmlElement& child : root.children) {
      if (child.name == "entity") {
        if (entity) return Fail(child, "the fetch element can contain only one entity element.");
        entity = &child;
      } else if (child.name == "order") {
        return Fail(child,
                    "an order element directly inside fetch (a report-view feature) is not supported; "
                    "put it inside the entity element.");
      } else {
        return InvalidChild(root, child);
      }
    }
    if (!entity) return Fail(root, "the fetch element must contain an entity element.");
    RETURN_IF_ERROR(CheckAttributes(*entity, kEntityAttrs, kEntityIgnored, {}));
    RETURN_IF_ERROR(GetRequired(*entity, "name", q.entity));
    RETURN_IF_ERROR(ParseBody(*entity, q, /*link_type=*/""));

    int depth = q.filter ? Depth(*q.filter) : 0;
    for (const FetchLink& l : q.links) depth = std::max(depth, Depth(l));
    if (depth > kMaxFetchNesting)
      return QueryError("Invalid FetchXML: filter and link-entity elements are nested " + std::to_string(depth) +
                        " levels deep; at most " + std::to_string(kMaxFetchNesting) + " are supported.");
    return Status::Ok();
  }

 private:
  Status Fail(const XmlElement& e, const std::string& msg) const {
    return QueryError("Invalid FetchXML: <" + Clip(e.name) + "> at " + Position(in_, e.offset) + ": " + msg);
  }

  Status InvalidChild(const XmlElement& parent, const XmlElement& child) const {
    return Fail(child, "the element '" + parent.name + "' has invalid child element " + Quote(child.name) + ".");
  }

  Status NoText(const XmlElement& e) const {
    if (!e.has_text) return Status::Ok();
    return QueryError("Invalid FetchXML at " + Position(in_, e.text_offset) + ": the element '" + e.name +
                      "' cannot contain text.");
  }

  Status NoContent(const XmlElement& e) const {
    RETURN_IF_ERROR(NoText(e));
    if (!e.children.empty()) return InvalidChild(e, e.children.front());
    return Status::Ok();
  }

  Status CheckAttributes(const XmlElement& e, Names known, Names ignored, Names unsupported) const {
    for (const XmlAttribute& a : e.attributes) {
      if (Contains(known, a.name) || Contains(ignored, a.name)) continue;
      if (a.name == "xmlns" || a.name.starts_with("xmlns:")) continue;
      if (Contains(unsupported, a.name))
        return Fail(e, "the '" + a.name + "' attribute is not supported by Tributary.");
      return Fail(e, "the " + Quote(a.name) + " attribute is not declared.");
    }
    return Status::Ok();
  }

  Status GetRequired(const XmlElement& e, std::string_view name, std::string& out) const {
    const std::string* v = FindAttribute(e, name);
    if (!v) return Fail(e, "the required attribute '" + std::string(name) + "' is missing.");
    if (v->empty()) return Fail(e, "the attribute '" + std::string(name) + "' must not be empty.");
    out = *v;
    return Status::Ok();
  }

  // Optional string attribute; an empty value is the same as none.
  static void GetOptional(const XmlElement& e, std::string_view name, std::string& out) {
    if (const std::string* v = FindAttribute(e, name)) out = *v;
  }

  Status GetBool(const XmlElement& e, std::string_view name, bool& out) const {
    const std::string* v = FindAttribute(e, name);
    if (!v) return Status::Ok();
    if (EqualsIgnoreCase(*v, "true") || *v == "1") {
      out = true;
    } else if (EqualsIgnoreCase(*v, "false") || *v == "0") {
      out = false;
    } else {
      return Fail(e, "the '" + std::string(name) + "' attribute is invalid: " + Quote(*v) +
                         " is not a boolean (true, false, 1 or 0).");
    }
    return Status::Ok();
  }

  Status GetPositive(const XmlElement& e, std::string_view name, int64_t max, std::optional<int64_t>& out) const {
    const std::string* v = FindAttribute(e, name);
    if (!v) return Status::Ok();
    std::optional<int64_t> n = ParsePositive(*v, max);
    if (!n || *n == 0)
      return Fail(e, "the '" + std::string(name) + "' attribute is invalid: " + Quote(*v) +
                         " is not an integer from 1 to " + std::to_string(max) + ".");
    out = n;
    return Status::Ok();
  }

  // An enumerated attribute; `out` (when given) receives the value, empty when absent.
  Status CheckEnum(const XmlElement& e, std::string_view name, Names allowed, std::string* out) const {
    const std::string* v = FindAttribute(e, name);
    if (!v) return Status::Ok();
    if (!Contains(allowed, *v))
      return Fail(e, "the '" + std::string(name) + "' attribute is invalid: " + Quote(*v) + " is not one of " +
                         Join(allowed) + ".");
    if (out) *out = *v;
    return Status::Ok();
  }

  // The content shared by <entity> and <link-entity> (`link_type` empty for the entity).
  template <typename Node>
  Status ParseBody(const XmlElement& e, Node& out, std::string_view link_type) {
    RETURN_IF_ERROR(NoText(e));
    for (const XmlElement& child : e.children) {
      if (child.name == "all-attributes" || child.name == "attribute") {
        if (!link_type.empty() && !Contains(kColumnLinkTypes, link_type))
          return Fail(child, "a link-entity with link-type '" + std::string(link_type) + "' can't return columns.");
        if (child.name == "all-attributes") {
          RETURN_IF_ERROR(CheckAttributes(child, {}, {}, {}));
          RETURN_IF_ERROR(NoContent(child));
          if (aggregate_) return Fail(child, "all-attributes can't be used in an aggregate query.");
          out.all_attributes = true;
        } else {
          RETURN_IF_ERROR(ParseAttribute(child, out.attributes.emplace_back()));
        }
      } else if (child.name == "order") {
        RETURN_IF_ERROR(ParseOrder(child, out.orders.emplace_back()));
      } else if (child.name == "filter") {
        FetchFilter f;
        RETURN_IF_ERROR(ParseFilter(child, f));
        AddFilter(out.filter, std::move(f));
      } else if (child.name == "link-entity") {
        RETURN_IF_ERROR(ParseLink(child, out.links.emplace_back(), /*in_filter=*/false));
      } else {
        return InvalidChild(e, child);
      }
    }
    return Status::Ok();
  }

  Status ParseAttribute(const XmlElement& e, FetchAttribute& a) {
    RETURN_IF_ERROR(CheckAttributes(e, kAttributeAttrs, kAttributeIgnored, kAttributeUnsupported));
    RETURN_IF_ERROR(NoContent(e));
    RETURN_IF_ERROR(GetRequired(e, "name", a.name));
    GetOptional(e, "alias", a.alias);
    RETURN_IF_ERROR(CheckEnum(e, "aggregate", kAggregates, &a.aggregate));
    RETURN_IF_ERROR(GetBool(e, "groupby", a.groupby));
    RETURN_IF_ERROR(CheckEnum(e, "dategrouping", kDateGroupings, &a.dategrouping));
    RETURN_IF_ERROR(GetBool(e, "distinct", a.distinct));
    if (!a.aggregate.empty() && a.groupby) return Fail(e, "an attribute can't have both aggregate and groupby.");
    if (!a.dategrouping.empty() && !a.groupby) return Fail(e, "dategrouping requires groupby='true'.");
    if (!aggregate_) {
      if (!a.aggregate.empty() || a.groupby)
        return Fail(e, "the attribute " + Quote(a.name) + " uses " + (a.groupby ? "groupby" : "aggregate") +
                           ", which requires aggregate='true' on the fetch element.");
      return Status::Ok();
    }
    if (a.aggregate.empty() && !a.groupby)
      return Fail(e,
                  "An attribute can not be requested when an aggregate operation has been specified and its "
                  "neither groupby nor aggregate.");
    if (a.alias.empty()) return Fail(e, "the attribute " + Quote(a.name) + " needs an alias in an aggregate query.");
    return Status::Ok();
  }

  Status ParseOrder(const XmlElement& e, FetchOrder& o) const {
    RETURN_IF_ERROR(CheckAttributes(e, kOrderAttrs, {}, kOrderUnsupported));
    RETURN_IF_ERROR(NoContent(e));
    GetOptional(e, "attribute", o.attribute);
    GetOptional(e, "alias", o.alias);
    RETURN_IF_ERROR(GetBool(e, "descending", o.descending));
    if (o.attribute.empty() == o.alias.empty())
      return Fail(e, o.attribute.empty() ? "an order element needs an attribute or an alias."
                                         : "an order element can't have both an attribute and an alias.");
    return Status::Ok();
  }

  Status ParseFilter(const XmlElement& e, FetchFilter& f) {
    RETURN_IF_ERROR(CheckAttributes(e, kFilterAttrs, kFilterIgnored, {}));
    std::string type;
    RETURN_IF_ERROR(CheckEnum(e, "type", kFilterTypes, &type));
    f.is_or = type == "or";
    RETURN_IF_ERROR(NoText(e));
    for (const XmlElement& child : e.children) {
      if (child.name == "condition") {
        RETURN_IF_ERROR(ParseCondition(child, f.conditions.emplace_back()));
      } else if (child.name == "filter") {
        RETURN_IF_ERROR(ParseFilter(child, f.filters.emplace_back()));
      } else if (child.name == "link-entity") {
        RETURN_IF_ERROR(ParseLink(child, f.links.emplace_back(), /*in_filter=*/true));
      } else {
        return InvalidChild(e, child);
      }
    }
    return Status::Ok();
  }

  Status ParseCondition(const XmlElement& e, FetchCondition& c) const {
    RETURN_IF_ERROR(CheckAttributes(e, kConditionAttrs, kConditionIgnored, kConditionUnsupported));
    RETURN_IF_ERROR(GetRequired(e, "attribute", c.attribute));
    const std::string* op = FindAttribute(e, "operator");
    if (!op) return Fail(e, "the required attribute 'operator' is missing.");
    const OperatorInfo* info = FindOperator(*op);
    if (!info) return Fail(e, "the 'operator' attribute is invalid: " + Quote(*op) + " is not a condition operator.");
    c.op = *op;
    GetOptional(e, "entityname", c.entityname);
    GetOptional(e, "valueof", c.valueof);
    RETURN_IF_ERROR(NoText(e));
    const std::string* value = FindAttribute(e, "value");
    if (value) c.values.push_back(*value);
    for (const XmlElement& child : e.children) {
      if (child.name != "value") return InvalidChild(e, child);
      RETURN_IF_ERROR(CheckAttributes(child, {}, kValueIgnored, {}));
      if (!child.children.empty())
        return Fail(child.children.front(),
                    "the element 'value' cannot contain child element " + Quote(child.children.front().name) + ".");
      if (value) return Fail(e, "a condition can't have both a value attribute and value elements.");
      c.values.push_back(child.text);
    }

    const std::string where = "the operator '" + c.op + "' on " + Quote(c.attribute);
    if (!c.valueof.empty()) {
      if (!c.values.empty()) return Fail(e, "a condition can't have both valueof and a value.");
      if (!Contains(kValueOfOperators, c.op))
        return Fail(e,
                    where + " can't compare with another column (valueof); only " + Join(kValueOfOperators) + " can.");
      return Status::Ok();
    }
    const size_t n = c.values.size();
    auto count = [&](size_t k) { return std::to_string(k) + (k == 1 ? " was" : " were"); };
    switch (info->arity) {
      case Arity::kNone:
        if (n != 0) return Fail(e, where + " takes no value, but " + count(n) + " given.");
        break;
      case Arity::kOne:
      case Arity::kOneInteger:
        if (n != 1) return Fail(e, where + " needs exactly one value, but " + count(n) + " given.");
        break;
      case Arity::kTwo:
      case Arity::kTwoIntegers:
        if (n != 2) return Fail(e, where + " needs exactly two values, but " + count(n) + " given.");
        break;
      case Arity::kOneOrMore:
        if (n == 0) return Fail(e, where + " needs at least one value.");
        break;
    }
    if (info->arity == Arity::kOneInteger || info->arity == Arity::kTwoIntegers) {
      for (const std::string& v : c.values) {
        if (!ParsePositive(v, INT32_MAX))
          return Fail(e, where + " needs a whole number from 0 to 2147483647, not " + Quote(v) + ".");
      }
    }
    return Status::Ok();
  }

  Status ParseLink(const XmlElement& e, FetchLink& l, bool in_filter) {
    RETURN_IF_ERROR(CheckAttributes(e, kLinkAttrs, kLinkIgnored, {}));
    RETURN_IF_ERROR(GetRequired(e, "name", l.name));
    GetOptional(e, "from", l.from);
    GetOptional(e, "to", l.to);
    GetOptional(e, "alias", l.alias);
    RETURN_IF_ERROR(GetBool(e, "visible", l.visible));
    RETURN_IF_ERROR(GetBool(e, "intersect", l.intersect));
    if (const std::string* type = FindAttribute(e, "link-type")) {
      if (in_filter && !Contains(kFilterLinkTypes, *type))
        return Fail(e, "the 'link-type' attribute is invalid: a link-entity inside a filter must use " +
                           Join(kFilterLinkTypes) + ", not " + Quote(*type) + ".");
      if (!in_filter && Contains(kFilterLinkTypes, *type))
        return Fail(e, "the link-type '" + *type + "' can only be used on a link-entity inside a filter element.");
      if (!Contains(kJoinLinkTypes, *type) && !Contains(kFilterLinkTypes, *type)) {
        std::vector<std::string_view> all(std::begin(kJoinLinkTypes), std::end(kJoinLinkTypes));
        all.insert(all.end(), std::begin(kFilterLinkTypes), std::end(kFilterLinkTypes));
        return Fail(e, "the 'link-type' attribute is invalid: " + Quote(*type) + " is not one of " + Join(all) + ".");
      }
      l.link_type = *type;
    } else if (in_filter) {
      return Fail(e, "a link-entity inside a filter needs a link-type of " + Join(kFilterLinkTypes) + ".");
    }
    if (!l.alias.empty() && !aliases_.insert(l.alias).second)
      return Fail(e, "the alias " + Quote(l.alias) + " is used by more than one link-entity.");
    return ParseBody(e, l, l.link_type);
  }

  std::string_view in_;
  bool aggregate_ = false;
  std::unordered_set<std::string> aliases_;
};

// ---------------------------------------------------------------------------------------------
// Formatting

void Attr(std::string& out, std::string_view name, std::string_view value) {
  out += ' ';
  out += name;
  out += "=\"";
  AppendXmlEscaped(out, value);
  out += '"';
}

void AttrIf(std::string& out, std::string_view name, std::string_view value) {
  if (!value.empty()) Attr(out, name, value);
}

void FormatLink(std::string& out, const FetchLink& l);

void FormatFilter(std::string& out, const FetchFilter& f) {
  out += "<filter";
  Attr(out, "type", f.is_or ? "or" : "and");
  out += '>';
  for (const FetchCondition& c : f.conditions) {
    out += "<condition";
    AttrIf(out, "entityname", c.entityname);
    Attr(out, "attribute", c.attribute);
    Attr(out, "operator", c.op);
    AttrIf(out, "valueof", c.valueof);
    if (c.values.size() == 1) {
      Attr(out, "value", c.values.front());
      out += " />";
      continue;
    }
    out += '>';
    for (const std::string& v : c.values) {
      out += "<value>";
      AppendXmlEscaped(out, v);
      out += "</value>";
    }
    out += "</condition>";
  }
  for (const FetchFilter& c : f.filters) FormatFilter(out, c);
  for (const FetchLink& c : f.links) FormatLink(out, c);
  out += "</filter>";
}

template <typename Node>
void FormatBody(std::string& out, const Node& n) {
  if (n.all_attributes) out += "<all-attributes />";
  for (const FetchAttribute& a : n.attributes) {
    out += "<attribute";
    Attr(out, "name", a.name);
    AttrIf(out, "alias", a.alias);
    AttrIf(out, "aggregate", a.aggregate);
    if (a.groupby) Attr(out, "groupby", "true");
    AttrIf(out, "dategrouping", a.dategrouping);
    if (a.distinct) Attr(out, "distinct", "true");
    out += " />";
  }
  for (const FetchOrder& o : n.orders) {
    out += "<order";
    AttrIf(out, "attribute", o.attribute);
    AttrIf(out, "alias", o.alias);
    if (o.descending) Attr(out, "descending", "true");
    out += " />";
  }
  if (n.filter) FormatFilter(out, *n.filter);
  for (const FetchLink& l : n.links) FormatLink(out, l);
}

void FormatLink(std::string& out, const FetchLink& l) {
  out += "<link-entity";
  Attr(out, "name", l.name);
  AttrIf(out, "from", l.from);
  AttrIf(out, "to", l.to);
  AttrIf(out, "alias", l.alias);
  Attr(out, "link-type", l.link_type);
  if (l.visible) Attr(out, "visible", "true");
  if (l.intersect) Attr(out, "intersect", "true");
  out += '>';
  FormatBody(out, l);
  out += "</link-entity>";
}

}  // namespace

bool IsKnownFetchOperator(std::string_view op) { return FindOperator(op) != nullptr; }

Result<FetchQuery> ParseFetchXml(std::string_view xml) {
  XmlElement root;
  RETURN_IF_ERROR(XmlReader(xml).Read(root));
  FetchQuery q;
  RETURN_IF_ERROR(FetchParser(xml).Parse(root, q));
  return q;
}

std::string FormatFetchXml(const FetchQuery& q) {
  std::string out = "<fetch";
  if (q.top) Attr(out, "top", std::to_string(*q.top));
  if (q.count) Attr(out, "count", std::to_string(*q.count));
  if (q.page) Attr(out, "page", std::to_string(*q.page));
  AttrIf(out, "paging-cookie", q.paging_cookie);
  if (q.distinct) Attr(out, "distinct", "true");
  if (q.aggregate) Attr(out, "aggregate", "true");
  if (q.returntotalrecordcount) Attr(out, "returntotalrecordcount", "true");
  if (q.no_lock) Attr(out, "no-lock", "true");
  out += "><entity";
  Attr(out, "name", q.entity);
  out += '>';
  FormatBody(out, q);
  out += "</entity></fetch>";
  return out;
}

}  // namespace tributary::data

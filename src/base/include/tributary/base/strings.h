#pragma once
// Small string helpers used across modules.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tributary {

bool EqualsIgnoreCase(std::string_view a, std::string_view b);
bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix);
std::string ToLower(std::string_view s);
std::string_view Trim(std::string_view s);
// Splits on `sep`; empty pieces are kept.
std::vector<std::string_view> Split(std::string_view s, char sep);

// Percent-decoding of URL components. In a query, '+' means a space (form encoding), as
// Dataverse clients send it. Returns false on a malformed escape.
bool PercentDecode(std::string_view in, std::string& out, bool plus_is_space);
// Percent-encodes everything but unreserved characters (RFC 3986).
std::string PercentEncode(std::string_view in);

// Length of the valid UTF-8 sequence starting at s[i] (2–4), or 0 when none starts there
// (ASCII included: callers handle bytes < 0x80 themselves).
size_t Utf8SequenceLength(std::string_view s, size_t i);
// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool IsUtf8(std::string_view s);
// User text made safe for a message: control characters and invalid UTF-8 become '?', and text
// longer than `max_bytes` is cut (at a character boundary) and ends in "...".
std::string PrintableText(std::string_view s, size_t max_bytes = 200);
// Appends the UTF-8 encoding of code point `cp` (≤ U+10FFFF).
void AppendUtf8(std::string& out, uint32_t cp);

// Appends `s` escaped for XML text and attribute values (&, <, >, ", ' and, as character
// references, tab/CR/LF); other control characters, which XML 1.0 cannot carry, are dropped.
void AppendXmlEscaped(std::string& out, std::string_view s);
// Reverses AppendXmlEscaped: the five predefined entities and numeric references (&#NN;, &#xNN;)
// below U+0080. Unknown references are kept as written.
std::string XmlUnescape(std::string_view s);

std::string Base64Encode(std::string_view data);
bool Base64Decode(std::string_view in, std::string& out);
std::string Base64UrlEncode(std::string_view data);
bool Base64UrlDecode(std::string_view in, std::string& out);

}  // namespace tributary

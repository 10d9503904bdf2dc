#pragma once
// How the broker stores a message's properties (a JSON object; docs/formats/bus-message.md) and
// how it measures a message's size for quotas (body + properties, service-bus.md §2.3).

#include <string>
#include <string_view>

#include "tributary/bus/message.h"

namespace tributary::bus {

std::string EncodeProperties(const MessageProperties& p);
MessageProperties DecodeProperties(std::string_view text);
int64_t MessageSize(const MessageProperties& p, std::string_view body);

}  // namespace tributary::bus

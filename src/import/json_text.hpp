// Small helpers for the one-line messages the importer gives about JSON it reads.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace dsa::import {

// "an object", "a string", ... for messages like "shape is a string, expected a list".
const char* json_type(const nlohmann::ordered_json& j);

// nlohmann's exception text without its "[json.exception...] " prefix, on one line.
std::string json_error_line(std::string text);

}  // namespace dsa::import

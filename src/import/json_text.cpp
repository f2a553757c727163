#include "src/import/json_text.hpp"

namespace dsa::import {

const char* json_type(const nlohmann::ordered_json& j) {
  if (j.is_object()) return "an object";
  if (j.is_array()) return "an array";
  if (j.is_string()) return "a string";
  if (j.is_boolean()) return "a boolean";
  if (j.is_number_float()) return "a non-integer number";
  if (j.is_number()) return "a number";
  return "null";
}

std::string json_error_line(std::string text) {
  const std::size_t close = text.find("] ");
  if (text.rfind("[json.exception", 0) == 0 && close != std::string::npos) text = text.substr(close + 2);
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text;
}

}  // namespace dsa::import

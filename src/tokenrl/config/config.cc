#include "tokenrl/config/config.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <cerrno>
#include <cstring>

namespace tokenrl::config {
namespace internal {

std::string JoinPath(std::string_view prefix, std::string_view key) {
  if (prefix.empty()) return std::string(key);
  return fmt::format("{}.{}", prefix, key);
}

std::string TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return fmt::format("the string \"{}\"", *node.value<std::string>());
    case toml::node_type::integer: return fmt::format("the integer {}", *node.value<int64_t>());
    case toml::node_type::floating_point: return fmt::format("the number {}", *node.value<double>());
    case toml::node_type::boolean: return fmt::format("the boolean {}", *node.value<bool>());
    default: return "a date/time";
  }
}

std::string QuoteTomlString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default: out += c;
    }
  }
  return out + "\"";
}

std::string DoubleToToml(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  // Shortest representation that round-trips; keep a decimal point so the value stays a float.
  std::string s = fmt::format("{}", x);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

void MergeInto(toml::table& dst, const toml::table& src) {
  for (const auto& [key, node] : src) {
    if (const toml::table* src_sub = node.as_table()) {
      if (toml::table* dst_sub = dst[key].as_table()) {
        MergeInto(*dst_sub, *src_sub);
        continue;
      }
    }
    dst.insert_or_assign(key, node);
  }
}

}  // namespace internal

StatusOr<toml::table> ReadTomlFiles(const std::vector<std::string>& files) {
  toml::table merged;
  for (const auto& file : files) {
    if (!std::filesystem::exists(file)) return Status::NotFound(fmt::format("config file {} does not exist", file));
    try {
      toml::table t = toml::parse_file(file);
      internal::MergeInto(merged, t);
    } catch (const toml::parse_error& e) {
      return Status::InvalidArgument(fmt::format("{}:{}:{}: TOML syntax error: {}", file, e.source().begin.line,
                                                 e.source().begin.column, e.description()));
    }
  }
  return merged;
}

Status ApplyOverride(toml::table& table, std::string_view assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return Status::InvalidArgument(
        fmt::format("--set {}: expected dotted.key=value (for example env.sticky_action_prob=0)", assignment));
  }
  const std::string key(assignment.substr(0, eq));
  const std::string value_text(assignment.substr(eq + 1));

  // Parse the value as TOML; fall back to a bare string.
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value_text);
  } catch (const toml::parse_error&) {
    parsed = toml::table{{"v", value_text}};
  }
  const toml::node* value = parsed.get("v");

  toml::table* cursor = &table;
  std::string_view rest = key;
  std::string walked;
  while (true) {
    const size_t dot = rest.find('.');
    const std::string part(rest.substr(0, dot));
    if (part.empty()) return Status::InvalidArgument(fmt::format("--set {}: empty key component", assignment));
    walked = internal::JoinPath(walked, part);
    if (dot == std::string_view::npos) {
      cursor->insert_or_assign(part, *value);
      return Status::Ok();
    }
    toml::node* next = cursor->get(part);
    if (next == nullptr) {
      cursor->insert_or_assign(part, toml::table{});
      next = cursor->get(part);
    }
    if (!next->is_table()) {
      return Status::InvalidArgument(fmt::format("--set {}: {} is a value, not a table", assignment, walked));
    }
    cursor = next->as_table();
    rest = rest.substr(dot + 1);
  }
}

}  // namespace tokenrl::config

#include "tokenrl/config/config.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "tokenrl/core/file_util.h"

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
      default:
        // TOML forbids other control characters in basic strings (found by
        // tests/fuzz/config_fuzz.cc): escape them.
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{:04X}", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
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
    TOKENRL_ASSIGN_OR_RETURN(const std::string text, ReadFile(file));
    try {
      toml::table t = toml::parse(text, file);
      internal::MergeInto(merged, t);
    } catch (const toml::parse_error& e) {
      return Status::InvalidArgument(fmt::format("{}:{}:{}: TOML syntax error: {}", file, e.source().begin.line,
                                                 e.source().begin.column, e.description()));
    }
  }
  return merged;
}

namespace {

// Whether `s` is well-formed UTF-8 (TOML text must be; a bare-string value
// that is not would print as TOML that does not parse back).
bool IsUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const int n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : -1;
    if (n < 0 || i + static_cast<size_t>(n) >= s.size()) return false;  // Bad lead byte, or cut short.
    uint32_t cp = n == 0 ? c : c & (0x3F >> n);
    for (int k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 0x2) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
    i += static_cast<size_t>(n) + 1;
  }
  return true;
}

}  // namespace

Status ApplyOverride(toml::table& table, std::string_view assignment) {
  if (!IsUtf8(assignment)) return Status::InvalidArgument("--set: the assignment is not valid UTF-8 text");
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

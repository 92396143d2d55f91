#pragma once
// Typed, strict configuration.
//
// Every component has one config struct with in-class defaults and a
// `VisitFields` member template that lists each field once, with its help text
// and its allowed values. Parsing, printing and documentation all walk that one
// list, so they cannot drift apart:
//
//   struct VectorEnvConfig {
//     int64_t envs_per_member = 8;
//     template <typename V> void VisitFields(V& v) {
//       v.Field("envs_per_member", envs_per_member, "Environments per member", AtLeast<int64_t>(1));
//     }
//     Status Validate() const { return Status::Ok(); }  // optional cross-field rules
//   };
//
// Layers, last one wins: struct defaults < TOML file(s) < `--set a.b=c`.
// Parsing is strict: an unknown key, a wrong type, an out-of-range value or an
// unknown enum name is an InvalidArgument error naming the full dotted key and
// the allowed keys/values. Nested config structs are TOML tables.
//
// Supported field types: bool, int64_t, double, std::string, enums with an
// `EnumNames<E>` specialization, std::vector of int64_t/double/std::string, and
// nested structs with VisitFields.

#include <array>
#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "tokenrl/core/status.h"

namespace tokenrl::config {

// Specialize for each config enum:
//   template <> struct EnumNames<ActionSet> {
//     static constexpr std::array<std::pair<ActionSet, std::string_view>, 2> kValues{{...}};
//   };
template <typename E>
struct EnumNames;

template <typename E>
concept ConfigEnum = std::is_enum_v<E> && requires { EnumNames<E>::kValues; };

template <ConfigEnum E>
std::string_view EnumToString(E value) {
  for (const auto& [v, name] : EnumNames<E>::kValues)
    if (v == value) return name;
  return "?";
}

template <ConfigEnum E>
std::string EnumAllowed() {
  std::string out;
  for (const auto& [v, name] : EnumNames<E>::kValues) out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

template <ConfigEnum E>
std::optional<E> EnumFromString(std::string_view text) {
  for (const auto& [v, name] : EnumNames<E>::kValues)
    if (name == text) return v;
  return std::nullopt;
}

// A constraint on a scalar field: a predicate plus its description ("in [0, 1]").
template <typename T>
struct Constraint {
  std::function<bool(const T&)> check;
  std::string description;
};

template <typename T>
Constraint<T> InRange(T lo, T hi) {
  return {[lo, hi](const T& x) { return x >= lo && x <= hi; }, fmt::format("in [{}, {}]", lo, hi)};
}
template <typename T>
Constraint<T> AtLeast(T lo) {
  return {[lo](const T& x) { return x >= lo; }, fmt::format(">= {}", lo)};
}
inline Constraint<std::string> NonEmpty() {
  return {[](const std::string& s) { return !s.empty(); }, "non-empty"};
}

// ---------------------------------------------------------------------------
// Public entry points.

// Parses `table` into `out`, strictly. `path` prefixes key names in errors
// ("" for the root). Fields absent from the table keep their current values,
// so parsing onto a default-constructed struct applies the defaults.
template <typename T>
Status ParseTable(const toml::table& table, T& out, std::string_view path = "");

// Parses a TOML file onto `out` (layered over its current values).
template <typename T>
Status ParseFile(const std::string& file, T& out);

// Applies `dotted.key=value` to `table`. The value is read as a TOML value
// (`1`, `0.5`, `true`, `"x"`, `[1, 2]`); anything that is not valid TOML is
// taken as a bare string, so `--set env.name=minatar/breakout` works.
Status ApplyOverride(toml::table& table, std::string_view assignment);

// Loads TOML files in order, applies overrides, then parses strictly onto a
// default-constructed T and runs T::Validate() when present.
template <typename T>
StatusOr<T> Load(const std::vector<std::string>& files, const std::vector<std::string>& overrides);

// Commented TOML of the whole config (each field preceded by its help text and
// allowed values). Parsing the output gives back an equal config.
template <typename T>
std::string ToToml(T& config);

// Reads and merges TOML files (later keys win; tables merge recursively).
StatusOr<toml::table> ReadTomlFiles(const std::vector<std::string>& files);

// ---------------------------------------------------------------------------
// Implementation details.
namespace internal {

std::string JoinPath(std::string_view prefix, std::string_view key);
std::string TypeName(const toml::node& node);
std::string QuoteTomlString(std::string_view s);
std::string DoubleToToml(double x);

template <typename T>
Status ReadScalar(const toml::node& node, const std::string& path, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    if (auto v = node.value_exact<bool>()) { out = *v; return Status::Ok(); }
    return Status::InvalidArgument(fmt::format("{}: expected a boolean (true or false), got {}", path, TypeName(node)));
  } else if constexpr (std::is_same_v<T, int64_t>) {
    if (auto v = node.value_exact<int64_t>()) { out = *v; return Status::Ok(); }
    if (auto d = node.value_exact<double>(); d && *d == static_cast<double>(static_cast<int64_t>(*d))) {
      out = static_cast<int64_t>(*d);  // 1e6 is a fine way to write an integer count.
      return Status::Ok();
    }
    return Status::InvalidArgument(fmt::format("{}: expected an integer, got {}", path, TypeName(node)));
  } else if constexpr (std::is_same_v<T, double>) {
    if (auto v = node.value<double>()) { out = *v; return Status::Ok(); }  // integers are accepted
    return Status::InvalidArgument(fmt::format("{}: expected a number, got {}", path, TypeName(node)));
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (auto v = node.value_exact<std::string>()) { out = *v; return Status::Ok(); }
    return Status::InvalidArgument(fmt::format("{}: expected a string, got {}", path, TypeName(node)));
  } else if constexpr (ConfigEnum<T>) {
    auto v = node.value_exact<std::string>();
    if (!v) {
      return Status::InvalidArgument(
          fmt::format("{}: expected one of [{}] as a string, got {}", path, EnumAllowed<T>(), TypeName(node)));
    }
    auto e = EnumFromString<T>(*v);
    if (!e) {
      return Status::InvalidArgument(
          fmt::format("{}: unknown value \"{}\"; allowed values: {}", path, *v, EnumAllowed<T>()));
    }
    out = *e;
    return Status::Ok();
  } else {
    static_assert(sizeof(T) == 0, "unsupported config field type");
  }
}

template <typename T>
std::string ScalarToToml(const T& value) {
  if constexpr (std::is_same_v<T, bool>) return value ? "true" : "false";
  else if constexpr (std::is_same_v<T, int64_t>) return std::to_string(value);
  else if constexpr (std::is_same_v<T, double>) return DoubleToToml(value);
  else if constexpr (std::is_same_v<T, std::string>) return QuoteTomlString(value);
  else if constexpr (ConfigEnum<T>) return QuoteTomlString(EnumToString(value));
}

template <typename T>
std::string AllowedText() {
  if constexpr (ConfigEnum<T>) return "one of: " + EnumAllowed<T>();
  else return "";
}

// Visitor that lists keys, for "unknown key" errors.
struct KeyLister {
  std::vector<std::string> keys;
  template <typename F, typename... C>
  void Field(std::string_view name, F&, std::string_view, C&&...) { keys.emplace_back(name); }
};

class Parser {
 public:
  Parser(const toml::table& table, std::string_view path) : table_(table), path_(path) {}
  Status status() const { return status_; }

  template <typename F, typename... C>
  void Field(std::string_view name, F& field, std::string_view /*help*/, C&&... constraints) {
    if (!status_.ok()) return;
    const toml::node* node = table_.get(name);
    if (node == nullptr) return;
    const std::string path = JoinPath(path_, name);
    if constexpr (requires { field.VisitFields(std::declval<Parser&>()); }) {
      const toml::table* sub = node->as_table();
      if (sub == nullptr) {
        status_ = Status::InvalidArgument(fmt::format("{}: expected a table, got {}", path, TypeName(*node)));
        return;
      }
      status_ = ParseTable(*sub, field, path);
    } else if constexpr (requires { typename F::value_type; } && !std::is_same_v<F, std::string>) {
      const toml::array* arr = node->as_array();
      if (arr == nullptr) {
        status_ = Status::InvalidArgument(fmt::format("{}: expected an array, got {}", path, TypeName(*node)));
        return;
      }
      F values;
      for (size_t i = 0; i < arr->size(); ++i) {
        typename F::value_type v{};
        status_ = ReadScalar((*arr)[i], fmt::format("{}[{}]", path, i), v);
        if (!status_.ok()) return;
        values.push_back(std::move(v));
      }
      (CheckConstraint(path, values, constraints), ...);
      if (status_.ok()) field = std::move(values);
    } else {
      F value{};
      status_ = ReadScalar(*node, path, value);
      if (!status_.ok()) return;
      (CheckConstraint(path, value, constraints), ...);
      if (status_.ok()) field = std::move(value);
    }
  }

 private:
  template <typename F, typename C>
  void CheckConstraint(const std::string& path, const F& value, const C& constraint) {
    if (!status_.ok()) return;
    if (!constraint.check(value)) {
      status_ = Status::InvalidArgument(
          fmt::format("{}: value {} is out of range; allowed: {}", path, ValueText(value), constraint.description));
    }
  }
  template <typename F>
  static std::string ValueText(const F& value) {
    if constexpr (requires { typename F::value_type; } && !std::is_same_v<F, std::string>) {
      std::string out = "[";
      for (const auto& v : value) out += (out.size() > 1 ? ", " : "") + ScalarToToml(v);
      return out + "]";
    } else {
      return ScalarToToml(value);
    }
  }

  const toml::table& table_;
  std::string path_;
  Status status_;
};

class Printer {
 public:
  explicit Printer(std::string path) : path_(std::move(path)) {}

  template <typename F, typename... C>
  void Field(std::string_view name, F& field, std::string_view help, C&&... constraints) {
    if constexpr (requires { field.VisitFields(std::declval<Printer&>()); }) {
      Printer sub(JoinPath(path_, name));
      field.VisitFields(sub);
      tables_ += fmt::format("\n# {}\n[{}]\n{}{}", help, JoinPath(path_, name), sub.scalars_, sub.tables_);
    } else {
      std::string allowed;
      if constexpr (requires { typename F::value_type; } && !std::is_same_v<F, std::string>) {
        std::string v = "[";
        for (const auto& x : field) v += (v.size() > 1 ? ", " : "") + ScalarToToml(x);
        value_ = v + "]";
        allowed = AllowedText<typename F::value_type>();
      } else {
        value_ = ScalarToToml(field);
        allowed = AllowedText<F>();
      }
      ((allowed += (allowed.empty() ? "" : "; ") + constraints.description), ...);
      scalars_ += fmt::format("# {}{}\n{} = {}\n", help, allowed.empty() ? "" : " (" + allowed + ")", name, value_);
    }
  }
  std::string text() const { return scalars_ + tables_; }

 private:
  std::string path_;
  std::string value_;
  std::string scalars_;
  std::string tables_;
};

}  // namespace internal

template <typename T>
Status ParseTable(const toml::table& table, T& out, std::string_view path) {
  internal::KeyLister lister;
  out.VisitFields(lister);
  for (const auto& [key, node] : table) {
    bool known = false;
    for (const auto& k : lister.keys) known = known || (k == key.str());
    if (!known) {
      std::string allowed;
      for (const auto& k : lister.keys) allowed += (allowed.empty() ? "" : ", ") + k;
      return Status::InvalidArgument(
          fmt::format("{}: unknown key; allowed keys here: {}", internal::JoinPath(path, key.str()), allowed));
    }
  }
  internal::Parser parser(table, path);
  out.VisitFields(parser);
  TOKENRL_RETURN_IF_ERROR(parser.status());
  if constexpr (requires { out.Validate(); }) {
    Status st = out.Validate();
    if (!st.ok()) return path.empty() ? st : st.WithContext(path);
  }
  return Status::Ok();
}

template <typename T>
Status ParseFile(const std::string& file, T& out) {
  TOKENRL_ASSIGN_OR_RETURN(toml::table table, ReadTomlFiles({file}));
  return ParseTable(table, out);
}

template <typename T>
StatusOr<T> Load(const std::vector<std::string>& files, const std::vector<std::string>& overrides) {
  TOKENRL_ASSIGN_OR_RETURN(toml::table table, ReadTomlFiles(files));
  for (const auto& o : overrides) TOKENRL_RETURN_IF_ERROR(ApplyOverride(table, o));
  T config;
  TOKENRL_RETURN_IF_ERROR(ParseTable(table, config));
  return config;
}

template <typename T>
std::string ToToml(T& config) {
  internal::Printer printer("");
  config.VisitFields(printer);
  return printer.text();
}

}  // namespace tokenrl::config

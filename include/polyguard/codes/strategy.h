// Strategy: which protection a product uses, named as in specs
// ("genpolydot", "mds", ...). A name, not an enum: strategies live in the
// registry (strategy_registry.h), and one registered from outside the library
// is as much a strategy as the built-in ones. Outer layers never branch on the
// name; they ask the registry entry's capabilities or the code itself.
#ifndef POLYGUARD_CODES_STRATEGY_H_
#define POLYGUARD_CODES_STRATEGY_H_

#include <ostream>
#include <string_view>

#include "polyguard/base/status.h"

namespace polyguard {

class Strategy {
 public:
  constexpr Strategy() : name_("genpolydot") {}
  // `name` must outlive the Strategy: a string literal, or the name that
  // ParseStrategy returns (owned by the registry for the process's life).
  constexpr explicit Strategy(std::string_view name) : name_(name) {}

  constexpr std::string_view name() const { return name_; }
  friend constexpr bool operator==(const Strategy& a, const Strategy& b) {
    return a.name_ == b.name_;
  }

  // The built-in strategies (docs/codes.md).
  static const Strategy kUncoded;
  static const Strategy kReplication;
  static const Strategy kMds;
  static const Strategy kPolyDot;
  static const Strategy kAbft;
  static const Strategy kLowWeight;

 private:
  std::string_view name_;
};

inline constexpr Strategy Strategy::kUncoded{"uncoded"};
inline constexpr Strategy Strategy::kReplication{"replication"};
inline constexpr Strategy Strategy::kMds{"mds"};
inline constexpr Strategy Strategy::kPolyDot{"genpolydot"};
inline constexpr Strategy Strategy::kAbft{"abft"};
inline constexpr Strategy Strategy::kLowWeight{"lowweight"};

inline std::ostream& operator<<(std::ostream& out, const Strategy& s) { return out << s.name(); }

// The registered strategy named `name` or one of its aliases ("polydot");
// InvalidArgument listing the registered names otherwise (strategy_registry.cc).
StatusOr<Strategy> ParseStrategy(std::string_view name);

}  // namespace polyguard

#endif  // POLYGUARD_CODES_STRATEGY_H_

#include "lib/proto/code_spec.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "polyguard/codes/product_mds_code.h"
#include "polyguard/codes/strategy_registry.h"

namespace polyguard {

StatusOr<CodeSpecOptions> ReadCodeSpec(const proto::CodeSpec& c, int peers, bool for_training,
                                       const CodeFieldError& bad) {
  CodeSpecOptions out;
  ProductCodeOptions& o = out.code;
  StatusOr<Strategy> strategy = ParseStrategy(c.strategy());
  if (!strategy.ok()) return bad("strategy", std::string(strategy.status().message()));
  o.strategy = *strategy;
  out.label = c.label().empty() ? c.strategy() : c.label();
  o.peers = peers;
  for (const auto& [name, value] : {std::pair<const char*, int>{"m", c.m()},
                                    {"n", c.n()},
                                    {"d", c.d()},
                                    {"replicas", c.replicas()},
                                    {"conv_k_a", c.conv_k_a()},
                                    {"conv_k_b", c.conv_k_b()}}) {
    if (value < 1) return bad(name, "must be >= 1, got " + std::to_string(value));
  }
  for (const auto& [name, value] : {std::pair<const char*, int>{"row_peers", c.row_peers()},
                                    {"row_blocks", c.row_blocks()},
                                    {"col_peers", c.col_peers()},
                                    {"col_blocks", c.col_blocks()},
                                    {"k_a", c.k_a()},
                                    {"k_b", c.k_b()},
                                    {"weight_a", c.weight_a()},
                                    {"weight_b", c.weight_b()}}) {
    if (value < 0) return bad(name, "must be >= 0, got " + std::to_string(value));
  }
  o.m = c.m();
  o.n = c.n();
  o.d = c.d();
  o.replicas = c.replicas();
  // The 1-D MDS code (forward only); in 64 bits, as m and n are anything >= 1 here.
  o.data_blocks = static_cast<int>(std::clamp<int64_t>(int64_t{o.m} * o.n, 1, std::max(peers, 1)));
  o.row_peers = c.row_peers();
  o.row_blocks = c.row_blocks();
  o.col_peers = c.col_peers();
  o.col_blocks = c.col_blocks();
  StatusOr<PointKind> points = ParsePointKind(c.points());
  if (!points.ok()) return bad("points", std::string(points.status().message()));
  o.points = *points;
  if (!(c.tolerance() >= 0 && c.tolerance() < 1)) {  // NaN too
    return bad("tolerance",
               "must be in [0, 1) (0: the default), got " + std::to_string(c.tolerance()));
  }
  if (c.tolerance() > 0) o.decoder.tolerance = c.tolerance();
  StatusOr<Precision> precision = ParsePrecision(c.precision());
  if (!precision.ok()) return bad("precision", std::string(precision.status().message()));
  o.precision = *precision;

  // k_a and k_b: the low-weight split when the strategy keeps sparsity, else
  // the coded convolution's (ProductCodeOptions has one pair for both).
  if (CapabilitiesOf(o.strategy).keeps_sparsity) {
    o.k_a = c.k_a() > 0 ? c.k_a() : o.m;
    o.k_b = c.k_b() > 0 ? c.k_b() : o.d;
  } else {
    for (const auto& [name, set] :
         {std::pair<const char*, bool>{"k_a", c.has_k_a()}, {"k_b", c.has_k_b()}}) {
      if (set) {
        return bad(name, "is the low-weight code's split (strategy lowweight); " +
                             std::string(o.strategy.name()) +
                             " convolutions take conv_k_a and conv_k_b");
      }
    }
    o.k_a = c.conv_k_a();
    o.k_b = c.conv_k_b();
  }
  o.weight_a = c.weight_a();
  o.weight_b = c.weight_b();

  if (for_training) {
    if (c.has_peers() && c.peers() != peers) {
      return bad("peers", "is the job's peers (" + std::to_string(peers) + ") in a job spec, got " +
                              std::to_string(c.peers()) + "; leave it out");
    }
    if (c.wait_for() < 0 || c.wait_for() > peers) {
      return bad("wait_for",
                 "must be 0 (all) or in [K, peers], got " + std::to_string(c.wait_for()));
    }
    out.wait_for = c.wait_for();
    if (c.errors_to_correct() < 0) return bad("errors_to_correct", "must be >= 0");
    out.errors_to_correct = c.errors_to_correct();
    if (c.conv_code() != "fcdcc" && c.conv_code() != "im2col") {
      return bad("conv_code", "must be fcdcc or im2col, got '" + c.conv_code() + "'");
    }
    out.fcdcc = c.conv_code() == "fcdcc";
  } else {
    for (const auto& [name, set] : {std::pair<const char*, bool>{"wait_for", c.has_wait_for()},
                                    {"errors_to_correct", c.has_errors_to_correct()},
                                    {"conv_code", c.has_conv_code()},
                                    {"conv_k_a", c.has_conv_k_a()},
                                    {"conv_k_b", c.has_conv_k_b()}}) {
      if (set) return bad(name, "is read by training jobs only (models/*.textproto)");
    }
  }
  // An experiment's mds code is the product-code layout (a job's is filled
  // in when its layers are built).
  if (!for_training) POLYGUARD_RETURN_IF_ERROR(UseDefaultProductMdsLayout(&o));
  return out;
}

}  // namespace polyguard

#include "experiment/code_options.h"

#include <algorithm>

#include "experiment/kinds.h"
#include "polyguard/codes/product_mds_code.h"

namespace polyguard::experiment {

Status CheckCode(const std::string& file, const std::string& field, const proto::Code& c) {
  auto s = ParseStrategy(c.strategy());
  if (!s.ok()) return Bad(file, field + ".strategy", std::string(s.status().message()));
  if (!c.points().empty()) {
    auto p = ParsePointKind(c.points());
    if (!p.ok()) return Bad(file, field + ".points", std::string(p.status().message()));
  }
  return Status::Ok();
}

std::string CodeLabel(const proto::Code& c) { return c.label().empty() ? c.strategy() : c.label(); }

StatusOr<ProductCodeOptions> CodeOptions(const proto::Code& c, int peers, ProductShape shape) {
  ProductCodeOptions o;
  POLYGUARD_ASSIGN_OR_RETURN(o.strategy, ParseStrategy(c.strategy()));
  o.shape = shape;
  o.peers = peers;
  o.m = c.m() > 0 ? c.m() : 2;
  o.n = c.n() > 0 ? c.n() : 2;
  o.d = c.d() > 0 ? c.d() : 1;
  o.replicas = c.replicas() > 0 ? c.replicas() : 2;
  o.data_blocks = std::min(peers, o.m * o.n);
  o.row_peers = c.row_peers();
  o.row_blocks = c.row_blocks();
  o.col_peers = c.col_peers();
  o.col_blocks = c.col_blocks();
  o.k_a = c.k_a() > 0 ? c.k_a() : o.m;
  o.k_b = c.k_b() > 0 ? c.k_b() : o.d;
  o.weight_a = c.weight_a();
  o.weight_b = c.weight_b();
  if (!c.points().empty()) {
    POLYGUARD_ASSIGN_OR_RETURN(o.points, ParsePointKind(c.points()));
  }
  POLYGUARD_RETURN_IF_ERROR(UseDefaultProductMdsLayout(&o));
  return o;
}

}  // namespace polyguard::experiment

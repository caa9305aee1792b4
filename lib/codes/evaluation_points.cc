#include "polyguard/codes/evaluation_points.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include <Eigen/SVD>

namespace polyguard {

std::string_view PointKindName(PointKind kind) {
  switch (kind) {
    case PointKind::kChebyshev:
      return "chebyshev";
    case PointKind::kEquispaced:
      return "equispaced";
    case PointKind::kRotation:
      return "rotation";
  }
  return "unknown";
}

StatusOr<PointKind> ParsePointKind(std::string_view name) {
  if (name == "chebyshev") return PointKind::kChebyshev;
  if (name == "equispaced") return PointKind::kEquispaced;
  if (name == "rotation") return PointKind::kRotation;
  return InvalidArgumentError("unknown evaluation points '" + std::string(name) +
                              "' (expected chebyshev, equispaced or rotation)");
}

std::vector<double> MakeEvaluationPoints(PointKind kind, int peers) {
  std::vector<double> points(static_cast<size_t>(std::max(peers, 0)));
  for (int r = 0; r < peers; ++r) {
    double a = 0.0;
    if (kind == PointKind::kChebyshev) {
      a = std::cos((2.0 * r + 1.0) * std::numbers::pi / (2.0 * peers));
    } else if (peers > 1) {
      a = -1.0 + 2.0 * r / (peers - 1);
    }
    points[static_cast<size_t>(r)] = a;
  }
  return points;
}

Matrix MonomialBasis(const std::vector<double>& points, int k) {
  Matrix v(static_cast<Eigen::Index>(points.size()), k);
  for (Eigen::Index r = 0; r < v.rows(); ++r) {
    double p = 1.0;
    for (int e = 0; e < k; ++e) {
      v(r, e) = p;
      p *= points[static_cast<size_t>(r)];
    }
  }
  return v;
}

Matrix ChebyshevBasis(const std::vector<double>& points, int k) {
  Matrix v(static_cast<Eigen::Index>(points.size()), k);
  for (Eigen::Index r = 0; r < v.rows(); ++r) {
    const double a = points[static_cast<size_t>(r)];
    double t0 = 1.0, t1 = a;
    for (int e = 0; e < k; ++e) {
      if (e == 0) {
        v(r, e) = 1.0;
      } else if (e == 1) {
        v(r, e) = a;
      } else {
        const double t2 = 2.0 * a * t1 - t0;
        t0 = t1;
        t1 = t2;
        v(r, e) = t2;
      }
    }
  }
  return v;
}

double ConditionNumber(const MatrixRef& m) {
  Eigen::JacobiSVD<Matrix> svd(m);
  const auto& s = svd.singularValues();
  if (s.size() == 0) return 1.0;
  const double smin = s(s.size() - 1);
  return smin > 0 ? s(0) / smin : std::numeric_limits<double>::infinity();
}

double WorstCaseConditionNumber(const std::vector<double>& points, int k) {
  const int p = static_cast<int>(points.size());
  if (k <= 0 || k > p) return std::numeric_limits<double>::infinity();
  const Matrix v = MonomialBasis(points, k);
  std::vector<int> idx(static_cast<size_t>(k));
  for (int i = 0; i < k; ++i) idx[static_cast<size_t>(i)] = i;
  double worst = 0.0;
  Matrix sub(k, k);
  while (true) {
    for (int i = 0; i < k; ++i) sub.row(i) = v.row(idx[static_cast<size_t>(i)]);
    worst = std::max(worst, ConditionNumber(sub));
    int i = k - 1;
    while (i >= 0 && idx[static_cast<size_t>(i)] == p - k + i) --i;
    if (i < 0) break;
    ++idx[static_cast<size_t>(i)];
    for (int j = i + 1; j < k; ++j)
      idx[static_cast<size_t>(j)] = idx[static_cast<size_t>(j - 1)] + 1;
  }
  return worst;
}

}  // namespace polyguard

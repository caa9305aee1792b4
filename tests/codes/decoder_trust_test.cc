// The patterns that once came back verified but wrong, or uncorrected though
// inside the decoder's guarantee (issue 14), each as a regression test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <tuple>

#include "codes/code_test_util.h"
#include "polyguard/codes/errors_and_erasures_decoder.h"  // FormatPeers
#include "polyguard/codes/polydot_code.h"

namespace polyguard {
namespace {
namespace decoder_trust_test {

using testing::RelativeError;
using testing::StrategyOptions;

struct Clean {
  Matrix expected;
  std::vector<PeerResult> results;
};

Clean Encode(const ProductCode& code, Random* rng, const std::vector<int>& missing = {}) {
  Clean c;
  const ProductShape s = code.shape();
  const Matrix a = rng->NormalMatrix(s.rows, s.inner);
  const Matrix b = rng->NormalMatrix(s.inner, s.cols);
  c.expected = a * b;
  for (int p = 0; p < code.num_peers(); ++p) {
    if (std::find(missing.begin(), missing.end(), p) != missing.end()) continue;
    c.results.push_back(
        {p, code.PeerProduct(code.EncodeShard(a, p).value(), code.EncodeInput(b, p).value())});
  }
  return c;
}

Matrix& ResultOf(Clean& c, int peer) {
  for (auto& r : c.results)
    if (r.peer == peer) return r.value;
  ADD_FAILURE() << "no result from peer " << peer;
  return c.results[0].value;
}

// Huge errors in one entry must not hide a small one in the same entry: the
// decoder's tolerance may not scale with a wrong value.
struct HugeBesideSmall {
  double huge, small;
};
class HugeBesideSmallTest : public ::testing::TestWithParam<HugeBesideSmall> {};

TEST_P(HugeBesideSmallTest, IsCorrectedNotVerifiedWrong) {
  auto code = PolyDotCode::Create({16, 12, 8}, {.peers = 12, .m = 2, .n = 2, .d = 1}).value();
  ASSERT_EQ(code->recovery_threshold(), 5);  // floor((12 - 5)/2) = 3 per entry always
  Random rng(14);
  for (int trial = 0; trial < 10; ++trial) {
    Clean c = Encode(*code, &rng);
    ResultOf(c, 3).data()[5] += GetParam().huge;
    ResultOf(c, 7).data()[5] += GetParam().huge;
    ResultOf(c, 10).data()[5] += GetParam().small;
    auto decoded = code->Decode(c.results);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_TRUE(decoded->verified);
    EXPECT_LT(RelativeError(decoded->product, c.expected), 1e-12);
    EXPECT_EQ(decoded->wrong_peers, (std::vector<int>{3, 7, 10}));
  }
}

INSTANTIATE_TEST_SUITE_P(Magnitudes, HugeBesideSmallTest,
                         ::testing::Values(HugeBesideSmall{1e12, 1.0}, HugeBesideSmall{1e14, 300},
                                           HugeBesideSmall{1e15, 1e-6},
                                           HugeBesideSmall{1e8, 1e-7}));

// Two proportional large dense errors (one direction in the syndrome) and a
// small dense one: the locator cannot separate them; every entry has 3
// wrong values, which the code corrects (floor((R - K)/2) = 3).
TEST(DecoderTrust, ProportionalLargeAndSmallDenseErrors) {
  auto code = PolyDotCode::Create({16, 12, 8}, {.peers = 12, .m = 2, .n = 2, .d = 1}).value();
  Random rng(15);
  for (double big : {1e6, 1e10, 1e13}) {
    for (double small : {1e-6, 1e-3, 1.0}) {
      Clean c = Encode(*code, &rng);
      const Matrix dir = rng.NormalMatrix(c.results[0].value.rows(), c.results[0].value.cols());
      ResultOf(c, 1) += big * dir;
      ResultOf(c, 6) += -2.5 * big * dir;
      ResultOf(c, 9) += small * rng.NormalMatrix(dir.rows(), dir.cols());
      auto decoded = code->Decode(c.results);
      ASSERT_TRUE(decoded.ok()) << decoded.status() << " big=" << big << " small=" << small;
      EXPECT_LT(RelativeError(decoded->product, c.expected), 1e-12) << big << " " << small;
      EXPECT_EQ(decoded->wrong_peers, (std::vector<int>{1, 6, 9})) << big << " " << small;
    }
  }
}

// Single-entry errors at random entries, so that some share an entry: at
// most floor((R - K)/2) in any entry is always corrected (issue 14, item 3).
struct MixedCase {
  int stragglers, wrong;
};
class MixedPatternTest : public ::testing::TestWithParam<MixedCase> {};

TEST_P(MixedPatternTest, AreCorrected) {
  auto code = PolyDotCode::Create({128, 18, 8}, {.peers = 14, .m = 2, .n = 3, .d = 1}).value();
  const int k = code->recovery_threshold();
  ASSERT_EQ(k, 8);
  const int r = 14 - GetParam().stragglers;
  const int t_max = (r - k) / 2;
  Random rng(16 + GetParam().wrong);
  int checked = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const std::vector<int> order = rng.Sample(14, 14);
    const std::vector<int> missing(order.begin(), order.begin() + GetParam().stragglers);
    Clean c = Encode(*code, &rng, missing);
    const Eigen::Index size = c.results[0].value.size();
    ASSERT_EQ(size, 64 * 8);
    std::map<Eigen::Index, int> per_entry;
    std::set<int> wrong;
    for (int i = 0; i < GetParam().wrong; ++i) {
      const int peer = order[static_cast<size_t>(GetParam().stragglers + i)];
      // Half the trials put every error in a few entries, so that they share.
      const Eigen::Index entry = trial % 2 ? rng.UniformInt(0, size - 1) : rng.UniformInt(0, 2);
      ResultOf(c, peer).data()[entry] += rng.Normal() * std::pow(10.0, rng.UniformInt(-4, 8));
      ++per_entry[entry];
      wrong.insert(peer);
    }
    int most = 0;
    for (const auto& [e, n] : per_entry) most = std::max(most, n);
    auto decoded = code->Decode(c.results);
    if (most > t_max && static_cast<int>(per_entry.size()) < GetParam().wrong) {
      // Beyond the guarantee: never a wrong product as verified.
      if (decoded.ok() && decoded->verified) {
        EXPECT_LT(RelativeError(decoded->product, c.expected), 1e-9) << trial;
      }
      continue;
    }
    ++checked;
    ASSERT_TRUE(decoded.ok()) << decoded.status() << " trial " << trial << " most " << most;
    EXPECT_TRUE(decoded->verified);
    EXPECT_LT(RelativeError(decoded->product, c.expected), 1e-10) << trial;
    EXPECT_EQ(std::set<int>(decoded->wrong_peers.begin(), decoded->wrong_peers.end()), wrong)
        << trial;
  }
  EXPECT_GT(checked, 100);
}

INSTANTIATE_TEST_SUITE_P(Issue14, MixedPatternTest,
                         ::testing::Values(MixedCase{2, 3}, MixedCase{0, 5}, MixedCase{0, 3},
                                           MixedCase{4, 1}));

// One value too large to square (its square, or the sum of squares of its
// entry, overflows) in one peer's result: every strategy must name that peer
// and decode the product, never return it as verified. The linear-code
// decoder (rotation points, low-weight codes) and replication's vote took
// such an entry's overflowed tolerance for a pass and returned the value in
// a verified product.
struct HugeValueCase {
  const char* name;
  ProductCodeOptions options;
  // The peers named: peer 3, or for the product MDS code every working peer
  // of its row (product_mds_code.h).
  std::vector<int> named = {3};
  friend void PrintTo(const HugeValueCase& c, std::ostream* os) { *os << c.name; }
};

ProductCodeOptions HugeValueOptions(Strategy s) { return testing::StrategyOptions(s, {16, 12, 8}); }

std::vector<HugeValueCase> HugeValueCases() {
  ProductCodeOptions rotation = HugeValueOptions(Strategy::kPolyDot);
  rotation.n = 1;
  rotation.d = 2;
  rotation.points = PointKind::kRotation;
  ProductCodeOptions product_mds = HugeValueOptions(Strategy::kMds);
  product_mds.peers = 10;
  product_mds.row_peers = 4;
  product_mds.row_blocks = 2;
  product_mds.col_peers = 3;
  product_mds.col_blocks = 2;
  return {{"genpolydot", HugeValueOptions(Strategy::kPolyDot)},
          {"rotation", rotation},
          {"mds", HugeValueOptions(Strategy::kMds)},
          {"product_mds", product_mds, {3, 4}},
          {"lowweight", HugeValueOptions(Strategy::kLowWeight)},
          {"replication", HugeValueOptions(Strategy::kReplication)},
          {"abft", HugeValueOptions(Strategy::kAbft)}};
}

class HugeValueTest : public ::testing::TestWithParam<std::tuple<HugeValueCase, double>> {};

TEST_P(HugeValueTest, IsNamedAndCorrected) {
  const auto& [c, value] = GetParam();
  auto code = MakeProductCode(c.options);
  ASSERT_TRUE(code.ok()) << code.status();
  Random rng(21);
  for (int trial = 0; trial < 4; ++trial) {
    Clean clean = Encode(**code, &rng);
    Matrix& wrong = ResultOf(clean, 3);
    wrong(trial % wrong.rows(), trial % wrong.cols()) = value;
    auto decoded = (*code)->Decode(clean.results);
    ASSERT_TRUE(decoded.ok()) << decoded.status() << " trial " << trial;
    EXPECT_TRUE(decoded->verified);
    EXPECT_LT(RelativeError(decoded->product, clean.expected), 1e-9) << trial;
    EXPECT_EQ(decoded->wrong_peers, c.named) << trial;
  }
}

INSTANTIATE_TEST_SUITE_P(EveryStrategy, HugeValueTest,
                         ::testing::Combine(::testing::ValuesIn(HugeValueCases()),
                                            ::testing::Values(1e140, 1e151, 1e155, 1e200, -1e300,
                                                              std::numeric_limits<double>::max())),
                         [](const ::testing::TestParamInfo<HugeValueTest::ParamType>& info) {
                           const double v = std::get<1>(info.param);
                           std::string magnitude =
                               v == std::numeric_limits<double>::max()
                                   ? "max"
                                   : (v < 0 ? "minus_1e" : "1e") +
                                         std::to_string(int(std::log10(std::abs(v)) + 0.5));
                           return std::string(std::get<0>(info.param).name) + "_" + magnitude;
                         });

// A product of zeros (a layer takes its value as zero after a failed decode)
// beside one wrong result: every honest value is 0, so each entry's
// tolerance is DBL_MIN, and the wrong values came to 1e307 tolerances or
// overflowed. The locator named nobody, every entry was fitted on its own,
// and each peer of the bundled demo spent 0.2 to 0.9 s a decode there. The
// peer must be located whole: a budget of 64 fits is far below one fit per
// entry.
ProductCodeOptions WithFewFits(ProductCodeOptions o) {
  o.decoder.max_fits = 64;
  return o;
}

class ZerosBesideAWrongResult : public ::testing::TestWithParam<std::tuple<HugeValueCase, double>> {
};

TEST_P(ZerosBesideAWrongResult, AreDecodedNamingIt) {
  const auto& [c, magnitude] = GetParam();
  auto code = MakeProductCode(WithFewFits(c.options));
  ASSERT_TRUE(code.ok()) << code.status();
  const ProductShape s = (*code)->shape();
  const Matrix zeros_a = Matrix::Zero(s.rows, s.inner), zeros_b = Matrix::Zero(s.inner, s.cols);
  Random rng(22);
  std::vector<PeerResult> results;
  for (int p = 0; p < (*code)->num_peers(); ++p) {
    results.push_back({p, (*code)->PeerProduct((*code)->EncodeShard(zeros_a, p).value(),
                                               (*code)->EncodeInput(zeros_b, p).value())});
  }
  Matrix& wrong = results[3].value;
  if (magnitude > 0) wrong += magnitude * rng.NormalMatrix(wrong.rows(), wrong.cols());
  auto decoded = (*code)->Decode(results);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(decoded->verified);
  EXPECT_TRUE(decoded->product.isZero(0.0)) << decoded->product.cwiseAbs().maxCoeff();
  EXPECT_EQ(decoded->wrong_peers, magnitude > 0 ? c.named : std::vector<int>{});
}

// Every strategy that corrects a whole wrong result (ABFT corrects one entry).
std::vector<HugeValueCase> WholeResultCases() {
  std::vector<HugeValueCase> cases = HugeValueCases();
  cases.erase(std::remove_if(cases.begin(), cases.end(),
                             [](const HugeValueCase& c) { return std::string(c.name) == "abft"; }),
              cases.end());
  return cases;
}

INSTANTIATE_TEST_SUITE_P(EveryStrategy, ZerosBesideAWrongResult,
                         ::testing::Combine(::testing::ValuesIn(WholeResultCases()),
                                            ::testing::Values(0.0, 1e-200, 1.0, 1e200)),
                         [](const ::testing::TestParamInfo<ZerosBesideAWrongResult::ParamType>& i) {
                           const double v = std::get<1>(i.param);
                           const int e = int(std::lround(std::log10(v)));
                           const std::string magnitude =
                               v == 0.0 ? "none"
                                        : (e < 0 ? "1e_minus" : "1e") + std::to_string(std::abs(e));
                           return std::string(std::get<0>(i.param).name) + "_" + magnitude;
                         });

// The same in the backward product, Generalized PolyDot on 8 peers (the
// demo's code: one wrong result of 8 is all its transpose corrects), with
// each peer wrong in turn.
class ZerosBesideAWrongTransposeResult : public ::testing::TestWithParam<int> {};

TEST_P(ZerosBesideAWrongTransposeResult, AreDecodedNamingIt) {
  const int bad = GetParam();
  ProductCodeOptions o = testing::StrategyOptions(Strategy::kPolyDot, {24, 40, 16}, 8);
  auto code = MakeProductCode(WithFewFits(o));
  ASSERT_TRUE(code.ok()) << code.status();
  const ProductShape s = (*code)->shape();
  Random rng(23);
  std::vector<PeerResult> results;
  for (int p = 0; p < 8; ++p) {
    const Matrix shard = (*code)->EncodeShard(rng.NormalMatrix(s.rows, s.inner), p).value();
    const Matrix piece = (*code)->EncodeTransposeInput(Matrix::Zero(s.rows, s.cols), p).value();
    results.push_back({p, (*code)->PeerTransposeProduct(shard, piece)});
  }
  results[size_t(bad)].value += rng.NormalMatrix(results[0].value.rows(), results[0].value.cols());
  auto decoded = (*code)->DecodeTranspose(results);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(decoded->verified);
  EXPECT_TRUE(decoded->product.isZero(0.0));
  EXPECT_EQ(decoded->wrong_peers, std::vector<int>{bad});
}

INSTANTIATE_TEST_SUITE_P(EveryPeer, ZerosBesideAWrongTransposeResult, ::testing::Range(0, 8));

// Absurd but finite errors (their squares overflow) at R - K - 1 whole peers,
// more than half of the results: the slow path's frame (the results' typical
// magnitude) is theirs, the honest values land near 1e-200 in it, and their
// squares underflowed: a verified, exact product came back with a
// deviation_bound of 0, a claim of an exact product (adversary s20 F2).
struct AbsurdMajorityCase {
  const char* name;
  ProductCodeOptions options;
  std::vector<int> wrong;
  double magnitude;
  friend void PrintTo(const AbsurdMajorityCase& c, std::ostream* os) { *os << c.name; }
};

std::vector<AbsurdMajorityCase> AbsurdMajorityCases() {
  ProductCodeOptions genpolydot = testing::StrategyOptions(Strategy::kPolyDot, {30, 33, 17}, 12);
  ProductCodeOptions rotation = genpolydot;
  rotation.n = 1;
  rotation.d = 2;
  rotation.points = PointKind::kRotation;
  const std::vector<int> six = {0, 2, 4, 6, 8, 10}, seven = {0, 2, 4, 6, 8, 10, 11};
  return {{"genpolydot_1e170", genpolydot, six, 1e170},
          {"genpolydot_1e200", genpolydot, six, 1e200},
          {"genpolydot_1e300", genpolydot, six, 1e300},
          {"rotation_1e200", rotation, seven, 1e200},
          {"rotation_1e300", rotation, seven, 1e300}};
}

class AbsurdMajority : public ::testing::TestWithParam<AbsurdMajorityCase> {};

TEST_P(AbsurdMajority, LeavesAVerifiedProductWithinANonzeroBound) {
  const AbsurdMajorityCase& c = GetParam();
  auto code = MakeProductCode(c.options);
  ASSERT_TRUE(code.ok()) << code.status();
  ASSERT_EQ(int(c.wrong.size()), (*code)->num_peers() - (*code)->recovery_threshold() - 1);
  Random rng(24);
  Clean clean = Encode(**code, &rng);
  for (int p : c.wrong) {
    Matrix& v = ResultOf(clean, p);
    v += c.magnitude * rng.NormalMatrix(v.rows(), v.cols());
  }
  auto decoded = (*code)->Decode(clean.results);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(decoded->verified);
  EXPECT_EQ(decoded->wrong_peers, c.wrong);
  const double rms =
      (decoded->product - clean.expected).norm() / std::sqrt(double(clean.expected.size()));
  EXPECT_GT(decoded->deviation_bound, 0.0);
  EXPECT_GT(decoded->roundoff_bound, 0.0);
  EXPECT_LE(rms, decoded->deviation_bound);
}

// Products at subnormal scale: double arithmetic there rounds to an absolute
// quantum, above the relative tolerance, and fault-free decodes named honest
// peers or returned DataLoss (adversary s20 F4). RoundoffFloor's least
// floor (kLeastRoundoffFloor) checks such results to an absolute 7e-313: no
// honest peer is named, and a wrong result above that is.
class SubnormalProducts : public ::testing::TestWithParam<std::tuple<HugeValueCase, double>> {};

TEST_P(SubnormalProducts, NameNoHonestPeerAndAWrongOne) {
  const auto& [c, scale] = GetParam();
  auto code = MakeProductCode(c.options);
  ASSERT_TRUE(code.ok()) << code.status();
  const ProductShape s = (*code)->shape();
  Random rng(25);
  const Matrix a = scale * rng.NormalMatrix(s.rows, s.inner);
  const Matrix b = rng.NormalMatrix(s.inner, s.cols);
  std::vector<PeerResult> results;
  for (int p = 0; p < (*code)->num_peers(); ++p) {
    results.push_back({p, (*code)->PeerProduct((*code)->EncodeShard(a, p).value(),
                                               (*code)->EncodeInput(b, p).value())});
  }
  for (bool wrong : {false, true}) {
    if (wrong)
      results[3].value +=
          1e-300 * rng.NormalMatrix(results[3].value.rows(), results[3].value.cols());
    auto decoded = (*code)->Decode(results);
    ASSERT_TRUE(decoded.ok()) << decoded.status() << (wrong ? " with a wrong result" : "");
    EXPECT_TRUE(decoded->verified);
    EXPECT_EQ(decoded->wrong_peers, wrong ? c.named : std::vector<int>{});
    const Matrix expected = a * b;
    EXPECT_LE((decoded->product - expected).cwiseAbs().maxCoeff(), 1e-310);
  }
}

INSTANTIATE_TEST_SUITE_P(EveryStrategy, SubnormalProducts,
                         ::testing::Combine(::testing::ValuesIn(WholeResultCases()),
                                            ::testing::Values(3e-313, 1e-314, 1e-315)),
                         [](const ::testing::TestParamInfo<SubnormalProducts::ParamType>& i) {
                           const int e = int(std::lround(-std::log10(std::get<1>(i.param))));
                           return std::string(std::get<0>(i.param).name) + "_1e_minus" +
                                  std::to_string(e);
                         });

INSTANTIATE_TEST_SUITE_P(Codes, AbsurdMajority, ::testing::ValuesIn(AbsurdMajorityCases()),
                         [](const ::testing::TestParamInfo<AbsurdMajorityCase>& i) {
                           return std::string(i.param.name);
                         });

// Replication's vote compares copies against a scale: the RMS of every copy
// together, which one huge wrong copy made huge (1e120 in one entry: no
// overflow), and then a second wrong copy agreed with the honest one and was
// chosen. Two wrong copies of three are beyond the code, so the decode may
// fail; it may not return the wrong one as verified.
TEST(DecoderTrust, ReplicationScaleIsNotWidenedByAWrongCopy) {
  auto code = MakeProductCode(HugeValueOptions(Strategy::kReplication)).value();
  ASSERT_EQ(code->num_peers() / 3, 4);  // block b is held by peers b, b + 4, b + 8
  Random rng(22);
  Clean clean = Encode(*code, &rng);
  ResultOf(clean, 0)(1, 1) += 1e100;  // the first copy of block 0: chosen if it agrees
  ResultOf(clean, 8)(0, 0) = 1e120;
  auto decoded = code->Decode(clean.results);
  if (decoded.ok() && decoded->verified) {
    EXPECT_LT(RelativeError(decoded->product, clean.expected), 1e-9);
  }
}

// A liar among three copies that agrees with the honest two within the
// tolerance (1e-12 times the copies' RMS off in every entry) where one honest
// entry is huge: the copies' RMS is then huge, and the liar's copy, the
// first of the agreeing group, came back with every small entry off by
// 1e87 and a deviation bound of 0 (adversary s11). The vote now returns the
// agreeing copies' median and a bound of twice the agreement's tolerance.
TEST(DecoderTrust, ReplicationLiarWithinToleranceIsOutvotedEntryByEntry) {
  ProductCodeOptions o{.strategy = Strategy::kReplication, .shape = {16, 16, 4}, .peers = 3};
  o.replicas = 3;
  auto code = MakeProductCode(o).value();
  for (double big : {1.0, 1e20, 1e100}) {
    Random rng(5);
    Matrix a = rng.NormalMatrix(16, 16);
    const Matrix b = rng.NormalMatrix(16, 4);
    a(3, 7) = big;
    const Matrix c = a * b;
    std::vector<PeerResult> results;
    for (int p = 0; p < 3; ++p) {
      results.push_back(
          {p, code->PeerProduct(code->EncodeShard(a, p).value(), code->EncodeInput(b, p).value())});
    }
    const double rms = results[0].value.norm() / std::sqrt(double(results[0].value.size()));
    for (Eigen::Index i = 0; i < 16; ++i)
      if (i != 3) results[0].value.row(i).array() += 1e-12 * rms;
    auto decoded = code->Decode(results);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    Matrix off = decoded->product - c;
    EXPECT_LE(off.norm() / std::sqrt(double(off.size())), decoded->deviation_bound) << big;
    off.row(3).setZero();
    EXPECT_LT(off.cwiseAbs().maxCoeff(), 1e-12) << big;  // the small entries are the honest ones
  }
}

// ABFT's checks compare a row's (a column's) checksum against the sum of
// its values at the scale of their |values|: an entry between a huge row and
// a huge column can be off by far more than itself and pass, or be corrected
// from a checksum that cancels catastrophically (1e80 returned for 1.52, or
// 0). Such a product came back verified with a deviation bound of 0
// (adversary s11); the bound now carries the checks' slack.
TEST(DecoderTrust, AbftReportsTheSlackOfItsChecks) {
  ProductCodeOptions o{.strategy = Strategy::kAbft, .shape = {16, 16, 4}, .peers = 2};
  auto code = MakeProductCode(o).value();
  for (double big : {1.0, 1e20, 1e100}) {
    for (double delta : {1e-3, 1.0, 1e10, 1e80}) {
      Random rng(5);
      Matrix a = rng.NormalMatrix(16, 16), b = rng.NormalMatrix(16, 4);
      a(3, 7) = big;  // row 3 of C huge
      b(5, 0) = big;  // column 0 of C huge
      const Matrix c = a * b;
      std::vector<PeerResult> results;
      for (int p = 0; p < 2; ++p) {
        results.push_back({p, code->PeerProduct(code->EncodeShard(a, p).value(),
                                                code->EncodeInput(b, p).value())});
      }
      results[0].value(1, 2) += delta;  // row 1 holds C(1, 0), column 2 holds C(3, 2)
      auto decoded = code->Decode(results);
      if (!decoded.ok() || !decoded->verified) continue;
      const Matrix off = decoded->product - c;
      EXPECT_LE(off.norm() / std::sqrt(double(off.size())), decoded->deviation_bound)
          << "big " << big << " delta " << delta;
      if (big == 1.0) {
        EXPECT_LT(decoded->deviation_bound, 1e-9 * c.norm()) << delta;  // no slack to speak of
      }
    }
  }
}

// Operands whose sums of |values| overflow (A near 2e306, its shards' 256
// rows summed) while their product is near 1: every declared roundoff scale
// was NaN, a verified decode reported an infinite bound, and an error of
// 1e-8 of the results' size went unnamed (adversary s11).
class OperandsBeyondTheSumsRange : public ::testing::TestWithParam<Strategy> {};

TEST_P(OperandsBeyondTheSumsRange, DeclareFiniteScalesAndNameALiar) {
  auto code = MakeProductCode(StrategyOptions(GetParam(), {512, 64, 8}, 8)).value();
  Random rng(11);
  const Matrix a = rng.NormalMatrix(512, 64) * 2e306, b = rng.NormalMatrix(64, 8) * 5e-307;
  const Matrix c = a * b;
  std::vector<PeerResult> results;
  for (int p = 0; p < code->num_peers(); ++p) {
    const Matrix shard = code->EncodeShard(a, p).value(), piece = code->EncodeInput(b, p).value();
    ASSERT_TRUE(shard.allFinite()) << p;
    results.push_back({p, code->PeerProduct(shard, piece), RoundoffScale(shard, piece)});
    ASSERT_TRUE(std::isfinite(results.back().roundoff_scale)) << p;
    ASSERT_GT(results.back().roundoff_scale, 0.0) << p;
  }
  Matrix& liar = results[3].value;
  liar(5, 0) += 1e-8 * liar.norm() / std::sqrt(double(liar.size()));
  auto decoded = code->Decode(results);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->wrong_peers, std::vector<int>{3});
  EXPECT_TRUE(decoded->verified);
  EXPECT_TRUE(std::isfinite(decoded->deviation_bound)) << decoded->deviation_bound;
  EXPECT_LT(RelativeError(decoded->product, c), 1e-9);
}

INSTANTIATE_TEST_SUITE_P(Strategies, OperandsBeyondTheSumsRange,
                         ::testing::Values(Strategy::kPolyDot),
                         [](const ::testing::TestParamInfo<Strategy>& info) {
                           return std::string(info.param.name());
                         });

// Cancelling data far beyond the checks' former cap on the declared floor
// (1,024 times the results' own scale): A = 1 + 1e-8 N(0, 1) against B of
// zero column sums, results 10^8 times smaller than their terms. Honest
// peers came back named, verified and resolved (adversary s11, F4). A liar
// 10^4 tolerances above the terms' scale (about 10 times the results' own
// size here) must still be named; below the tolerance of the terms, the
// results are roundoff.
class DeepCancellation : public ::testing::TestWithParam<Strategy> {};

TEST_P(DeepCancellation, NamesNoHonestPeerAndStillNamesALiar) {
  ProductCodeOptions o = StrategyOptions(GetParam(), {32, 256, 8}, 8);
  o.m = 4;  // Generalized PolyDot m = 4, n = 1: polynomial points, K = 4
  o.n = 1;
  auto code = MakeProductCode(o).value();
  for (int seed = 0; seed < 4; ++seed) {
    Random rng(20 + seed);
    const Matrix a = (rng.NormalMatrix(32, 256) * 1e-8).array() + 1.0;
    Matrix b = rng.NormalMatrix(256, 8);
    b.rowwise() -= b.colwise().mean();
    const Matrix c = a * b;
    std::vector<PeerResult> results;
    for (int p = 0; p < code->num_peers(); ++p) {
      const Matrix shard = code->EncodeShard(a, p).value();
      const Matrix piece = code->EncodeInput(b, p).value();
      results.push_back({p, code->PeerProduct(shard, piece), RoundoffScale(shard, piece)});
    }
    auto clean = code->Decode(results);
    ASSERT_TRUE(clean.ok()) << clean.status() << " seed " << seed;
    EXPECT_TRUE(clean->wrong_peers.empty())
        << "seed " << seed << ": named " << FormatPeers(clean->wrong_peers);
    const double size = std::sqrt(double(c.size()));
    EXPECT_LE((clean->product - c).norm() / size, clean->deviation_bound) << seed;
    Matrix& liar = results[2].value;
    liar(4, 0) += 1e4 * kFloat64Tolerance * results[2].roundoff_scale;
    auto d = code->Decode(results);
    ASSERT_TRUE(d.ok()) << d.status() << " seed " << seed;
    EXPECT_EQ(d->wrong_peers, std::vector<int>{2}) << "seed " << seed;
    EXPECT_LE((d->product - c).norm() / size, d->deviation_bound) << seed;
  }
}

INSTANTIATE_TEST_SUITE_P(Strategies, DeepCancellation,
                         ::testing::Values(Strategy::kPolyDot, Strategy::kMds),
                         [](const ::testing::TestParamInfo<Strategy>& info) {
                           return std::string(info.param.name());
                         });

// Honest results far above 1e150 (data scaled by s) against floor((R - K)/2)
// liars sending zeros: the decoders set aside every result with a value
// above an absolute 1e150 as wrong outright, and the liars' zeros then
// decoded as verified, naming every honest peer. "Absurd" is now relative to
// the results' typical magnitude.
struct ScaledLiarsCase {
  const char* name;
  ProductCodeOptions options;
  friend void PrintTo(const ScaledLiarsCase& c, std::ostream* os) { *os << c.name; }
};

std::vector<ScaledLiarsCase> ScaledLiarsCases() {
  ProductCodeOptions o;
  o.shape = {4, 3, 2};
  o.peers = 5;  // K = 1: two liars are within floor((5 - 1)/2)
  ProductCodeOptions mds = o, rotation = o, lowweight = o, polynomial = o;
  mds.strategy = Strategy::kMds;
  rotation.strategy = Strategy::kPolyDot;
  rotation.points = PointKind::kRotation;
  lowweight.strategy = Strategy::kLowWeight;
  polynomial.strategy = Strategy::kPolyDot;
  return {
      {"mds", mds}, {"rotation", rotation}, {"lowweight", lowweight}, {"polynomial", polynomial}};
}

class ScaledLiarsTest : public ::testing::TestWithParam<std::tuple<ScaledLiarsCase, double>> {};

TEST_P(ScaledLiarsTest, ZerosDoNotOutvoteHugeHonestResults) {
  const auto& [c, scale] = GetParam();
  auto code = MakeProductCode(c.options);
  ASSERT_TRUE(code.ok()) << code.status();
  ASSERT_EQ((*code)->recovery_threshold(), 1);
  Random rng(23);
  for (int trial = 0; trial < 3; ++trial) {
    const Matrix a = rng.NormalMatrix(4, 3) * scale, b = rng.NormalMatrix(3, 2);
    std::vector<PeerResult> results;
    for (int p = 0; p < 5; ++p) {
      results.push_back({p, (*code)->PeerProduct((*code)->EncodeShard(a, p).value(),
                                                 (*code)->EncodeInput(b, p).value())});
    }
    results[1].value.setZero();
    results[3].value.setZero();
    auto decoded = (*code)->Decode(results);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_TRUE(decoded->verified);
    EXPECT_LT(RelativeError(Matrix(decoded->product / scale), Matrix(a * b / scale)), 1e-9);
    EXPECT_EQ(decoded->wrong_peers, (std::vector<int>{1, 3}));
  }
}

// Liars sending a dense code word far below honest results that are mostly
// zero (padding, ReLU): the results' typical magnitude was a median over
// every value, which the liars' values then outnumbered, so every honest
// value looked absurd and the liars' product came back verified. It is now
// a median over peers.
TEST_P(ScaledLiarsTest, DenseTinyCodeWordsDoNotOutvoteSparseHonestResults) {
  const auto& [c, scale] = GetParam();
  auto code = MakeProductCode(c.options);
  ASSERT_TRUE(code.ok()) << code.status();
  Random rng(26);
  Matrix a = Matrix::Zero(4, 3);
  a.row(0) = rng.NormalMatrix(1, 3) * scale;
  const Matrix fake = rng.NormalMatrix(4, 3) * (scale * 1e-290), b = rng.NormalMatrix(3, 2);
  std::vector<PeerResult> results;
  for (int p = 0; p < 5; ++p) {
    const Matrix& shard_of = p == 1 || p == 3 ? fake : a;
    results.push_back({p, (*code)->PeerProduct((*code)->EncodeShard(shard_of, p).value(),
                                               (*code)->EncodeInput(b, p).value())});
  }
  auto decoded = (*code)->Decode(results);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(decoded->verified);
  EXPECT_LT(RelativeError(Matrix(decoded->product / scale), Matrix(a * b / scale)), 1e-9);
  EXPECT_EQ(decoded->wrong_peers, (std::vector<int>{1, 3}));
}

// One entry of A at `scale` in data near 1: the product's own entries span
// more than the decoders' "absurd" cutoff (1e150 times the results' typical
// magnitude), so every honest result looked absurd. Two liars sending their
// results with those entries zeroed were then the only tame results, and the
// linear-code decoder returned their product as verified, naming the three
// honest peers (adversary s10). Such data may be beyond the decoders (the
// decode may fail); the liars' product may not come back verified.
TEST_P(ScaledLiarsTest, ZerosDoNotOutvoteOneHugeEntry) {
  const auto& [c, scale] = GetParam();
  auto code = MakeProductCode(c.options);
  ASSERT_TRUE(code.ok()) << code.status();
  Random rng(27);
  for (int trial = 0; trial < 3; ++trial) {
    Matrix a = rng.NormalMatrix(4, 3);
    a(trial, trial % 3) = scale;
    const Matrix b = rng.NormalMatrix(3, 2);
    std::vector<PeerResult> results;
    for (int p = 0; p < 5; ++p) {
      results.push_back({p, (*code)->PeerProduct((*code)->EncodeShard(a, p).value(),
                                                 (*code)->EncodeInput(b, p).value())});
    }
    for (int liar : {1, 3}) {
      Matrix& v = results[size_t(liar)].value;
      v = v.unaryExpr([&](double x) { return std::abs(x) > scale * 1e-3 ? 0.0 : x; });
    }
    auto decoded = (*code)->Decode(results);
    if (!decoded.ok()) {
      EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss) << decoded.status();
      continue;
    }
    if (!decoded->verified) continue;
    EXPECT_LT(RelativeError(Matrix(decoded->product / scale), Matrix(a * b / scale)), 1e-9)
        << trial;
    EXPECT_EQ(decoded->wrong_peers, (std::vector<int>{1, 3})) << trial;
  }
}

INSTANTIATE_TEST_SUITE_P(Magnitudes, ScaledLiarsTest,
                         ::testing::Combine(::testing::ValuesIn(ScaledLiarsCases()),
                                            ::testing::Values(1e149, 1e151, 1e200)),
                         [](const ::testing::TestParamInfo<ScaledLiarsTest::ParamType>& info) {
                           return std::string(std::get<0>(info.param).name) + "_1e" +
                                  std::to_string(int(std::log10(std::get<1>(info.param)) + 0.5));
                         });

// Replication and ABFT compare a difference against a bound: near DBL_MAX
// both overflowed and inf <= inf passed, so one wrong copy or entry of
// -DBL_MAX in data of 1e296..1e300 came back verified. ABFT's bound had an
// absolute DBL_MIN floor that hid an error in subnormal data.
TEST(DecoderTrust, ReplicationNamesACopyNearDblMaxInHugeData) {
  ProductCodeOptions o = HugeValueOptions(Strategy::kReplication);
  o.peers = 3;
  o.shape = {3, 2, 2};
  auto code = MakeProductCode(o).value();
  Random rng(24);
  const Matrix a = rng.NormalMatrix(3, 2) * 1e300, b = rng.NormalMatrix(2, 2);
  const Matrix expected = a * b;
  for (int wrong = 0; wrong < 3; ++wrong) {
    std::vector<PeerResult> results;
    for (int p = 0; p < 3; ++p) results.push_back({p, expected});
    results[size_t(wrong)].value(0, 0) = -std::numeric_limits<double>::max();
    auto decoded = code->Decode(results);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_TRUE(decoded->verified);
    EXPECT_EQ(decoded->product, expected);
    EXPECT_EQ(decoded->wrong_peers, std::vector<int>{wrong});
    // Two wrong copies of three (+-DBL_MAX) are beyond the code: never
    // returned as verified.
    results[size_t((wrong + 1) % 3)].value(0, 0) = std::numeric_limits<double>::max();
    decoded = code->Decode(results);
    EXPECT_FALSE(decoded.ok() && decoded->verified && decoded->product != expected);
  }
}

TEST(DecoderTrust, AbftCorrectsAnEntryAtTheEdgesOfTheRange) {
  ProductCodeOptions o = HugeValueOptions(Strategy::kAbft);
  o.peers = 1;
  o.shape = {4, 3, 2};
  auto code = MakeProductCode(o).value();
  Random rng(25);
  for (double scale : {1e296, 1e-309}) {
    const Matrix a = rng.NormalMatrix(4, 3) * scale, b = rng.NormalMatrix(3, 2);
    const Matrix expected = a * b;
    std::vector<PeerResult> results = {
        {0, code->PeerProduct(code->EncodeShard(a, 0).value(), code->EncodeInput(b, 0).value())}};
    results[0].value(0, 0) = scale > 1 ? -std::numeric_limits<double>::max() : 0.0;
    auto decoded = code->Decode(results);
    ASSERT_TRUE(decoded.ok()) << decoded.status() << " at " << scale;
    EXPECT_EQ(decoded->wrong_peers, std::vector<int>{0}) << scale;
    EXPECT_LT(RelativeError(Matrix(decoded->product / scale), Matrix(expected / scale)), 1e-12)
        << scale;
  }
}

}  // namespace decoder_trust_test
}  // namespace
}  // namespace polyguard

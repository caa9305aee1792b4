#include "polyguard/codes/strategy_registry.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "codes/code_test_util.h"
#include "polyguard/codes/product_mds_code.h"

namespace polyguard {
namespace {
namespace strategy_registry_test {

TEST(StrategyRegistry, FindsEveryBuiltInByNameAndAlias) {
  for (Strategy s : {Strategy::kUncoded, Strategy::kReplication, Strategy::kMds, Strategy::kPolyDot,
                     Strategy::kAbft, Strategy::kLowWeight}) {
    StatusOr<const StrategyEntry*> e = FindStrategy(s.name());
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ((*e)->name, s.name());
    EXPECT_EQ(ParseStrategy(s.name()).value(), s);
  }
  EXPECT_EQ(ParseStrategy("polydot").value(), Strategy::kPolyDot);
}

TEST(StrategyRegistry, UnknownNameListsTheRegisteredOnes) {
  StatusOr<Strategy> s = ParseStrategy("fountain");
  ASSERT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("'fountain'"), std::string::npos) << s.status();
  EXPECT_NE(s.status().message().find("genpolydot"), std::string::npos) << s.status();
  ProductCodeOptions o;
  o.strategy = Strategy("fountain");
  o.shape = {4, 4, 4};
  EXPECT_EQ(MakeProductCode(o).status().code(), StatusCode::kNotFound);
}

TEST(StrategyRegistry, RefusesTakenNamesAndEntriesWithoutAFactory) {
  StrategyEntry taken;
  taken.name = "mds";
  taken.make = [](const ProductCodeOptions&) -> StatusOr<std::unique_ptr<ProductCode>> {
    return InternalError("never built");
  };
  EXPECT_EQ(RegisterStrategy(taken).code(), StatusCode::kAlreadyExists);
  taken.name = "registry-test-alias-clash";
  taken.aliases = {"polydot"};
  EXPECT_EQ(RegisterStrategy(taken).code(), StatusCode::kAlreadyExists);
  EXPECT_FALSE(FindStrategy("registry-test-alias-clash").ok());  // nothing half-registered
  StrategyEntry no_factory;
  no_factory.name = "registry-test-no-factory";
  EXPECT_EQ(RegisterStrategy(no_factory).code(), StatusCode::kInvalidArgument);
  StrategyEntry no_name;
  no_name.make = taken.make;
  EXPECT_EQ(RegisterStrategy(no_name).code(), StatusCode::kInvalidArgument);
}

TEST(StrategyRegistry, NamesByCapability) {
  const std::string trains = StrategyNames({.trains = true});
  EXPECT_NE(trains.find("genpolydot"), std::string::npos);
  EXPECT_EQ(trains.find("lowweight"), std::string::npos);
  EXPECT_EQ(StrategyNames({.coded_convolution = true}), "genpolydot");
  EXPECT_FALSE(CapabilitiesOf(Strategy("no-such-strategy")).trains);
}

// Every built-in strategy, built the way a training job builds it (the MDS
// strategy with its product-code layout), for P = 8. Every block of A holds
// data (16 rows), so every wrong result matters.
ProductCodeOptions TrainingOptions(Strategy s) {
  ProductCodeOptions o = testing::StrategyOptions(s, {16, 10, 6}, /*peers=*/8);
  o.replicas = 2;
  EXPECT_TRUE(UseDefaultProductMdsLayout(&o).ok());
  return o;
}

class EveryBuiltIn : public ::testing::TestWithParam<Strategy> {};

// The capabilities an outer layer asks are those the built code has.
TEST_P(EveryBuiltIn, CapabilitiesMatchTheBuiltCode) {
  const StrategyCapabilities can = CapabilitiesOf(GetParam());
  auto code = MakeProductCode(TrainingOptions(GetParam()));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ((*code)->strategy(), GetParam());
  EXPECT_EQ(can.trains, (*code)->supports_training());
  // (Whether a configuration corrects depends on its redundancy: two replicas
  // do not. A strategy that never corrects must not claim to.)
  if (!can.corrects_errors) {
    EXPECT_EQ((*code)->errors_corrected_probabilistic(), 0);
  }
}

// The closed-form failure model against the real decoder: for every count k
// of wrong results with a model probability of 0 or 1, every pattern (all of
// them for small P) decodes exactly when the model says it does; for
// fractional probabilities (replication), the fraction of failing patterns
// over all k-subsets equals the model.
TEST_P(EveryBuiltIn, FailureModelAgreesWithTheDecoder) {
  ProductCodeOptions o = TrainingOptions(GetParam());
  if (GetParam() == Strategy::kMds) {  // the 1-D code has the closed form
    o.row_blocks = 0;
    o.data_blocks = 5;
  }
  if (GetParam() == Strategy::kReplication) o.replicas = 4;  // fractional failure probabilities
  auto code = MakeProductCode(o);
  ASSERT_TRUE(code.ok()) << code.status();
  const FailureByWrongCount model = FailureModelOf(**code);
  ASSERT_TRUE(model.has_value());
  ASSERT_EQ(model->size(), 9u);
  Random rng(7);
  const ProductShape s = (*code)->shape();
  const Matrix a = rng.NormalMatrix(s.rows, s.inner), b = rng.NormalMatrix(s.inner, s.cols);
  const Matrix expected = a * b;
  std::vector<PeerResult> clean;
  for (int r = 0; r < 8; ++r) {
    clean.push_back({r, (*code)->PeerProduct((*code)->EncodeShard(a, r).value(),
                                             (*code)->EncodeInput(b, r).value())});
  }
  for (int k = 0; k <= 8; ++k) {
    int failed = 0, patterns = 0;
    testing::ForEachSubset(8, k, [&](const std::vector<int>& wrong) {
      std::vector<PeerResult> results = clean;
      for (int w : wrong) {
        Matrix& v = results[size_t(w)].value;
        v += rng.NormalMatrix(v.rows(), v.cols()) * (1.0 + v.norm());  // dense, generic
      }
      StatusOr<DecodedProduct> d = (*code)->Decode(results);
      const bool right = d.ok() && testing::RelativeError(d->product, expected) < 1e-8;
      failed += right ? 0 : 1;
      ++patterns;
    });
    EXPECT_NEAR(double(failed) / patterns, (*model)[size_t(k)], 1e-12)
        << (*code)->Describe() << ", " << k << " wrong results";
  }
}

INSTANTIATE_TEST_SUITE_P(StrategyRegistry, EveryBuiltIn,
                         ::testing::Values(Strategy::kUncoded, Strategy::kReplication,
                                           Strategy::kMds, Strategy::kPolyDot, Strategy::kAbft,
                                           Strategy::kLowWeight),
                         [](const ::testing::TestParamInfo<Strategy>& info) {
                           return std::string(info.param.name());
                         });

}  // namespace strategy_registry_test
}  // namespace
}  // namespace polyguard

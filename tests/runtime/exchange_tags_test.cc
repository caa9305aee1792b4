#include "polyguard/runtime/exchange_tags.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <set>
#include <tuple>
#include <vector>

namespace polyguard {
namespace {
namespace exchange_tags_test {

using Tuple = std::tuple<int64_t, int, int>;

Tuple Of(const ExchangeTag& t) { return {t.step, t.layer, t.op}; }

ExchangeTag Tag(ExchangeOp op, int64_t step = 0, int layer = 0) {
  StatusOr<ExchangeTag> tag = MakeExchangeTag(op, step, layer);
  EXPECT_TRUE(tag.ok()) << tag.status();
  return tag.ok() ? *tag : ExchangeTag{-1, -1, -1};
}

constexpr ExchangeOp kPerLayer[] = {
    ExchangeOp::kForward,       ExchangeOp::kTranspose,     ExchangeOp::kForwardWide,
    ExchangeOp::kTransposeWide, ExchangeOp::kScrub,         ExchangeOp::kRepair,
    ExchangeOp::kFix,           ExchangeOp::kSnapshotScrub, ExchangeOp::kRebuild};
constexpr ExchangeOp kProducts[] = {ExchangeOp::kForward, ExchangeOp::kTranspose,
                                    ExchangeOp::kForwardWide, ExchangeOp::kTransposeWide};
constexpr ExchangeOp kControl[] = {ExchangeOp::kScrub, ExchangeOp::kRepair, ExchangeOp::kFix,
                                   ExchangeOp::kSnapshotScrub, ExchangeOp::kRebuild};
// Per round, no layer.
constexpr ExchangeOp kPerRound[] = {ExchangeOp::kAgree, ExchangeOp::kWelcome};
const int64_t kSteps[] = {0,
                          1,
                          2,
                          1023,
                          1024,
                          (int64_t{1} << 30) - 1,
                          int64_t{1} << 30,
                          (int64_t{1} << 31) + 5,
                          std::numeric_limits<int64_t>::max()};

// The tags peers exchanged before the allocator existed: a peer of an older
// build still matches.
TEST(ExchangeTag, KeepsTheTagsOnTheWire) {
  EXPECT_EQ(Of(Tag(ExchangeOp::kForward, 7, 3)), Tuple(7, 3, 0));
  EXPECT_EQ(Of(Tag(ExchangeOp::kTranspose, 7, 3)), Tuple(7, 3, 1));
  EXPECT_EQ(Of(Tag(ExchangeOp::kForwardWide, 7, 3)), Tuple(7, 3, 2));
  EXPECT_EQ(Of(Tag(ExchangeOp::kTransposeWide, 7, 3)), Tuple(7, 3, 3));
  EXPECT_EQ(Of(Tag(ExchangeOp::kAgree, 7)), Tuple(7, 1 << 20, 0));
  EXPECT_EQ(Of(Tag(ExchangeOp::kScrub, 7, 3)), Tuple(7, 1 << 20, (1 << 10) + 3));
  EXPECT_EQ(Of(Tag(ExchangeOp::kRepair, 7, 3)), Tuple(7, 1 << 20, (2 << 10) + 3));
  EXPECT_EQ(Of(Tag(ExchangeOp::kFix, 7, 3)), Tuple(7, 1 << 20, (3 << 10) + 3));
  EXPECT_EQ(Of(Tag(ExchangeOp::kSnapshotScrub, 7, 3)), Tuple(7, (1 << 20) + 1, (1 << 10) + 3));
  EXPECT_EQ(Of(Tag(ExchangeOp::kResumeAgree)), Tuple(0, 1 << 22, 0));
  EXPECT_EQ(Of(Tag(ExchangeOp::kEvaluationTally)), Tuple(int64_t{1} << 30, 1 << 21, 0));
}

// Distinct (op, step, layer) give distinct tags, over the documented ranges
// and at their boundaries.
TEST(ExchangeTag, DistinctExchangesGetDistinctTags) {
  std::set<Tuple> seen;
  int made = 0;
  auto add = [&](ExchangeOp op, int64_t step, int layer) {
    const ExchangeTag tag = Tag(op, step, layer);
    EXPECT_TRUE(seen.insert(Of(tag)).second)
        << "op " << int(op) << " step " << step << " layer " << layer << " collides";
    ++made;
  };
  std::vector<int> control_layers;
  for (int l = 0; l < 20; ++l) control_layers.push_back(l);
  for (int l = kMaxControlLayers - 20; l < kMaxControlLayers; ++l) control_layers.push_back(l);
  std::vector<int> product_layers = control_layers;
  for (int l : {kMaxControlLayers, kMaxControlLayers + 1, 1 << 19, kMaxProductLayers - 2,
                kMaxProductLayers - 1})
    product_layers.push_back(l);
  for (int64_t step : kSteps) {
    for (ExchangeOp op : kProducts)
      for (int l : product_layers) add(op, step, l);
    for (ExchangeOp op : kControl)
      for (int l : control_layers) add(op, step, l);
    for (ExchangeOp op : kPerRound) add(op, step, 0);
  }
  add(ExchangeOp::kResumeAgree, 0, 0);
  add(ExchangeOp::kEvaluationTally, 0, 0);
  EXPECT_EQ(int(seen.size()), made);
}

// Every layer of the control range, for a few steps: no two collide.
TEST(ExchangeTag, EveryControlLayerIsDistinct) {
  std::set<Tuple> seen;
  int made = 0;
  for (int64_t step : {int64_t{1}, int64_t{2}}) {
    for (int l = 0; l < kMaxControlLayers; ++l) {
      for (ExchangeOp op : kPerLayer) {
        seen.insert(Of(Tag(op, step, l)));
        ++made;
      }
    }
    for (ExchangeOp op : kPerRound) {
      seen.insert(Of(Tag(op, step)));
      ++made;
    }
  }
  EXPECT_EQ(int(seen.size()), made);
}

TEST(ExchangeTag, RefusesOutOfRange) {
  for (ExchangeOp op : kProducts) {
    EXPECT_EQ(MakeExchangeTag(op, 1, -1).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(MakeExchangeTag(op, 1, kMaxProductLayers).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_TRUE(MakeExchangeTag(op, 1, kMaxProductLayers - 1).ok());
  }
  for (ExchangeOp op : kControl) {
    EXPECT_EQ(MakeExchangeTag(op, 1, -1).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(MakeExchangeTag(op, 1, kMaxControlLayers).status().code(),
              StatusCode::kInvalidArgument);
    EXPECT_TRUE(MakeExchangeTag(op, 1, kMaxControlLayers - 1).ok());
  }
  for (ExchangeOp op : kPerLayer)
    EXPECT_EQ(MakeExchangeTag(op, -1, 0).status().code(), StatusCode::kInvalidArgument);
  // Ops without a layer (or step) refuse one rather than ignore it.
  for (ExchangeOp op : kPerRound)
    EXPECT_EQ(MakeExchangeTag(op, 1, 2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeExchangeTag(ExchangeOp::kResumeAgree, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeExchangeTag(ExchangeOp::kEvaluationTally, 0, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeExchangeTag(static_cast<ExchangeOp>(99), 1).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace exchange_tags_test
}  // namespace
}  // namespace polyguard

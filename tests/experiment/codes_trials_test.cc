#include "experiment/codes_trials.h"

#include <gtest/gtest.h>

#include <sstream>

namespace polyguard::experiment {
namespace {
namespace codes_trials_test {

CodesTrialOptions Parse(std::vector<std::string> args) {
  auto o = ParseCodesOptions(args);
  EXPECT_TRUE(o.ok()) << o.status();
  return *o;
}

TEST(CodesTrials, CorrectsUpToRMinusKMinusOneAndDetectsBeyond) {
  // P = 10, one straggler, K = 5: R - K - 1 = 3 corrected, 4 and 5 detected.
  auto o = Parse({"--peers", "10", "--m", "2", "--n", "2", "--stragglers", "1", "--errors",
                  "0,3,4,5", "--trials", "30", "--rows", "20", "--cols", "12", "--batch", "3"});
  auto rows = RunCodesTrials(o).value();
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].corrected, 30);
  EXPECT_EQ(rows[1].corrected, 30);
  EXPECT_LT(rows[1].max_rel_error, 1e-10);
  EXPECT_EQ(rows[2].detected_uncorrectable, 30);
  EXPECT_EQ(rows[3].detected_uncorrectable, 30);
  for (const auto& r : rows) EXPECT_EQ(r.undetected_wrong, 0);
}

// Float32 peers: products carry float32 roundoff, which the trial counts as
// exact (ExactProductTolerance), and the large product's many entries do
// not hide two errors from the locator.
TEST(CodesTrials, Float32CorrectsUpToRMinusKMinusOneAndDetectsBeyond) {
  auto o = Parse({"--precision", "float32", "--errors", "0,2,3", "--trials", "2", "--rows", "1024",
                  "--cols", "1024", "--batch", "64"});
  auto rows = RunCodesTrials(o).value();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].corrected, 2);
  EXPECT_EQ(rows[1].corrected, 2);
  EXPECT_GT(rows[1].max_rel_error, 1e-8);  // float32 roundoff, not float64's
  EXPECT_EQ(rows[2].detected_uncorrectable, 2);
  for (const auto& r : rows) EXPECT_EQ(r.undetected_wrong, 0);
}

TEST(CodesTrials, UncodedTrustsWrongResults) {
  auto o = Parse({"--strategy", "uncoded", "--peers", "4", "--errors", "1", "--trials", "10"});
  auto rows = RunCodesTrials(o).value();
  EXPECT_EQ(rows[0].undetected_wrong, 10);
}

TEST(CodesTrials, ErrorRateRows) {
  auto o = Parse({"--strategy", "replication", "--replicas", "3", "--peers", "9", "--error-rate",
                  "0,0.5", "--trials", "20"});
  auto rows = RunCodesTrials(o).value();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].errors, "eps=0");
  EXPECT_EQ(rows[0].corrected, 20);
  EXPECT_GT(rows[1].detected_uncorrectable, 0);
  std::ostringstream csv;
  WriteCodesCsv(csv, o, 7, rows);
  EXPECT_EQ(csv.str().substr(0, csv.str().find('\n')),
            "strategy,peers,m,n,d,threshold,stragglers,errors,trials,corrected,"
            "detected_uncorrectable,undetected_wrong,max_rel_error,density,shard_nonzeros");
  EXPECT_NE(csv.str().find("replication,9,2,2,1,7,0,eps=0.5,20,"), std::string::npos);
}

TEST(CodesTrials, LowWeightOnSparseMatricesCorrectsAndStaysSparse) {
  auto low = Parse({"--strategy", "lowweight", "--peers", "10",       "--ka",    "2",        "--kb",
                    "3",          "--density", "0.05",    "--errors", "0,3",     "--trials", "10",
                    "--rows",     "40",        "--cols",  "30",       "--batch", "36"});
  auto rows = RunCodesTrials(low).value();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].corrected, 10);
  EXPECT_EQ(rows[1].corrected, 10);  // n - K - 1 = 3 wrong results
  EXPECT_LT(rows[1].max_rel_error, 1e-9);
  // (Here w_a = k_a = 2: the bound needs every A block in 7 of 10 shards.)
  auto mv =
      Parse({"--strategy", "lowweight", "--peers", "12", "--ka", "8", "--density", "0.05",
             "--errors", "0", "--trials", "5", "--rows", "64", "--cols", "40", "--batch", "1"});
  auto mv_dense = mv;
  mv_dense.code.weight_a = 8;
  const double low_nnz = RunCodesTrials(mv).value()[0].shard_nonzeros;
  const double dense_nnz = RunCodesTrials(mv_dense).value()[0].shard_nonzeros;
  // Weight ceil(8 * 5 / 12) = 4 of 8 blocks: about half the nonzeros.
  EXPECT_LT(low_nnz, 0.6 * dense_nnz);
  EXPECT_GT(low_nnz, 0.4 * dense_nnz);
}

TEST(CodesTrials, BadOptionsNameTheOption) {
  for (const auto& [args, word] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--peers", "x"}, "--peers"},
           {{"--peers", "1025"}, "--peers"},  // above kMaxPeers
           {{"--precision", "half"}, "half"},
           {{"--strategy", "magic"}, "magic"},
           {{"--error-kind", "cosmic"}, "cosmic"},
           {{"--error-rate", "2"}, "--error-rate"},
           {{"--frobnicate", "1"}, "--frobnicate"},
           {{"--trials"}, "--trials"},
           {{"--density", "0"}, "--density"}}) {
    auto o = ParseCodesOptions(args);
    ASSERT_FALSE(o.ok());
    EXPECT_NE(o.status().message().find(word), std::string::npos) << o.status();
  }
  auto o = Parse({"--peers", "6", "--errors", "9"});
  EXPECT_FALSE(RunCodesTrials(o).ok());
}

}  // namespace codes_trials_test
}  // namespace
}  // namespace polyguard::experiment

// Failure probabilities of one coded step, analytic and measured.
//
// Model: each of the P peers' results is wrong independently with
// probability eps, with a dense random error (the probabilistic model). A
// strategy's behaviour is then summed up by f_k, the fraction of k-error
// patterns it fails on (does not return the right product), and
//   P_fail(eps) = sum_k C(P, k) eps^k (1 - eps)^(P - k) f_k.
// Closed forms of f_k: codes that correct up to t wrong results
// (Generalized PolyDot, the 1-D MDS code: t = P - K - 1) have f_k = [k > t],
// the binomial tail; r-fold replication fails when any group has more than
// r - 2 wrong copies (counted exactly); uncoded and ABFT (dense errors)
// fail on any error. The MDS product-code layout has no simple count: its
// f_k is measured with the real decoder over every k-pattern (or a sample).
// The closed forms assume every peer's result carries data: choose shapes
// whose rows divide evenly among the blocks, or peers holding only zero
// padding make errors harmless that the formulas count; and results long
// enough that generic errors are located (at least as many entries as wrong
// results, times the blocks per peer of the rotation codes).
#ifndef POLYGUARD_BENCH_EXPERIMENT_ANALYTIC_H_
#define POLYGUARD_BENCH_EXPERIMENT_ANALYTIC_H_

#include <optional>
#include <vector>

#include "polyguard/base/matrix.h"
#include "polyguard/base/random.h"
#include "polyguard/codes/product_code.h"
#include "polyguard/codes/product_trial.h"

namespace polyguard::experiment {

double BinomialPmf(int n, int k, double p);
double BinomialCoefficient(int n, int k);

// What a decode of one product did.
enum class Outcome { kCorrected, kDetected, kSilent };

// Every peer's correct result for one random A, B (the shape of the code).
CleanProduct MakeCleanProduct(const ProductCode& code, Random* rng);

// How a wrong result is wrong: a dense random error (probabilistic model),
// or an error in one entry shared by every wrong peer (adversarial).
enum class ErrorMode { kDense, kSameEntry };

// Decodes the results of the peers in `answering` with the peers in `wrong`
// given errors of `mode`.
Outcome DecodeWithErrors(const ProductCode& code, const CleanProduct& clean,
                         const std::vector<int>& answering, const std::vector<int>& wrong,
                         ErrorMode mode, Random* rng);

// f_k measured: every k-pattern when there are at most `patterns` of them,
// else `patterns` random ones; fresh data for each k.
std::vector<double> MeasuredFailureByCount(const ProductCode& code, int patterns, Random* rng);

double FailureProbability(const std::vector<double>& fail_by_count, double eps);
// The largest eps in [1e-9, 0.5] with FailureProbability <= target (bisection
// on log eps; P_fail is increasing in eps for the strategies here).
double TolerableEps(const std::vector<double>& fail_by_count, double target);

}  // namespace polyguard::experiment

#endif  // POLYGUARD_BENCH_EXPERIMENT_ANALYTIC_H_

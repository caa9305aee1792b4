#include "polyguard/runtime/coded_product.h"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "polyguard/codes/low_weight_code.h"
#include "polyguard/codes/polydot_code.h"
#include "polyguard/codes/strategy_registry.h"
#include "polyguard/conv/coded_convolution.h"

#include "runtime/multiprocess.h"
#include "runtime/peers.h"
#include "runtime/redis_server.h"

namespace polyguard {
namespace {
namespace coded_product_test {

using namespace std::chrono_literals;
using testing::FreshFolder;
using testing::RunPeers;

struct Job {
  int peers, m, n, d;
  ProductShape shape;
};

// Peer `rank` of `peers`, meeting the others through the folder `dir`.
StatusOr<std::unique_ptr<PeerGroup>> ConnectThroughFolder(int rank, int peers,
                                                          const std::string& dir) {
  PeerGroupOptions o;
  o.rank = rank;
  o.size = peers;
  o.rendezvous = "file:" + dir;
  o.timeout = 20s;
  return PeerGroup::Connect(o);
}

// What every peer of a job knows: the same data from the same seed.
struct World {
  Matrix a, b, dm, x;
  explicit World(const ProductShape& s, uint64_t seed = 99) {
    Random rng(seed);
    a = rng.NormalMatrix(s.rows, s.inner);
    b = rng.NormalMatrix(s.inner, s.cols);
    dm = rng.NormalMatrix(s.rows, s.cols);
    x = rng.NormalMatrix(s.inner, s.cols);
  }
};

double Rel(const Matrix& got, const Matrix& want) { return (got - want).norm() / want.norm(); }

// Generalized PolyDot on 8 peers, m = n = 2, in `precision`.
std::unique_ptr<ProductCode> PolyDot8(const ProductShape& shape, Precision precision) {
  ProductCodeOptions c;
  c.shape = shape;
  c.peers = 8;
  c.m = 2;
  c.n = 2;
  c.precision = precision;
  return MakeProductCode(c).value();
}

// One peer: forward, transpose, update, forward again; 0 when all is right.
int ForwardTransposeUpdate(const Job& job, int rank, const std::string& rendezvous) {
  PeerGroupOptions o;
  o.rank = rank;
  o.size = job.peers;
  o.rendezvous = rendezvous;
  o.timeout = 20s;
  auto group = PeerGroup::Connect(o);
  if (!group.ok()) {
    std::fprintf(stderr, "%s\n", group.status().ToString().c_str());
    return 1;
  }
  auto code =
      PolyDotCode::Create(job.shape, {.peers = job.peers, .m = job.m, .n = job.n, .d = job.d});
  if (!code.ok()) return 2;
  auto product = CodedProduct::Create(group->get(), code->get(), nullptr);
  if (!product.ok()) return 3;
  World w(job.shape);
  Matrix shard = (*code)->EncodeShard(w.a, rank).value();
  auto fwd = (*product)->Forward(&shard, w.b, 1, 0);
  if (!fwd.ok() || !fwd->verified || Rel(fwd->product, w.a * w.b) > 1e-9) return 4;
  auto bwd = (*product)->Transpose(&shard, w.dm, 1, 0);
  if (!bwd.ok() || Rel(bwd->product, w.a.transpose() * w.dm) > 1e-9) return 5;
  const double eta = 0.05;
  if (!(*product)->Update(&shard, w.dm, w.x, eta, 1, 0).ok()) return 6;
  auto again = (*product)->Forward(&shard, w.b, 2, 0);
  const Matrix updated = w.a - eta * w.dm * w.x.transpose();
  if (!again.ok() || Rel(again->product, updated * w.b) > 1e-9) return 7;
  return 0;
}

TEST(CodedProduct, RejectsMismatchedGroupAndCode) {
  PeerGroupOptions o;
  o.rendezvous = "inproc:mismatch";
  auto group = PeerGroup::Connect(o).value();
  auto code = PolyDotCode::Create({4, 4, 2}, {.peers = 3, .m = 1, .n = 1}).value();
  EXPECT_EQ(CodedProduct::Create(group.get(), code.get(), nullptr).status().code(),
            StatusCode::kInvalidArgument);
  auto one = PolyDotCode::Create({4, 4, 2}, {.peers = 1}).value();
  EXPECT_EQ(CodedProduct::Create(group.get(), one.get(), nullptr, {.wait_for = 2}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(CodedProduct, ThreadsMatchTheUncodedProducts) {
  const Job job{5, 2, 1, 1, {7, 6, 3}};
  std::vector<std::thread> threads;
  std::vector<int> codes(5, -1);
  for (int r = 0; r < job.peers; ++r)
    threads.emplace_back(
        [&, r] { codes[size_t(r)] = ForwardTransposeUpdate(job, r, "inproc:ftu"); });
  for (auto& t : threads) t.join();
  for (int r = 0; r < job.peers; ++r) EXPECT_EQ(codes[size_t(r)], 0) << "rank " << r;
}

TEST(CodedProductProcesses, ForwardTransposeUpdateMatchUncodedFrom5To12Processes) {
  for (const Job& job :
       {Job{5, 2, 1, 1, {9, 8, 4}}, Job{8, 2, 2, 1, {10, 9, 5}}, Job{12, 2, 2, 2, {11, 13, 6}}}) {
    const std::string dir = FreshFolder("ftu");
    auto results = RunPeers(
        job.peers, [&](int rank) { return ForwardTransposeUpdate(job, rank, "file:" + dir); },
        120s);
    for (int r = 0; r < job.peers; ++r)
      EXPECT_EQ(results[size_t(r)].exit_code, 0) << "P=" << job.peers << " rank " << r;
    std::filesystem::remove_all(dir);
  }
}

// Peers in `faulty` send wrong results; every peer must agree on the outcome.
// Returns 0 if corrected with exactly those peers found wrong (or, when
// expect_loss, if the decode reports DataLoss).
int WithWrongResults(int p, int rank, const std::string& dir, std::vector<int> faulty,
                     bool expect_loss) {
  auto group = ConnectThroughFolder(rank, p, dir);
  if (!group.ok()) return 1;
  const ProductShape shape{12, 10, 4};
  auto code = PolyDotCode::Create(shape, {.peers = p, .m = 2, .n = 2, .d = 1}).value();
  FaultModel model;
  model.error_rate = 1.0;
  model.points = {StepPoint::kProduct};
  model.faulty_peers = faulty;
  FaultInjector faults(model, 5, rank);
  auto product = CodedProduct::Create(group->get(), code.get(), &faults).value();
  World w(shape);
  Matrix shard = code->EncodeShard(w.a, rank).value();
  auto fwd = product->Forward(&shard, w.b, 3, 1);
  if (expect_loss) return (!fwd.ok() && fwd.status().code() == StatusCode::kDataLoss) ? 0 : 2;
  if (!fwd.ok()) {
    std::fprintf(stderr, "rank %d: %s\n", rank, fwd.status().ToString().c_str());
    return 3;
  }
  std::sort(faulty.begin(), faulty.end());
  if (fwd->wrong_peers != faulty) return 4;
  if (Rel(fwd->product, w.a * w.b) > 1e-9) return 5;
  const bool injected =
      faults.faults_injected() == (std::binary_search(faulty.begin(), faulty.end(), rank) ? 1 : 0);
  return injected ? 0 : 6;
}

// Float32 peers over gloo: each sends its float32 result in half the bytes
// of a float64 one, and decodes exactly what a local decode of every peer's
// float32 product gives (nothing lost on the wire), correcting wrong peers.
class Float32Processes : public ::testing::TestWithParam<Precision> {};

TEST_P(Float32Processes, ResultsTravelInTheirPrecision) {
  const int p = 8;
  const std::vector<int> faulty = {2, 5};
  const std::string dir = FreshFolder("float32");
  auto results = RunPeers(
      p,
      [&](int rank) {
        auto group = ConnectThroughFolder(rank, p, dir);
        if (!group.ok()) return 1;
        const ProductShape shape{12, 10, 5};  // results of 6 x 5 = 30 numbers
        auto code = PolyDot8(shape, GetParam());
        FaultModel model;
        model.error_rate = 1.0;
        model.points = {StepPoint::kSend};
        model.faulty_peers = faulty;
        FaultInjector faults(model, 5, rank);
        auto product = CodedProduct::Create(group->get(), code.get(), &faults).value();
        World w(shape);
        Matrix shard = code->EncodeShard(w.a, rank).value();
        const int64_t sent_before = (*group)->bytes_sent();
        auto fwd = product->Forward(&shard, w.b, 1, 0);
        if (!fwd.ok()) return 2;
        if (fwd->wrong_peers != faulty) return 3;
        // Every peer's result, computed here: the decode must be the same.
        std::vector<PeerResult> all;
        for (int q = 0; q < p; ++q) {
          if (std::binary_search(faulty.begin(), faulty.end(), q)) continue;
          const Matrix s = code->EncodeShard(w.a, q).value();
          const Matrix piece = code->EncodeInput(w.b, q).value();
          all.push_back({q, code->PeerProduct(s, piece), RoundoffScale(s, piece)});
        }
        auto local = code->Decode(all).value();
        if (Rel(fwd->product, local.product) > 1e-12) return 4;
        // The values, and the peer's declared roundoff scale (one double).
        const int64_t doubles = (GetParam() == Precision::kFloat32 ? 15 : 30) + 1;
        const int64_t want = doubles * int64_t(sizeof(double)) * (p - 1);
        return (*group)->bytes_sent() - sent_before == want ? 0 : 5;
      },
      120s);
  for (int r = 0; r < p; ++r) EXPECT_EQ(results[size_t(r)].exit_code, 0) << "rank " << r;
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Precisions, Float32Processes,
                         ::testing::Values(Precision::kFloat64, Precision::kFloat32),
                         [](const ::testing::TestParamInfo<Precision>& info) {
                           return std::string(PrecisionName(info.param));
                         });

// A float32 Generalized PolyDot product at one peer, with (widening) and
// without (plain) its float64 build; either is null when it could not be made.
struct Float32Products {
  std::unique_ptr<ProductCode> code, wide;
  std::unique_ptr<CodedProduct> plain, widening;
  Float32Products(PeerGroup* group, const ProductShape& shape)
      : code(PolyDot8(shape, Precision::kFloat32)), wide(PolyDot8(shape, Precision::kFloat64)) {
    auto w = CodedProduct::Create(group, code.get(), nullptr, {}, wide.get());
    auto p = CodedProduct::Create(group, code.get(), nullptr);
    if (w.ok()) widening = std::move(w).value();
    if (p.ok()) plain = std::move(p).value();
  }
};

// A float32 product its decode cannot resolve is computed again in float64
// by every peer (DecodedProduct::deviation_bound, Resolves): Generalized
// PolyDot's results hold cross products A_i0 B_1 that, with A's inner blocks
// 10^4 times apart in scale (B's the other way), dwarf A B, and their
// float32 roundoff lands in it (0.1% of it here). The transpose the same with A's row blocks
// and D's. Gaussian data is never widened.
TEST(CodedProductProcesses, Float32ProductsItCannotResolveAreComputedAgainInFloat64) {
  const int p = 8;
  const std::string dir = FreshFolder("widened");
  auto results = RunPeers(
      p,
      [&](int rank) {
        auto group = ConnectThroughFolder(rank, p, dir);
        if (!group.ok()) return 1;
        const ProductShape shape{16, 64, 8};
        Float32Products f(group->get(), shape);
        if (!f.widening || !f.plain) return 2;
        const std::unique_ptr<ProductCode>& code = f.code;
        CodedProduct* widening = f.widening.get();
        CodedProduct* plain = f.plain.get();
        World unbalanced(shape), normal(shape, 7);
        for (Eigen::Index k = 0; k < shape.inner; ++k) {
          const double by = k < shape.inner / 2 ? 1e2 : 1e-2;
          unbalanced.a.col(k) *= by;
          unbalanced.b.row(k) /= by;
        }
        for (Eigen::Index i = 0; i < shape.rows; ++i) {
          const double by = i < shape.rows / 2 ? 1e2 : 1e-2;
          unbalanced.a.row(i) *= by;
          unbalanced.dm.row(i) /= by;
        }
        const Matrix ab = unbalanced.a * unbalanced.b,
                     atd = unbalanced.a.transpose() * unbalanced.dm;
        Matrix shard = code->EncodeShard(unbalanced.a, rank).value();
        // Without the float64 build: verified, and far off.
        auto off = plain->Forward(&shard, unbalanced.b, 1, 0);
        if (!off.ok() || !off->verified || Resolves(*code, *off) || !(Rel(off->product, ab) > 1e-4))
          return 3;
        // With it: both products widened, as exact as float64.
        const int64_t sent_before = (*group)->bytes_sent();
        auto fwd = widening->Forward(&shard, unbalanced.b, 2, 0);
        auto bwd = widening->Transpose(&shard, unbalanced.dm, 2, 0);
        if (!fwd.ok() || !bwd.ok() || !fwd->verified || !bwd->verified) return 4;
        if (!(Rel(fwd->product, ab) < 1e-9) || !(Rel(bwd->product, atd) < 1e-9)) return 5;
        if (widening->products_widened() != 2) return 6;
        // Each result went once in float32 (half) and once in float64: 8 x 8
        // forward numbers, 32 x 8 transpose numbers, to 7 peers; each of the
        // four with its declared roundoff scale.
        const int64_t numbers = 64 + 256;
        const int64_t want = (numbers / 2 + numbers + 4) * int64_t(sizeof(double)) * (p - 1);
        if ((*group)->bytes_sent() - sent_before != want) return 7;
        // Gaussian data: float32 resolves it, nothing widened.
        Matrix normal_shard = code->EncodeShard(normal.a, rank).value();
        auto plain_fwd = widening->Forward(&normal_shard, normal.b, 3, 0);
        auto plain_bwd = widening->Transpose(&normal_shard, normal.dm, 3, 0);
        if (!plain_fwd.ok() || !plain_bwd.ok()) return 8;
        if (!(Rel(plain_fwd->product, normal.a * normal.b) < 1e-5)) return 9;
        return widening->products_widened() == 2 ? 0 : 10;
      },
      120s);
  for (int r = 0; r < p; ++r) EXPECT_EQ(results[size_t(r)].exit_code, 0) << "rank " << r;
  std::filesystem::remove_all(dir);
}

// Cancelling data (weights with a common offset against inputs, and
// gradients, of zero sum over what they multiply): honest float32 roundoff
// is a hundred times the products. The peers' declared roundoff scales
// travel with their results, so no honest peer is named, and the products
// float32 cannot resolve are computed again in float64.
TEST(CodedProductProcesses, CancellingProductsNameNoHonestPeerAndAreWidened) {
  const int p = 8;
  const std::string dir = FreshFolder("cancelling");
  auto results = RunPeers(
      p,
      [&](int rank) {
        auto group = ConnectThroughFolder(rank, p, dir);
        if (!group.ok()) return 1;
        const ProductShape shape{32, 256, 16};
        Float32Products f(group->get(), shape);
        if (!f.widening || !f.plain) return 2;
        const std::unique_ptr<ProductCode>& code = f.code;
        CodedProduct* widening = f.widening.get();
        CodedProduct* plain = f.plain.get();
        for (int trial = 0; trial < 4; ++trial) {
          World w(shape, uint64_t(11 + trial));
          w.a.array() += 100.0;
          w.b.rowwise() -= w.b.colwise().mean();
          w.dm.rowwise() -= w.dm.colwise().mean();
          const Matrix ab = w.a * w.b, atd = w.a.transpose() * w.dm;
          Matrix shard = code->EncodeShard(w.a, rank).value();
          const int64_t step = 1 + 2 * trial;
          auto fwd = plain->Forward(&shard, w.b, step, 0);
          auto bwd = plain->Transpose(&shard, w.dm, step, 0);
          if (!fwd.ok() || !bwd.ok()) return 3;
          if (!fwd->wrong_peers.empty() || !bwd->wrong_peers.empty()) return 4;
          if (Resolves(*code, *fwd) || Resolves(*code, *bwd)) return 5;
          auto fwd64 = widening->Forward(&shard, w.b, step + 1, 0);
          auto bwd64 = widening->Transpose(&shard, w.dm, step + 1, 0);
          if (!fwd64.ok() || !bwd64.ok()) return 6;
          if (!(Rel(fwd64->product, ab) < 1e-9) || !(Rel(bwd64->product, atd) < 1e-9)) return 7;
        }
        return widening->products_widened() == 8 ? 0 : 8;
      },
      120s);
  for (int r = 0; r < p; ++r) EXPECT_EQ(results[size_t(r)].exit_code, 0) << "rank " << r;
  std::filesystem::remove_all(dir);
}

TEST(CodedProduct, RejectsAFloat64BuildOfAnotherCode) {
  PeerGroupOptions o;
  o.rendezvous = "inproc:wide-mismatch";
  auto group = PeerGroup::Connect(o).value();
  ProductCodeOptions c;
  c.shape = {4, 4, 2};
  c.precision = Precision::kFloat32;
  auto code = MakeProductCode(c).value();
  ProductCodeOptions other = c;
  other.shape.cols = 3;
  other.precision = Precision::kFloat64;
  auto wrong_shape = MakeProductCode(other).value();
  auto still_float32 = MakeProductCode(c).value();
  other = c;
  other.precision = Precision::kFloat64;
  other.points = PointKind::kEquispaced;
  auto other_points = MakeProductCode(other).value();
  for (const ProductCode* wide : {wrong_shape.get(), still_float32.get(), other_points.get()}) {
    auto made = CodedProduct::Create(group.get(), code.get(), nullptr, {}, wide);
    EXPECT_EQ(made.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(made.status().message().find("not a float64 build"), std::string::npos)
        << made.status();
  }
}

// Each peer decides to recompute from its own decode: with wait_for < P the
// peers decode different results and could decide differently (adversary
// s7: one peer waited for doubles nobody sent), so that is refused.
TEST(CodedProduct, RecomputingInFloat64NeedsEveryResultAwaited) {
  const int p = 8;
  auto code = PolyDot8({16, 64, 8}, Precision::kFloat32);
  auto wide = PolyDot8({16, 64, 8}, Precision::kFloat64);
  std::vector<std::string> refused(p);
  const std::vector<bool> ran = testing::RunPeerGroup(
      testing::PeerMode::kThreads, p, "wide-stragglers", [&](int r, PeerGroup& group) {
        auto made = CodedProduct::Create(&group, code.get(), nullptr, {.wait_for = 7}, wide.get());
        if (!made.ok()) refused[size_t(r)] = made.status().message();
        return CodedProduct::Create(&group, code.get(), nullptr, {}, wide.get()).ok();
      });
  for (int r = 0; r < p; ++r) {
    EXPECT_TRUE(ran[size_t(r)]) << "rank " << r;
    EXPECT_NE(refused[size_t(r)].find("needs every result awaited"), std::string::npos)
        << "rank " << r << ": " << refused[size_t(r)];
  }
}

TEST(CodedProductProcesses, EveryPeerCorrectsAndNamesTheSameWrongPeers) {
  // P = 10, K = 5: P - K - 1 = 4 wrong results are corrected.
  const std::string dir = FreshFolder("wrong");
  auto results = RunPeers(
      10,
      [&](int rank) {
        return WithWrongResults(10, rank, dir, {1, 4, 6, 8}, false);
      },
      120s);
  for (int r = 0; r < 10; ++r) EXPECT_EQ(results[size_t(r)].exit_code, 0) << "rank " << r;
  std::filesystem::remove_all(dir);
}

SparseMatrix SparseFrom(uint64_t seed, int64_t rows, int64_t cols, double density) {
  Random rng(seed);
  Matrix m = rng.NormalMatrix(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i)
    if (rng.Uniform() >= density) m.data()[i] = 0.0;
  return m.sparseView();
}

// One peer of a low-weight code on sparse operands: matrix-matrix (sparse B)
// and matrix-vector (dense x), with `faulty` peers' shards and products hit.
int LowWeightSparse(int rank, const std::string& dir, const std::vector<int>& faulty) {
  const int p = 10;
  auto group = ConnectThroughFolder(rank, p, dir);
  if (!group.ok()) return 1;
  const ProductShape mm{40, 30, 36}, mv{40, 30, 1};
  auto code_mm = LowWeightCode::Create(mm, {.peers = p, .k_a = 2, .k_b = 3}).value();
  auto code_mv = LowWeightCode::Create(mv, {.peers = p, .k_a = 6}).value();
  FaultModel model;
  model.error_rate = 1.0;
  model.points = {StepPoint::kShard, StepPoint::kProduct};
  model.faulty_peers = faulty;
  FaultInjector faults(model, 7, rank);
  const SparseMatrix a = SparseFrom(1, 40, 30, 0.1), b = SparseFrom(2, 30, 36, 0.1);
  const Matrix x = Random(3).NormalMatrix(30, 1);
  for (const auto* code : {code_mm.get(), code_mv.get()}) {
    auto product = CodedProduct::Create(group->get(), code, &faults).value();
    SparseMatrix shard = code->EncodeSparseShard(a, rank).value();
    const bool matrix = code == code_mm.get();
    auto got =
        matrix ? product->ForwardSparse(&shard, b, 1, 0) : product->ForwardSparse(&shard, x, 1, 1);
    if (!got.ok()) {
      std::fprintf(stderr, "rank %d: %s\n", rank, got.status().ToString().c_str());
      return 2;
    }
    if (got->wrong_peers != faulty) return 3;
    const Matrix want = matrix ? Matrix(a * b) : Matrix(a * x);
    if (Rel(got->product, want) > 1e-9) return 4;
  }
  return 0;
}

TEST(CodedProductProcesses, LowWeightSparseProductsCorrectWrongShardsAndResults) {
  // n = 10: K = 6 for both codes, so n - K - 1 = 3 wrong results are corrected.
  const std::string dir = FreshFolder("lowweight");
  auto results = RunPeers(
      10,
      [&](int rank) {
        return LowWeightSparse(rank, dir, {2, 7});
      },
      120s);
  for (int r = 0; r < 10; ++r) EXPECT_EQ(results[size_t(r)].exit_code, 0) << "rank " << r;
  std::filesystem::remove_all(dir);
}

// A coded convolution across 8 processes: two peers' stored filter groups
// and products are wrong; every peer decodes the exact output and names them.
int CodedConvolutionPeer(int rank, const std::string& dir) {
  auto group = ConnectThroughFolder(rank, 8, dir);
  if (!group.ok()) return 1;
  const ConvShape shape{
      .channels = 6, .height = 14, .width = 14, .filters = 16, .kernel_h = 5, .kernel_w = 5};
  auto code = CodedConvolution::Create(shape, {.peers = 8, .k_a = 2, .k_b = 2, .batch = 3}).value();
  FaultModel model;
  model.error_rate = 1.0;
  model.points = {StepPoint::kShard, StepPoint::kProduct};
  model.faulty_peers = {1, 5};
  FaultInjector faults(model, 3, rank);
  auto product = CodedProduct::Create(group->get(), code.get(), &faults).value();
  Random rng(21);
  const Matrix filters = rng.NormalMatrix(16, shape.filter_size());
  const Matrix input = rng.NormalMatrix(shape.input_size(), 3);
  Matrix shard = code->EncodeShard(filters, rank).value();
  for (int64_t step = 1; step <= 2; ++step) {
    auto got = product->Forward(&shard, input, step, 0);
    if (!got.ok()) {
      std::fprintf(stderr, "rank %d: %s\n", rank, got.status().ToString().c_str());
      return 2;
    }
    if (got->wrong_peers != std::vector<int>{1, 5}) return 3;
    if (Rel(got->product, Conv2d(shape, filters, input)) > 1e-10) return 4;
  }
  return 0;
}

TEST(CodedProductProcesses, CodedConvolutionCorrectsWrongPeersOverGloo) {
  const std::string dir = FreshFolder("conv");
  auto results = RunPeers(
      8, [&](int rank) { return CodedConvolutionPeer(rank, dir); }, 120s);
  for (int r = 0; r < 8; ++r) EXPECT_EQ(results[size_t(r)].exit_code, 0) << "rank " << r;
  std::filesystem::remove_all(dir);
}

TEST(CodedProductProcesses, OneMoreThanCorrectableIsReportedByEveryPeer) {
  const std::string dir = FreshFolder("loss");
  auto results = RunPeers(
      10,
      [&](int rank) {
        return WithWrongResults(10, rank, dir, {0, 2, 3, 7, 9}, true);
      },
      120s);
  for (int r = 0; r < 10; ++r) EXPECT_EQ(results[size_t(r)].exit_code, 0) << "rank " << r;
  std::filesystem::remove_all(dir);
}

TEST(CodedProductProcesses, AStragglerDelayedTwoSecondsIsNotWaitedFor) {
  const int p = 6;
  const std::string dir = FreshFolder("slow");
  auto results = RunPeers(
      p,
      [&](int rank) {
        auto group = ConnectThroughFolder(rank, p, dir);
        if (!group.ok()) return 1;
        const ProductShape shape{8, 8, 2};
        auto code = PolyDotCode::Create(shape, {.peers = p, .m = 2, .n = 1}).value();  // K = 2
        FaultModel model;
        model.straggler_delay = FaultModel::Delay::kFixed;
        model.straggler_delay_ms = 2000;
        model.straggler_peers = {5};
        FaultInjector faults(model, 1, rank);
        auto product = CodedProduct::Create(group->get(), code.get(), &faults,
                                            {.wait_for = p - 1, .deadline = 10s})
                           .value();
        World w(shape);
        Matrix shard = code->EncodeShard(w.a, rank).value();
        const auto start = std::chrono::steady_clock::now();
        auto fwd = product->Forward(&shard, w.b, 1, 0);
        const auto took = std::chrono::steady_clock::now() - start;
        if (!fwd.ok() || Rel(fwd->product, w.a * w.b) > 1e-9) return 2;
        if (rank != 5 && took > 1500ms) return 3;
        return 0;
      },
      120s);
  for (int r = 0; r < p; ++r) EXPECT_EQ(results[size_t(r)].exit_code, 0) << "rank " << r;
  std::filesystem::remove_all(dir);
}

// A peer that crashes mid-job: with every result awaited the others fail
// cleanly within the timeout; with a straggler-tolerant step they go on.
TEST(CodedProductProcesses, ACrashedPeer) {
  for (int wait_for : {0, 5}) {
    const int p = 6;
    const std::string dir = FreshFolder("crash");
    auto results = RunPeers(
        p,
        [&](int rank) {
          PeerGroupOptions o;
          o.rank = rank;
          o.size = p;
          o.rendezvous = "file:" + dir;
          o.timeout = 3s;
          auto group = PeerGroup::Connect(o);
          if (!group.ok()) {
            std::fprintf(stderr, "rank %d: %s\n", rank, group.status().ToString().c_str());
            return 1;
          }
          const ProductShape shape{8, 8, 2};
          auto code = PolyDotCode::Create(shape, {.peers = p, .m = 2, .n = 1}).value();
          FaultModel model;
          model.crash_peer = 4;
          model.crash_step = 2;
          FaultInjector faults(model, 1, rank);
          auto product = CodedProduct::Create(group->get(), code.get(), &faults,
                                              {.wait_for = wait_for, .deadline = 2s})
                             .value();
          World w(shape);
          Matrix shard = code->EncodeShard(w.a, rank).value();
          for (int64_t step = 1; step <= 3; ++step) {
            const auto start = std::chrono::steady_clock::now();
            auto fwd = product->Forward(&shard, w.b, step, 0);
            const auto took = std::chrono::steady_clock::now() - start;
            if (took > 5s) return 10;
            if (wait_for == 0) {
              // Every result is awaited: from step 2 on one is missing, which must
              // be a clean error, never a silent pass. (A crash can also lose the
              // step-1 piece still in flight: then the error comes at step 1.)
              if (fwd.ok() && step >= 2) return 12;
              if (fwd.ok()) continue;
              const auto c = fwd.status().code();
              return (c == StatusCode::kUnavailable || c == StatusCode::kDeadlineExceeded) ? 0 : 13;
            }
            if (step == 1 && !fwd.ok()) return 11;
            if (step >= 2 && (!fwd.ok() || Rel(fwd->product, w.a * w.b) > 1e-9)) {
              std::fprintf(stderr, "rank %d step %ld: %s\n", rank, long(step),
                           fwd.ok() ? "wrong product" : fwd.status().ToString().c_str());
              return 14;
            }
          }
          return 0;
        },
        120s);
    for (int r = 0; r < p; ++r) {
      if (r == 4) {
        EXPECT_EQ(results[size_t(r)].exit_code, FaultInjector::kCrashExitCode);
      } else {
        EXPECT_EQ(results[size_t(r)].exit_code, 0)
            << "rank " << r << " wait_for " << wait_for << " signal " << results[size_t(r)].signal;
      }
    }
    std::filesystem::remove_all(dir);
  }
}

TEST(CodedProductProcesses, FourProcessesMeetThroughARealRedisServer) {
  const std::string dir = FreshFolder("redis");
  testing::RedisServer redis(dir);
  ASSERT_TRUE(redis.ok()) << "redis-server did not start (missing? run scripts/setup)";
  const Job job{4, 2, 1, 1, {6, 5, 2}};
  const std::string url = redis.url();
  auto results = RunPeers(
      job.peers, [&](int rank) { return ForwardTransposeUpdate(job, rank, url); }, 120s);
  for (int r = 0; r < job.peers; ++r) EXPECT_EQ(results[size_t(r)].exit_code, 0) << "rank " << r;
  std::filesystem::remove_all(dir);
}

}  // namespace coded_product_test
}  // namespace
}  // namespace polyguard

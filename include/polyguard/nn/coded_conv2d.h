// CodedConv2d: a convolution layer (with bias, activation and optional max
// pooling) whose filters exist only as per-peer coded shards. Every peer
// runs the same calls, with no master:
//   Forward   S = conv(X; F) + b (coded, decoded here), A = pool(f(S))
//   Backward  dS = unpool(dA) o f'(S);  dX = the input gradient (coded)
//   Update    the coded SGD step on this peer's shard of [F | b]
// Activation, pooling and the Hadamard product act on this peer's decoded
// copies; the fault injector is consulted at kActivation (after pooling) and
// kHadamard here, and at the product's points in CodedProduct.
//
// Codes. With the Generalized PolyDot strategy (and options.fcdcc) the layer
// runs the coded convolution of conv/coded_convolution.h (FCDCC: APCP slabs,
// KCCP groups, rotation-embedded points; code.k_a slab pairs and code.k_b
// filter-group pairs): forward threshold k_a k_b, backward (input gradient)
// threshold 2 k_b - 1, the filter update local to each shard, scrub and
// repair from any k_b shards. Every other strategy (and genpolydot with
// fcdcc false) runs the convolution as the product [F | b] [im2col(X); 1]
// (conv/im2col_convolution.h), with that strategy's thresholds; the uncoded
// strategy there is the baseline.
//
// Layout (conv/convolution.h): a batch is (C H W) x B, the output
// (N H'' W'') x B after pooling; flattening for a dense layer is the
// identity.
//
// Thread safety: one call at a time (like the PeerGroup it uses).
#ifndef POLYGUARD_NN_CODED_CONV2D_H_
#define POLYGUARD_NN_CODED_CONV2D_H_

#include <memory>
#include <vector>

#include "polyguard/conv/convolution.h"
#include "polyguard/nn/activation.h"
#include "polyguard/nn/coded_layer.h"
#include "polyguard/nn/max_pool.h"

namespace polyguard {

struct CodedConv2dOptions {
  ConvShape conv;       // input C x H x W, N filters of kh x kw, stride, pad
  int pool = 0;         // max pooling window after the activation; 0: none
  int pool_stride = 0;  // 0: the window
  int batch = 1;        // B >= 1: every call uses exactly this many samples
  Activation activation = Activation::kRelu;
  // Strategy and parameters; for FCDCC k_a and k_b (each >= 1, k_a k_b <= P).
  // Shape and peers are filled in from the layer and the group.
  ProductCodeOptions code;
  bool fcdcc = true;  // with genpolydot: the coded convolution (else im2col)
  CodedProductOptions product;
  int layer = 0;  // tags this layer's exchanges; distinct per layer
};

// The pooling after a convolution (size 0: none).
PoolShape PoolAfter(const ConvShape& conv, int pool, int pool_stride);
// Values per sample out of the layer (after pooling).
int64_t Conv2dLayerOutputs(const CodedConv2dOptions& options);
// InvalidArgument naming the bad field (shape, pooling window, batch).
Status ValidateCodedConv2dOptions(const CodedConv2dOptions& options);
// The code a CodedConv2d with `options` builds on `peers` peers (FCDCC or
// im2col; pure math, no group): what Create uses, so a launcher can check a
// job before any peer starts.
StatusOr<std::unique_ptr<ProductCode>> MakeCodedConv2dCode(const CodedConv2dOptions& options,
                                                           int peers);

class CodedConv2d : public CodedLayer {
 public:
  // initial: N x (C kh kw + 1), [F | b]; every peer passes the same matrix.
  static StatusOr<std::unique_ptr<CodedConv2d>> Create(const CodedConv2dOptions& options,
                                                       PeerGroup* group, FaultInjector* faults,
                                                       const MatrixRef& initial);

  StatusOr<Matrix> Forward(const MatrixRef& x, int64_t step) override;
  StatusOr<Matrix> Backward(const MatrixRef& grad_output, int64_t step,
                            bool need_input_gradient = true) override;

  int inputs() const override { return static_cast<int>(options_.conv.input_size()); }
  int outputs() const override { return static_cast<int>(Conv2dLayerOutputs(options_)); }
  const CodedConv2dOptions& options() const { return options_; }

 private:
  CodedConv2d() = default;

  CodedConv2dOptions options_;
  PoolShape pool_;
  std::vector<int64_t> argmax_;
};

}  // namespace polyguard

#endif  // POLYGUARD_NN_CODED_CONV2D_H_

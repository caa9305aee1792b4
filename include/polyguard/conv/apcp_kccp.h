// APCP and KCCP (docs/conv.md §2, §3): a convolution as a product with k_a x k_b blocks.
//
// APCP (adaptive-padding partitioning) cuts the H' output rows into k_a
// groups of h = ceil(H' / k_a) rows; group i needs the padded input rows
// [i h stride, i h stride + Hs) with Hs = (h - 1) stride + kh, so that
// neighbouring slabs overlap by kh - stride rows (or skip rows when the
// stride exceeds the kernel). Every slab gets the same shape C x Hs x
// (W + 2 pad), zero-filled past the padded input, because coded slabs are
// linear combinations of slabs. A slab convolved (without padding) with any
// filters gives exactly its group's output rows; the last group is cropped.
//
// KCCP (kernel-channel partitioning) cuts the N filters into k_b groups of
// g = ceil(N / k_b) (zero filters pad the last); group l gives exactly the
// output channels [l g, (l + 1) g). No sum crosses groups, so block (i, l)
// of the output is Conv2d(slab_shape, group l, slab i).
#ifndef POLYGUARD_CONV_APCP_KCCP_H_
#define POLYGUARD_CONV_APCP_KCCP_H_

#include "polyguard/conv/convolution.h"

namespace polyguard {

struct ConvPartition {
  ConvShape full;  // the layer's convolution
  int k_a = 1;     // input slabs (output row groups)
  int k_b = 1;     // filter groups (output channel groups)
  int rows = 1;    // h: output rows per slab
  int group = 1;   // g: filters per group
  ConvShape slab;  // one block's convolution: C x Hs x (W + 2 pad), g filters, pad 0
};

// InvalidArgument unless the shape is valid, 1 <= k_a <= H' and
// 1 <= k_b <= N.
StatusOr<ConvPartition> PartitionConv(const ConvShape& shape, int k_a, int k_b);

// Slab i of a batch ((C H W) x B): (C Hs (W + 2 pad)) x B.
Matrix ApcpSlab(const ConvPartition& p, const MatrixRef& input, int i);
// Filter group l of the filters (N x C kh kw): g x (C kh kw).
Matrix KccpGroup(const ConvPartition& p, const MatrixRef& filters, int l);
// Writes block (i, l) ((g h W') x B, a slab convolution's output) into the
// full output ((N H' W') x B), cropping the padding groups.
void PlaceConvBlock(const ConvPartition& p, int i, int l, const MatrixRef& block, Matrix* output);

}  // namespace polyguard

#endif  // POLYGUARD_CONV_APCP_KCCP_H_

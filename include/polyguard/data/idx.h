// IDX files (the MNIST format): a big-endian header — two zero bytes, the
// element type (0x08: unsigned byte), the number of dimensions — then one
// 32-bit big-endian size per dimension, then the elements.
//
// ReadIdx checks the magic number, the type, the sizes and that the file
// holds exactly the elements its header announces; every error names the
// file and what is wrong. LoadIdxDataset pairs an image file (N x rows x
// cols) with a label file (N) into features x N columns of pixels, each read
// as pixel / 255 in [0, 1].
//
// Thread safety: free functions; a Dataset is immutable after loading.
#ifndef POLYGUARD_DATA_IDX_H_
#define POLYGUARD_DATA_IDX_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "polyguard/base/matrix.h"
#include "polyguard/base/status.h"

namespace polyguard {

struct IdxArray {
  std::vector<int64_t> dims;  // 1 to 4 sizes, each >= 1
  std::vector<uint8_t> data;  // product(dims) elements, row-major
};

StatusOr<IdxArray> ReadIdx(const std::string& path);
// Only the header's sizes, with the same checks as ReadIdx (the file's size
// included): what a launcher checks before any peer loads the data.
StatusOr<std::vector<int64_t>> ReadIdxDims(const std::string& path);
Status WriteIdx(const std::string& path, const IdxArray& array);

// Bytes as read, features x N: what a Dataset of images holds.
using PixelMatrix = Eigen::Matrix<uint8_t, Eigen::Dynamic, Eigen::Dynamic>;

// N samples as features x N columns, with their labels. The samples are in
// one of two forms: `inputs` (any doubles), or `pixels` (bytes, each read as
// pixel / 255: LoadIdxDataset's, an eighth of the memory). The other one is
// empty. Read them through features() and CopySamples(), which give the same
// doubles for both forms.
struct Dataset {
  Matrix inputs;            // features x N, or empty
  PixelMatrix pixels;       // features x N, or empty
  std::vector<int> labels;  // N labels in [0, classes)
  int classes = 10;
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t features() const { return pixels.size() > 0 ? pixels.rows() : inputs.rows(); }
  // Samples [first, first + count) into out->middleCols(to, count), as
  // doubles. out has features() rows; the ranges are in bounds.
  void CopySamples(int64_t first, int64_t count, Matrix* out, int64_t to = 0) const;
  // The first `count` samples only (count <= 0 or >= size(): all).
  void KeepFirst(int64_t count);
};

// Images (N x rows x cols, or N x features) and labels (N, each < classes).
StatusOr<Dataset> LoadIdxDataset(const std::string& images, const std::string& labels,
                                 int classes = 10);

// Mini-batches of a dataset in epochs: each epoch is a fresh seeded
// permutation, cut into size() / batch batches (the remainder is dropped).
// Batch(step) is a pure function of (seed, step), steps counted from 1, so a
// replayed step (after a rollback or a resume) sees the same samples.
// Cost: the batch's copy, and a shuffle of the whole set when the step is in
// another epoch than the last call's (the epoch's order is kept). Safe to
// call from several threads.
class BatchSampler {
 public:
  BatchSampler(const Dataset* data, int batch, uint64_t seed);
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  void Batch(int64_t step, Matrix* x, std::vector<int>* labels) const;

 private:
  const Dataset* data_;
  int batch_;
  uint64_t seed_;
  int64_t steps_per_epoch_;
  mutable std::mutex mu_;
  mutable int64_t order_epoch_ = -1;  // the epoch order_ is of
  mutable std::vector<int64_t> order_;
};

}  // namespace polyguard

#endif  // POLYGUARD_DATA_IDX_H_

#include "polyguard/train/job_data.h"

#include <algorithm>
#include <string>
#include <utility>

namespace polyguard {
namespace {

// Synthetic test samples come from batches with negative steps: no training
// step uses them.
constexpr int kSyntheticTestBatches = 8, kSyntheticTestBatch = 64;

}  // namespace

StatusOr<std::unique_ptr<JobData>> JobData::Load(const JobSpec& s) {
  std::unique_ptr<JobData> d(new JobData());
  d->batch_ = s.model.batch;
  const int features = s.model.layers.front().inputs;
  if (s.data.kind == DataSpec::Kind::kMnist) {
    POLYGUARD_RETURN_IF_ERROR(CheckJobData(s));  // shapes first, by the headers
    const std::vector<std::string> files = MnistFiles(s.data);
    POLYGUARD_ASSIGN_OR_RETURN(d->train_, LoadIdxDataset(files[0], files[1], s.data.classes));
    POLYGUARD_ASSIGN_OR_RETURN(d->test_, LoadIdxDataset(files[2], files[3], s.data.classes));
    d->train_.KeepFirst(s.data.train_samples);
    d->test_.KeepFirst(s.data.test_samples);
    if (d->train_.size() < s.model.batch) {
      return InvalidArgumentError("data: " + files[0] + " has " + std::to_string(d->train_.size()) +
                                  " images in use, fewer than one batch (" +
                                  std::to_string(s.model.batch) + ")");
    }
    d->sampler_ = std::make_unique<BatchSampler>(&d->train_, s.model.batch, s.data.seed);
    d->steps_per_epoch_ = d->sampler_->steps_per_epoch();
  } else {
    POLYGUARD_ASSIGN_OR_RETURN(
        d->synthetic_, SyntheticClassification::Create(features, s.data.classes, s.data.seed));
    d->steps_per_epoch_ = kSyntheticStepsPerEpoch;
    Dataset& test = d->test_;
    test.classes = s.data.classes;
    test.inputs.resize(features, kSyntheticTestBatches * kSyntheticTestBatch);
    for (int k = 0; k < kSyntheticTestBatches; ++k) {
      Matrix x;
      std::vector<int> y;
      d->synthetic_->Batch(-1 - k, kSyntheticTestBatch, &x, &y);
      test.inputs.middleCols(k * kSyntheticTestBatch, kSyntheticTestBatch) = x;
      test.labels.insert(test.labels.end(), y.begin(), y.end());
    }
    d->test_.KeepFirst(s.data.test_samples);
  }
  d->total_steps_ = s.steps > 0 ? s.steps : s.epochs * d->steps_per_epoch_;
  return d;
}

void JobData::Batch(int64_t step, Matrix* x, std::vector<int>* labels) const {
  if (sampler_)
    sampler_->Batch(step, x, labels);
  else
    synthetic_->Batch(step, batch_, x, labels);
}

std::optional<int64_t> JobTotalSteps(const JobSpec& s) {
  if (s.steps > 0) return s.steps;
  if (s.data.kind == DataSpec::Kind::kSynthetic) return s.epochs * kSyntheticStepsPerEpoch;
  auto labels = ReadIdxDims(MnistFiles(s.data)[1]);
  if (!labels.ok() || labels->empty() || s.model.batch < 1) return std::nullopt;
  int64_t n = (*labels)[0];
  if (s.data.train_samples > 0) n = std::min(n, s.data.train_samples);
  return s.epochs * (n / s.model.batch);
}

std::optional<int64_t> JobDataBytes(const JobSpec& s) {
  const int64_t features = s.model.layers.empty() ? 0 : s.model.layers.front().inputs;
  if (s.data.kind == DataSpec::Kind::kSynthetic) {
    return (int64_t(kSyntheticTestBatches) * kSyntheticTestBatch + s.model.batch) * features *
           int64_t(sizeof(double));
  }
  const std::vector<std::string> files = MnistFiles(s.data);
  int64_t bytes = 0;
  for (auto [images, keep] :
       {std::pair{files[0], s.data.train_samples}, std::pair{files[2], s.data.test_samples}}) {
    // The header's own pixels, not the model's inputs: ReadIdxDims has checked
    // them against the file's size, so the count is bounded by real bytes.
    auto dims = ReadIdxDims(images);
    if (!dims.ok() || dims->empty()) return std::nullopt;
    const int64_t n = (*dims)[0];
    int64_t pixels = 1;
    for (size_t i = 1; i < dims->size(); ++i) pixels *= (*dims)[i];
    // As read, then as the set's pixel matrix (a byte each), and the kept
    // part's copy; the batches' doubles are the trainer's.
    const int64_t kept = keep > 0 && keep < n ? keep : 0;
    bytes += pixels * (2 * n + kept);
  }
  return bytes;
}

}  // namespace polyguard

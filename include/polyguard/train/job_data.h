// The data of a job (JobSpec::data): its training batches and its test set,
// loaded once per peer. MNIST comes from the spec's IDX files (optionally
// only their first train_samples / test_samples digits); synthetic data is a
// seeded task whose "epoch" is kSyntheticStepsPerEpoch steps and whose test
// set is 512 samples from batches no training step uses.
//
// Errors: CheckJobData's (files, shapes), and InvalidArgument when the
// training set has fewer samples than one batch. Cost: reads the files once.
#ifndef POLYGUARD_TRAIN_JOB_DATA_H_
#define POLYGUARD_TRAIN_JOB_DATA_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "polyguard/data/idx.h"
#include "polyguard/data/synthetic.h"
#include "polyguard/train/job_spec.h"

namespace polyguard {

inline constexpr int64_t kSyntheticStepsPerEpoch = 100;

class JobData {
 public:
  static StatusOr<std::unique_ptr<JobData>> Load(const JobSpec& spec);

  // The batch of `step` (>= 1): the same at every peer and on every replay.
  void Batch(int64_t step, Matrix* x, std::vector<int>* labels) const;
  const Dataset& test() const { return test_; }
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  // The job's steps: spec.steps, or its epochs in steps.
  int64_t total_steps() const { return total_steps_; }

 private:
  JobData() = default;

  int batch_ = 1;
  Dataset train_, test_;
  std::unique_ptr<BatchSampler> sampler_;  // points at train_ (MNIST)
  std::unique_ptr<SyntheticClassification> synthetic_;
  int64_t steps_per_epoch_ = 0, total_steps_ = 0;
};

// JobData::total_steps() without loading the data (an MNIST epoch is read
// from the labels file's header). Nothing when that header cannot be read
// (loading the data reports why).
std::optional<int64_t> JobTotalSteps(const JobSpec& spec);

// The bytes JobData::Load holds at its peak, about (an over-estimate): each
// IDX set as read and as its Dataset's pixels (a byte a pixel each), and the
// copy a trimmed set (train_samples, test_samples) makes; for synthetic data
// its test set (doubles). From the image files' headers (their own pixels,
// checked against the files' sizes); nothing when one cannot be read (loading
// reports why). The bundled MNIST (10,000 digits) takes 16 MB a peer at the
// peak, 7.8 MB once loaded.
std::optional<int64_t> JobDataBytes(const JobSpec& spec);

}  // namespace polyguard

#endif  // POLYGUARD_TRAIN_JOB_DATA_H_

// JobSpec: a whole training job — model, strategy and code parameters, peers,
// fault model, optimiser, data, seeds, steps or epochs, intervals — read from
// a Protocol Buffers text file (models/*.textproto; the schema is
// lib/proto/job.proto, documented in the README).
//
// Errors name the file, line and field: a syntax error, an unknown field or a
// wrong type comes from the parser as "FILE:LINE:COLUMN: ..."; an impossible
// value as "FILE:LINE: field: ..." (e.g. "mlp.textproto:7: code.m: must be
// >= 1, got 0").
//
// Thread safety: free functions.
#ifndef POLYGUARD_TRAIN_JOB_SPEC_H_
#define POLYGUARD_TRAIN_JOB_SPEC_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "polyguard/fault/fault_injector.h"
#include "polyguard/nn/sequential.h"
#include "polyguard/train/trainer.h"

namespace polyguard {

struct DataSpec {
  enum class Kind { kMnist, kSynthetic };
  Kind kind = Kind::kMnist;
  std::string dir = "data/mnist";  // IDX files (train-*, t10k-*)
  int classes = 10;
  uint64_t seed = 1;          // shuffling, or the synthetic task
  int64_t train_samples = 0;  // mnist: the first this many digits (0: all)
  int64_t test_samples = 0;   // the first this many test samples (0: all)
};

struct JobSpec {
  std::string source;  // the file it came from
  std::string name = "job";
  int peers = 8;
  SequentialOptions model;  // layers, batch, code, product (wait_for), seed, error budget
  TrainerOptions trainer;   // sgd, intervals, retries
  FaultModel faults;
  uint64_t fault_seed = 1;
  DataSpec data;
  int64_t steps = 0;  // 0: epochs * steps per epoch
  int epochs = 1;
  int64_t checkpoint_interval = 0;
  std::chrono::milliseconds timeout{30000};
};

StatusOr<JobSpec> LoadJobSpec(const std::string& path);
StatusOr<JobSpec> ParseJobSpec(const std::string& text, const std::string& filename);
// Checks a spec as a whole (after command-line overrides, say), including
// everything Sequential::Create would refuse on spec.peers peers.
Status ValidateJobSpec(const JobSpec& spec);

// What a replacement must share with the running job to rejoin it
// (PeerGroupOptions::identity): a digest of everything that decides the
// training — peers, model, code, optimiser, data, steps, the fault rates and
// seeds — but not the crash fields (a replacement does not repeat its
// predecessor's crash) or timeouts. 16 hex digits.
std::string JobIdentity(const JobSpec& spec);

// The MNIST IDX files of an mnist job, by their headers only: each of the
// four exists and is a well-formed IDX file, images and labels agree in
// count, and both image sets have the model's inputs pixels (a test set of
// another image size is found here, not at the first evaluation). Ok for
// synthetic data. Errors name the file.
Status CheckJobData(const JobSpec& spec);
// The four file names of CheckJobData: train images, train labels, test
// images, test labels.
std::vector<std::string> MnistFiles(const DataSpec& data);

}  // namespace polyguard

#endif  // POLYGUARD_TRAIN_JOB_SPEC_H_

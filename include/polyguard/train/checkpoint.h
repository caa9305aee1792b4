// Checkpoints: one file per peer holding its coded shards, velocities, step
// and exchange round, with what decides the steps after them
// (Trainer::State: scrub and rollback decisions, and the weights of the last
// periodic snapshot when the state is newer), what they belong to (job,
// code, peer count, rank) and a checksum. A checkpoint is written to a temporary
// file and renamed, so a crash mid-write leaves the previous one whole.
//
// ReadCheckpoint refuses — with a message naming the file and the reason —
// a missing, truncated or corrupted file (checksum), and a checkpoint of
// another job, code, peer count or rank; nothing is half-loaded.
//
// Resuming also needs every peer at the same step, and that step inside the
// job. A launcher that sees every peer's folder checks both before starting
// any peer (ReadCheckpointSteps, CheckSameResumeStep, CheckResumeFits); the
// peers check again among themselves right after connecting
// (AgreeOnResumeStep), since on several machines nobody sees every file.
//
// Thread safety: free functions.
#ifndef POLYGUARD_TRAIN_CHECKPOINT_H_
#define POLYGUARD_TRAIN_CHECKPOINT_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "polyguard/train/trainer.h"

namespace polyguard {

struct CheckpointIdentity {
  std::string job;
  std::string code;  // ProductCode::Describe() of the layers
  int peers = 0;
  int rank = 0;
};

// dir/peer-<rank>.ckpt
std::string CheckpointPath(const std::string& dir, int rank);
Status WriteCheckpoint(const std::string& path, const CheckpointIdentity& identity,
                       const Trainer::State& state);
StatusOr<Trainer::State> ReadCheckpoint(const std::string& path,
                                        const CheckpointIdentity& expected);

// What a checkpoint says about itself, checksum checked, without its
// weights: enough to compare checkpoints before any model exists.
struct CheckpointHeader {
  CheckpointIdentity identity;
  int64_t step = 0;
  int64_t round = 0;
};
StatusOr<CheckpointHeader> ReadCheckpointHeader(const std::string& path);

// The steps of dir/peer-0.ckpt ... peer-(peers - 1).ckpt (peer r's at r),
// each file checked as ReadCheckpoint does except for the code (naming it
// needs the model; each peer checks it on loading). The first bad file's
// error, worded as ReadCheckpoint's.
StatusOr<std::vector<int64_t>> ReadCheckpointSteps(const std::string& dir, const std::string& job,
                                                   int peers);

// InvalidArgument unless every peer resumes from the same step (steps[r] is
// peer r's), naming every peer's: "peers disagree on the checkpoint step:
// peer 0 at 20, peers 1, 2, 3 at 30".
Status CheckSameResumeStep(std::span<const int64_t> steps);

// InvalidArgument when a job of `total` steps would end before the
// checkpoint at `path`, at `step`: "checkpoint: DIR/peer-0.ckpt is at step
// 30; a job of 10 steps would end before it". (At step == total there is
// nothing left to train; the caller decides what that means.)
Status CheckResumeFits(const std::string& path, int64_t step, int64_t total);

// Collective, right after connecting and before any training exchange:
// every peer passes the step it resumes from (0 when it starts afresh, -1
// when its checkpoint could not be loaded: it then reports its own error)
// and the job's total steps. Returns the common step, or at every peer the
// same error: FailedPrecondition naming the peers that could not load their
// checkpoints; InvalidArgument when the peers disagree on the total or on
// the step (CheckSameResumeStep); the exchange's error when a peer is gone.
StatusOr<int64_t> AgreeOnResumeStep(PeerGroup* group, int64_t step, int64_t total);

}  // namespace polyguard

#endif  // POLYGUARD_TRAIN_CHECKPOINT_H_

// Checkpoints: one file per peer holding its coded shards, velocities, step
// and exchange round (Trainer::State), with what they belong to (job, code,
// peer count, rank) and a checksum. A checkpoint is written to a temporary
// file and renamed, so a crash mid-write leaves the previous one whole.
//
// ReadCheckpoint refuses — with a message naming the file and the reason —
// a missing, truncated or corrupted file (checksum), and a checkpoint of
// another job, code, peer count or rank; nothing is half-loaded.
//
// Thread safety: free functions.
#ifndef POLYGUARD_TRAIN_CHECKPOINT_H_
#define POLYGUARD_TRAIN_CHECKPOINT_H_

#include <string>

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

}  // namespace polyguard

#endif  // POLYGUARD_TRAIN_CHECKPOINT_H_

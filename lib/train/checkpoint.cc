#include "polyguard/train/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

#include "lib/base/fnv1a.h"
#include "lib/proto/checkpoint.pb.h"
#include "polyguard/codes/errors_and_erasures_decoder.h"  // FormatPeers

namespace polyguard {
namespace {

void ToProto(const Matrix& m, proto::MatrixData* out) {
  out->set_rows(m.rows());
  out->set_cols(m.cols());
  out->mutable_values()->Add(m.data(), m.data() + m.size());
}

StatusOr<Matrix> FromProto(const proto::MatrixData& in, const std::string& what) {
  if (in.rows() < 0 || in.cols() < 0 || in.rows() * in.cols() != in.values_size()) {
    return DataLossError(what + ": " + std::to_string(in.values_size()) + " values for a " +
                         std::to_string(in.rows()) + " x " + std::to_string(in.cols()) + " matrix");
  }
  Matrix m(in.rows(), in.cols());
  std::copy(in.values().begin(), in.values().end(), m.data());
  return m;
}

// The checked payload of a checkpoint file.
StatusOr<proto::Checkpoint> ReadPayload(const std::string& path) {
  // A directory opens as a stream and then throws from its buffer (abort).
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return InvalidArgumentError("checkpoint: " + path + " is a directory, not a checkpoint");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("checkpoint: cannot open " + path);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  proto::CheckpointFile file;
  if (!file.ParseFromString(bytes) || !file.has_payload() || !file.has_checksum()) {
    return DataLossError("checkpoint: " + path + " is truncated or not a checkpoint");
  }
  if (internal::Fnv1a(file.payload()) != file.checksum()) {
    return DataLossError("checkpoint: " + path + " is corrupted (checksum mismatch)");
  }
  proto::Checkpoint c;
  if (!c.ParseFromString(file.payload())) {
    return DataLossError("checkpoint: " + path + " has an unreadable payload");
  }
  return c;
}

// `with_code` false: everything but the code (which needs the model).
Status CheckIdentity(const std::string& path, const proto::Checkpoint& c,
                     const CheckpointIdentity& want, bool with_code) {
  auto mismatch = [&](const std::string& field, const std::string& got,
                      const std::string& expected) {
    return FailedPreconditionError("checkpoint: " + path + " is for " + field + " " + got +
                                   ", this job has " + expected);
  };
  if (c.job() != want.job) return mismatch("job", "'" + c.job() + "'", "'" + want.job + "'");
  if (with_code && c.code() != want.code) {
    return mismatch("code", "'" + c.code() + "'", "'" + want.code + "'");
  }
  if (c.peers() != want.peers) {
    return mismatch("peers", std::to_string(c.peers()), std::to_string(want.peers));
  }
  if (c.rank() != want.rank) {
    return mismatch("rank", std::to_string(c.rank()), std::to_string(want.rank));
  }
  return Status::Ok();
}

// "peer 0 at 20, peers 1, 2, 3 at 30": peers grouped by value, the groups in
// the order of their first peer.
std::string ByValue(std::span<const int64_t> values,
                    const std::function<std::string(int64_t)>& describe) {
  std::vector<int64_t> seen;
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::find(seen.begin(), seen.end(), values[i]) != seen.end()) continue;
    seen.push_back(values[i]);
    std::vector<int> peers;
    for (size_t j = i; j < values.size(); ++j)
      if (values[j] == values[i]) peers.push_back(int(j));
    if (!out.empty()) out += ", ";
    out +=
        (peers.size() == 1 ? "peer " : "peers ") + FormatPeers(peers) + " " + describe(values[i]);
  }
  return out;
}

}  // namespace

std::string CheckpointPath(const std::string& dir, int rank) {
  return dir + "/peer-" + std::to_string(rank) + ".ckpt";
}

Status WriteCheckpoint(const std::string& path, const CheckpointIdentity& id,
                       const Trainer::State& state) {
  proto::Checkpoint c;
  c.set_job(id.job);
  c.set_code(id.code);
  c.set_peers(id.peers);
  c.set_rank(id.rank);
  c.set_step(state.step);
  c.set_round(state.round);
  c.mutable_previous_wrong()->Add(state.previous_wrong.begin(), state.previous_wrong.end());
  c.set_rollbacks_in_a_row(state.rollbacks_in_a_row);
  c.set_rollback_step(state.rollback_step);
  for (size_t l = 0; l < state.shards.size(); ++l) {
    proto::LayerState* layer = c.add_layer();
    ToProto(state.shards[l], layer->mutable_shard());
    ToProto(state.velocities[l], layer->mutable_velocity());
  }
  if (!state.periodic_shards.empty()) c.set_periodic_step(state.periodic_step);
  for (size_t l = 0; l < state.periodic_shards.size(); ++l) {
    proto::LayerState* layer = c.add_periodic_layer();
    ToProto(state.periodic_shards[l], layer->mutable_shard());
    ToProto(state.periodic_velocities[l], layer->mutable_velocity());
  }
  proto::CheckpointFile file;
  if (!c.SerializeToString(file.mutable_payload()))
    return InternalError("checkpoint: cannot serialize");
  file.set_checksum(internal::Fnv1a(file.payload()));
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return NotFoundError("checkpoint: cannot write " + tmp);
    if (!file.SerializeToOstream(&out))
      return InternalError("checkpoint: writing " + tmp + " failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec)
    return InternalError("checkpoint: cannot rename " + tmp + " to " + path + ": " + ec.message());
  return Status::Ok();
}

StatusOr<Trainer::State> ReadCheckpoint(const std::string& path, const CheckpointIdentity& want) {
  POLYGUARD_ASSIGN_OR_RETURN(proto::Checkpoint c, ReadPayload(path));
  POLYGUARD_RETURN_IF_ERROR(CheckIdentity(path, c, want, /*with_code=*/true));
  Trainer::State state;
  state.step = c.step();
  state.round = c.round();
  state.previous_wrong.assign(c.previous_wrong().begin(), c.previous_wrong().end());
  state.rollbacks_in_a_row = c.rollbacks_in_a_row();
  state.rollback_step = c.rollback_step();
  for (int l = 0; l < c.layer_size(); ++l) {
    const std::string what = "checkpoint: " + path + " layer " + std::to_string(l);
    POLYGUARD_ASSIGN_OR_RETURN(Matrix shard, FromProto(c.layer(l).shard(), what + " shard"));
    POLYGUARD_ASSIGN_OR_RETURN(Matrix velocity,
                               FromProto(c.layer(l).velocity(), what + " velocity"));
    state.shards.push_back(std::move(shard));
    state.velocities.push_back(std::move(velocity));
  }
  state.periodic_step = c.periodic_step();
  for (int l = 0; l < c.periodic_layer_size(); ++l) {
    const std::string what = "checkpoint: " + path + " periodic layer " + std::to_string(l);
    const proto::LayerState& layer = c.periodic_layer(l);
    POLYGUARD_ASSIGN_OR_RETURN(Matrix shard, FromProto(layer.shard(), what + " shard"));
    POLYGUARD_ASSIGN_OR_RETURN(Matrix velocity, FromProto(layer.velocity(), what + " velocity"));
    state.periodic_shards.push_back(std::move(shard));
    state.periodic_velocities.push_back(std::move(velocity));
  }
  return state;
}

StatusOr<CheckpointHeader> ReadCheckpointHeader(const std::string& path) {
  POLYGUARD_ASSIGN_OR_RETURN(proto::Checkpoint c, ReadPayload(path));
  return CheckpointHeader{
      .identity = {c.job(), c.code(), c.peers(), c.rank()}, .step = c.step(), .round = c.round()};
}

StatusOr<std::vector<int64_t>> ReadCheckpointSteps(const std::string& dir, const std::string& job,
                                                   int peers) {
  std::vector<int64_t> steps;
  for (int r = 0; r < peers; ++r) {
    const std::string path = CheckpointPath(dir, r);
    POLYGUARD_ASSIGN_OR_RETURN(proto::Checkpoint c, ReadPayload(path));
    POLYGUARD_RETURN_IF_ERROR(CheckIdentity(path, c, {job, "", peers, r}, /*with_code=*/false));
    steps.push_back(c.step());
  }
  return steps;
}

Status CheckSameResumeStep(std::span<const int64_t> steps) {
  if (std::adjacent_find(steps.begin(), steps.end(), std::not_equal_to<>()) == steps.end()) {
    return Status::Ok();
  }
  return InvalidArgumentError("peers disagree on the checkpoint step: " +
                              ByValue(steps, [](int64_t s) { return "at " + std::to_string(s); }));
}

Status CheckResumeFits(const std::string& path, int64_t step, int64_t total) {
  if (step <= total) return Status::Ok();
  return InvalidArgumentError("checkpoint: " + path + " is at step " + std::to_string(step) +
                              "; a job of " + std::to_string(total) + " steps would end before it");
}

StatusOr<int64_t> AgreeOnResumeStep(PeerGroup* group, int64_t step, int64_t total) {
  // (Steps are exact in a double up to 2^53.)
  const std::vector<double> mine = {double(step), double(total)};
  POLYGUARD_ASSIGN_OR_RETURN(const ExchangeTag tag, MakeExchangeTag(ExchangeOp::kResumeAgree));
  POLYGUARD_ASSIGN_OR_RETURN(Matrix all, group->AllGather(mine, tag));
  std::vector<int64_t> steps, totals;
  std::vector<int> unloaded;
  for (Eigen::Index q = 0; q < all.cols(); ++q) {
    steps.push_back(static_cast<int64_t>(all(0, q)));
    totals.push_back(static_cast<int64_t>(all(1, q)));
    if (steps.back() < 0) unloaded.push_back(int(q));
  }
  if (!unloaded.empty()) {
    const bool one = unloaded.size() == 1;
    return FailedPreconditionError(
        std::string(one ? "peer " : "peers ") + FormatPeers(unloaded) + " could not load " +
        (one ? "its checkpoint (its" : "their checkpoints (their") + " own message says why)");
  }
  if (std::adjacent_find(totals.begin(), totals.end(), std::not_equal_to<>()) != totals.end()) {
    return InvalidArgumentError(
        "peers disagree on the steps to train: " +
        ByValue(totals, [](int64_t t) { return "to step " + std::to_string(t); }));
  }
  POLYGUARD_RETURN_IF_ERROR(CheckSameResumeStep(steps));
  return steps.front();
}

}  // namespace polyguard

#include "polyguard/train/checkpoint.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "lib/proto/checkpoint.pb.h"

namespace polyguard {
namespace {

uint64_t Fnv1a(const std::string& bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

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
  for (size_t l = 0; l < state.shards.size(); ++l) {
    proto::LayerState* layer = c.add_layer();
    ToProto(state.shards[l], layer->mutable_shard());
    ToProto(state.velocities[l], layer->mutable_velocity());
  }
  proto::CheckpointFile file;
  if (!c.SerializeToString(file.mutable_payload())) return InternalError("checkpoint: cannot serialize");
  file.set_checksum(Fnv1a(file.payload()));
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return NotFoundError("checkpoint: cannot write " + tmp);
    if (!file.SerializeToOstream(&out)) return InternalError("checkpoint: writing " + tmp + " failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return InternalError("checkpoint: cannot rename " + tmp + " to " + path + ": " + ec.message());
  return Status::Ok();
}

StatusOr<Trainer::State> ReadCheckpoint(const std::string& path, const CheckpointIdentity& want) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("checkpoint: cannot open " + path);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  proto::CheckpointFile file;
  if (!file.ParseFromString(bytes) || !file.has_payload() || !file.has_checksum()) {
    return DataLossError("checkpoint: " + path + " is truncated or not a checkpoint");
  }
  if (Fnv1a(file.payload()) != file.checksum()) {
    return DataLossError("checkpoint: " + path + " is corrupted (checksum mismatch)");
  }
  proto::Checkpoint c;
  if (!c.ParseFromString(file.payload())) {
    return DataLossError("checkpoint: " + path + " has an unreadable payload");
  }
  auto mismatch = [&](const std::string& field, const std::string& got, const std::string& expected) {
    return FailedPreconditionError("checkpoint: " + path + " is for " + field + " " + got +
                                   ", this job has " + expected);
  };
  if (c.job() != want.job) return mismatch("job", "'" + c.job() + "'", "'" + want.job + "'");
  if (c.code() != want.code) return mismatch("code", "'" + c.code() + "'", "'" + want.code + "'");
  if (c.peers() != want.peers) return mismatch("peers", std::to_string(c.peers()), std::to_string(want.peers));
  if (c.rank() != want.rank) return mismatch("rank", std::to_string(c.rank()), std::to_string(want.rank));
  Trainer::State state;
  state.step = c.step();
  state.round = c.round();
  for (int l = 0; l < c.layer_size(); ++l) {
    const std::string what = "checkpoint: " + path + " layer " + std::to_string(l);
    POLYGUARD_ASSIGN_OR_RETURN(Matrix shard, FromProto(c.layer(l).shard(), what + " shard"));
    POLYGUARD_ASSIGN_OR_RETURN(Matrix velocity, FromProto(c.layer(l).velocity(), what + " velocity"));
    state.shards.push_back(std::move(shard));
    state.velocities.push_back(std::move(velocity));
  }
  return state;
}

}  // namespace polyguard

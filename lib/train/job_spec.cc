#include "polyguard/train/job_spec.h"

#include <google/protobuf/text_format.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lib/base/fnv1a.h"
#include "lib/proto/code_spec.h"
#include "lib/proto/job.pb.h"
#include "lib/proto/text_proto.h"
#include "polyguard/base/peer_set.h"
#include "polyguard/data/idx.h"

namespace polyguard {
namespace {

namespace pb = google::protobuf;

std::string FormatDouble(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

// Names a field with its line: "FILE:LINE: path: ".
class Where {
 public:
  Where(std::string file, const pb::TextFormat::ParseInfoTree* tree)
      : file_(std::move(file)), tree_(tree) {}

  // `path` like {"code", "m"}; index for repeated fields.
  std::string operator()(const std::vector<std::string>& path, int index = -1) const {
    const pb::Descriptor* d = proto::Job::descriptor();
    const pb::TextFormat::ParseInfoTree* tree = tree_;
    int line = -1;
    std::string name;
    for (size_t i = 0; i < path.size() && d != nullptr && tree != nullptr; ++i) {
      const pb::FieldDescriptor* f = d->FindFieldByName(path[i]);
      if (f == nullptr) break;
      const bool last = i + 1 == path.size();
      const int at = last ? (f->is_repeated() ? std::max(index, 0) : -1) : -1;
      const pb::TextFormat::ParseLocation loc = tree->GetLocation(f, at);
      if (loc.line >= 0) line = loc.line;
      if (!last) {
        tree = tree->GetTreeForNested(f, f->is_repeated() ? std::max(index, 0) : -1);
        d = f->message_type();
      }
    }
    for (size_t i = 0; i < path.size(); ++i) {
      if (i > 0) name += '.';
      name += path[i];
    }
    // (Appended piece by piece: GCC 12 warns falsely on some concatenations.)
    if (index >= 0) {
      name += '[';
      name += std::to_string(index);
      name += ']';
    }
    std::string out = file_;
    if (line >= 0) {
      out += ':';
      out += std::to_string(line + 1);
    }
    out += ": ";
    out += name;
    out += ": ";
    return out;
  }

 private:
  std::string file_;
  const pb::TextFormat::ParseInfoTree* tree_;
};

Status Bad(const std::string& where, const std::string& what) {
  return InvalidArgumentError(where + what);
}

}  // namespace

StatusOr<JobSpec> ParseJobSpec(const std::string& text, const std::string& filename) {
  proto::Job job;
  pb::TextFormat::ParseInfoTree tree;
  POLYGUARD_RETURN_IF_ERROR(ParseTextProto(filename, text, &job, &tree));
  const Where at(filename, &tree);
  JobSpec s;
  s.source = filename;
  s.name = job.name();
  s.peers = job.peers();
  if (s.peers < 1 || s.peers > kMaxPeers)
    return Bad(at({"peers"}),
               "must be in [1, " + std::to_string(kMaxPeers) + "], got " + std::to_string(s.peers));

  // Model.
  if (!job.has_model()) return Bad(filename + ": ", "model: missing (inputs and layers)");
  if (job.model().inputs() < 1)
    return Bad(at({"model", "inputs"}),
               "must be >= 1, got " + std::to_string(job.model().inputs()));
  if (job.model().layer_size() == 0) return Bad(at({"model"}), "needs at least one layer");
  int inputs = job.model().inputs();
  // The image shape flowing into a convolution: the input's, then each
  // convolution's output; none after a dense layer.
  int channels = job.model().input_channels(), height = job.model().input_height(),
      width = job.model().input_width();
  // Checked at the first conv layer (a dense model's inputs need no shape).
  auto image_shape = [&]() -> Status {
    if (channels < 1 || inputs % channels != 0) {
      return Bad(at({"model", "input_channels"}),
                 "must be >= 1 and divide inputs (" + std::to_string(inputs) + ")");
    }
    if (height == 0 && width == 0) {
      const int side = static_cast<int>(std::lround(std::sqrt(double(inputs / channels))));
      height = width = side;
    }
    if (int64_t{channels} * height * width != inputs) {
      return Bad(at({"model", "input_height"}),
                 "channels x height x width = " + std::to_string(channels) + " x " +
                     std::to_string(height) + " x " + std::to_string(width) +
                     " must equal inputs (" + std::to_string(inputs) + ") for conv layers");
    }
    return Status::Ok();
  };
  bool image = true;
  for (int i = 0; i < job.model().layer_size(); ++i) {
    const proto::Layer& l = job.model().layer(i);
    StatusOr<Activation> a = ParseActivation(l.activation());
    if (!a.ok()) return Bad(at({"model", "layer"}, i), a.status().message());
    if (l.type() == "conv") {
      if (!image) return Bad(at({"model", "layer"}, i), "a conv layer cannot follow a dense layer");
      if (i == 0) POLYGUARD_RETURN_IF_ERROR(image_shape());
      if (l.filters() < 1 || l.kernel() < 1) {
        return Bad(at({"model", "layer"}, i), "conv needs filters >= 1 and kernel >= 1, got " +
                                                  std::to_string(l.filters()) + " and " +
                                                  std::to_string(l.kernel()));
      }
      if (l.has_outputs())
        return Bad(at({"model", "layer"}, i),
                   "outputs is for dense layers (a conv layer's follow from its shapes)");
      ConvShape c{.channels = channels,
                  .height = height,
                  .width = width,
                  .filters = l.filters(),
                  .kernel_h = l.kernel(),
                  .kernel_w = l.kernel(),
                  .stride = l.stride(),
                  .pad = l.pad()};
      if (Status v = ValidateConvShape(c); !v.ok())
        return Bad(at({"model", "layer"}, i), v.message());
      CodedConv2dOptions co;
      co.conv = c;
      co.pool = l.pool();
      co.pool_stride = l.pool_stride();
      if (Status v = ValidateCodedConv2dOptions(co); !v.ok())
        return Bad(at({"model", "layer"}, i), v.message());
      s.model.layers.push_back(ConvLayerSpec(c, l.pool(), l.pool_stride(), *a));
      channels = c.filters;
      height = l.pool() > 0 ? PoolAfter(c, l.pool(), l.pool_stride()).out_height() : c.out_height();
      width = l.pool() > 0 ? PoolAfter(c, l.pool(), l.pool_stride()).out_width() : c.out_width();
      inputs = s.model.layers.back().outputs;
      continue;
    }
    if (l.type() != "dense")
      return Bad(at({"model", "layer"}, i), "type must be dense or conv, got '" + l.type() + "'");
    if (l.outputs() < 1)
      return Bad(at({"model", "layer"}, i),
                 "outputs must be >= 1, got " + std::to_string(l.outputs()));
    LayerSpec dense;
    dense.inputs = inputs;
    dense.outputs = l.outputs();
    dense.activation = *a;
    s.model.layers.push_back(dense);
    inputs = l.outputs();
    image = false;
  }
  s.model.batch = job.batch();
  if (s.model.batch < 1)
    return Bad(at({"batch"}), "must be >= 1, got " + std::to_string(s.model.batch));
  s.model.seed = job.seed();

  // Code.
  StatusOr<CodeSpecOptions> code =
      ReadCodeSpec(job.code(), s.peers, /*for_training=*/true,
                   [&](const std::string& field, const std::string& reason) {
                     return Bad(at({"code", field}), reason);
                   });
  if (!code.ok()) return code.status();
  s.model.code = code->code;
  s.model.product.wait_for = code->wait_for;
  s.model.fcdcc = code->fcdcc;
  s.model.errors_to_correct = code->errors_to_correct;

  // Faults.
  const proto::Faults& f = job.faults();
  s.faults.error_rate = f.error_rate();
  if (f.points_size() > 0) {
    s.faults.points.clear();
    for (int i = 0; i < f.points_size(); ++i) {
      StatusOr<StepPoint> p = ParseStepPoint(f.points(i));
      if (!p.ok()) return Bad(at({"faults", "points"}, i), p.status().message());
      s.faults.points.push_back(*p);
    }
  }
  StatusOr<SoftErrorKind> kind = ParseSoftErrorKind(f.kind());
  if (!kind.ok()) return Bad(at({"faults", "kind"}), kind.status().message());
  s.faults.kind = *kind;
  s.faults.entries = f.entries();
  s.faults.magnitude = f.magnitude();
  s.faults.faulty_peers.assign(f.faulty_peers().begin(), f.faulty_peers().end());
  if (f.straggler_delay() == "none")
    s.faults.straggler_delay = FaultModel::Delay::kNone;
  else if (f.straggler_delay() == "fixed")
    s.faults.straggler_delay = FaultModel::Delay::kFixed;
  else if (f.straggler_delay() == "exponential")
    s.faults.straggler_delay = FaultModel::Delay::kExponential;
  else
    return Bad(at({"faults", "straggler_delay"}),
               "must be none, fixed or exponential, got '" + f.straggler_delay() + "'");
  s.faults.straggler_delay_ms = f.straggler_delay_ms();
  s.faults.straggler_peers.assign(f.straggler_peers().begin(), f.straggler_peers().end());
  s.faults.straggler_fraction = f.straggler_fraction();
  s.faults.crash_peer = f.crash_peer();
  s.faults.crash_step = f.crash_step();
  if (f.crash_point() == "product")
    s.faults.crash_point = FaultModel::CrashPoint::kProduct;
  else if (f.crash_point() == "scrub")
    s.faults.crash_point = FaultModel::CrashPoint::kScrub;
  else if (f.crash_point() == "repair")
    s.faults.crash_point = FaultModel::CrashPoint::kRepair;
  else
    return Bad(at({"faults", "crash_point"}),
               "must be product, scrub or repair, got '" + f.crash_point() + "'");
  s.fault_seed = f.seed();
  for (int i = 0; i < f.scheduled_size(); ++i) {
    const proto::ScheduledFault& sf = f.scheduled(i);
    const std::string where = at({"faults", "scheduled"}, i);
    if (!sf.has_point()) return Bad(where, "needs a point");
    StatusOr<StepPoint> point = ParseStepPoint(sf.point());
    if (!point.ok()) return Bad(where, "point: " + point.status().message());
    StatusOr<SoftErrorKind> sk = ParseSoftErrorKind(sf.kind());
    if (!sk.ok()) return Bad(where, "kind: " + sk.status().message());
    const int layers = job.model().layer_size();
    const bool layer_ok =
        (sf.layer() >= 0 && sf.layer() < layers) ||
        (sf.layer() >= kCopiesFaultLayer && sf.layer() < kCopiesFaultLayer + layers);
    if (sf.step() < 1 || sf.peer() < 0 || sf.peer() >= s.peers || !layer_ok) {
      return Bad(where, "step " + std::to_string(sf.step()) + ", peer " +
                            std::to_string(sf.peer()) + ", layer " + std::to_string(sf.layer()) +
                            " out of range (steps from 1, peers below " + std::to_string(s.peers) +
                            ", layers below " + std::to_string(layers) + " or " +
                            std::to_string(kCopiesFaultLayer) + " + a layer)");
    }
    s.faults.scheduled.push_back(
        {.step = sf.step(), .peer = sf.peer(), .layer = sf.layer(), .point = *point, .kind = *sk});
  }
  if (Status v = ValidateFaultModel(s.faults, s.peers); !v.ok())
    return Bad(at({"faults"}), v.message());

  // Optimizer.
  s.trainer.sgd = {.learning_rate = job.optimizer().learning_rate(),
                   .momentum = job.optimizer().momentum(),
                   .weight_decay = job.optimizer().weight_decay()};
  if (Status v = ValidateSgdOptions(s.trainer.sgd); !v.ok())
    return Bad(at({"optimizer"}), v.message());

  // Data.
  const proto::Data& d = job.data();
  if (d.kind() == "mnist")
    s.data.kind = DataSpec::Kind::kMnist;
  else if (d.kind() == "synthetic")
    s.data.kind = DataSpec::Kind::kSynthetic;
  else
    return Bad(at({"data", "kind"}), "must be mnist or synthetic, got '" + d.kind() + "'");
  s.data.dir = d.dir();
  s.data.classes = d.classes();
  s.data.seed = d.seed();
  s.data.train_samples = d.train_samples();
  s.data.test_samples = d.test_samples();
  if (s.data.train_samples < 0 || s.data.test_samples < 0) {
    return Bad(at({"data", s.data.train_samples < 0 ? "train_samples" : "test_samples"}),
               "must be >= 0 (0: all)");
  }
  if (s.data.classes != s.model.layers.back().outputs) {
    return Bad(at({"data", "classes"}),
               std::to_string(s.data.classes) + " classes but the last layer has " +
                   std::to_string(s.model.layers.back().outputs) + " outputs");
  }

  // Schedule.
  s.steps = job.steps();
  if (s.steps < 0) return Bad(at({"steps"}), "must be >= 0, got " + std::to_string(s.steps));
  s.epochs = job.epochs();
  if (s.steps == 0 && s.epochs < 1) return Bad(at({"epochs"}), "must be >= 1 when steps is 0");
  s.checkpoint_interval = job.checkpoint_interval();
  if (s.checkpoint_interval < 0) return Bad(at({"checkpoint_interval"}), "must be >= 0");
  s.trainer.scrub_interval = job.scrub_interval();
  if (s.trainer.scrub_interval < 0) return Bad(at({"scrub_interval"}), "must be >= 0");
  s.trainer.snapshot_interval = job.snapshot_interval();
  if (s.trainer.snapshot_interval < 1) return Bad(at({"snapshot_interval"}), "must be >= 1");
  s.trainer.survive_crashes = job.survive_crashes();
  s.trainer.max_retries = job.max_retries();
  if (s.trainer.max_retries < 0) return Bad(at({"max_retries"}), "must be >= 0");
  if (job.timeout_ms() < 100)
    return Bad(at({"timeout_ms"}), "must be >= 100, got " + std::to_string(job.timeout_ms()));
  s.timeout = std::chrono::milliseconds(job.timeout_ms());
  // What the peers would refuse of the model on these peers, with the line
  // of the code block (every such refusal comes from the code's fields).
  if (Status v = ValidateSequentialForPeers(s.model, s.peers); !v.ok()) {
    std::string where = at({"code"});
    where.resize(where.size() - 2);  // ": "
    return v.WithContext(where);
  }
  POLYGUARD_RETURN_IF_ERROR(ValidateJobSpec(s).WithContext(filename));
  return s;
}

Status ValidateJobSpec(const JobSpec& s) {
  if (s.peers < 1 || s.peers > kMaxPeers)
    return InvalidArgumentError("peers must be in [1, " + std::to_string(kMaxPeers) + "], got " +
                                std::to_string(s.peers));
  POLYGUARD_RETURN_IF_ERROR(ValidateSequentialOptions(s.model));
  POLYGUARD_RETURN_IF_ERROR(ValidateTrainerOptions(s.trainer));
  POLYGUARD_RETURN_IF_ERROR(ValidateFaultModel(s.faults, s.peers));
  if (s.model.product.wait_for < 0 || s.model.product.wait_for > s.peers) {
    return InvalidArgumentError("code.wait_for must be 0 or in [K, " + std::to_string(s.peers) +
                                "]");
  }
  // In straggler mode each peer encodes its own decoded copy of a layer's
  // input, decoded from the results it got first; in float32 those copies
  // differ by float32 decode roundoff, so the next product's results
  // disagree by more than that product's own roundoff and fault-free decodes
  // name honest peers (the bundled MLP waiting for 6 of 8: 1,346 wrong
  // results located, 30 rollbacks in 750 steps, even in decodes of all 8
  // results). In float64 the copies differ by about 1e-16, far inside the
  // tolerance (2^15 eps).
  if (s.model.code.precision == Precision::kFloat32 && s.model.product.wait_for != 0 &&
      s.model.product.wait_for < s.peers) {
    return InvalidArgumentError(
        "code.precision: float32 needs every result awaited (wait_for 0), got wait_for " +
        std::to_string(s.model.product.wait_for) +
        ": in straggler mode each peer encodes its own decoded copy of a layer's input, and "
        "float32 copies differ by more than the next product's checks allow");
  }
  if (s.steps < 0 || (s.steps == 0 && s.epochs < 1)) {
    return InvalidArgumentError("needs steps >= 1 or epochs >= 1");
  }
  if (s.timeout.count() < 100) {
    return InvalidArgumentError("timeout must be >= 100 ms, got " +
                                std::to_string(s.timeout.count()) + " ms");
  }
  // Every step ends with a full exchange that waits for every peer, so a
  // straggler's delay past the failure timeout ends the job (after twice the
  // timeout, naming the sleeping peer as gone, not the cause). Exponential
  // delays: a mean of at most 1/20 of the timeout puts a single delay past it
  // at probability e^-20.
  if (s.faults.straggler_delay != FaultModel::Delay::kNone) {
    const bool fixed = s.faults.straggler_delay == FaultModel::Delay::kFixed;
    const double limit = double(s.timeout.count()) / (fixed ? 1.0 : 20.0);
    if (!(s.faults.straggler_delay_ms < limit)) {
      return InvalidArgumentError(
          "faults.straggler_delay_ms: " + FormatDouble(s.faults.straggler_delay_ms) + " ms " +
          (fixed ? "reaches the failure timeout (" + std::to_string(s.timeout.count()) + " ms)"
                 : "as the mean of exponential delays reaches 1/20 of the failure timeout (" +
                       std::to_string(s.timeout.count()) + " ms)") +
          ": every step waits for every peer at its end, so such a straggler is declared "
          "gone and the job stops; use a shorter delay or a longer timeout_ms");
    }
  }
  POLYGUARD_RETURN_IF_ERROR(ValidateSequentialForPeers(s.model, s.peers));
  return Status::Ok();
}

std::string JobIdentity(const JobSpec& s) {
  std::ostringstream text;
  text.precision(17);
  auto add = [&](auto... v) { ((text << v << ' '), ...); };
  add(s.name, s.peers, s.steps, s.epochs, s.model.batch, s.model.seed, s.model.errors_to_correct,
      s.model.fcdcc, s.model.product.wait_for);
  for (const LayerSpec& l : s.model.layers) {
    add(int(l.kind), l.inputs, l.outputs, int(l.activation), l.pool, l.pool_stride, l.conv.channels,
        l.conv.height, l.conv.width, l.conv.filters, l.conv.kernel_h, l.conv.kernel_w,
        l.conv.stride, l.conv.pad);
  }
  const ProductCodeOptions& c = s.model.code;
  add(c.strategy.name(), c.m, c.n, c.d, c.data_blocks, c.row_peers, c.row_blocks, c.col_peers,
      c.col_blocks, c.replicas, c.k_a, c.k_b, c.weight_a, c.weight_b, int(c.points),
      int(c.precision));
  const TrainerOptions& t = s.trainer;
  add(t.sgd.learning_rate, t.sgd.momentum, t.scrub_interval, t.snapshot_interval, t.max_retries,
      t.max_rollbacks, t.guard, t.seed, t.fingerprint_tolerance, t.survive_crashes);
  const FaultModel& f = s.faults;
  add(f.error_rate, int(f.kind), f.entries, f.magnitude, int(f.straggler_delay),
      f.straggler_delay_ms, f.straggler_fraction, s.fault_seed);
  for (StepPoint point : f.points) add(int(point));
  for (int q : f.faulty_peers) add(q);
  add('|');
  for (int q : f.straggler_peers) add(q);
  add(int(s.data.kind), s.data.dir, s.data.classes, s.data.seed, s.data.train_samples,
      s.data.test_samples);
  char out[17];
  std::snprintf(out, sizeof(out), "%016llx",
                static_cast<unsigned long long>(internal::Fnv1a(text.str())));
  return out;
}

std::vector<std::string> MnistFiles(const DataSpec& d) {
  return {d.dir + "/train-images-idx3-ubyte", d.dir + "/train-labels-idx1-ubyte",
          d.dir + "/t10k-images-idx3-ubyte", d.dir + "/t10k-labels-idx1-ubyte"};
}

Status CheckJobData(const JobSpec& s) {
  if (s.data.kind != DataSpec::Kind::kMnist) return Status::Ok();
  const std::vector<std::string> files = MnistFiles(s.data);
  const int64_t features = s.model.layers.front().inputs;
  for (size_t k = 0; k < files.size(); k += 2) {
    POLYGUARD_ASSIGN_OR_RETURN(std::vector<int64_t> images, ReadIdxDims(files[k]));
    POLYGUARD_ASSIGN_OR_RETURN(std::vector<int64_t> labels, ReadIdxDims(files[k + 1]));
    if (images.size() < 2) {
      return InvalidArgumentError("data: " + files[k] + " must hold N images (N x rows x cols)");
    }
    if (labels.size() != 1 || labels[0] != images[0]) {
      return InvalidArgumentError("data: " + files[k] + " has " + std::to_string(images[0]) +
                                  " images but " + files[k + 1] + " has " +
                                  (labels.size() == 1 ? std::to_string(labels[0]) + " labels"
                                                      : "not one dimension of labels"));
    }
    int64_t pixels = 1;
    std::string shape;
    for (size_t i = 1; i < images.size(); ++i) {
      pixels *= images[i];
      shape += (i > 1 ? " x " : "") + std::to_string(images[i]);
    }
    if (pixels != features) {
      return InvalidArgumentError("data: " + files[k] + " has " + shape + " = " +
                                  std::to_string(pixels) + " pixels per image, the model (" +
                                  s.source + ") takes " + std::to_string(features) + " inputs");
    }
  }
  return Status::Ok();
}

StatusOr<JobSpec> LoadJobSpec(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return InvalidArgumentError("job spec: " + path + " is a directory, not a spec file");
  }
  std::ifstream in(path);
  if (!in) return NotFoundError("job spec: cannot open " + path);
  std::stringstream text;
  text << in.rdbuf();
  return ParseJobSpec(text.str(), path);
}

}  // namespace polyguard

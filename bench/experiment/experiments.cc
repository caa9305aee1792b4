// Loading a spec and running it: the checks every spec shares, then its
// kind's, found in the table of kinds.cc.
#include "experiment/experiments.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "experiment/kinds.h"
#include "experiment/results.h"
#include "lib/proto/text_proto.h"

namespace polyguard::experiment {
namespace {

Status Validate(const proto::Experiment& e, const std::string& file) {
  if (e.name().empty() ||
      e.name().find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos) {
    return Bad(file, "name", "required, lowercase letters, digits, '-' and '_' only");
  }
  if (const ExperimentKind* kind = FindKind(e.kind_case())) return kind->validate(e, file);
  // "one of a, b or c is required", from the table so it lists every kind.
  const auto kinds = AllKinds();
  std::string names;
  for (size_t i = 0; i < kinds.size(); ++i) {
    if (i > 0) names += i + 1 == kinds.size() ? " or " : ", ";
    names += kinds[i].name;
  }
  return Bad(file, "kind", "one of " + names + " is required");
}

}  // namespace

StatusOr<proto::Experiment> ParseExperiment(const std::string& text, const std::string& file) {
  proto::Experiment e;
  POLYGUARD_RETURN_IF_ERROR(ParseTextProto(file, text, &e));
  POLYGUARD_RETURN_IF_ERROR(Validate(e, file));
  return e;
}

StatusOr<proto::Experiment> LoadExperiment(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError(path + ": cannot read the experiment spec");
  std::stringstream text;
  text << in.rdbuf();
  return ParseExperiment(text.str(), path);
}

StatusOr<RunResult> RunExperiment(const proto::Experiment& spec, const std::string& out_dir) {
  RunResult r;
  r.dir = out_dir + "/" + spec.name();
  std::error_code ec;
  std::filesystem::create_directories(r.dir, ec);
  if (ec) return InternalError(r.dir + ": " + ec.message());
  StatusOr<std::string> summary = InvalidArgumentError("no experiment kind");
  if (const ExperimentKind* kind = FindKind(spec.kind_case())) {
    summary = kind->run(spec, r.dir, &r.plotted);
  }
  if (!summary.ok()) return summary.status();
  r.summary = *summary;
  POLYGUARD_RETURN_IF_ERROR(WriteText(r.dir + "/summary.md", r.summary));
  return r;
}

}  // namespace polyguard::experiment

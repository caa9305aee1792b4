#include "experiment/code_options.h"

#include "experiment/kinds.h"
#include "lib/proto/code_spec.h"

namespace polyguard::experiment {
namespace {

StatusOr<CodeSpecOptions> Read(const std::string& file, const std::string& field,
                               const polyguard::proto::CodeSpec& c, int peers) {
  return ReadCodeSpec(c, peers, /*for_training=*/false,
                      [&](const std::string& name, const std::string& reason) {
                        return Bad(file, field + "." + name, reason);
                      });
}

}  // namespace

Status CheckCode(const std::string& file, const std::string& field,
                 const polyguard::proto::CodeSpec& c) {
  // Every value, at a P that any default layout fits (the run checks the
  // combination at the swept P).
  return Read(file, field, c, 8).status();
}

std::string CodeLabel(const polyguard::proto::CodeSpec& c) {
  return c.label().empty() ? c.strategy() : c.label();
}

StatusOr<ProductCodeOptions> CodeOptions(const polyguard::proto::CodeSpec& c, int peers,
                                         ProductShape shape) {
  POLYGUARD_ASSIGN_OR_RETURN(
      CodeSpecOptions read,
      ReadCodeSpec(c, peers, /*for_training=*/false,
                   [](const std::string& name, const std::string& reason) {
                     return InvalidArgumentError("code." + name + ": " + reason);
                   }));
  read.code.shape = shape;
  return read.code;
}

}  // namespace polyguard::experiment

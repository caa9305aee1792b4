#include "lib/proto/text_proto.h"

#include <google/protobuf/io/tokenizer.h>

namespace polyguard {
namespace {

namespace pb = google::protobuf;

// Keeps the first error only: later ones usually follow from it.
class FirstError : public pb::io::ErrorCollector {
 public:
  explicit FirstError(const std::string& file) : file_(file) {}
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (first_.empty()) {
      // (Appended piece by piece: GCC 12 warns falsely on some concatenations.)
      first_ = file_;
      first_ += ':';
      first_ += std::to_string(line + 1);
      first_ += ':';
      first_ += std::to_string(column + 1);
      first_ += ": ";
      first_ += message;
    }
  }
  void AddWarning(int, pb::io::ColumnNumber, const std::string&) override {}
  const std::string& first() const { return first_; }

 private:
  const std::string& file_;
  std::string first_;
};

}  // namespace

Status ParseTextProto(const std::string& file, const std::string& text, pb::Message* out,
                      pb::TextFormat::ParseInfoTree* locations) {
  pb::TextFormat::Parser parser;
  FirstError errors(file);
  parser.RecordErrorsTo(&errors);
  if (locations != nullptr) parser.WriteLocationsTo(locations);
  if (!parser.ParseFromString(text, out)) {
    return InvalidArgumentError(errors.first().empty() ? file + ": cannot parse" : errors.first());
  }
  return Status::Ok();
}

}  // namespace polyguard

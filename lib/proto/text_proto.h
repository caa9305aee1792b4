// Protocol Buffers text parsing with errors that name the file, shared by job
// specs (lib/train/job_spec.cc) and experiment specs (bench/experiment/) so
// both report a bad spec the same way. Private to polyguard's own code: it
// exposes protobuf types, which the public headers never do.
#ifndef POLYGUARD_LIB_PROTO_TEXT_PROTO_H_
#define POLYGUARD_LIB_PROTO_TEXT_PROTO_H_

#include <google/protobuf/message.h>
#include <google/protobuf/text_format.h>

#include <string>

#include "polyguard/base/status.h"

namespace polyguard {

// Parses `text`, read from `file`, into `out`. On a syntax error, an unknown
// field or a bad value: InvalidArgument "FILE:LINE:COLUMN: MESSAGE" for the
// first error, MESSAGE being protobuf's, which names the field. With
// `locations`, records where each field was set, so later checks can name its
// line.
Status ParseTextProto(const std::string& file, const std::string& text,
                      google::protobuf::Message* out,
                      google::protobuf::TextFormat::ParseInfoTree* locations = nullptr);

}  // namespace polyguard

#endif  // POLYGUARD_LIB_PROTO_TEXT_PROTO_H_

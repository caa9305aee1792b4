#include "polyguard/data/idx.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <random>

#include "polyguard/base/random.h"

namespace polyguard {
namespace {

uint32_t BigEndian(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// A regular file's bytes. A directory opens as a stream on Linux and then
// throws from inside the stream buffer (basic_filebuf::underflow), so the
// kind of file is checked first and nothing may throw past here.
StatusOr<std::vector<uint8_t>> ReadBytes(const std::string& path, size_t limit) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) return NotFoundError("idx: cannot open " + path);
  if (std::filesystem::is_directory(status)) {
    return InvalidArgumentError("idx: " + path + " is a directory, not an IDX file");
  }
  if (!std::filesystem::is_regular_file(status)) {
    return InvalidArgumentError("idx: " + path + " is not a regular file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("idx: cannot open " + path);
  std::vector<uint8_t> bytes;
  try {
    const auto size = std::filesystem::file_size(path, ec);
    bytes.resize(ec ? 0 : std::min<size_t>(size_t(size), limit));
    in.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(bytes.size()));
    bytes.resize(size_t(in.gcount()));
  } catch (const std::exception& e) {
    return InvalidArgumentError("idx: cannot read " + path + ": " + e.what());
  }
  return bytes;
}

// The header of `bytes`: dims and the offset of the elements.
StatusOr<size_t> ParseHeader(const std::string& path, const std::vector<uint8_t>& bytes,
                             std::vector<int64_t>* dims, uint64_t* count_out) {
  if (bytes.size() < 4) {
    return InvalidArgumentError("idx: " + path + " is " + std::to_string(bytes.size()) +
                                " bytes, shorter than a header");
  }
  if (bytes[0] != 0 || bytes[1] != 0) {
    return InvalidArgumentError("idx: " + path +
                                " has a bad magic number (first two bytes must "
                                "be zero; is this an IDX file, or still gzip-compressed?)");
  }
  if (bytes[2] != 0x08) {
    return InvalidArgumentError("idx: " + path + " has element type 0x" +
                                std::to_string(int(bytes[2])) +
                                "; only unsigned bytes (0x08) are supported");
  }
  const int rank = bytes[3];
  if (rank < 1 || rank > 4) {
    return InvalidArgumentError("idx: " + path + " has " + std::to_string(rank) +
                                " dimensions, expected 1 to 4");
  }
  const size_t header = 4 + 4 * size_t(rank);
  if (bytes.size() < header) {
    return InvalidArgumentError("idx: " + path + " is truncated inside its header");
  }
  uint64_t count = 1;
  for (int k = 0; k < rank; ++k) {
    const uint32_t d = BigEndian(&bytes[4 + 4 * size_t(k)]);
    if (d == 0 || d > (1u << 28)) {
      return InvalidArgumentError("idx: " + path + " dimension " + std::to_string(k) + " is " +
                                  std::to_string(d));
    }
    dims->push_back(d);
    count *= d;
    if (count > (uint64_t(1) << 34)) return InvalidArgumentError("idx: " + path + " is too large");
  }
  *count_out = count;
  return header;
}

}  // namespace

StatusOr<std::vector<int64_t>> ReadIdxDims(const std::string& path) {
  POLYGUARD_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadBytes(path, 4 + 4 * 4));
  std::vector<int64_t> dims;
  uint64_t count = 0;
  POLYGUARD_ASSIGN_OR_RETURN(size_t header, ParseHeader(path, bytes, &dims, &count));
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && uint64_t(size) - header != count) {
    return InvalidArgumentError(
        "idx: " + path + " holds " + std::to_string(size - header) +
        " elements but its header announces " + std::to_string(count) +
        (uint64_t(size) - header < count ? " (truncated)" : " (trailing bytes)"));
  }
  return dims;
}

StatusOr<IdxArray> ReadIdx(const std::string& path) {
  POLYGUARD_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadBytes(path, (size_t(1) << 34) + 64));
  IdxArray out;
  uint64_t count = 0;
  POLYGUARD_ASSIGN_OR_RETURN(size_t header, ParseHeader(path, bytes, &out.dims, &count));
  if (bytes.size() - header != count) {
    return InvalidArgumentError(
        "idx: " + path + " holds " + std::to_string(bytes.size() - header) +
        " elements but its header announces " + std::to_string(count) +
        (bytes.size() - header < count ? " (truncated)" : " (trailing bytes)"));
  }
  // In place: a byte a pixel at the peak, not two.
  bytes.erase(bytes.begin(), bytes.begin() + std::ptrdiff_t(header));
  out.data = std::move(bytes);
  return out;
}

Status WriteIdx(const std::string& path, const IdxArray& a) {
  if (a.dims.empty() || a.dims.size() > 4) return InvalidArgumentError("idx: 1 to 4 dimensions");
  const int64_t count =
      std::accumulate(a.dims.begin(), a.dims.end(), int64_t{1}, std::multiplies<>());
  if (count != static_cast<int64_t>(a.data.size())) {
    return InvalidArgumentError("idx: dims announce " + std::to_string(count) +
                                " elements, data has " + std::to_string(a.data.size()));
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return NotFoundError("idx: cannot write " + path);
  const uint8_t magic[4] = {0, 0, 0x08, uint8_t(a.dims.size())};
  out.write(reinterpret_cast<const char*>(magic), 4);
  for (int64_t d : a.dims) {
    const uint8_t be[4] = {uint8_t(d >> 24), uint8_t(d >> 16), uint8_t(d >> 8), uint8_t(d)};
    out.write(reinterpret_cast<const char*>(be), 4);
  }
  out.write(reinterpret_cast<const char*>(a.data.data()), std::streamsize(a.data.size()));
  if (!out) return InternalError("idx: writing " + path + " failed");
  return Status::Ok();
}

StatusOr<Dataset> LoadIdxDataset(const std::string& images_path, const std::string& labels_path,
                                 int classes) {
  POLYGUARD_ASSIGN_OR_RETURN(IdxArray images, ReadIdx(images_path));
  POLYGUARD_ASSIGN_OR_RETURN(IdxArray labels, ReadIdx(labels_path));
  if (images.dims.size() < 2) {
    return InvalidArgumentError("idx: " + images_path + " must hold N images (N x rows x cols)");
  }
  if (labels.dims.size() != 1) {
    return InvalidArgumentError("idx: " + labels_path + " must hold N labels (one dimension)");
  }
  const int64_t n = images.dims[0];
  if (labels.dims[0] != n) {
    return InvalidArgumentError("idx: " + images_path + " has " + std::to_string(n) +
                                " images but " + labels_path + " has " +
                                std::to_string(labels.dims[0]) + " labels");
  }
  const int64_t features = static_cast<int64_t>(images.data.size()) / n;
  Dataset out;
  out.classes = classes;
  // An image's pixels are consecutive: its column, as read.
  out.pixels = Eigen::Map<const PixelMatrix>(images.data.data(), features, n);
  images.data = {};
  out.labels.resize(size_t(n));
  for (int64_t j = 0; j < n; ++j) {
    const int label = labels.data[size_t(j)];
    if (label >= classes) {
      return InvalidArgumentError("idx: " + labels_path + " label " + std::to_string(j) + " is " +
                                  std::to_string(label) + ", outside [0, " +
                                  std::to_string(classes) + ")");
    }
    out.labels[size_t(j)] = label;
  }
  return out;
}

void Dataset::CopySamples(int64_t first, int64_t count, Matrix* out, int64_t to) const {
  // pixel / 255 in double, as every Dataset of images has always given.
  if (pixels.size() > 0) {
    out->middleCols(to, count) = pixels.middleCols(first, count).cast<double>() / 255.0;
  } else {
    out->middleCols(to, count) = inputs.middleCols(first, count);
  }
}

void Dataset::KeepFirst(int64_t count) {
  if (count <= 0 || count >= size()) return;
  if (pixels.size() > 0) pixels = pixels.leftCols(count).eval();
  if (inputs.size() > 0) inputs = inputs.leftCols(count).eval();
  labels.resize(size_t(count));
}

BatchSampler::BatchSampler(const Dataset* data, int batch, uint64_t seed)
    : data_(data), batch_(batch), seed_(seed) {
  steps_per_epoch_ = batch > 0 ? data->size() / batch : 0;
}

void BatchSampler::Batch(int64_t step, Matrix* x, std::vector<int>* labels) const {
  const int64_t epoch = (step - 1) / steps_per_epoch_, index = (step - 1) % steps_per_epoch_;
  std::lock_guard<std::mutex> lock(mu_);
  if (epoch != order_epoch_) {
    order_.resize(static_cast<size_t>(data_->size()));
    std::iota(order_.begin(), order_.end(), 0);
    std::mt19937_64 rng(DeriveSeed(seed_, {0xe90c, uint64_t(epoch)}));
    std::shuffle(order_.begin(), order_.end(), rng);
    order_epoch_ = epoch;
  }
  const std::vector<int64_t>& order = order_;
  x->resize(data_->features(), batch_);
  labels->resize(size_t(batch_));
  for (int k = 0; k < batch_; ++k) {
    const int64_t j = order[size_t(index * batch_ + k)];
    data_->CopySamples(j, 1, x, k);
    (*labels)[size_t(k)] = data_->labels[size_t(j)];
  }
}

}  // namespace polyguard

#include "polyguard/data/idx.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "runtime/multiprocess.h"

namespace polyguard {
namespace {
namespace idx_test {

class IdxTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::FreshFolder("idx"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) { return dir_ + "/" + name; }
  // Writes n images of rows x cols (pixel = (image + i) mod 256) and labels.
  void WriteSet(const std::string& prefix, int64_t n, int rows, int cols, int classes) {
    IdxArray images{{n, rows, cols}, {}}, labels{{n}, {}};
    for (int64_t j = 0; j < n; ++j) {
      for (int i = 0; i < rows * cols; ++i) images.data.push_back(uint8_t((j + i) % 256));
      labels.data.push_back(uint8_t(j % classes));
    }
    ASSERT_TRUE(WriteIdx(Path(prefix + "-images"), images).ok());
    ASSERT_TRUE(WriteIdx(Path(prefix + "-labels"), labels).ok());
  }
  void WriteBytes(const std::string& name, const std::vector<uint8_t>& bytes) {
    std::ofstream(Path(name), std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }
  std::string dir_;
};

TEST_F(IdxTest, RoundTripsAndLoadsADataset) {
  WriteSet("a", 12, 3, 2, 4);
  auto data = LoadIdxDataset(Path("a-images"), Path("a-labels"), 4);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->size(), 12);
  EXPECT_EQ(data->features(), 6);
  // Kept as read: a byte a pixel, no doubles.
  EXPECT_EQ(data->inputs.size(), 0);
  EXPECT_EQ(data->pixels.rows(), 6);
  Matrix x(6, 12);
  data->CopySamples(0, 12, &x);
  EXPECT_EQ(x(5, 11), double((11 + 5) % 256) / 255.0);
  EXPECT_EQ(data->labels[7], 3);
}

// Both forms of a Dataset read alike: pixels give exactly double(p) / 255
// (what loading gave when it stored doubles, so trajectories are unchanged),
// and copies land at the asked columns; KeepFirst trims either form.
TEST(DatasetTest, PixelsReadAsTheDoublesTheyStoodForInBothForms) {
  Dataset bytes, doubles;
  bytes.pixels.resize(256, 3);
  doubles.inputs.resize(256, 3);
  for (int j = 0; j < 3; ++j) {
    for (int p = 0; p < 256; ++p) {
      bytes.pixels(p, j) = uint8_t((p + 85 * j) % 256);
      doubles.inputs(p, j) = double((p + 85 * j) % 256) / 255.0;  // the reference
    }
  }
  bytes.labels = doubles.labels = {2, 0, 1};
  for (const Dataset* d : {&bytes, &doubles}) {
    EXPECT_EQ(d->features(), 256);
    Matrix out = Matrix::Constant(256, 4, -1.0);
    d->CopySamples(1, 2, &out, 2);
    EXPECT_EQ(out.middleCols(2, 2), doubles.inputs.middleCols(1, 2));  // bitwise
    EXPECT_TRUE((out.leftCols(2).array() == -1.0).all());              // untouched
    EXPECT_EQ(out(170, 2), 1.0);
    EXPECT_EQ(out(0, 3), double(170) / 255.0);
  }
  for (Dataset* d : {&bytes, &doubles}) {
    d->KeepFirst(5);  // more than it has: all kept
    EXPECT_EQ(d->size(), 3);
    d->KeepFirst(2);
    EXPECT_EQ(d->size(), 2);
    EXPECT_EQ(d->labels, (std::vector<int>{2, 0}));
    Matrix out(256, 2);
    d->CopySamples(0, 2, &out);
    EXPECT_EQ(out, doubles.inputs.leftCols(2)) << (d == &bytes ? "pixels" : "inputs");
  }
  EXPECT_EQ(bytes.pixels.cols(), 2);
  EXPECT_EQ(bytes.inputs.size(), 0);
}

TEST_F(IdxTest, RejectsMalformedFilesNamingThem) {
  WriteSet("a", 12, 3, 2, 4);
  auto expect_error = [&](const std::string& images, const std::string& labels,
                          const std::string& fragment) {
    auto data = LoadIdxDataset(Path(images), Path(labels), 4);
    ASSERT_FALSE(data.ok()) << fragment;
    EXPECT_NE(data.status().message().find(fragment), std::string::npos) << data.status();
  };
  // Truncated: drop the last byte.
  std::ifstream in(Path("a-images"), std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  WriteBytes("short", std::vector<uint8_t>(bytes.begin(), bytes.end() - 1));
  expect_error("short", "a-labels", "(truncated)");
  bytes.push_back(0);
  WriteBytes("long", bytes);
  expect_error("long", "a-labels", "(trailing bytes)");
  WriteBytes("gzip", {0x1f, 0x8b, 0x08, 0x00, 1, 2, 3});
  expect_error("gzip", "a-labels", "bad magic number");
  WriteBytes("float", {0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0});
  expect_error("float", "a-labels", "element type");
  WriteBytes("tiny", {0, 0});
  expect_error("tiny", "a-labels", "shorter than a header");
  WriteBytes("header", {0, 0, 8, 3, 0, 0});
  expect_error("header", "a-labels", "truncated inside its header");
  expect_error("missing", "a-labels", "cannot open");
  WriteSet("b", 10, 3, 2, 4);
  expect_error("a-images", "b-labels", "has 12 images but");
  expect_error("a-labels", "a-labels", "must hold N images");
  WriteSet("c", 12, 3, 2, 9);  // labels up to 8
  expect_error("c-images", "c-labels", "outside [0, 4)");
  // A directory opens as a stream and used to throw from its buffer (abort).
  std::filesystem::create_directories(Path("dir"));
  expect_error("dir", "a-labels", "is a directory, not an IDX file");
  expect_error("a-images", "dir", "is a directory, not an IDX file");
  // The header-only check agrees with the full read on every file above.
  for (const char* name : {"a-images", "a-labels", "short", "long", "gzip", "float", "tiny",
                           "header", "missing", "dir"}) {
    const auto full = ReadIdx(Path(name));
    const auto dims = ReadIdxDims(Path(name));
    EXPECT_EQ(full.ok(), dims.ok()) << name << ": " << full.status() << " / " << dims.status();
    if (full.ok() && dims.ok()) {
      EXPECT_EQ(full->dims, *dims) << name;
    } else if (!full.ok() && !dims.ok()) {
      EXPECT_EQ(full.status().message(), dims.status().message());
    }
  }
}

TEST_F(IdxTest, BatchesArePureFunctionsOfTheStepAndCoverEachEpoch) {
  WriteSet("a", 20, 2, 2, 4);
  auto data = LoadIdxDataset(Path("a-images"), Path("a-labels"), 4).value();
  BatchSampler sampler(&data, 6, 9);
  EXPECT_EQ(sampler.steps_per_epoch(), 3);
  Matrix x1, x2;
  std::vector<int> l1, l2;
  sampler.Batch(5, &x1, &l1);
  sampler.Batch(5, &x2, &l2);
  EXPECT_EQ(x1, x2);
  EXPECT_EQ(l1, l2);
  // Within one epoch no sample repeats; the next epoch is another order.
  std::set<std::vector<double>> seen;
  for (int64_t step = 1; step <= 3; ++step) {
    sampler.Batch(step, &x1, &l1);
    for (int k = 0; k < 6; ++k)
      seen.insert(std::vector<double>(x1.col(k).data(), x1.col(k).data() + 4));
  }
  EXPECT_EQ(seen.size(), 18u);
  sampler.Batch(1, &x1, &l1);
  sampler.Batch(4, &x2, &l2);
  EXPECT_NE(x1, x2);
  // Whatever epochs were served before (the order of one is kept), a step's
  // batch is a fresh sampler's.
  for (int64_t step : {2, 7, 3, 1, 9, 4}) {
    BatchSampler fresh(&data, 6, 9);
    sampler.Batch(step, &x1, &l1);
    fresh.Batch(step, &x2, &l2);
    EXPECT_EQ(x1, x2) << "step " << step;
    EXPECT_EQ(l1, l2) << "step " << step;
  }
  // The same set as doubles gives the same batches.
  Dataset doubles = data;
  doubles.inputs = data.pixels.cast<double>() / 255.0;
  doubles.pixels.resize(0, 0);
  BatchSampler of_doubles(&doubles, 6, 9);
  for (int64_t step : {1, 5, 8}) {
    sampler.Batch(step, &x1, &l1);
    of_doubles.Batch(step, &x2, &l2);
    EXPECT_EQ(x1, x2) << "step " << step;
    EXPECT_EQ(l1, l2) << "step " << step;
  }
}

}  // namespace idx_test
}  // namespace
}  // namespace polyguard

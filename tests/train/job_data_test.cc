#include "polyguard/train/job_data.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "polyguard/data/idx.h"
#include "runtime/multiprocess.h"

namespace polyguard {
namespace {
namespace job_data_test {

// IDX files of `count` images rows x cols and their labels.
void WriteImages(const std::string& dir, const std::string& prefix, int64_t count, int64_t rows,
                 int64_t cols) {
  IdxArray images{{count, rows, cols}, std::vector<uint8_t>(size_t(count * rows * cols), 7)};
  IdxArray labels{{count}, std::vector<uint8_t>(size_t(count))};
  ASSERT_TRUE(WriteIdx(dir + "/" + prefix + "-images-idx3-ubyte", images).ok());
  ASSERT_TRUE(WriteIdx(dir + "/" + prefix + "-labels-idx1-ubyte", labels).ok());
}

JobSpec MnistJob(const std::string& dir) {
  JobSpec s;
  s.model.layers = {{12, 4, Activation::kIdentity}};
  s.model.batch = 8;
  s.data.dir = dir;
  s.data.classes = 4;
  return s;
}

// The memory check counts a peer's data: each IDX set as read and as its
// pixels, and the copy trimming makes; it must cover what Load holds.
TEST(JobDataBytes, CountsEverySetAsReadAndAsPixelsFromTheHeaders) {
  const std::string dir = testing::FreshFolder("job-data-bytes");
  WriteImages(dir, "train", 64, 3, 4);
  WriteImages(dir, "t10k", 16, 3, 4);
  JobSpec s = MnistJob(dir);
  EXPECT_EQ(JobDataBytes(s), 12 * 2 * (64 + 16));
  s.data.train_samples = 10;
  s.data.test_samples = 100;  // more than the file has: nothing trimmed
  EXPECT_EQ(JobDataBytes(s), 12 * 2 * (64 + 16) + 12 * 10);
  const std::unique_ptr<JobData> loaded = JobData::Load(s).value();
  // Held as read, a byte a pixel; the 10 kept training images besides.
  EXPECT_EQ(loaded->test().inputs.size(), 0);
  EXPECT_EQ(loaded->test().pixels.size(), 12 * 16);
  EXPECT_GE(*JobDataBytes(s), 12 * 10 + loaded->test().pixels.size());

  // The files' own pixels count, not a model's claim about them.
  JobSpec huge = s;
  huge.model.layers.front().inputs = 2000000000;
  EXPECT_EQ(JobDataBytes(huge), JobDataBytes(s));

  std::filesystem::remove(dir + "/t10k-images-idx3-ubyte");
  EXPECT_EQ(JobDataBytes(s), std::nullopt);
  std::filesystem::remove_all(dir);

  JobSpec synthetic = MnistJob(dir);
  synthetic.data.kind = DataSpec::Kind::kSynthetic;
  EXPECT_EQ(JobDataBytes(synthetic), (512 + 8) * 12 * 8);
  EXPECT_GE(*JobDataBytes(synthetic),
            int64_t(sizeof(double)) * 12 * JobData::Load(synthetic).value()->test().size());
}

}  // namespace job_data_test
}  // namespace
}  // namespace polyguard

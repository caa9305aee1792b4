#include "polyguard/train/job_spec.h"

#include <gtest/gtest.h>

namespace polyguard {
namespace {
namespace job_spec_test {

const char kGood[] = R"(name: "t"
peers: 8
model {
  inputs: 784
  layer { outputs: 32 activation: "relu" }
  layer { outputs: 10 activation: "identity" }
}
code { strategy: "genpolydot" m: 2 n: 2 }
faults { error_rate: 0.01 points: "decode" points: "send" }
optimizer { learning_rate: 0.1 momentum: 0.5 }
batch: 16
steps: 100
)";

TEST(JobSpec, ParsesAGoodSpec) {
  auto spec = ParseJobSpec(kGood, "good.textproto");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->peers, 8);
  ASSERT_EQ(spec->model.layers.size(), 2u);
  EXPECT_EQ(spec->model.layers[1].inputs, 32);
  EXPECT_EQ(spec->model.layers[1].activation, Activation::kIdentity);
  EXPECT_EQ(spec->model.code.strategy, Strategy::kPolyDot);
  EXPECT_EQ(spec->faults.points.size(), 2u);
  EXPECT_DOUBLE_EQ(spec->trainer.sgd.momentum, 0.5);
  EXPECT_EQ(spec->model.batch, 16);
  EXPECT_EQ(spec->steps, 100);
}

TEST(JobSpec, BundledSpecsParse) {
  for (const char* name : {"mlp_mnist", "mlp_synthetic_small", "lenet5_mnist"}) {
    auto spec = LoadJobSpec(std::string(POLYGUARD_SOURCE_DIR) + "/models/" + name + ".textproto");
    EXPECT_TRUE(spec.ok()) << spec.status();
  }
}

// Each error names the file, the line and the field.
TEST(JobSpec, ErrorsNameFileLineAndField) {
  auto error = [](const std::string& from, const std::string& to) {
    std::string text = kGood;
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    auto spec = ParseJobSpec(text, "bad.textproto");
    EXPECT_FALSE(spec.ok()) << to;
    return spec.status().message();
  };
  EXPECT_EQ(error("batch: 16", "batchsize: 16"),
            "bad.textproto:11:10: Message type \"polyguard.proto.Job\" has no field named "
            "\"batchsize\".");
  EXPECT_NE(error("peers: 8", "peers: \"eight\"").find("bad.textproto:2:8:"), std::string::npos);
  EXPECT_EQ(error("m: 2 n: 2", "m: 0 n: 2"), "bad.textproto:8: code.m: must be >= 1, got 0");
  EXPECT_NE(
      error("\"relu\"", "\"swish\"").find("bad.textproto:5: model.layer[0]: unknown activation"),
      std::string::npos);
  EXPECT_NE(error("\"genpolydot\"", "\"genpolydot\" precision: \"half\"")
                .find("bad.textproto:8: code.precision: unknown precision 'half' (float64 or "
                      "float32)"),
            std::string::npos);
  {
    auto spec = ParseJobSpec(kGood, "good.textproto").value();
    spec.model.code.precision = Precision::kFloat32;
    spec.model.product.wait_for = 6;
    const Status s = ValidateJobSpec(spec);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("code.precision: float32 needs every result awaited"),
              std::string::npos)
        << s;
    spec.model.product.wait_for = 0;
    EXPECT_TRUE(ValidateJobSpec(spec).ok());
  }
  {
    // A straggler that sleeps past the failure timeout can only stop the
    // job (an adversarial run gave 1e12 ms: exit 1 after twice the timeout).
    auto spec = ParseJobSpec(kGood, "good.textproto").value();
    spec.timeout = std::chrono::milliseconds(2000);
    spec.faults.straggler_delay = FaultModel::Delay::kFixed;
    spec.faults.straggler_delay_ms = 1999;
    EXPECT_TRUE(ValidateJobSpec(spec).ok());
    spec.faults.straggler_delay_ms = 2000;
    Status s = ValidateJobSpec(spec);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("faults.straggler_delay_ms: 2000 ms reaches the failure timeout "
                               "(2000 ms)"),
              std::string::npos)
        << s;
    spec.faults.straggler_delay = FaultModel::Delay::kExponential;
    spec.faults.straggler_delay_ms = 99;
    EXPECT_TRUE(ValidateJobSpec(spec).ok());
    spec.faults.straggler_delay_ms = 100;
    s = ValidateJobSpec(spec);
    EXPECT_NE(s.message().find("mean of exponential delays reaches 1/20"), std::string::npos) << s;
    spec.faults.straggler_delay_ms = 1e12;
    EXPECT_FALSE(ValidateJobSpec(spec).ok());
  }
  // The MDS product layout decodes only with every peer of a row: no
  // straggler mode (every peer failed at step 1 when it was accepted).
  EXPECT_NE(error("strategy: \"genpolydot\" m: 2 n: 2", "strategy: \"mds\" wait_for: 6")
                .find("wait_for 6 < P = 8, but mds"),
            std::string::npos);
  EXPECT_NE(error("\"genpolydot\"", "\"fountain\"")
                .find("bad.textproto:8: code.strategy: unknown strategy 'fountain'"),
            std::string::npos);
  EXPECT_NE(error("error_rate: 0.01", "error_rate: 1.5").find("bad.textproto:9: faults: "),
            std::string::npos);
  EXPECT_NE(error("learning_rate: 0.1", "learning_rate: -1").find("bad.textproto:10: optimizer: "),
            std::string::npos);
  EXPECT_NE(error("\"send\"", "\"teleport\"").find("bad.textproto:9: faults.points[1]: "),
            std::string::npos);
  EXPECT_EQ(error("points: \"send\"", "points: \"send\" crash_point: \"update\""),
            "bad.textproto:9: faults.crash_point: must be product, scrub or repair, got 'update'");
  EXPECT_NE(error("outputs: 10", "outputs: 0")
                .find("bad.textproto:6: model.layer[1]: outputs must be >= 1"),
            std::string::npos);
  EXPECT_EQ(error("peers: 8", "peers: 0"), "bad.textproto:2: peers: must be in [1, 1024], got 0");
  // Splits whose product overflows 32 bits are refused by the code, not computed with.
  EXPECT_NE(error("m: 2 n: 2", "m: 100000 n: 100000 d: 100000").find("bad.textproto:8: code"),
            std::string::npos);
  EXPECT_EQ(error("m: 2 n: 2", "m: 2 n: 2 k_a: 2"),
            "bad.textproto:8: code.k_a: is the low-weight code's split (strategy lowweight); "
            "genpolydot convolutions take conv_k_a and conv_k_b");
  EXPECT_NE(LoadJobSpec("/nonexistent/job.textproto").status().message().find("cannot open"),
            std::string::npos);
}

// Scheduled faults: parsed into FaultModel::scheduled; each bad field named
// with the entry's line.
TEST(JobSpec, ScheduledFaults) {
  std::string text = kGood;
  const std::string faults = "faults { error_rate: 0.01 points: \"decode\" points: \"send\" }";
  auto with = [&](const std::string& scheduled) {
    std::string t = text;
    t.replace(t.find(faults), faults.size(), "faults {\n" + scheduled + "\n}");
    return ParseJobSpec(t, "s.textproto");
  };
  auto spec = with(
      "scheduled { step: 5 peer: 4 layer: 0 point: \"hadamard\" kind: \"nan\" }\n"
      "scheduled { step: 5 peer: 0 layer: 1048577 point: \"send\" }");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->faults.scheduled.size(), 2u);
  EXPECT_EQ(spec->faults.scheduled[0], (InjectedFault{.step = 5,
                                                      .peer = 4,
                                                      .layer = 0,
                                                      .point = StepPoint::kHadamard,
                                                      .kind = SoftErrorKind::kNaN}));
  EXPECT_EQ(spec->faults.scheduled[1].layer, kCopiesFaultLayer + 1);
  EXPECT_EQ(spec->faults.scheduled[1].kind, SoftErrorKind::kDense);
  auto message = [&](const std::string& scheduled) {
    auto bad = with("scheduled { step: 5 peer: 1 layer: 0 point: \"send\" }\n" + scheduled);
    EXPECT_FALSE(bad.ok()) << scheduled;
    return bad.status().message();
  };
  EXPECT_EQ(message("scheduled { step: 5 peer: 8 layer: 0 point: \"send\" }"),
            "s.textproto:11: faults.scheduled[1]: step 5, peer 8, layer 0 out of range (steps from "
            "1, peers below 8, layers below 2 or 1048576 + a layer)");
  EXPECT_NE(message("scheduled { step: 5 peer: 1 layer: 2 point: \"send\" }").find("layer 2 out"),
            std::string::npos);
  EXPECT_NE(message("scheduled { step: 0 peer: 1 layer: 0 point: \"send\" }").find("step 0,"),
            std::string::npos);
  EXPECT_NE(message("scheduled { step: 5 peer: 1 layer: 0 point: \"sned\" }")
                .find("s.textproto:11: faults.scheduled[1]: point: "),
            std::string::npos);
  EXPECT_NE(message("scheduled { step: 5 peer: 1 layer: 0 point: \"send\" kind: \"nann\" }")
                .find("faults.scheduled[1]: kind: "),
            std::string::npos);
  EXPECT_EQ(message("scheduled { step: 5 peer: 1 layer: 0 }"),
            "s.textproto:11: faults.scheduled[1]: needs a point");
}

const char kCnn[] = R"(name: "cnn"
peers: 8
model {
  inputs: 784
  layer { type: "conv" filters: 6 kernel: 5 pad: 2 pool: 2 }
  layer { type: "conv" filters: 16 kernel: 5 pool: 2 }
  layer { outputs: 10 activation: "identity" }
}
code { strategy: "genpolydot" conv_k_a: 2 conv_k_b: 3 }
batch: 16
steps: 10
)";

// Convolution layers: shapes flow from the input image through each
// convolution and pooling to the dense layers.
TEST(JobSpec, ConvolutionLayers) {
  auto spec = ParseJobSpec(kCnn, "cnn.textproto");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const auto& layers = spec->model.layers;
  ASSERT_EQ(layers.size(), 3u);
  EXPECT_EQ(layers[0].kind, LayerKind::kConv);
  EXPECT_EQ(layers[0].conv.height, 28);
  EXPECT_EQ(layers[0].outputs, 6 * 14 * 14);
  EXPECT_EQ(layers[1].conv.channels, 6);
  EXPECT_EQ(layers[1].conv.height, 14);
  EXPECT_EQ(layers[1].outputs, 16 * 5 * 5);
  EXPECT_EQ(layers[2].kind, LayerKind::kDense);
  EXPECT_EQ(layers[2].inputs, 400);
  EXPECT_EQ(spec->model.code.k_a, 2);
  EXPECT_EQ(spec->model.code.k_b, 3);
  EXPECT_TRUE(spec->model.fcdcc);
  auto error = [](const std::string& from, const std::string& to) {
    std::string text = kCnn;
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    auto spec = ParseJobSpec(text, "cnn.textproto");
    EXPECT_FALSE(spec.ok()) << to;
    return spec.status().message();
  };
  EXPECT_NE(
      error("kernel: 5 pad: 2", "kernel: 40 pad: 2").find("cnn.textproto:5: model.layer[0]: conv"),
      std::string::npos);
  EXPECT_NE(error("type: \"conv\" filters: 6", "type: \"pool\" filters: 6")
                .find("type must be dense or conv"),
            std::string::npos);
  EXPECT_NE(error("inputs: 784", "inputs: 785").find("must equal inputs (785) for conv layers"),
            std::string::npos);
  EXPECT_NE(error("kernel: 5 pool: 2 }", "kernel: 5 pool: 20 }").find("model.layer[1]"),
            std::string::npos);
  EXPECT_NE(error("conv_k_b: 3", "conv_k_b: 0").find("code.conv_k_b: must be >= 1"),
            std::string::npos);
  EXPECT_NE(
      error("conv_k_b: 3", "conv_code: \"fft\"").find("code.conv_code: must be fcdcc or im2col"),
      std::string::npos);
  // A convolution after a dense layer has no image to work on.
  EXPECT_NE(error("  layer { outputs: 10",
                  "  layer { outputs: 12 }\n  layer { type: \"conv\" filters: 2 kernel: 1 }\n  "
                  "layer { outputs: 10")
                .find("a conv layer cannot follow a dense layer"),
            std::string::npos);
}

}  // namespace job_spec_test
}  // namespace
}  // namespace polyguard

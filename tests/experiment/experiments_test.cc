// Quick versions of the bundled experiments 1-3 (bench/experiments), with
// the measured rates checked against the analytic ones within their
// statistical error; spec errors; resuming an interrupted sweep.
#include "experiment/experiments.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "experiment/kinds.h"
#include "experiment/results.h"
#include "polyguard/data/idx.h"

namespace polyguard::experiment {
namespace {
namespace experiments_test {

std::string TempDir(const std::string& name) {
  std::random_device rd;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("polyguard-exp-" + name + "-" + std::to_string(rd()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

std::vector<std::vector<std::string>> ReadCsv(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> row;
    std::stringstream ss(line);
    std::string item;
    while (std::getline(ss, item, ',')) row.push_back(item);
    rows.push_back(row);
  }
  return rows;
}

// Column index by header name.
size_t Col(const std::vector<std::vector<std::string>>& csv, const std::string& name) {
  for (size_t i = 0; i < csv[0].size(); ++i)
    if (csv[0][i] == name) return i;
  ADD_FAILURE() << "no column " << name;
  return 0;
}

TEST(Experiments, CorrectionMatchesBothModelsAndResumes) {
  const std::string out = TempDir("correction");
  auto spec = ParseExperiment(R"pb(
                                name: "correction"
                                title: "quick"
                                seed: 11
                                correction {
                                  code { strategy: "genpolydot" m: 2 n: 2 d: 1 }
                                  peers: [ 7, 9, 10 ]
                                  trials: 25
                                  shape { rows: 16 inner: 12 cols: 6 }
                                })pb",
                              "quick.textproto");
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto run = RunExperiment(*spec, out);
  ASSERT_TRUE(run.ok()) << run.status();
  const auto csv = ReadCsv(out + "/correction/correction.csv");
  const size_t p_col = Col(csv, "peers"), model = Col(csv, "model"), wrong = Col(csv, "wrong"),
               trials = Col(csv, "trials"), corrected = Col(csv, "corrected"),
               silent = Col(csv, "silent");
  int checked = 0;
  for (size_t i = 1; i < csv.size(); ++i) {
    const int p = std::stoi(csv[i][p_col]), t = std::stoi(csv[i][wrong]), red = p - 5;
    const int bound = csv[i][model] == "probabilistic" ? red - 1 : red / 2;
    SCOPED_TRACE(csv[i][0]);
    EXPECT_EQ(csv[i][silent], "0");  // never a wrong product passed as right
    if (t <= bound) {
      EXPECT_EQ(csv[i][corrected], csv[i][trials]);
    } else if (t == bound + 1) {
      EXPECT_EQ(csv[i][corrected], "0");
    }
    ++checked;
  }
  EXPECT_EQ(checked, 2 * (3 + 5 + 6));
  EXPECT_NE(run->summary.find("| 10 | 5 | 5 | 4 / 4 | 2 / 2 | 0 |"), std::string::npos)
      << run->summary;

  // Interrupted: drop the last rows and cut one short; the rerun redoes only those.
  {
    std::ifstream in(out + "/correction/correction.csv");
    std::stringstream all;
    all << in.rdbuf();
    std::string text = all.str();
    for (int i = 0; i < 4; ++i) text.erase(text.rfind('\n', text.size() - 2) + 1);
    text += "P=10;model=adversarial;wro";  // a partial line
    std::ofstream(out + "/correction/correction.csv", std::ios::trunc) << text;
  }
  auto table = ResultTable::Open(out + "/correction/correction.csv",
                                 {"point", "peers", "threshold", "redundancy", "model", "wrong",
                                  "trials", "corrected", "detected", "silent"});
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->resumed(), checked - 4);
  auto again = RunExperiment(*spec, out);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->summary, run->summary);
  EXPECT_EQ(ReadCsv(out + "/correction/correction.csv").size(), csv.size());
  // A file from another experiment's columns is refused, not mixed.
  EXPECT_EQ(ResultTable::Open(out + "/correction/correction.csv", {"point", "x"}).status().code(),
            StatusCode::kFailedPrecondition);
  std::filesystem::remove_all(out);
}

TEST(Experiments, FailureProbabilityAgreesWithBinomialTailsWithinStatisticalError) {
  const std::string out = TempDir("failure");
  auto spec =
      ParseExperiment(R"pb(
                        name: "failure"
                        title: "quick"
                        seed: 12
                        failure {
                          codes { label: "uncoded" strategy: "uncoded" peers: 8 }
                          codes { label: "rep2" strategy: "replication" replicas: 2 peers: 8 }
                          codes { label: "mds" strategy: "mds" peers: 8 }
                          codes { label: "polydot" strategy: "genpolydot" m: 2 n: 2 d: 1 peers: 8 }
                          codes { label: "lowweight" strategy: "lowweight" k_a: 4 peers: 8 }
                          codes {
                            label: "rotation"
                            strategy: "genpolydot"
                            m: 2
                            n: 1
                            d: 2
                            points: "rotation"
                            peers: 8
                          }
                          error_rates: [ 0.05, 0.2, 0.4 ]
                          trials: 800
                          pattern_trials: 100
                          # Rows divisible by every split: no peer holds only padding (an
                          # error there would not matter, which the closed forms ignore); and
                          # results long enough that generic errors are located (rotation: 4
                          # entries per block per wrong peer).
                          shape { rows: 16 inner: 8 cols: 16 }
                        })pb",
                      "quick.textproto");
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto run = RunExperiment(*spec, out);
  ASSERT_TRUE(run.ok()) << run.status();
  const auto csv = ReadCsv(out + "/failure/failure.csv");
  ASSERT_EQ(csv.size(), 1u + 6 * 3);
  const size_t meas = Col(csv, "measured_failure"), ana = Col(csv, "analytic_failure"),
               trials = Col(csv, "trials");
  for (size_t i = 1; i < csv.size(); ++i) {
    SCOPED_TRACE(csv[i][0]);
    const double m = std::stod(csv[i][meas]), a = std::stod(csv[i][ana]);
    const double n = std::stod(csv[i][trials]);
    // 5 standard deviations of a binomial proportion (plus one count).
    const double sigma = std::sqrt(std::max(a * (1 - a), 1e-12) / n);
    EXPECT_NEAR(m, a, 5 * sigma + 1.0 / n);
  }
  // PolyDot (t = 8 - 5 - 1 = 2) fails far less often than uncoded at eps = 0.05.
  EXPECT_NE(run->summary.find("| polydot |"), std::string::npos);
  std::filesystem::remove_all(out);
}

TEST(Experiments, TolerableEpsMeasuredAgreesWithAnalyticAndPolyDotGains) {
  const std::string out = TempDir("tolerable");
  auto spec = ParseExperiment(R"pb(
                                name: "tolerable"
                                title: "quick"
                                seed: 13
                                tolerable {
                                  peers: [ 8, 12 ]
                                  target_failure: 0.001
                                  pattern_trials: 1000
                                  shape { rows: 12 inner: 8 cols: 4 }
                                })pb",
                              "quick.textproto");
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto run = RunExperiment(*spec, out);
  ASSERT_TRUE(run.ok()) << run.status();
  const auto csv = ReadCsv(out + "/tolerable/tolerable.csv");
  ASSERT_EQ(csv.size(), 1u + 2 * 3);
  const size_t strategy = Col(csv, "strategy"), ana = Col(csv, "eps_analytic"),
               meas = Col(csv, "eps_measured"), p_col = Col(csv, "peers");
  std::map<std::string, double> eps;  // "P/strategy"
  for (size_t i = 1; i < csv.size(); ++i) {
    SCOPED_TRACE(csv[i][0]);
    const double a = std::stod(csv[i][ana]), m = std::stod(csv[i][meas]);
    // Every k-pattern is enumerated here (at most 1000 per k), so the
    // measured f_k are exact and the two agree closely.
    EXPECT_NEAR(m, a, 0.02 * a);
    eps[csv[i][p_col] + "/" + csv[i][strategy]] = a;
  }
  for (const std::string p : {"8", "12"}) {
    EXPECT_GT(eps[p + "/genpolydot"], 3 * eps[p + "/replication"]) << p;
    EXPECT_GT(eps[p + "/genpolydot"], 3 * eps[p + "/mds"]) << p;
  }
  // Analytic PolyDot at P = 8: t = 2, so P(Bin(8, eps) >= 3) = 1e-3.
  EXPECT_NEAR(eps["8/genpolydot"], 0.027, 0.001);
  std::filesystem::remove_all(out);
}

TEST(Experiments, BadSpecsNameTheProblem) {
  auto syntax = ParseExperiment("name: \"x\"\ncorrection { peers: [7 }", "bad.textproto");
  ASSERT_FALSE(syntax.ok());
  EXPECT_NE(syntax.status().message().find("bad.textproto:2:"), std::string::npos)
      << syntax.status();
  for (const auto& [text, word] : std::vector<std::pair<std::string, std::string>>{
           {"name: \"Bad Name\" correction { peers: 7 trials: 1 shape { rows: 1 inner: 1 cols: 1 } "
            "code { strategy: \"genpolydot\" } }",
            "name"},
           {"name: \"x\"", "kind"},
           {"name: \"x\" correction { peers: 7 trials: 1 shape { rows: 1 inner: 1 cols: 1 } code { "
            "strategy: \"magic\" } }",
            "correction.code.strategy"},
           {"name: \"x\" correction { peers: 7 trials: 1 shape { rows: 1 inner: 1 cols: 1 } code { "
            "strategy: \"genpolydot\" points: \"spiral\" } }",
            "correction.code.points"},
           // Every value of the code is checked with the spec, not when the run reaches it.
           {"name: \"x\" correction { peers: 8 trials: 1 shape { rows: 1 inner: 1 cols: 1 } code { "
            "strategy: \"mds\" row_blocks: -3 } }",
            "correction.code.row_blocks"},
           {"name: \"x\" correction { peers: 8 trials: 1 shape { rows: 1 inner: 1 cols: 1 } code { "
            "strategy: \"genpolydot\" wait_for: 6 } }",
            "correction.code.wait_for"},
           {"name: \"x\" failure { codes { strategy: \"uncoded\" peers: 4 } error_rates: 1.5 "
            "trials: 1 shape { rows: 1 inner: 1 cols: 1 } }",
            "failure.error_rates"},
           {"name: \"x\" tolerable { peers: 10 shape { rows: 1 inner: 1 cols: 1 } }",
            "tolerable.peers"},
           {"name: \"x\" training { codes { strategy: \"uncoded\" } batch: 1 steps: 1 eval_every: "
            "1 points: \"cosmic\" }",
            "training.points"},
           {"name: \"x\" stragglers { codes { strategy: \"uncoded\" } steps: 1 shape { rows: 1 "
            "inner: 1 cols: 1 } }",
            "stragglers"},
           {"name: \"x\" training_soak { code { strategy: \"genpolydot\" } batch: 4 steps: 10 "
            "eval_every: 5 error_rate: 2 }",
            "training_soak.error_rate"},
           {"name: \"x\" training_soak { code { strategy: \"genpolydot\" } batch: 4 steps: 10 "
            "eval_every: 5 hidden: 0 }",
            "training_soak.hidden"},
           {"name: \"x\" training_soak { code { strategy: \"genpolydot\" } batch: 4 steps: 10 "
            "eval_every: 5 segment_steps: -1 }",
            "training_soak.segment_steps"},
           {"name: \"x\" training_soak { code { strategy: \"genpolydot\" } batch: 0 steps: 10 "
            "eval_every: 5 }",
            "training_soak"}}) {
    auto s = ParseExperiment(text, "f.textproto");
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find(word), std::string::npos) << s.status();
  }
  EXPECT_EQ(LoadExperiment("/nonexistent/spec.textproto").status().code(), StatusCode::kNotFound);
}

// The training soak, short: faults and fault-free runs on 8 local peer
// processes agree at every step of every segment (the faulty run resumes
// from the fault-free run's state at each segment start), and the summary
// says so.
TEST(Experiments, TrainingSoakComparesEveryStepWithTheFaultFreeRun) {
  const std::string out = TempDir("soak");
  auto spec = ParseExperiment(R"pb(
                                name: "soak"
                                title: "quick"
                                seed: 3
                                training_soak {
                                  code { strategy: "genpolydot" m: 2 n: 2 d: 1 peers: 8 }
                                  hidden: [ 8 ]
                                  features: 6
                                  classes: 3
                                  batch: 4
                                  steps: 120
                                  eval_every: 40
                                  error_rate: 0.01
                                  segment_steps: 40
                                })pb",
                              "quick.textproto");
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto run = RunExperiment(*spec, out);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_NE(run->summary.find("**0 steps whose loss differs"), std::string::npos) << run->summary;
  EXPECT_NE(run->summary.find("in 3 segments of 40 steps"), std::string::npos) << run->summary;
  const auto csv = ReadCsv(out + "/soak/soak.csv");
  ASSERT_EQ(csv.size(), 3u);
  EXPECT_EQ(csv[1][Col(csv, "status")], "ok");
  EXPECT_EQ(csv[2][Col(csv, "status")], "ok");
  EXPECT_EQ(csv[1][Col(csv, "steps")], "120");
  EXPECT_GT(std::stod(csv[2][Col(csv, "faults")]), 0);
  EXPECT_GT(std::stod(csv[2][Col(csv, "wrong_results")]), 0);
  // The faulty run resumed from the fault-free state at steps 40 and 80.
  EXPECT_EQ(csv[2][Col(csv, "resumes")], "2");
  EXPECT_LE(std::stod(csv[2][Col(csv, "state_difference")]), 1e-6);
  const auto segments = ReadCsv(out + "/soak/segments.csv");
  ASSERT_EQ(segments.size(), 4u);
  for (size_t k = 1; k < segments.size(); ++k) {
    SCOPED_TRACE("segment " + segments[k][0]);
    EXPECT_EQ(segments[k][Col(segments, "first_step")], std::to_string(40 * k - 39));
    EXPECT_EQ(segments[k][Col(segments, "last_step")], std::to_string(40 * k));
    EXPECT_EQ(segments[k][Col(segments, "steps_differing")], "0");
    EXPECT_EQ(segments[k][Col(segments, "steps_missing")], "0");
    EXPECT_LE(std::stod(segments[k][Col(segments, "max_relative_difference")]), 1e-6);
    const size_t state_col = Col(segments, "state_difference_at_end");
    const std::string state = state_col < segments[k].size() ? segments[k][state_col] : "";
    if (k < 3) {
      ASSERT_FALSE(state.empty());
      EXPECT_LE(std::stod(state), 1e-6);
    } else {
      EXPECT_TRUE(state.empty());  // no boundary after the last step
    }
  }
  std::filesystem::remove_all(out);
}

// Tiny IDX "digits" (4 x 4 images, 4 classes, the class's pixel lit) as the
// training kind reads them from data_dir.
void WriteDigits(const std::string& dir, const std::string& prefix, int64_t count) {
  IdxArray images{{count, 4, 4}, std::vector<uint8_t>(size_t(count * 16), 0)};
  IdxArray labels{{count}, std::vector<uint8_t>(size_t(count))};
  for (int64_t i = 0; i < count; ++i) {
    labels.data[size_t(i)] = uint8_t(i % 4);
    images.data[size_t(i * 16 + (i % 4) * 5)] = 255;
  }
  ASSERT_TRUE(WriteIdx(dir + "/" + prefix + "-images-idx3-ubyte", images).ok());
  ASSERT_TRUE(WriteIdx(dir + "/" + prefix + "-labels-idx1-ubyte", labels).ok());
}

TEST(Experiments, TrainingEvaluatesEveryCodeAtEveryInterval) {
  const std::string out = TempDir("training");
  WriteDigits(out, "train", 64);
  WriteDigits(out, "t10k", 16);
  const std::string text = R"pb(
    name: "train"
    title: "quick"
    seed: 2
    training {
      codes { label: "uncoded" strategy: "uncoded" peers: 2 }
      codes { label: "gpd" strategy: "genpolydot" m: 2 n: 1 peers: 4 }
      hidden: [ 8 ]
      batch: 4
      steps: 25
      eval_every: 10
      train_samples: 40
      test_samples: 10
      error_rate: 0.02
      learning_rate: 0.1
      data_dir: "DIR"
    }
  )pb";
  auto spec =
      ParseExperiment(text.substr(0, text.find("DIR")) + out + text.substr(text.find("DIR") + 3),
                      "quick.textproto");
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto run = RunExperiment(*spec, out);
  ASSERT_TRUE(run.ok()) << run.status();
  const auto csv = ReadCsv(out + "/train/train.csv");
  std::map<std::string, std::vector<int64_t>> steps;  // evaluations per code
  for (size_t i = 1; i < csv.size(); ++i) {
    const auto& row = csv[i];
    SCOPED_TRACE(row[0]);
    EXPECT_EQ(row[Col(csv, "status")], "ok");
    // 10 test digits: accuracy in tenths.
    const double accuracy = std::stod(row[Col(csv, "test_accuracy")]);
    EXPECT_NEAR(accuracy * 10, std::round(accuracy * 10), 1e-9);
    if (row[0].find(";done") != std::string::npos) {
      EXPECT_EQ(row[Col(csv, "step")], "25");  // the end is evaluated
      if (row[1] == "gpd") {
        EXPECT_GT(std::stod(row[Col(csv, "faults_injected")]), 0);
      }
      continue;
    }
    steps[row[1]].push_back(std::stoll(row[Col(csv, "step")]));
  }
  EXPECT_EQ(steps["uncoded"], (std::vector<int64_t>{0, 10, 20, 25}));
  EXPECT_EQ(steps["gpd"], (std::vector<int64_t>{0, 10, 20, 25}));
  std::filesystem::remove_all(out);
}

// The table of kinds (kinds.cc) has a row for every case of the oneof, named
// as its field: a kind missing from it would be refused as "no kind".
TEST(Experiments, EveryKindOfTheProtoHasARow) {
  const google::protobuf::OneofDescriptor* kinds =
      proto::Experiment::descriptor()->FindOneofByName("kind");
  ASSERT_NE(kinds, nullptr);
  EXPECT_EQ(AllKinds().size(), static_cast<size_t>(kinds->field_count()));
  for (int i = 0; i < kinds->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = kinds->field(i);
    const ExperimentKind* kind =
        FindKind(static_cast<proto::Experiment::KindCase>(field->number()));
    ASSERT_NE(kind, nullptr) << field->name();
    EXPECT_EQ(kind->name, field->name());
    EXPECT_NE(kind->validate, nullptr) << field->name();
    EXPECT_NE(kind->run, nullptr) << field->name();
  }
  EXPECT_EQ(FindKind(proto::Experiment::KIND_NOT_SET), nullptr);
}

// (From the repository root, as the README runs them: paths in them are
// relative to it.)
TEST(Experiments, BundledSpecsParse) {
  const auto was = std::filesystem::current_path();
  std::filesystem::current_path(POLYGUARD_SOURCE_DIR);
  for (const auto& entry : std::filesystem::directory_iterator("bench/experiments")) {
    if (entry.path().extension() != ".textproto") continue;
    auto spec = LoadExperiment(entry.path().string());
    EXPECT_TRUE(spec.ok()) << spec.status();
  }
  std::filesystem::current_path(was);
}

// A peer killed mid-run, three times: every run ends on the same accuracy,
// every step's loss agrees to roundoff, and the figures say what happened.
TEST(Experiments, CrashRecoveryRunsUninterruptedCrashedAndReplaced) {
  const std::string out = TempDir("crash");
  std::ofstream(out + "/job.textproto") << R"pb(
    name: "crashjob"
    peers: 5
    model {
      inputs: 10
      layer { outputs: 12 activation: "relu" }
      layer { outputs: 3 activation: "identity" }
    }
    code { strategy: "genpolydot" m: 2 n: 1 }
    faults { error_rate: 0.01 seed: 4 }
    optimizer { learning_rate: 0.1 momentum: 0.9 }
    data { kind: "synthetic" classes: 3 seed: 2 }
    batch: 6
    steps: 40
    scrub_interval: 5
    snapshot_interval: 5
  )pb";
  auto spec = ParseExperiment("name: \"crash\" crash_recovery { job: \"" + out +
                                  "/job.textproto\" crash_peer: 3 crash_step: 11 "
                                  "timeout_ms: 3000 }",
                              "crash.textproto");
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto run = RunExperiment(*spec, out);
  ASSERT_TRUE(run.ok()) << run.status();
  const auto csv = ReadCsv(out + "/crash/crash.csv");
  std::map<std::string, std::map<std::string, std::string>> done;  // variant: column: value
  std::map<std::string, std::map<int, double>> losses;             // variant: step: loss
  for (size_t i = 1; i < csv.size(); ++i) {
    const auto& row = csv[i];
    if (row[0].find(";done") != std::string::npos) {
      for (size_t c = 0; c < row.size(); ++c) done[row[1]][csv[0][c]] = row[c];
    } else {
      losses[row[1]][std::stoi(row[2])] = std::stod(row[3]);
    }
  }
  ASSERT_EQ(done.size(), 3u);
  const auto& whole = done["uninterrupted"];
  const auto& crash = done["crashed"];
  const auto& replaced = done["crashed+rejoined"];
  for (const auto* d : {&whole, &crash, &replaced}) {
    EXPECT_EQ(d->at("status"), "ok");
    EXPECT_EQ(d->at("accuracy"), whole.at("accuracy"));
  }
  EXPECT_EQ(whole.at("peers_lost"), "0");
  EXPECT_EQ(crash.at("peers_lost"), "1");
  EXPECT_EQ(crash.at("rejoins"), "0");
  EXPECT_GT(std::stoi(crash.at("degraded_steps")), 0);
  EXPECT_EQ(replaced.at("peers_lost"), "1");
  EXPECT_EQ(replaced.at("rejoins"), "1");
  EXPECT_GT(std::stod(replaced.at("rejoin_s")), 0.0);
  EXPECT_GT(std::stod(replaced.at("rebuild_bytes")), 0.0);
  for (const auto& [variant, by_step] : losses) {
    SCOPED_TRACE(variant);
    EXPECT_EQ(by_step.size(), 40u);
    for (const auto& [step, loss] : by_step) {
      const double ref = losses["uninterrupted"].at(step);
      EXPECT_NEAR(loss, ref, 1e-9 * std::abs(ref)) << "step " << step;
    }
  }
  EXPECT_NE(run->summary.find("| rejoin_s | "), std::string::npos) << run->summary;
  std::filesystem::remove_all(out);
}

TEST(Experiments, ReadmeSectionsAreRegeneratedFromSummaries) {
  const std::string out = TempDir("readme");
  std::filesystem::create_directories(out + "/one");
  std::ofstream(out + "/one/summary.md") << "| a | b |\n";
  const std::string readme = out + "/README.md";
  std::ofstream(readme) << "intro\n<!-- results:one -->\nold\n<!-- /results:one -->\n"
                           "<!-- results:two -->\nkept\n<!-- /results:two -->\n";
  ASSERT_TRUE(UpdateReadme(readme, out).ok());
  std::ifstream in(readme);
  std::stringstream all;
  all << in.rdbuf();
  EXPECT_EQ(all.str(),
            "intro\n<!-- results:one -->\n| a | b |\n<!-- /results:one -->\n"
            "<!-- results:two -->\nkept\n<!-- /results:two -->\n");
  std::filesystem::remove_all(out);
}

}  // namespace experiments_test
}  // namespace
}  // namespace polyguard::experiment

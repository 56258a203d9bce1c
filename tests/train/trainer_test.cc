// Trainer: learns on synthetic data, resumes exactly, stops on divergence, schedules.
#include "lib/train/trainer.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "datasets/synthetic.h"
#include "datasets/transforms.h"
#include "lib/models/resnet.h"
#include "lib/runtime/interrupt.h"

namespace mpq::train {
namespace {

using ::testing::HasSubstr;

struct SyntheticData {
  std::unique_ptr<data::InMemoryDataset> train_set, val_set;
  std::unique_ptr<data::DataLoader> train, val;
};

// Trained without augmentation: the synthetic classes are spatial patterns that random
// crops and flips would change.
SyntheticData MakeData(int64_t n_train = 640, int64_t n_val = 200) {
  SyntheticData s;
  data::SyntheticOptions o;
  o.num_examples = n_train;
  o.seed = 5;
  s.train_set = std::move(*data::MakeSynthetic(o));
  o.num_examples = n_val;
  o.stream = 1;
  s.val_set = std::move(*data::MakeSynthetic(o));
  data::LoaderOptions lo;
  lo.batch_size = 64;
  lo.shuffle = true;
  lo.seed = 9;
  lo.num_workers = 0;
  std::vector<int64_t> ti(n_train), vi(n_val);
  for (int64_t i = 0; i < n_train; ++i) ti[i] = i;
  for (int64_t i = 0; i < n_val; ++i) vi[i] = i;
  s.train = std::move(*data::DataLoader::Create(*s.train_set, ti, data::FashionMnistPipelines(32).eval, lo));
  lo.shuffle = false;
  s.val = std::move(*data::DataLoader::Create(*s.val_set, vi, data::FashionMnistPipelines(32).eval, lo));
  return s;
}

std::shared_ptr<models::Model> SmallNet(uint64_t seed) {
  at::manual_seed(seed);
  models::ModelOptions o;
  o.in_channels = 1;
  return models::MakeResNet20(o);
}

TrainOptions Options(int64_t epochs) {
  TrainOptions o;
  o.epochs = epochs;
  o.lr = 0.05;
  o.threads = 1;  // bit-reproducible reductions for the resume comparison
  o.progress = false;
  return o;
}

std::string TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(base ? base : "/tmp") + "/" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

TEST(TrainerTest, LearnsSyntheticClassesWellAboveChance) {
  SyntheticData d = MakeData();
  std::shared_ptr<models::Model> net = SmallNet(1);
  TrainOptions o = Options(4);
  o.lr = 0.1;
  Trainer trainer(*net, *d.train, d.val.get(), o);
  int callbacks = 0;
  trainer.set_epoch_callback([&](const EpochStats&) {
    ++callbacks;
    return absl::OkStatus();
  });
  absl::StatusOr<TrainResult> r = trainer.Run();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->history.size(), 4u);
  EXPECT_EQ(callbacks, 4);
  EXPECT_LT(r->history.back().train_loss, r->history.front().train_loss);
  EXPECT_GT(r->best_val_top1, 50.0);  // chance is 10%
  // The model holds the best epoch's weights: evaluating again reproduces its score.
  absl::StatusOr<EvalResult> again = Evaluate(*net, *d.val);
  ASSERT_TRUE(again.ok());
  EXPECT_NEAR(again->top1, r->best_val_top1, 1e-9);
}

// The epoch's metrics are handed over before its checkpoint is written: when storing
// them fails, training stops and the checkpoint still holds the epoch before, so a
// resume replays the epoch and hands its metrics over again.
TEST(TrainerTest, ACallbackErrorStopsTrainingBeforeTheCheckpointMovesOn) {
  const std::string dir = TempDir("callback_error");
  SyntheticData d = MakeData(128, 64);
  std::shared_ptr<models::Model> net = SmallNet(4);
  TrainOptions o = Options(3);
  o.checkpoint_dir = dir;
  Trainer trainer(*net, *d.train, d.val.get(), o);
  std::vector<int64_t> seen;
  trainer.set_epoch_callback([&](const EpochStats& s) {
    seen.push_back(s.epoch);
    return s.epoch == 1 ? absl::UnavailableError("database locked") : absl::OkStatus();
  });
  absl::StatusOr<TrainResult> r = trainer.Run();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("epoch 2: database locked"));
  EXPECT_EQ(seen, (std::vector<int64_t>{0, 1}));

  SyntheticData d2 = MakeData(128, 64);
  std::shared_ptr<models::Model> again = SmallNet(4);
  Trainer resumed(*again, *d2.train, d2.val.get(), o);
  std::vector<int64_t> replayed;
  resumed.set_epoch_callback([&](const EpochStats& s) {
    replayed.push_back(s.epoch);
    return absl::OkStatus();
  });
  absl::StatusOr<TrainResult> r2 = resumed.Run();
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->resumed_from_epoch, 1);
  EXPECT_EQ(replayed, (std::vector<int64_t>{1, 2}));
}

TEST(TrainerTest, ASignalStopsTrainingAtTheNextStepAndTheRunResumes) {
  const std::string dir = TempDir("interrupted");
  SyntheticData d = MakeData(128, 64);
  std::shared_ptr<models::Model> net = SmallNet(4);
  TrainOptions o = Options(3);
  o.checkpoint_dir = dir;
  Trainer trainer(*net, *d.train, d.val.get(), o);
  trainer.set_epoch_callback([&](const EpochStats& s) {
    if (s.epoch == 0) runtime::SetInterruptForTesting(SIGTERM);  // as if Slurm preempted the job
    return absl::OkStatus();
  });
  absl::StatusOr<TrainResult> r = trainer.Run();
  runtime::SetInterruptForTesting(0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(r.status().message(), HasSubstr("interrupted by SIGTERM during training epoch 2, step 0"));
  SyntheticData d2 = MakeData(128, 64);
  std::shared_ptr<models::Model> again = SmallNet(4);
  Trainer resumed(*again, *d2.train, d2.val.get(), o);
  absl::StatusOr<TrainResult> r2 = resumed.Run();
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->resumed_from_epoch, 1);
}

TEST(TrainerTest, ADamagedCheckpointIsAnErrorNamingIt) {
  const std::string dir = TempDir("damaged");
  SyntheticData d = MakeData(128, 64);
  std::shared_ptr<models::Model> net = SmallNet(5);
  TrainOptions o = Options(2);
  o.checkpoint_dir = dir;
  o.stop_after_epochs = 1;
  ASSERT_TRUE(Trainer(*net, *d.train, d.val.get(), o).Run().ok());
  const std::string last = dir + "/last.pt";
  {
    std::fstream f(last, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(2000);
    f.write("twenty flipped bytes", 20);
  }
  SyntheticData d2 = MakeData(128, 64);
  std::shared_ptr<models::Model> again = SmallNet(5);
  absl::StatusOr<TrainResult> r = Trainer(*again, *d2.train, d2.val.get(), o).Run();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr(last + " fails its checksum"));
  EXPECT_THAT(r.status().message(), HasSubstr("delete it"));
}

TEST(TrainerTest, ResumingFromACheckpointEqualsAnUninterruptedRun) {
  const std::string dir = TempDir("resume");
  SyntheticData d1 = MakeData(256, 64);
  std::shared_ptr<models::Model> straight = SmallNet(2);
  absl::StatusOr<TrainResult> full = Trainer(*straight, *d1.train, d1.val.get(), Options(3)).Run();
  ASSERT_TRUE(full.ok()) << full.status();

  // "Killed" after epoch 1: a first process trains 1 epoch with checkpoints ...
  SyntheticData d2 = MakeData(256, 64);
  std::shared_ptr<models::Model> first = SmallNet(2);
  TrainOptions o = Options(3);
  o.checkpoint_dir = dir;
  o.stop_after_epochs = 1;
  absl::StatusOr<TrainResult> paused = Trainer(*first, *d2.train, d2.val.get(), o).Run();
  ASSERT_TRUE(paused.ok()) << paused.status();
  EXPECT_FALSE(paused->completed);
  o.stop_after_epochs = 0;
  // ... and a fresh process (new model, new initialisation) continues to 3 epochs.
  SyntheticData d3 = MakeData(256, 64);
  std::shared_ptr<models::Model> second = SmallNet(77);
  absl::StatusOr<TrainResult> resumed = Trainer(*second, *d3.train, d3.val.get(), o).Run();
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->resumed_from_epoch, 1);
  EXPECT_TRUE(resumed->completed);
  ASSERT_EQ(resumed->history.size(), 3u);
  for (size_t e = 0; e < 3; ++e) {
    EXPECT_NEAR(resumed->history[e].train_loss, full->history[e].train_loss, 1e-6) << "epoch " << e;
    EXPECT_NEAR(resumed->history[e].val_top1, full->history[e].val_top1, 1e-9) << "epoch " << e;
  }
  EXPECT_EQ(resumed->best_epoch, full->best_epoch);
  const auto a = straight->parameters(), b = second->parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::allclose(a[i], b[i], 1e-5, 1e-6)) << "parameter " << i;
}

TEST(TrainerTest, DivergenceStopsTheRunWithAClearStatus) {
  SyntheticData d = MakeData(256, 64);
  std::shared_ptr<models::Model> net = SmallNet(3);
  TrainOptions o = Options(3);
  o.lr = 1e4;
  o.schedule = Schedule::kConstant;
  absl::StatusOr<TrainResult> r = Trainer(*net, *d.train, d.val.get(), o).Run();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("diverged at epoch"));
}

TEST(TrainerTest, LearningRateSchedules) {
  SyntheticData d = MakeData(64, 64);
  std::shared_ptr<models::Model> net = SmallNet(4);
  TrainOptions o = Options(10);
  o.lr = 1.0;
  o.warmup_epochs = 2;
  Trainer cosine(*net, *d.train, nullptr, o);
  EXPECT_NEAR(cosine.LearningRate(0.5), 0.25, 1e-9);   // warm-up: linear to lr
  EXPECT_NEAR(cosine.LearningRate(2.0), 1.0, 1e-9);    // cosine starts at lr
  EXPECT_NEAR(cosine.LearningRate(6.0), 0.5, 1e-9);    // half-way through the cosine
  EXPECT_NEAR(cosine.LearningRate(10.0), 0.0, 1e-9);
  o.warmup_epochs = 0;
  o.schedule = Schedule::kMultiStep;
  o.milestones = {3, 6};
  Trainer multistep(*net, *d.train, nullptr, o);
  EXPECT_NEAR(multistep.LearningRate(2.9), 1.0, 1e-12);
  EXPECT_NEAR(multistep.LearningRate(3.0), 0.1, 1e-12);
  EXPECT_NEAR(multistep.LearningRate(7.0), 0.01, 1e-12);
  o.schedule = Schedule::kStep;
  o.step_size = 4;
  Trainer step(*net, *d.train, nullptr, o);
  EXPECT_NEAR(step.LearningRate(8.5), 0.01, 1e-12);
}

TEST(TrainerTest, BadOptionsAreErrors) {
  SyntheticData d = MakeData(64, 64);
  std::shared_ptr<models::Model> net = SmallNet(5);
  TrainOptions o = Options(0);
  EXPECT_EQ(Trainer(*net, *d.train, nullptr, o).Run().status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mpq::train

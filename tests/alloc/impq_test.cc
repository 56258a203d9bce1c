// IMPQ's iterative loop: points reported per iteration, stopping rules, and a run paused
// in the middle of an iteration's fine-tuning that resumes to exactly the uninterrupted
// result.
#include "lib/alloc/impq.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "lib/alloc/metric_names.h"
#include "lib/alloc/uniform.h"
#include "lib/train/trainer.h"
#include "tests/alloc/tiny_net.h"

namespace mpq::alloc {
namespace {

using testing::Data;
using testing::MakeData;
using testing::TempDir;
using testing::TinyNet;

// A 4-bit TinyNet trained for 2 epochs (the IMPQ starting point), same for every call.
std::shared_ptr<TinyNet> Pretrained(Data& d, nn::ActQuantizer act = nn::ActQuantizer::kNone, int64_t act_bits = 32) {
  at::manual_seed(21);
  testing::TinyNetOptions o;
  o.weight_bits = 4;
  o.act = act;
  o.act_bits = act_bits;
  auto net = std::make_shared<TinyNet>(o);
  train::TrainOptions to;
  to.epochs = 2;
  to.lr = 0.05;
  to.threads = 1;
  to.progress = false;
  train::Trainer t(*net, *d.train, d.val.get(), to);
  EXPECT_TRUE(t.Run().ok());
  return net;
}

struct Recorded {
  std::vector<AllocationPoint> points;
};

AllocatorContext Context(TinyNet& net, Data& d, const std::string& dir, Recorded* rec) {
  AllocatorContext c;
  c.model = &net;
  c.train = d.train.get();
  c.validation = d.val.get();
  c.calibration = d.calibration.get();
  c.training.threads = 1;  // bit-reproducible, for the resume comparison
  c.training.progress = false;
  c.training.lr = 0.05;
  c.input_shape = {1, 1, 32, 32};
  c.state_dir = dir;
  c.on_point = [rec](const AllocationPoint& p) {
    rec->points.push_back(p);
    return absl::OkStatus();
  };
  return c;
}

ImpqOptions Options() {
  ImpqOptions o;
  o.weight_schedule = {{0, 6}, {1, 3}};
  o.finetune_epochs = 2;
  o.finetune_lr = 0.01;
  o.max_iterations = 3;
  return o;
}

TEST(ImpqTest, ReportsEveryIterationAndLowersBits) {
  Data d = MakeData();
  std::shared_ptr<TinyNet> net = Pretrained(d);
  Recorded rec;
  AllocatorContext c = Context(*net, d, TempDir("impq_points"), &rec);
  absl::StatusOr<AllocatorResult> r = ImpqAllocator(Options()).Run(c);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->completed);
  ASSERT_EQ(rec.points.size(), 4u);  // start + 3 iterations
  EXPECT_EQ(r->final_point, 3);
  EXPECT_NE(r->stop_reason.find("max_iterations"), std::string::npos) << r->stop_reason;
  // 15 weight groups at 4 bits; 6 + 3 + 3 lose one bit each (all distinct groups or
  // repeated ones): the bit sum falls by exactly 12.
  auto bit_sum = [](const Allocation& a) {
    int64_t s = 0;
    for (const GroupBits& g : a.groups) s += g.bits;
    return s;
  };
  EXPECT_EQ(bit_sum(rec.points[0].allocation), 15 * 4);
  EXPECT_EQ(bit_sum(rec.points[1].allocation), 15 * 4 - 6);
  EXPECT_EQ(bit_sum(rec.points[3].allocation), 15 * 4 - 12);
  EXPECT_LT(rec.points[3].cost.bw_eff, rec.points[0].cost.bw_eff);
  EXPECT_EQ(bit_sum(r->allocation), bit_sum(rec.points[3].allocation));
  for (size_t i = 0; i < rec.points.size(); ++i) EXPECT_EQ(rec.points[i].index, static_cast<int64_t>(i));
  // Calling Run again on a finished state does nothing more.
  absl::StatusOr<AllocatorResult> again = ImpqAllocator(Options()).Run(c);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(rec.points.size(), 4u);
  EXPECT_EQ(bit_sum(again->allocation), bit_sum(r->allocation));
}

TEST(ImpqTest, StopsAtTargetEffectiveBits) {
  Data d = MakeData();
  std::shared_ptr<TinyNet> net = Pretrained(d);
  Recorded rec;
  AllocatorContext c = Context(*net, d, TempDir("impq_target"), &rec);
  ImpqOptions o = Options();
  o.weight_schedule = {{0, 15}};  // every group loses a bit per iteration: 4 -> 3 -> 2
  o.finetune_epochs = 1;
  o.max_iterations = 10;
  o.target_bw_eff = 2.5;
  absl::StatusOr<AllocatorResult> r = ImpqAllocator(o).Run(c);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->final_point, 2);
  EXPECT_NEAR(rec.points.back().cost.bw_eff, 2.0, 1e-9);
  EXPECT_NE(r->stop_reason.find("B_w,eff"), std::string::npos) << r->stop_reason;
}

TEST(ImpqTest, ValidationDropRevertsToThePreviousIteration) {
  Data d = MakeData(320, 120, 40, 16, /*noise_std=*/160);  // harder: accuracy well below 100%
  // Weights and activations (PACT) start at 4 bits and lose a bit each per iteration,
  // down to 1: 1-bit activations lose most of the signal.
  std::shared_ptr<TinyNet> net = Pretrained(d, nn::ActQuantizer::kPact, 4);
  Recorded rec;
  AllocatorContext c = Context(*net, d, TempDir("impq_drop"), &rec);
  ImpqOptions o = Options();
  o.weight_schedule = {{0, 15}};
  o.act_schedule = {{0, 2}};
  o.min_act_bits = 1;
  o.finetune_epochs = 1;
  o.finetune_lr = 1e-6;  // (almost) no recovery
  o.max_iterations = 3;
  o.max_val_drop = 0;
  absl::StatusOr<AllocatorResult> r = ImpqAllocator(o).Run(c);
  ASSERT_TRUE(r.ok()) << r.status();
  // The first iteration whose validation accuracy fell below the start is rejected.
  int64_t first_drop = -1;
  for (size_t i = 1; i < rec.points.size(); ++i) {
    if (rec.points[i].val_top1 < rec.points[0].val_top1) {
      first_drop = static_cast<int64_t>(i);
      break;
    }
  }
  std::string vals;
  for (const AllocationPoint& p : rec.points) vals += std::to_string(p.val_top1) + " ";
  ASSERT_GT(first_drop, 0) << "accuracy never fell; the test needs a harsher reduction: " << vals;
  EXPECT_EQ(r->final_point, first_drop - 1);
  EXPECT_EQ(static_cast<int64_t>(rec.points.size()), first_drop + 1);
  const Allocation& kept = rec.points[first_drop - 1].allocation;
  ASSERT_EQ(r->allocation.groups.size(), kept.groups.size());
  for (size_t i = 0; i < kept.groups.size(); ++i) EXPECT_EQ(r->allocation.groups[i].bits, kept.groups[i].bits);
  absl::StatusOr<train::EvalResult> v = train::Evaluate(*net, *d.val);
  EXPECT_DOUBLE_EQ(v->top1, rec.points[first_drop - 1].val_top1);  // the model was reverted too
}

TEST(ImpqTest, ResumesInTheMiddleOfAnIteration) {
  Data d = MakeData();
  Recorded full_rec;
  std::shared_ptr<TinyNet> full = Pretrained(d);
  AllocatorContext c_full = Context(*full, d, TempDir("impq_full"), &full_rec);
  absl::StatusOr<AllocatorResult> uninterrupted = ImpqAllocator(Options()).Run(c_full);
  ASSERT_TRUE(uninterrupted.ok()) << uninterrupted.status();

  const std::string dir = TempDir("impq_paused");
  Recorded rec;
  {
    std::shared_ptr<TinyNet> net = Pretrained(d);
    AllocatorContext c = Context(*net, d, dir, &rec);
    ImpqOptions o = Options();
    o.stop_after_finetune_epochs = 3;  // iteration 1's two epochs, then one of iteration 2's
    absl::StatusOr<AllocatorResult> paused = ImpqAllocator(o).Run(c);
    ASSERT_TRUE(paused.ok()) << paused.status();
    EXPECT_FALSE(paused->completed);
    EXPECT_EQ(rec.points.size(), 2u);  // start + iteration 1
    EXPECT_TRUE(std::filesystem::exists(dir + "/iter_2/reduced.pt"));
    EXPECT_TRUE(std::filesystem::exists(dir + "/iter_2/last.pt"));
  }
  // A new process: a freshly built model (different initial weights) resumes from the state.
  at::manual_seed(999);
  testing::TinyNetOptions to;
  to.weight_bits = 4;
  to.act = nn::ActQuantizer::kNone;
  auto fresh_net = std::make_shared<TinyNet>(to);
  TinyNet& fresh = *fresh_net;
  AllocatorContext c = Context(fresh, d, dir, &rec);
  absl::StatusOr<AllocatorResult> resumed = ImpqAllocator(Options()).Run(c);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_TRUE(resumed->completed);
  ASSERT_EQ(rec.points.size(), full_rec.points.size());
  for (size_t i = 0; i < rec.points.size(); ++i) {
    EXPECT_EQ(rec.points[i].val_top1, full_rec.points[i].val_top1) << "point " << i;
    ASSERT_EQ(rec.points[i].allocation.groups.size(), full_rec.points[i].allocation.groups.size());
    for (size_t g = 0; g < rec.points[i].allocation.groups.size(); ++g) {
      EXPECT_EQ(rec.points[i].allocation.groups[g].bits, full_rec.points[i].allocation.groups[g].bits);
    }
  }
  EXPECT_TRUE(at::equal(fresh.conv1->weight, full->conv1->weight));
  EXPECT_TRUE(at::equal(fresh.fc->weight, full->fc->weight));
}

// budget_bits: the budget is the start's BitOps with every quantized group at 3 bits
// (TinyNet: every layer's weights at 4 bits, float activations, so 3/4 of the start);
// lowering all 15 groups reaches it after one iteration, which is kept. spend_budget then
// fine-tunes that allocation for the 2 unused iterations' epochs, as a last point.
ImpqOptions BudgetOptions() {
  ImpqOptions o = Options();
  o.weight_schedule = {{0, 15}};
  o.finetune_epochs = 1;
  o.max_iterations = 3;
  o.budget_bits = 3;
  return o;
}

TEST(ImpqTest, StopsAtTheBudgetBitsAndKeepsThatIteration) {
  Data d = MakeData();
  std::shared_ptr<TinyNet> net = Pretrained(d);
  Recorded rec;
  AllocatorContext c = Context(*net, d, TempDir("impq_budget"), &rec);
  absl::StatusOr<AllocatorResult> r = ImpqAllocator(BudgetOptions()).Run(c);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(rec.points.size(), 2u);  // start + iteration 1
  EXPECT_EQ(r->final_point, 1);
  const nlohmann::json details = nlohmann::json::parse(r->details_json);
  const double target = details["target_bitops"].get<double>();
  EXPECT_NEAR(target, 0.75 * rec.points[0].cost.bitops, 1e-9 * target);
  EXPECT_LE(rec.points[1].cost.bitops, target);
  EXPECT_GT(rec.points[0].cost.bitops, target);
  for (const GroupBits& g : r->allocation.groups) EXPECT_EQ(g.bits, 3);
  EXPECT_NE(r->stop_reason.find("BitOps"), std::string::npos) << r->stop_reason;
  // One sensitivity pass: every calibration example against each other class (10 classes).
  EXPECT_DOUBLE_EQ(details["sensitivity_example_passes"].get<double>(), 40.0 * 9);
  EXPECT_DOUBLE_EQ(details[names::kDetailsSensitivityEpochs].get<double>(),
                   40.0 * 9 / static_cast<double>(d.train->num_examples()));
}

TEST(ImpqTest, SpendBudgetFineTunesTheKeptAllocationForTheUnusedEpochs) {
  Data d = MakeData();
  std::shared_ptr<TinyNet> net = Pretrained(d);
  Recorded rec;
  AllocatorContext c = Context(*net, d, TempDir("impq_spend"), &rec);
  int64_t epochs = 0;
  c.on_epoch = [&](const TrainingProgress&) {
    ++epochs;
    return absl::OkStatus();
  };
  ImpqOptions o = BudgetOptions();
  o.spend_budget = true;
  absl::StatusOr<AllocatorResult> r = ImpqAllocator(o).Run(c);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(epochs, o.max_iterations * o.finetune_epochs);  // 1 iteration + 2 spent: the whole budget
  ASSERT_EQ(rec.points.size(), 3u);                          // start, iteration 1, the spent epochs
  EXPECT_EQ(r->final_point, 2);
  EXPECT_NE(r->stop_reason.find("2 unused epochs"), std::string::npos) << r->stop_reason;
  for (size_t g = 0; g < r->allocation.groups.size(); ++g) {
    EXPECT_EQ(rec.points[2].allocation.groups[g].bits, rec.points[1].allocation.groups[g].bits);
  }
  // Finished: calling Run again spends nothing more.
  absl::StatusOr<AllocatorResult> again = ImpqAllocator(o).Run(c);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(rec.points.size(), 3u);
  EXPECT_EQ(epochs, 3);

  // Paused in the middle of the spent epochs, resumed by a new process (other initial
  // weights): the same points and weights as the uninterrupted run.
  const std::string dir = TempDir("impq_spend_paused");
  Recorded paused_rec;
  {
    std::shared_ptr<TinyNet> p = Pretrained(d);
    AllocatorContext pc = Context(*p, d, dir, &paused_rec);
    ImpqOptions po = o;
    po.stop_after_finetune_epochs = 2;  // iteration 1's epoch, then one of the two spent
    absl::StatusOr<AllocatorResult> paused = ImpqAllocator(po).Run(pc);
    ASSERT_TRUE(paused.ok()) << paused.status();
    EXPECT_FALSE(paused->completed);
    EXPECT_EQ(paused_rec.points.size(), 2u);
  }
  at::manual_seed(999);
  testing::TinyNetOptions to;
  to.weight_bits = 4;
  to.act = nn::ActQuantizer::kNone;  // as Pretrained()
  auto fresh = std::make_shared<TinyNet>(to);
  AllocatorContext fc = Context(*fresh, d, dir, &paused_rec);
  absl::StatusOr<AllocatorResult> resumed = ImpqAllocator(o).Run(fc);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_TRUE(resumed->completed);
  ASSERT_EQ(paused_rec.points.size(), rec.points.size());
  for (size_t i = 0; i < rec.points.size(); ++i) {
    EXPECT_EQ(paused_rec.points[i].val_top1, rec.points[i].val_top1) << "point " << i;
  }
  EXPECT_TRUE(at::equal(fresh->conv1->weight, net->conv1->weight));
  EXPECT_TRUE(at::equal(fresh->fc->weight, net->fc->weight));
}

TEST(ImpqTest, StartWithinTheBudgetIsKeptAsIs) {
  Data d = MakeData();
  std::shared_ptr<TinyNet> net = Pretrained(d);
  Recorded rec;
  AllocatorContext c = Context(*net, d, TempDir("impq_within"), &rec);
  ImpqOptions o = BudgetOptions();
  o.budget_bits = 4;  // the start's own bits
  absl::StatusOr<AllocatorResult> r = ImpqAllocator(o).Run(c);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(rec.points.size(), 1u);
  EXPECT_EQ(r->final_point, 0);
  EXPECT_NE(r->stop_reason.find("within the budget"), std::string::npos) << r->stop_reason;
  for (const GroupBits& g : r->allocation.groups) EXPECT_EQ(g.bits, 4);
}

TEST(ImpqTest, UniformAllocatorReportsTheBuiltAllocation) {
  Data d = MakeData();
  std::shared_ptr<TinyNet> net = Pretrained(d);
  Recorded rec;
  AllocatorContext c = Context(*net, d, "", &rec);
  absl::StatusOr<AllocatorResult> r = UniformAllocator().Run(c);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(rec.points.size(), 1u);
  for (const GroupBits& g : r->allocation.groups) EXPECT_EQ(g.bits, 4);
  EXPECT_NEAR(rec.points[0].cost.bw_eff, 4.0, 1e-9);
}

TEST(ImpqTest, BadOptionsAreClearErrors) {
  Data d = MakeData(64, 16, 16, 8);
  std::shared_ptr<TinyNet> net = Pretrained(d);
  Recorded rec;
  AllocatorContext c = Context(*net, d, TempDir("impq_bad"), &rec);
  ImpqOptions o = Options();
  o.min_weight_bits = 0;
  absl::StatusOr<AllocatorResult> r = ImpqAllocator(o).Run(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("bit floors"), std::string::npos) << r.status();
  c.validation = nullptr;
  o = Options();
  o.max_val_drop = 1;
  r = ImpqAllocator(o).Run(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("validation"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace mpq::alloc

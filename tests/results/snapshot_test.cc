// Results snapshots: export -> import into an empty database -> export gives the same
// bytes and the same rows; importing twice writes nothing; a finished run replaces its
// own unfinished copy; ids are kept when free; malformed snapshots are refused with the
// file, run and field named, before anything is written.
#include "results/snapshot.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace mpq::results {
namespace {

using ::testing::HasSubstr;

std::string FreshPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(dir ? dir : "/tmp") + "/" + name;
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  return path;
}

std::unique_ptr<ResultStore> OpenOrDie(const std::string& path) {
  absl::StatusOr<std::unique_ptr<ResultStore>> s = ResultStore::Open(path);
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(*s);
}

NewRun SomeRun(const std::string& name, const std::string& hash, const std::string& spec_json) {
  NewRun r;
  r.name = name;
  r.spec_json = spec_json;
  r.spec_hash = hash;
  r.code_version = "abc1234";
  r.seed = 7;
  r.host = "host";
  r.device = "cpu (2 threads)";
  r.data_fingerprint = "0123456789abcdef";
  return r;
}

// A database with a finished run (metrics, two allocation points, a result with some
// fields unset), a failed run, a still-running run and a second finished run whose spec
// is not canonical JSON.
void Fill(ResultStore& store) {
  absl::StatusOr<int64_t> a = store.CreateRun(SomeRun("impq_a", "h1", R"({"lr":0.1,"model":"resnet20"})"));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(store.AddMetrics(*a, {{0, 0.5, "train_loss", 1.25}, {1, 1.0, "train_loss", 0.3333333333333333},
                                    {1, 1.0, "val_top1", 81.2}})
                  .ok());
  ASSERT_TRUE(store.AddAllocation(*a, 0, {{"conv1", true, 0, 8}, {"conv1", true, 1, 4}, {"fc", false, 0, 3}}).ok());
  ASSERT_TRUE(store.AddAllocation(*a, 1, {{"conv1", true, 0, 2}, {"conv1", true, 1, 32}, {"fc", false, 0, 1}}).ok());
  ASSERT_TRUE(store.AddCheckpoint(*a, 1, "/somewhere/ckpt-1.pt").ok());
  FinalResult ra;
  ra.dataset = "fashion_mnist";
  ra.test_top1 = 90.12345678901234;
  ra.val_top1 = 89.5;
  ra.bitops = 1.5e9;
  ra.bw_eff = 3.25;
  ra.memory_weight_kb = 70.04;
  ra.extra_json = R"({"best_epoch": 3})";  // not canonical: kept as a string
  ASSERT_TRUE(store.FinishRun(*a, ra).ok());

  absl::StatusOr<int64_t> b = store.CreateRun(SomeRun("bad", "h2", "{}"));
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(store.MarkRun(*b, RunStatus::kFailed, "boom").ok());
  absl::StatusOr<int64_t> c = store.CreateRun(SomeRun("half", "h3", "{}"));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(store.AddMetrics(*c, {{0, 1.0, "train_loss", 2.0}}).ok());

  absl::StatusOr<int64_t> d = store.CreateRun(SomeRun("uhlich_b", "h4", R"({ "model" : "resnet20" })"));
  ASSERT_TRUE(d.ok());
  FinalResult rd;
  rd.dataset = "synthetic";
  rd.test_top1 = 10.0;
  ASSERT_TRUE(store.FinishRun(*d, rd).ok());
}

TEST(SnapshotTest, RoundTripGivesTheSameBytesAndRows) {
  const std::string src_path = FreshPath("src.db"), dst_path = FreshPath("dst.db");
  auto src = OpenOrDie(src_path);
  Fill(*src);
  int written = 0;
  absl::StatusOr<std::string> text = ExportSnapshot(*src, &written);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(written, 2);  // the finished runs only
  EXPECT_THAT(*text, Not(HasSubstr("\"bad\"")));
  EXPECT_THAT(*text, Not(HasSubstr("\"half\"")));
  EXPECT_THAT(*text, Not(HasSubstr("ckpt-1.pt")));  // checkpoints stay on their machine
  // One record per line: each metric and each allocation row on its own.
  EXPECT_THAT(*text, HasSubstr("\n  [\"train_loss\",1,1.0,0.3333333333333333,"));
  EXPECT_THAT(*text, HasSubstr("\n  [1,\"conv1\",\"weight\",1,32]"));
  EXPECT_THAT(*text, HasSubstr("\"spec\":{\"lr\":0.1,\"model\":\"resnet20\"}"));

  auto dst = OpenOrDie(dst_path);
  absl::StatusOr<SnapshotImport> imported = ImportSnapshot(*dst, *text, "mem");
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->inserted, 2);
  absl::StatusOr<std::string> again = ExportSnapshot(*dst);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *text);

  // Field by field: the run keeps its id, its exact spec text, times and order.
  for (int64_t id : {int64_t{1}, int64_t{4}}) {
    absl::StatusOr<RunExport> want = src->ExportRun(id), got = dst->ExportRun(id);
    ASSERT_TRUE(want.ok() && got.ok()) << id;
    EXPECT_EQ(got->run.name, want->run.name);
    EXPECT_EQ(got->run.spec_json, want->run.spec_json);
    EXPECT_EQ(got->run.spec_hash, want->run.spec_hash);
    EXPECT_EQ(got->run.created_at, want->run.created_at);
    EXPECT_EQ(got->run.finished_at, want->run.finished_at);
    EXPECT_EQ(got->run.data_fingerprint, want->run.data_fingerprint);
    EXPECT_EQ(got->run.status, "finished");
    ASSERT_TRUE(got->result && want->result);
    EXPECT_EQ(got->result->test_top1, want->result->test_top1);
    EXPECT_EQ(got->result->test_top5, std::nullopt);
    EXPECT_EQ(got->result->memory_weight_kb, want->result->memory_weight_kb);
    EXPECT_EQ(got->result->extra_json, want->result->extra_json);
    ASSERT_EQ(got->metrics.size(), want->metrics.size());
    for (size_t i = 0; i < got->metrics.size(); ++i) {
      EXPECT_EQ(got->metrics[i].metric.name, want->metrics[i].metric.name);
      EXPECT_EQ(got->metrics[i].metric.value, want->metrics[i].metric.value);
      EXPECT_EQ(got->metrics[i].wall_time, want->metrics[i].wall_time);
    }
    ASSERT_EQ(got->allocations.size(), want->allocations.size());
    for (size_t i = 0; i < got->allocations.size(); ++i) {
      ASSERT_EQ(got->allocations[i].second.size(), want->allocations[i].second.size());
      for (size_t k = 0; k < got->allocations[i].second.size(); ++k) {
        EXPECT_EQ(got->allocations[i].second[k].layer, want->allocations[i].second[k].layer);
        EXPECT_EQ(got->allocations[i].second[k].bits, want->allocations[i].second[k].bits);
      }
    }
  }
  EXPECT_EQ(src->GetRun(4)->spec_json, R"({ "model" : "resnet20" })");
  EXPECT_EQ(dst->GetRun(4)->spec_json, R"({ "model" : "resnet20" })");
}

TEST(SnapshotTest, ImportingTwiceWritesNothing) {
  auto src = OpenOrDie(FreshPath("twice_src.db"));
  Fill(*src);
  const std::string path = FreshPath("twice.json");
  ASSERT_TRUE(ExportSnapshotFile(*src, path).ok());
  auto dst = OpenOrDie(FreshPath("twice_dst.db"));
  ASSERT_TRUE(ImportSnapshotFile(*dst, path).ok());
  absl::StatusOr<SnapshotImport> second = ImportSnapshotFile(*dst, path);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->inserted, 0);
  EXPECT_EQ(second->already_present, 2);
  EXPECT_EQ(dst->ListRuns()->size(), 2u);
  EXPECT_EQ(dst->GetMetrics(1)->size(), 3u);
}

TEST(SnapshotTest, TakenIdsGetNewOnesAndTheRunIsStillRecognised) {
  auto src = OpenOrDie(FreshPath("ids_src.db"));
  Fill(*src);
  absl::StatusOr<std::string> text = ExportSnapshot(*src);
  ASSERT_TRUE(text.ok());
  auto dst = OpenOrDie(FreshPath("ids_dst.db"));
  absl::StatusOr<int64_t> mine = dst->CreateRun(SomeRun("mine", "other", "{}"));  // takes id 1
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(*mine, 1);
  ASSERT_TRUE(ImportSnapshot(*dst, *text, "mem").ok());
  EXPECT_EQ(dst->GetRun(1)->name, "mine");
  EXPECT_EQ(dst->GetRun(4)->name, "uhlich_b");  // free: kept
  EXPECT_EQ(dst->GetRun(2)->name, "impq_a");    // taken: the next free id
  absl::StatusOr<SnapshotImport> again = ImportSnapshot(*dst, *text, "mem");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->already_present, 2);
  EXPECT_EQ(dst->ListRuns()->size(), 3u);
}

TEST(SnapshotTest, AFinishedRunReplacesItsUnfinishedCopy) {
  // The same run seen twice: a copy of the database taken while it ran, then the
  // finished run imported into that copy (a shard merged after the job resumed).
  const std::string path = FreshPath("live.db"), copy = FreshPath("copy.db");
  int64_t id = 0;
  {
    auto store = OpenOrDie(path);
    absl::StatusOr<int64_t> r = store->CreateRun(SomeRun("resumed", "h9", "{}"));
    ASSERT_TRUE(r.ok());
    id = *r;
    ASSERT_TRUE(store->AddMetrics(id, {{0, 1.0, "train_loss", 3.0}}).ok());
    ASSERT_TRUE(store->AddAllocation(id, 0, {{"conv1", true, 0, 8}}).ok());
  }
  std::filesystem::copy_file(path, copy);
  auto store = OpenOrDie(path);
  ASSERT_TRUE(store->AddMetrics(id, {{0, 1.0, "train_loss", 2.5}, {1, 2.0, "train_loss", 1.5}}).ok());
  ASSERT_TRUE(store->AddAllocation(id, 0, {{"conv1", true, 0, 4}}).ok());
  FinalResult f;
  f.dataset = "synthetic";
  f.test_top1 = 55.0;
  ASSERT_TRUE(store->FinishRun(id, f).ok());
  absl::StatusOr<std::string> text = ExportSnapshot(*store);
  ASSERT_TRUE(text.ok());

  auto old = OpenOrDie(copy);
  ASSERT_TRUE(old->AddCheckpoint(id, 0, "/here/ckpt-0.pt").ok());
  absl::StatusOr<SnapshotImport> imported = ImportSnapshot(*old, *text, "mem");
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->updated, 1);
  EXPECT_EQ(old->ListRuns()->size(), 1u);
  EXPECT_EQ(old->GetRun(id)->status, "finished");
  EXPECT_EQ((*old->GetResult(id))->test_top1, 55.0);
  ASSERT_EQ(old->GetMetrics(id)->size(), 2u);
  EXPECT_EQ((*old->GetMetrics(id))[0].value, 2.5);
  EXPECT_EQ((*old->GetAllocation(id, 0))[0].bits, 4);
  EXPECT_EQ(*ExportSnapshot(*old), *text);
}

TEST(SnapshotTest, MalformedSnapshotsAreRefusedBeforeAnythingIsWritten) {
  auto src = OpenOrDie(FreshPath("bad_src.db"));
  Fill(*src);
  const std::string good = *ExportSnapshot(*src);
  auto dst = OpenOrDie(FreshPath("bad_dst.db"));
  struct Case {
    std::string text, expect;
  };
  // missing_hash breaks the second run: the first must not be imported either.
  const std::string second_bits_bad = absl::StrReplaceAll(good, {{"[1,\"conv1\",\"weight\",1,32]", "[1,\"conv1\",\"weight\",1,33]"}});
  const std::string second_kind_bad = absl::StrReplaceAll(good, {{"[0,\"fc\",\"activation\",0,3]", "[0,\"fc\",\"act\",0,3]"}});
  const std::string missing_hash = absl::StrReplaceAll(good, {{"\"spec_hash\":\"h4\",", ""}});
  const std::string running = absl::StrReplaceAll(good, {{"\"status\":\"finished\"", "\"status\":\"running\""}});
  const std::string metric_bad = absl::StrReplaceAll(good, {{"[\"val_top1\",1,1.0,81.2,", "[\"val_top1\",1,1.0,null,"}});
  for (const Case& c : std::vector<Case>{
           {"not json", "snapshot f.json is not valid JSON"},
           {R"({"format": "other", "version": 1, "runs": []})", "\"format\" is not \"mpqbench-results-snapshot\""},
           {R"({"format": "mpqbench-results-snapshot", "version": 2, "runs": []})", "version 2 is newer"},
           {R"({"format": "mpqbench-results-snapshot", "version": 1})", "\"runs\" missing"},
           {second_bits_bad, "runs[0] (run 1): allocations[4]: 33 bits; expected 1..32"},
           {second_kind_bad, "allocations[2]: kind 'act'; expected weight or activation"},
           {missing_hash, "runs[1] (run 4): spec_hash: missing"},
           {running, "run.status: 'running'; a snapshot holds finished runs only"},
           {metric_bad, "metrics[2]: expected [name, step, epoch, value, wall time], got [\"val_top1\",1,1.0,null,"},
       }) {
    absl::StatusOr<SnapshotImport> r = ImportSnapshot(*dst, c.text, "f.json");
    ASSERT_FALSE(r.ok()) << c.expect;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.expect));
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("f.json"));
    EXPECT_TRUE(dst->ListRuns()->empty()) << c.expect;
  }
  absl::StatusOr<SnapshotImport> missing = ImportSnapshotFile(*dst, FreshPath("nope.json"));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("nope.json: cannot read it"));
}

TEST(SnapshotTest, TheFileIsWrittenWithItsDirectory) {
  auto src = OpenOrDie(FreshPath("file_src.db"));
  Fill(*src);
  const std::string dir = FreshPath("published");
  std::filesystem::remove_all(dir);
  int runs = 0;
  ASSERT_TRUE(ExportSnapshotFile(*src, dir + "/snapshot.json", &runs).ok());
  EXPECT_EQ(runs, 2);
  std::ifstream in(dir + "/snapshot.json");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, *ExportSnapshot(*src));
  EXPECT_FALSE(std::filesystem::exists(dir + "/snapshot.json.tmp"));
}

// A sweep's job writes its own shard; merging folds it into the main database, runs of
// any status, again and again as the job progresses, never duplicating a run.
TEST(SnapshotTest, MergingAShardTwiceOrAfterItProgressedNeverDuplicates) {
  const std::string shard_path = FreshPath("shard.db"), old_copy = FreshPath("shard_old.db");
  int64_t done = 0, resumed = 0;
  {
    auto shard = OpenOrDie(shard_path);
    done = *shard->CreateRun(SomeRun("a", "ha", "{}"));
    FinalResult f;
    f.dataset = "synthetic";
    f.test_top1 = 50.0;
    ASSERT_TRUE(shard->FinishRun(done, f).ok());
    resumed = *shard->CreateRun(SomeRun("b", "hb", "{}"));
    ASSERT_TRUE(shard->AddMetrics(resumed, {{0, 1.0, "train_loss", 2.0}}).ok());
    ASSERT_TRUE(shard->MarkRun(resumed, RunStatus::kInterrupted, "SIGTERM").ok());
  }
  std::filesystem::copy_file(shard_path, old_copy);
  auto main_db = OpenOrDie(FreshPath("main.db"));
  {
    auto shard = OpenOrDie(shard_path);
    absl::StatusOr<SnapshotImport> m = MergeDatabase(*main_db, *shard);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->inserted, 2);
    EXPECT_EQ(main_db->GetRun(resumed)->status, "interrupted");
    EXPECT_EQ(main_db->GetRun(resumed)->error, "SIGTERM");
    m = MergeDatabase(*main_db, *shard);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->already_present, 2);
    // The job is requeued and the run resumes and finishes in the same shard.
    ASSERT_TRUE(shard->MarkRun(resumed, RunStatus::kRunning).ok());
    ASSERT_TRUE(shard->AddMetrics(resumed, {{1, 2.0, "train_loss", 1.0}}).ok());
    FinalResult f;
    f.dataset = "synthetic";
    f.test_top1 = 60.0;
    ASSERT_TRUE(shard->FinishRun(resumed, f).ok());
    m = MergeDatabase(*main_db, *shard);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->updated, 1);
    EXPECT_EQ(m->already_present, 1);
  }
  EXPECT_EQ(main_db->ListRuns()->size(), 2u);
  EXPECT_EQ(main_db->GetRun(resumed)->status, "finished");
  EXPECT_EQ((*main_db->GetResult(resumed))->test_top1, 60.0);
  EXPECT_EQ(main_db->GetMetrics(resumed)->size(), 2u);
  // An older copy of the shard (the run interrupted, 1 metric) changes nothing.
  auto old = OpenOrDie(old_copy);
  absl::StatusOr<SnapshotImport> m = MergeDatabase(*main_db, *old);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->already_present, 2);
  EXPECT_EQ(main_db->GetRun(resumed)->status, "finished");
  // Unfinished against unfinished: the copy with fewer metric rows does not replace.
  auto other = OpenOrDie(FreshPath("other_main.db"));
  auto shard = OpenOrDie(shard_path);
  ASSERT_TRUE(MergeDatabase(*other, *shard).ok());
  auto other2 = OpenOrDie(FreshPath("other2_main.db"));
  ASSERT_TRUE(MergeDatabase(*other2, *old).ok());          // interrupted, 1 metric
  m = MergeDatabase(*other2, *shard);                      // finished, 2 metrics: replaces
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->updated, 1);
  // Plain import still refuses unfinished runs.
  absl::StatusOr<RunExport> unfinished = old->ExportRun(resumed);
  ASSERT_TRUE(unfinished.ok());
  absl::StatusOr<ImportResult> refused = other->ImportRun(*unfinished);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("only finished runs are imported"));
}

// The Slurm executor seeds a new job shard with the main database's finished runs of that
// job's experiment only: the filter keeps other experiments and unfinished runs out.
TEST(SnapshotTest, MergeFilterTakesOnlyTheNamedFinishedRuns) {
  auto main_db = OpenOrDie(FreshPath("filter_main.db"));
  FinalResult f;
  f.dataset = "synthetic";
  f.test_top1 = 50.0;
  const int64_t a_done = *main_db->CreateRun(SomeRun("a", "ha1", "{}"));
  ASSERT_TRUE(main_db->FinishRun(a_done, f).ok());
  const int64_t a_open = *main_db->CreateRun(SomeRun("a", "ha2", "{}"));
  ASSERT_TRUE(main_db->MarkRun(a_open, RunStatus::kInterrupted, "SIGTERM").ok());
  const int64_t b_done = *main_db->CreateRun(SomeRun("b", "hb1", "{}"));
  ASSERT_TRUE(main_db->FinishRun(b_done, f).ok());

  auto shard = OpenOrDie(FreshPath("filter_shard.db"));
  MergeFilter filter;
  filter.names = {"a"};
  filter.finished_only = true;
  absl::StatusOr<SnapshotImport> m = MergeDatabase(*shard, *main_db, filter);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->inserted, 1);
  absl::StatusOr<std::vector<RunRecord>> runs = shard->ListRuns();
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].name, "a");
  EXPECT_EQ((*runs)[0].spec_hash, "ha1");
  EXPECT_EQ((*runs)[0].status, "finished");
  // Again: nothing new. Without the names, b's finished run joins; still not a's open one.
  EXPECT_EQ(MergeDatabase(*shard, *main_db, filter)->already_present, 1);
  filter.names.clear();
  m = MergeDatabase(*shard, *main_db, filter);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->inserted, 1);
  EXPECT_EQ(m->already_present, 1);
  EXPECT_EQ(shard->ListRuns()->size(), 2u);
}

}  // namespace
}  // namespace mpq::results

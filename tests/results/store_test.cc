// The results store: round trips, bad files, schema versions, ownership, damaged pages,
// idempotent metrics, read-only opening, concurrent writer processes, a writer killed
// mid-stream, and a locked database.
#include "results/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace mpq::results {
namespace {

using ::testing::HasSubstr;

std::string Bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void Exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK) << (error ? error : "");
  sqlite3_close(db);
}

std::string FreshPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(dir ? dir : "/tmp") + "/" + name;
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  return path;
}

NewRun SomeRun(const std::string& name, const std::string& hash = "h") {
  NewRun r;
  r.name = name;
  r.spec_json = R"({"model":"resnet20"})";
  r.spec_hash = hash;
  r.code_version = "test";
  r.seed = 3;
  r.host = "host";
  r.device = "cpu";
  return r;
}

// Raw SQLite access, independent of the store, for checks.
std::string QueryOne(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* st = nullptr;
  std::string out = "<error>";
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

TEST(ResultStoreTest, CreatesTheSchemaInWalModeAndRoundTripsARun) {
  const std::string path = FreshPath("roundtrip.db");
  absl::StatusOr<std::unique_ptr<ResultStore>> store = ResultStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(*(*store)->SchemaVersion(), kSchemaVersion);
  EXPECT_EQ(QueryOne(path, "PRAGMA journal_mode"), "wal");

  absl::StatusOr<int64_t> id = (*store)->CreateRun(SomeRun("quickstart_fp32", "abc"));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE((*store)->AddMetrics(*id, {{1, 0.5, "train_loss", 0.9}, {2, 1.0, "train_loss", 0.7}}).ok());
  ASSERT_TRUE((*store)->AddAllocation(*id, 0, {{"conv1", true, 0, 4}, {"conv1", true, 1, 3}, {"act1", false, 0, 6}}).ok());
  ASSERT_TRUE((*store)->AddCheckpoint(*id, 1, "/ckpt/1.pt").ok());
  FinalResult r;
  r.dataset = "fashion_mnist";
  r.test_top1 = 91.5;
  r.bw_eff = 3.5;
  ASSERT_TRUE((*store)->FinishRun(*id, r).ok());

  // Reopen: everything is there.
  store->reset();
  store = ResultStore::Open(path);
  ASSERT_TRUE(store.ok());
  absl::StatusOr<RunRecord> run = (*store)->GetRun(*id);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->status, "finished");
  EXPECT_EQ(run->seed, 3);
  EXPECT_TRUE(run->finished_at.has_value());
  const std::optional<FinalResult> got = *(*store)->GetResult(*id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->dataset, "fashion_mnist");
  EXPECT_EQ(*got->test_top1, 91.5);
  EXPECT_FALSE(got->cc.has_value());
  EXPECT_EQ((*store)->GetMetrics(*id)->size(), 2u);
  const std::vector<GroupBits> alloc = *(*store)->GetAllocation(*id, 0);
  ASSERT_EQ(alloc.size(), 3u);
  EXPECT_FALSE(alloc[2].is_weight);
  EXPECT_EQ((*(*store)->LatestRunWithSpecHash("abc"))->id, *id);
  EXPECT_FALSE((*(*store)->LatestRunWithSpecHash("nope")).has_value());
}

TEST(ResultStoreTest, FailedRunsKeepTheirError) {
  absl::StatusOr<std::unique_ptr<ResultStore>> store = ResultStore::Open(FreshPath("failed.db"));
  ASSERT_TRUE(store.ok());
  const int64_t id = *(*store)->CreateRun(SomeRun("x"));
  ASSERT_TRUE((*store)->MarkRun(id, RunStatus::kFailed, "loss became NaN at step 17").ok());
  EXPECT_EQ((*store)->GetRun(id)->error, "loss became NaN at step 17");
  EXPECT_EQ((*store)->MarkRun(999, RunStatus::kFailed).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*store)->GetRun(999).status().code(), absl::StatusCode::kNotFound);
  // Out-of-range bits are refused by the schema, and the transaction stores nothing.
  EXPECT_FALSE((*store)->AddAllocation(id, 0, {{"conv", true, 0, 4}, {"conv", true, 1, 0}}).ok());
  EXPECT_TRUE((*store)->GetAllocation(id, 0)->empty());
}

TEST(ResultStoreTest, MissingDirectoryAndDirectoryPathAreClearErrors) {
  const absl::Status missing = ResultStore::Open("/nonexistent/dir/x.db").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("/nonexistent/dir"));
  const std::string dir = FreshPath("a_directory");
  std::filesystem::create_directories(dir);
  const absl::Status is_dir = ResultStore::Open(dir).status();
  EXPECT_FALSE(is_dir.ok());
  EXPECT_THAT(is_dir.message(), HasSubstr(dir));
}

TEST(ResultStoreTest, NotADatabaseIsRefusedAndLeftUntouched) {
  const std::string path = FreshPath("garbage.db");
  { std::ofstream(path) << "these are someone's notes, not a database\n" << std::string(5000, 'x'); }
  const auto before = std::filesystem::file_size(path);
  const absl::Status s = ResultStore::Open(path).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.message(), HasSubstr(path));
  EXPECT_EQ(std::filesystem::file_size(path), before);
  std::ifstream in(path);
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(first, "these are someone's notes, not a database");
}

TEST(ResultStoreTest, NewerSchemaIsRefused) {
  const std::string path = FreshPath("newer.db");
  ASSERT_TRUE(ResultStore::Open(path).ok());
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  const std::string before = Bytes(path);
  const absl::Status s = ResultStore::Open(path).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr(absl::StrCat("schema version 99 is newer than this build supports (", kSchemaVersion, ")")));
  EXPECT_EQ(Bytes(path), before) << "a refused database must be left byte-identical";
}

TEST(ResultStoreTest, AForeignDatabaseIsRefusedAndLeftByteIdentical) {
  const std::string path = FreshPath("foreign.db");
  Exec(path, "CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT); INSERT INTO notes(text) VALUES ('mine');");
  const std::string before = Bytes(path);
  const absl::Status s = ResultStore::Open(path).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("is not an mpqbench database"));
  EXPECT_THAT(s.message(), HasSubstr("tables: notes"));
  EXPECT_EQ(Bytes(path), before);
  EXPECT_FALSE(std::filesystem::exists(path + "-wal"));
  // Another application's id, even with our tables, is not ours either.
  const std::string other = FreshPath("other_app.db");
  Exec(other, "PRAGMA application_id = 1234; CREATE TABLE runs(id INTEGER);");
  EXPECT_THAT(ResultStore::Open(other).status().message(), HasSubstr("application_id 0x000004d2"));
}

TEST(ResultStoreTest, ADatabaseWithDamagedPagesIsRefusedBeforeAnythingIsWritten) {
  const std::string path = FreshPath("damaged.db");
  {
    absl::StatusOr<std::unique_ptr<ResultStore>> store = ResultStore::Open(path);
    ASSERT_TRUE(store.ok());
    for (int r = 0; r < 20; ++r) {
      absl::StatusOr<int64_t> id = (*store)->CreateRun(SomeRun("r"));
      ASSERT_TRUE(id.ok());
      std::vector<Metric> m;
      for (int i = 0; i < 100; ++i) m.push_back({i, 0.0, "loss", 1.0 / (i + 1)});
      ASSERT_TRUE((*store)->AddMetrics(*id, m).ok());
    }
  }
  Exec(path, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;");  // everything in the main file
  const int page = std::stoi(QueryOne(path, "PRAGMA page_size"));
  const int pages = std::stoi(QueryOne(path, "PRAGMA page_count"));
  ASSERT_GT(pages, 4);
  std::string bytes = Bytes(path);
  for (int p = 2; p < pages; ++p) {  // every page but the header page: b-tree headers become garbage
    for (int i = 0; i < 16; ++i) bytes[static_cast<size_t>(p) * page + i] = static_cast<char>(0xA5);
  }
  { std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes; }
  const absl::Status s = ResultStore::Open(path).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(s.message(), HasSubstr(path));
  EXPECT_THAT(s.message(), HasSubstr(".recover"));
  EXPECT_EQ(Bytes(path), bytes);
}

TEST(ResultStoreTest, ASchemaOneDatabaseIsUpgradedAndItsDuplicateMetricsDropped) {
  const std::string path = FreshPath("schema1.db");
  // What a schema-1 build left: no application id, metrics without a unique key.
  Exec(path, R"sql(
CREATE TABLE runs(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, spec_json TEXT NOT NULL,
  spec_hash TEXT NOT NULL, code_version TEXT NOT NULL, seed INTEGER NOT NULL, host TEXT NOT NULL,
  device TEXT NOT NULL, status TEXT NOT NULL, error TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL,
  finished_at REAL);
CREATE TABLE metrics(run_id INTEGER NOT NULL, step INTEGER NOT NULL, epoch REAL NOT NULL, name TEXT NOT NULL,
  value REAL NOT NULL, wall_time REAL NOT NULL);
CREATE INDEX metrics_by_run ON metrics(run_id, name, step);
CREATE TABLE results(run_id INTEGER PRIMARY KEY, dataset TEXT NOT NULL);
CREATE TABLE allocations(run_id INTEGER NOT NULL);
CREATE TABLE checkpoints(run_id INTEGER NOT NULL);
INSERT INTO runs(name, spec_json, spec_hash, code_version, seed, host, device, status, created_at)
  VALUES ('old', '{}', 'h', 'v', 0, 'host', 'cpu', 'finished', 0);
INSERT INTO metrics VALUES (1, 10, 1, 'train_loss', 0.5, 0), (1, 10, 1, 'train_loss', 0.5, 1),
                           (1, 20, 2, 'train_loss', 0.4, 2);
PRAGMA user_version = 1;
)sql");
  absl::StatusOr<std::unique_ptr<ResultStore>> store = ResultStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(*(*store)->SchemaVersion(), kSchemaVersion);
  EXPECT_EQ(QueryOne(path, "PRAGMA application_id"), std::to_string(kApplicationId));
  EXPECT_EQ((*(*store)->GetMetrics(1)).size(), 2u);
  EXPECT_EQ((*store)->database_id().size(), 16u);
}

TEST(ResultStoreTest, AReplayedMetricOverwritesInsteadOfDuplicating) {
  absl::StatusOr<std::unique_ptr<ResultStore>> store = ResultStore::Open(FreshPath("idempotent.db"));
  ASSERT_TRUE(store.ok());
  absl::StatusOr<int64_t> id = (*store)->CreateRun(SomeRun("r"));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE((*store)->AddMetrics(*id, {{5, 1.0, "val_top1", 80.0}, {5, 1.0, "lr", 0.1}}).ok());
  ASSERT_TRUE((*store)->AddMetrics(*id, {{5, 1.0, "val_top1", 81.0}, {6, 2.0, "val_top1", 82.0}}).ok());
  const std::vector<Metric> m = *(*store)->GetMetrics(*id);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].name, "val_top1");
  EXPECT_EQ(m[0].value, 81.0);  // the replay's value, in the first write's place
  EXPECT_EQ(m[2].step, 6);
}

TEST(ResultStoreTest, EachDatabaseHasItsOwnStableId) {
  const std::string a = FreshPath("id_a.db"), b = FreshPath("id_b.db");
  std::string id_a;
  {
    absl::StatusOr<std::unique_ptr<ResultStore>> s = ResultStore::Open(a);
    ASSERT_TRUE(s.ok());
    id_a = (*s)->database_id();
  }
  EXPECT_EQ((*ResultStore::Open(a))->database_id(), id_a);
  EXPECT_NE((*ResultStore::Open(b))->database_id(), id_a);
}

TEST(ResultStoreTest, ReadOnlyOpeningReadsAndNeverWrites) {
  const std::string path = FreshPath("readonly.db");
  {
    absl::StatusOr<std::unique_ptr<ResultStore>> s = ResultStore::Open(path);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->CreateRun(SomeRun("r")).ok());
  }
  absl::StatusOr<std::unique_ptr<ResultStore>> ro = ResultStore::OpenReadOnly(path);
  ASSERT_TRUE(ro.ok()) << ro.status();
  EXPECT_EQ((*(*ro)->ListRuns()).size(), 1u);
  EXPECT_FALSE((*ro)->CreateRun(SomeRun("no")).ok());
  EXPECT_EQ(ResultStore::OpenReadOnly(FreshPath("absent.db")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(FreshPath("absent.db")));
}

TEST(ResultStoreTest, TheDigestCacheIsKeyedBySizeAndTime) {
  absl::StatusOr<std::unique_ptr<ResultStore>> store = ResultStore::Open(FreshPath("digests.db"));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->PutDigest("/data/f", 10, 99, "abc").ok());
  EXPECT_EQ(**(*store)->CachedDigest("/data/f", 10, 99), "abc");
  EXPECT_FALSE((*(*store)->CachedDigest("/data/f", 10, 100)).has_value());
  EXPECT_FALSE((*(*store)->CachedDigest("/data/f", 11, 99)).has_value());
}

// Child process body: open, then write `runs` runs of `metrics` metrics each. Exit 0 on success.
[[noreturn]] void WriterProcess(const std::string& path, int runs, int metrics, bool forever) {
  absl::StatusOr<std::unique_ptr<ResultStore>> store = ResultStore::Open(path);
  if (!store.ok()) _exit(10);
  for (int r = 0; forever || r < runs; ++r) {
    absl::StatusOr<int64_t> id = (*store)->CreateRun(SomeRun("child"));
    if (!id.ok()) _exit(11);
    std::vector<Metric> batch;
    for (int m = 0; m < metrics; ++m) batch.push_back({m, 0.0, "loss", 1.0 / (m + 1)});
    if (!(*store)->AddMetrics(*id, batch).ok()) _exit(12);
  }
  _exit(0);
}

TEST(ResultStoreTest, TwoProcessesWritingAtOnceBothSucceed) {
  const std::string path = FreshPath("concurrent.db");
  ASSERT_TRUE(ResultStore::Open(path).ok());  // create the schema first
  std::vector<pid_t> children;
  for (int c = 0; c < 2; ++c) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) WriterProcess(path, 60, 50, false);
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "writer exited with " << WEXITSTATUS(status);
  }
  EXPECT_EQ(QueryOne(path, "SELECT COUNT(*) FROM runs"), "120");
  EXPECT_EQ(QueryOne(path, "SELECT COUNT(*) FROM metrics"), "6000");
  EXPECT_EQ(QueryOne(path, "PRAGMA integrity_check"), "ok");
}

TEST(ResultStoreTest, AWriterKilledMidStreamLosesNothingCommitted) {
  const std::string path = FreshPath("killed.db");
  int64_t earlier = 0;
  {
    absl::StatusOr<std::unique_ptr<ResultStore>> store = ResultStore::Open(path);
    ASSERT_TRUE(store.ok());
    earlier = *(*store)->CreateRun(SomeRun("earlier"));
    FinalResult r;
    r.dataset = "fashion_mnist";
    r.test_top1 = 90.25;
    ASSERT_TRUE((*store)->FinishRun(earlier, r).ok());
  }
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) WriterProcess(path, 0, 400, /*forever=*/true);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));

  EXPECT_EQ(QueryOne(path, "PRAGMA integrity_check"), "ok");
  absl::StatusOr<std::unique_ptr<ResultStore>> store = ResultStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(*(*(*store)->GetResult(earlier))->test_top1, 90.25);
  // Every metrics batch is one transaction: each child run has 0 or all 400 rows.
  EXPECT_EQ(QueryOne(path, "SELECT COUNT(*) FROM (SELECT run_id, COUNT(*) c FROM metrics GROUP BY run_id "
                           "HAVING c NOT IN (400))"),
            "0");
  EXPECT_GT(std::stoi(QueryOne(path, "SELECT COUNT(*) FROM runs")), 1);  // the child did write
}

TEST(ResultStoreTest, ALockedDatabaseIsAClearError) {
  const std::string path = FreshPath("locked.db");
  ASSERT_TRUE(ResultStore::Open(path).ok());
  sqlite3* holder = nullptr;
  sqlite3_open(path.c_str(), &holder);
  ASSERT_EQ(sqlite3_exec(holder, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  absl::StatusOr<std::unique_ptr<ResultStore>> store = ResultStore::Open(path, /*busy_timeout_ms=*/200);
  ASSERT_TRUE(store.ok()) << store.status();  // opening reads only
  const absl::Status s = (*store)->CreateRun(SomeRun("blocked")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(s.message(), HasSubstr("locked by another process"));
  sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(holder);
  EXPECT_TRUE((*store)->CreateRun(SomeRun("after")).ok());
}

TEST(ResultStoreTest, QueryTextRefusesWrites) {
  absl::StatusOr<std::unique_ptr<ResultStore>> store = ResultStore::Open(FreshPath("query.db"));
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->QueryText("DELETE FROM runs").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*(*store)->QueryText("SELECT COUNT(*) AS n FROM runs"))[0][0], "n");
}

}  // namespace
}  // namespace mpq::results

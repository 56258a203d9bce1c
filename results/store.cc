#include "results/store.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace mpq::results {
namespace {

// Migration i takes the schema from version i to i + 1. Append; never edit a shipped one.
const char* const kMigrations[] = {
    // 0 -> 1: initial schema.
    R"sql(
CREATE TABLE runs(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  spec_json TEXT NOT NULL,
  spec_hash TEXT NOT NULL,
  code_version TEXT NOT NULL,
  seed INTEGER NOT NULL,
  host TEXT NOT NULL,
  device TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
  error TEXT NOT NULL DEFAULT '',
  created_at REAL NOT NULL,
  finished_at REAL
);
CREATE INDEX runs_by_spec_hash ON runs(spec_hash, id);
CREATE TABLE metrics(
  run_id INTEGER NOT NULL REFERENCES runs(id),
  step INTEGER NOT NULL,
  epoch REAL NOT NULL,
  name TEXT NOT NULL,
  value REAL NOT NULL,
  wall_time REAL NOT NULL
);
CREATE INDEX metrics_by_run ON metrics(run_id, name, step);
CREATE TABLE results(
  run_id INTEGER PRIMARY KEY REFERENCES runs(id),
  dataset TEXT NOT NULL,
  test_top1 REAL, test_top5 REAL, val_top1 REAL,
  bitops REAL, cc REAL, weight_bytes REAL, act_bytes_sum REAL, act_bytes_max REAL,
  bw_eff REAL, ba_eff REAL, compression_ratio REAL,
  extra_json TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE allocations(
  run_id INTEGER NOT NULL REFERENCES runs(id),
  iteration INTEGER NOT NULL,
  layer TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('weight', 'activation')),
  group_index INTEGER NOT NULL,
  bits INTEGER NOT NULL CHECK (bits BETWEEN 1 AND 32),
  PRIMARY KEY (run_id, iteration, layer, kind, group_index)
);
CREATE TABLE checkpoints(
  run_id INTEGER NOT NULL REFERENCES runs(id),
  epoch INTEGER NOT NULL,
  path TEXT NOT NULL,
  created_at REAL NOT NULL,
  PRIMARY KEY (run_id, epoch)
);
)sql",
    // 1 -> 2: one value per (run, metric, step), so a replayed epoch or point overwrites
    // instead of duplicating (duplicates stored by earlier builds' resumes are dropped,
    // the first kept); the database's identity (checkpoints belong to one database);
    // the dataset fingerprint of each run; the file digest cache behind it.
    R"sql(
DELETE FROM metrics WHERE rowid NOT IN (SELECT MIN(rowid) FROM metrics GROUP BY run_id, name, step);
DROP INDEX metrics_by_run;
CREATE UNIQUE INDEX metrics_key ON metrics(run_id, name, step);
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta(key, value) VALUES ('database_id', lower(hex(randomblob(8))));
ALTER TABLE runs ADD COLUMN data_fingerprint TEXT NOT NULL DEFAULT '';
CREATE TABLE file_digests(
  path TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  digest TEXT NOT NULL
);
)sql",
    // 2 -> 3: memory as Uhlich et al. count it (weights with biases; activation
    // quantizer outputs, max and sum), in KB; NULL for results stored before.
    R"sql(
ALTER TABLE results ADD COLUMN memory_weight_kb REAL;
ALTER TABLE results ADD COLUMN memory_act_kb_max REAL;
ALTER TABLE results ADD COLUMN memory_act_kb_sum REAL;
)sql",
};
constexpr int kNumMigrations = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kNumMigrations == kSchemaVersion, "one migration per schema version");

double Now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A prepared statement; errors carry sqlite's message.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  Statement& Bind(int i, int64_t v) { return Check(sqlite3_bind_int64(stmt_, i, v)); }
  Statement& Bind(int i, double v) { return Check(sqlite3_bind_double(stmt_, i, v)); }
  Statement& Bind(int i, const std::string& v) {
    return Check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Statement& Bind(int i, const std::optional<double>& v) {
    return v ? Bind(i, *v) : Check(sqlite3_bind_null(stmt_, i));
  }
  // SQLITE_ROW -> true, SQLITE_DONE -> false; anything else is recorded in rc().
  bool Step() {
    const int rc = sqlite3_step(stmt_);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) rc_ = rc;
    return rc == SQLITE_ROW;
  }
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::optional<double> OptionalDouble(int col) const {
    return IsNull(col) ? std::nullopt : std::optional<double>(Double(col));
  }
  std::string Text(int col) const {
    const unsigned char* t = sqlite3_column_text(stmt_, col);
    return t ? reinterpret_cast<const char*>(t) : "";
  }
  int columns() const { return sqlite3_column_count(stmt_); }
  bool read_only() const { return sqlite3_stmt_readonly(stmt_) != 0; }
  const char* column_name(int col) const { return sqlite3_column_name(stmt_, col); }
  int rc() const { return rc_; }

 private:
  Statement& Check(int rc) {
    if (rc != SQLITE_OK) rc_ = rc;
    return *this;
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

RunRecord ReadRun(const Statement& s) {
  RunRecord r;
  r.id = s.Int(0);
  r.name = s.Text(1);
  r.spec_json = s.Text(2);
  r.spec_hash = s.Text(3);
  r.code_version = s.Text(4);
  r.seed = s.Int(5);
  r.host = s.Text(6);
  r.device = s.Text(7);
  r.status = s.Text(8);
  r.error = s.Text(9);
  r.created_at = s.Double(10);
  r.finished_at = s.OptionalDouble(11);
  r.data_fingerprint = s.Text(12);
  return r;
}

constexpr char kRunColumns[] =
    "id, name, spec_json, spec_hash, code_version, seed, host, device, status, error, created_at, finished_at, "
    "data_fingerprint";

// A path as an SQLite URI (file:...?immutable=1), escaping what URIs reserve.
std::string FileUri(const std::string& path, const char* query) {
  std::string uri = "file:";
  for (unsigned char c : std::filesystem::absolute(path).string()) {
    if (c == '%' || c == '?' || c == '#' || c < 0x20 || c >= 0x7f) {
      uri += absl::StrFormat("%%%02X", c);
    } else {
      uri += static_cast<char>(c);
    }
  }
  return uri + "?" + query;
}

// What a database file is, found without writing to it.
struct Inspection {
  int64_t application_id = 0, user_version = 0;
  std::vector<std::string> tables;
  std::string quick_check;  // "ok" when healthy
};

// Opens `path` read-only (immutable when `immutable`: no locks, no -shm, for read-only
// media) and inspects it. Fails with sqlite's message when it is not a database.
absl::StatusOr<Inspection> Inspect(const std::string& path, bool immutable, sqlite3** keep) {
  sqlite3* db = nullptr;
  const std::string name = immutable ? FileUri(path, "immutable=1") : path;
  int rc = sqlite3_open_v2(name.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
  auto fail = [&](const std::string& what) -> absl::Status {
    const int code = db ? sqlite3_errcode(db) : rc;
    const std::string message = absl::StrCat("results database ", path, ": ", what, " (",
                                             db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), ")");
    sqlite3_close(db);
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) {
      return absl::DataLossError(absl::StrCat(message, "; it is not a database or it is damaged: nothing was written; "
                                              "restore it from a backup, salvage it with `sqlite3 ", path,
                                              " .recover`, or pass --db a new path"));
    }
    if (code == SQLITE_CANTOPEN || code == SQLITE_READONLY || code == SQLITE_PERM) return absl::PermissionDeniedError(message);
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED) return absl::UnavailableError(message + "; locked by another process");
    return absl::InternalError(message);
  };
  if (rc != SQLITE_OK) return fail("cannot open");
  sqlite3_busy_timeout(db, 30000);
  Inspection in;
  {
    Statement s(db, "PRAGMA application_id");
    if (!s.ok() || !s.Step()) return fail("cannot read its header");
    in.application_id = s.Int(0);
  }
  {
    Statement s(db, "PRAGMA user_version");
    if (!s.ok() || !s.Step()) return fail("cannot read its header");
    in.user_version = s.Int(0);
  }
  {
    Statement s(db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
    while (s.Step()) in.tables.push_back(s.Text(0));
    if (!s.ok() || s.rc() != SQLITE_OK) return fail("cannot list its tables");
  }
  {
    Statement s(db, "PRAGMA quick_check");
    std::vector<std::string> problems;
    while (s.Step()) problems.push_back(s.Text(0));
    if (!s.ok() || s.rc() != SQLITE_OK) return fail("cannot check its integrity");
    in.quick_check = absl::StrJoin(problems, "; ");
  }
  if (keep != nullptr) {
    *keep = db;
  } else {
    sqlite3_close(db);
  }
  return in;
}

// Ours (our application id), an mpqbench database from before the id (schema 1 with
// our tables), or an empty file: anything else is refused, and left untouched.
absl::Status CheckOwnership(const std::string& path, const Inspection& in) {
  if (in.quick_check != "ok") {
    return absl::DataLossError(absl::StrCat("results database ", path, " is damaged (quick_check: ",
                                            in.quick_check.substr(0, 300), "); restore it from a backup, or "
                                            "salvage it with `sqlite3 ", path, " .recover`; nothing was written"));
  }
  const bool empty = in.application_id == 0 && in.user_version == 0 && in.tables.empty();
  const std::vector<std::string> schema_1 = {"allocations", "checkpoints", "metrics", "results", "runs"};
  const bool before_id = in.application_id == 0 && in.user_version == 1 && in.tables == schema_1;
  if (in.application_id != kApplicationId && !empty && !before_id) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "results database %s is not an mpqbench database (application_id 0x%08x, user_version %d, tables: %s); "
        "nothing was written: pass --db a new path",
        path, static_cast<uint32_t>(in.application_id), in.user_version,
        in.tables.empty() ? "none" : absl::StrJoin(in.tables, ", ")));
  }
  if (in.user_version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat("results database ", path, ": schema version ", in.user_version,
                                                      " is newer than this build supports (", kSchemaVersion,
                                                      "); use a newer mpqbench; nothing was written"));
  }
  return absl::OkStatus();
}

}  // namespace

const char* RunStatusName(RunStatus s) {
  switch (s) {
    case RunStatus::kRunning: return "running";
    case RunStatus::kFinished: return "finished";
    case RunStatus::kFailed: return "failed";
    case RunStatus::kInterrupted: return "interrupted";
  }
  return "?";
}

absl::StatusOr<std::unique_ptr<ResultStore>> ResultStore::Open(const std::string& path, int busy_timeout_ms) {
  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::absolute(path, ec).parent_path();
  if (!std::filesystem::is_directory(parent, ec)) {
    return absl::NotFoundError(absl::StrCat("results database ", path, ": directory ", parent.string(),
                                            " does not exist"));
  }
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec)) {
    return absl::FailedPreconditionError(absl::StrCat("results database ", path, " is not a regular file"));
  }
  // Look before touching: version, ownership and integrity are checked on a read-only
  // connection, so a database we refuse is left byte-identical.
  if (std::filesystem::exists(path, ec) && std::filesystem::file_size(path, ec) > 0) {
    absl::StatusOr<Inspection> in = Inspect(path, /*immutable=*/false, nullptr);
    if (!in.ok()) return in.status();
    if (absl::Status s = CheckOwnership(path, *in); !s.ok()) return s;
  }
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    const std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("results database ", path, ": cannot open (", message, ")"));
  }
  sqlite3_busy_timeout(db, busy_timeout_ms);
  std::unique_ptr<ResultStore> store(new ResultStore(db, path));
  if (absl::Status s = store->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = store->Migrate(); !s.ok()) return s;
  if (absl::Status s = store->ReadDatabaseId(); !s.ok()) return s;
  return store;
}

absl::StatusOr<std::unique_ptr<ResultStore>> ResultStore::OpenReadOnly(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("results database ", path, " does not exist (or is not a regular file)"));
  }
  sqlite3* db = nullptr;
  absl::StatusOr<Inspection> in = Inspect(path, /*immutable=*/false, &db);
  if (!in.ok() && absl::IsPermissionDenied(in.status())) {
    // A WAL database on read-only media cannot get its -shm file: read it as immutable.
    in = Inspect(path, /*immutable=*/true, &db);
  }
  if (!in.ok()) return in.status();
  std::unique_ptr<ResultStore> store(new ResultStore(db, path));
  if (absl::Status s = CheckOwnership(path, *in); !s.ok()) return s;
  if (in->user_version != kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat("results database ", path, ": schema version ", in->user_version,
                                                      " (this build reads ", kSchemaVersion, "); open it read-write "
                                                      "once (run any experiment with --db ", path, ") to upgrade it"));
  }
  if (absl::Status s = store->ReadDatabaseId(); !s.ok()) return s;
  return store;
}

absl::Status ResultStore::ReadDatabaseId() {
  Statement st(db_, "SELECT value FROM meta WHERE key = 'database_id'");
  if (!st.ok() || !st.Step()) return Error("cannot read the database id");
  database_id_ = st.Text(0);
  return absl::OkStatus();
}

ResultStore::~ResultStore() { sqlite3_close(db_); }

absl::Status ResultStore::Error(const std::string& what) const {
  const int code = sqlite3_errcode(db_);
  const std::string message = absl::StrCat("results database ", path_, ": ", what, " (", sqlite3_errmsg(db_), ")");
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) return absl::UnavailableError(message + "; locked by another process");
  if (code == SQLITE_READONLY || code == SQLITE_CANTOPEN || code == SQLITE_PERM) return absl::PermissionDeniedError(message);
  if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) return absl::DataLossError(message);
  return absl::InternalError(message);
}

absl::Status ResultStore::Exec(const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    sqlite3_free(error);
    return Error("cannot execute " + sql.substr(0, sql.find_first_of("(;")));
  }
  return absl::OkStatus();
}

template <typename Body>
absl::Status ResultStore::Transaction(Body body) {
  // BEGIN IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so
  // a transaction never fails half-way on a lock upgrade.
  if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  absl::Status s = body();
  if (s.ok()) s = Exec("COMMIT");
  if (!s.ok()) {
    char* ignored = nullptr;
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, &ignored);
    sqlite3_free(ignored);
  }
  return s;
}

absl::StatusOr<int> ResultStore::SchemaVersion() {
  Statement s(db_, "PRAGMA user_version");
  if (!s.ok() || !s.Step()) return Error("cannot read the schema version");
  return static_cast<int>(s.Int(0));
}

absl::Status ResultStore::Migrate() {
  for (;;) {
    absl::StatusOr<int> version = SchemaVersion();
    if (!version.ok()) return version.status();
    if (*version > kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat("results database ", path_, ": schema version ", *version,
                                                        " is newer than this build supports (", kSchemaVersion,
                                                        "); use a newer mpqbench"));
    }
    if (*version == kSchemaVersion) return absl::OkStatus();
    // Re-check inside the write lock: another process may have migrated meanwhile.
    absl::Status s = Transaction([&]() -> absl::Status {
      absl::StatusOr<int> current = SchemaVersion();
      if (!current.ok()) return current.status();
      if (*current != *version) return absl::OkStatus();
      if (absl::Status e = Exec(kMigrations[*version]); !e.ok()) return e;
      if (absl::Status e = Exec(absl::StrCat("PRAGMA application_id = ", kApplicationId)); !e.ok()) return e;
      return Exec(absl::StrCat("PRAGMA user_version = ", *version + 1));
    });
    if (!s.ok()) return s;
  }
}

absl::StatusOr<int64_t> ResultStore::CreateRun(const NewRun& run) {
  int64_t id = 0;
  absl::Status s = Transaction([&]() -> absl::Status {
    Statement st(db_,
                 "INSERT INTO runs(name, spec_json, spec_hash, code_version, seed, host, device, status, created_at, "
                 "data_fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)");
    st.Bind(1, run.name).Bind(2, run.spec_json).Bind(3, run.spec_hash).Bind(4, run.code_version);
    st.Bind(5, run.seed).Bind(6, run.host).Bind(7, run.device).Bind(8, Now()).Bind(9, run.data_fingerprint);
    st.Step();
    if (!st.ok() || st.rc() != SQLITE_OK) return Error("cannot insert run " + run.name);
    id = sqlite3_last_insert_rowid(db_);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return id;
}

absl::Status ResultStore::AddMetrics(int64_t run, const std::vector<Metric>& metrics) {
  return Transaction([&]() -> absl::Status {
    // A replayed step (resumed after a kill) overwrites its earlier value.
    Statement st(db_,
                 "INSERT INTO metrics(run_id, step, epoch, name, value, wall_time) VALUES (?, ?, ?, ?, ?, ?) "
                 "ON CONFLICT(run_id, name, step) DO UPDATE SET epoch = excluded.epoch, value = excluded.value, "
                 "wall_time = excluded.wall_time");
    const double now = Now();
    for (const Metric& m : metrics) {
      st.Bind(1, run).Bind(2, m.step).Bind(3, m.epoch).Bind(4, m.name).Bind(5, m.value).Bind(6, now);
      st.Step();
      if (!st.ok() || st.rc() != SQLITE_OK) return Error(absl::StrCat("cannot insert metric ", m.name, " of run ", run));
      st.Reset();
    }
    return absl::OkStatus();
  });
}

absl::Status ResultStore::AddAllocation(int64_t run, int64_t iteration, const std::vector<GroupBits>& allocation) {
  return Transaction([&]() -> absl::Status {
    Statement st(db_,
                 "INSERT OR REPLACE INTO allocations(run_id, iteration, layer, kind, group_index, bits) "
                 "VALUES (?, ?, ?, ?, ?, ?)");
    for (const GroupBits& g : allocation) {
      st.Bind(1, run).Bind(2, iteration).Bind(3, g.layer).Bind(4, std::string(g.is_weight ? "weight" : "activation"));
      st.Bind(5, g.group).Bind(6, g.bits);
      st.Step();
      if (!st.ok() || st.rc() != SQLITE_OK) {
        return Error(absl::StrCat("cannot store bits ", g.bits, " of ", g.layer, "[", g.group, "], run ", run));
      }
      st.Reset();
    }
    return absl::OkStatus();
  });
}

absl::Status ResultStore::AddCheckpoint(int64_t run, int64_t epoch, const std::string& checkpoint_path) {
  return Transaction([&]() -> absl::Status {
    Statement st(db_, "INSERT OR REPLACE INTO checkpoints(run_id, epoch, path, created_at) VALUES (?, ?, ?, ?)");
    st.Bind(1, run).Bind(2, epoch).Bind(3, checkpoint_path).Bind(4, Now());
    st.Step();
    if (!st.ok() || st.rc() != SQLITE_OK) return Error(absl::StrCat("cannot record checkpoint of run ", run));
    return absl::OkStatus();
  });
}

absl::Status ResultStore::WriteResultRow(int64_t run, const FinalResult& r) {
  Statement st(db_,
               "INSERT OR REPLACE INTO results(run_id, dataset, test_top1, test_top5, val_top1, bitops, cc, "
               "weight_bytes, act_bytes_sum, act_bytes_max, bw_eff, ba_eff, compression_ratio, extra_json, "
               "memory_weight_kb, memory_act_kb_max, memory_act_kb_sum) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  st.Bind(1, run).Bind(2, r.dataset).Bind(3, r.test_top1).Bind(4, r.test_top5).Bind(5, r.val_top1);
  st.Bind(6, r.bitops).Bind(7, r.cc).Bind(8, r.weight_bytes).Bind(9, r.act_bytes_sum).Bind(10, r.act_bytes_max);
  st.Bind(11, r.bw_eff).Bind(12, r.ba_eff).Bind(13, r.compression_ratio).Bind(14, r.extra_json);
  st.Bind(15, r.memory_weight_kb).Bind(16, r.memory_act_kb_max).Bind(17, r.memory_act_kb_sum);
  st.Step();
  if (!st.ok() || st.rc() != SQLITE_OK) return Error(absl::StrCat("cannot store the result of run ", run));
  return absl::OkStatus();
}

absl::Status ResultStore::FinishRun(int64_t run, const FinalResult& r) {
  return Transaction([&]() -> absl::Status {
    if (absl::Status e = WriteResultRow(run, r); !e.ok()) return e;
    Statement mark(db_, "UPDATE runs SET status = 'finished', error = '', finished_at = ? WHERE id = ?");
    mark.Bind(1, Now()).Bind(2, run);
    mark.Step();
    if (!mark.ok() || mark.rc() != SQLITE_OK || sqlite3_changes(db_) != 1) {
      return absl::NotFoundError(absl::StrCat("results database ", path_, ": no run ", run));
    }
    return absl::OkStatus();
  });
}

absl::Status ResultStore::MarkRun(int64_t run, RunStatus status, const std::string& error) {
  return Transaction([&]() -> absl::Status {
    Statement st(db_, "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ?");
    st.Bind(1, std::string(RunStatusName(status))).Bind(2, error);
    if (status == RunStatus::kRunning) {
      st.Bind(3, std::optional<double>());
    } else {
      st.Bind(3, Now());
    }
    st.Bind(4, run);
    st.Step();
    if (!st.ok() || st.rc() != SQLITE_OK) return Error(absl::StrCat("cannot update run ", run));
    if (sqlite3_changes(db_) != 1) return absl::NotFoundError(absl::StrCat("results database ", path_, ": no run ", run));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<RunRecord>> ResultStore::ListRuns() {
  Statement st(db_, absl::StrCat("SELECT ", kRunColumns, " FROM runs ORDER BY id"));
  std::vector<RunRecord> runs;
  while (st.Step()) runs.push_back(ReadRun(st));
  if (!st.ok() || st.rc() != SQLITE_OK) return Error("cannot list runs");
  return runs;
}

absl::StatusOr<RunRecord> ResultStore::GetRun(int64_t run) {
  Statement st(db_, absl::StrCat("SELECT ", kRunColumns, " FROM runs WHERE id = ?"));
  st.Bind(1, run);
  if (st.Step()) return ReadRun(st);
  if (!st.ok() || st.rc() != SQLITE_OK) return Error(absl::StrCat("cannot read run ", run));
  return absl::NotFoundError(absl::StrCat("results database ", path_, ": no run ", run));
}

absl::StatusOr<std::optional<RunRecord>> ResultStore::LatestRunWithSpecHash(const std::string& spec_hash) {
  Statement st(db_, absl::StrCat("SELECT ", kRunColumns, " FROM runs WHERE spec_hash = ? ORDER BY id DESC LIMIT 1"));
  st.Bind(1, spec_hash);
  if (st.Step()) return std::optional<RunRecord>(ReadRun(st));
  if (!st.ok() || st.rc() != SQLITE_OK) return Error("cannot look up spec hash " + spec_hash);
  return std::optional<RunRecord>();
}

absl::StatusOr<std::optional<FinalResult>> ResultStore::GetResult(int64_t run) {
  Statement st(db_,
               "SELECT dataset, test_top1, test_top5, val_top1, bitops, cc, weight_bytes, act_bytes_sum, "
               "act_bytes_max, bw_eff, ba_eff, compression_ratio, extra_json, memory_weight_kb, memory_act_kb_max, "
               "memory_act_kb_sum FROM results WHERE run_id = ?");
  st.Bind(1, run);
  if (!st.Step()) {
    if (!st.ok() || st.rc() != SQLITE_OK) return Error(absl::StrCat("cannot read the result of run ", run));
    return std::optional<FinalResult>();
  }
  FinalResult r;
  r.dataset = st.Text(0);
  r.test_top1 = st.OptionalDouble(1);
  r.test_top5 = st.OptionalDouble(2);
  r.val_top1 = st.OptionalDouble(3);
  r.bitops = st.OptionalDouble(4);
  r.cc = st.OptionalDouble(5);
  r.weight_bytes = st.OptionalDouble(6);
  r.act_bytes_sum = st.OptionalDouble(7);
  r.act_bytes_max = st.OptionalDouble(8);
  r.bw_eff = st.OptionalDouble(9);
  r.ba_eff = st.OptionalDouble(10);
  r.compression_ratio = st.OptionalDouble(11);
  r.extra_json = st.Text(12);
  r.memory_weight_kb = st.OptionalDouble(13);
  r.memory_act_kb_max = st.OptionalDouble(14);
  r.memory_act_kb_sum = st.OptionalDouble(15);
  return std::optional<FinalResult>(r);
}

absl::StatusOr<std::vector<Metric>> ResultStore::GetMetrics(int64_t run) {
  Statement st(db_, "SELECT step, epoch, name, value FROM metrics WHERE run_id = ? ORDER BY rowid");
  st.Bind(1, run);
  std::vector<Metric> out;
  while (st.Step()) out.push_back({st.Int(0), st.Double(1), st.Text(2), st.Double(3)});
  if (!st.ok() || st.rc() != SQLITE_OK) return Error(absl::StrCat("cannot read metrics of run ", run));
  return out;
}

absl::StatusOr<std::vector<GroupBits>> ResultStore::GetAllocation(int64_t run, int64_t iteration) {
  Statement st(db_,
               "SELECT layer, kind, group_index, bits FROM allocations WHERE run_id = ? AND iteration = ? "
               "ORDER BY rowid");
  st.Bind(1, run).Bind(2, iteration);
  std::vector<GroupBits> out;
  while (st.Step()) out.push_back({st.Text(0), st.Text(1) == "weight", st.Int(2), st.Int(3)});
  if (!st.ok() || st.rc() != SQLITE_OK) return Error(absl::StrCat("cannot read the allocation of run ", run));
  return out;
}

absl::StatusOr<std::vector<int64_t>> ResultStore::ListAllocationIterations(int64_t run) {
  Statement st(db_, "SELECT DISTINCT iteration FROM allocations WHERE run_id = ? ORDER BY iteration");
  st.Bind(1, run);
  std::vector<int64_t> out;
  while (st.Step()) out.push_back(st.Int(0));
  if (!st.ok() || st.rc() != SQLITE_OK) return Error(absl::StrCat("cannot list the allocations of run ", run));
  return out;
}

absl::StatusOr<RunExport> ResultStore::ExportRun(int64_t run) {
  RunExport out;
  absl::StatusOr<RunRecord> record = GetRun(run);
  if (!record.ok()) return record.status();
  out.run = *record;
  absl::StatusOr<std::optional<FinalResult>> result = GetResult(run);
  if (!result.ok()) return result.status();
  out.result = *result;
  Statement st(db_, "SELECT step, epoch, name, value, wall_time FROM metrics WHERE run_id = ? ORDER BY rowid");
  st.Bind(1, run);
  while (st.Step()) out.metrics.push_back({{st.Int(0), st.Double(1), st.Text(2), st.Double(3)}, st.Double(4)});
  if (!st.ok() || st.rc() != SQLITE_OK) return Error(absl::StrCat("cannot read metrics of run ", run));
  absl::StatusOr<std::vector<int64_t>> iterations = ListAllocationIterations(run);
  if (!iterations.ok()) return iterations.status();
  for (int64_t it : *iterations) {
    absl::StatusOr<std::vector<GroupBits>> bits = GetAllocation(run, it);
    if (!bits.ok()) return bits.status();
    out.allocations.emplace_back(it, std::move(*bits));
  }
  return out;
}

absl::StatusOr<ImportResult> ResultStore::ImportRun(const RunExport& in, bool unfinished) {
  const RunRecord& r = in.run;
  const std::string who = absl::StrCat("run ", r.id, " (", r.name, ", spec ", r.spec_hash, ")");
  const bool finished = r.status == "finished";
  if (!finished && !unfinished) {
    return absl::InvalidArgumentError(absl::StrCat("import: ", who, " has status '", r.status,
                                                   "'; only finished runs are imported"));
  }
  const std::vector<std::string> statuses = {"running", "finished", "failed", "interrupted"};
  if (std::find(statuses.begin(), statuses.end(), r.status) == statuses.end()) {
    return absl::InvalidArgumentError(absl::StrCat("import: ", who, " has status '", r.status,
                                                   "'; expected running, finished, failed or interrupted"));
  }
  if (finished && !in.result) {
    return absl::InvalidArgumentError(absl::StrCat("import: ", who, " is finished but has no result"));
  }
  if (r.name.empty() || r.spec_hash.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("import: ", who, ": name and spec_hash must not be empty"));
  }
  for (const auto& [iteration, groups] : in.allocations) {
    for (const GroupBits& g : groups) {
      if (g.bits < 1 || g.bits > 32) {
        return absl::InvalidArgumentError(absl::StrCat("import: ", who, ": allocation ", iteration, " gives ", g.layer,
                                                       "[", g.group, "] ", g.bits, " bits; expected 1..32"));
      }
    }
  }
  ImportResult out;
  absl::Status s = Transaction([&]() -> absl::Status {
    // Is this run (identity: spec hash and creation time) already here?
    std::optional<int64_t> existing;
    std::string existing_status;
    {
      Statement st(db_, "SELECT id, status FROM runs WHERE spec_hash = ? AND created_at = ? ORDER BY id LIMIT 1");
      st.Bind(1, r.spec_hash).Bind(2, r.created_at);
      if (st.Step()) {
        existing = st.Int(0);
        existing_status = st.Text(1);
      }
      if (!st.ok() || st.rc() != SQLITE_OK) return Error("cannot look up " + who);
    }
    if (existing && existing_status == "finished") {
      out = {*existing, ImportOutcome::kAlreadyPresent};
      return absl::OkStatus();
    }
    if (existing && !finished) {
      // Both unfinished: the copy with more progress wins; the same copy again is a no-op.
      Statement count(db_, "SELECT COUNT(*), (SELECT error FROM runs WHERE id = ?) FROM metrics WHERE run_id = ?");
      count.Bind(1, *existing).Bind(2, *existing);
      if (!count.Step() || count.rc() != SQLITE_OK) return Error("cannot count the metrics of " + who);
      const int64_t here = count.Int(0), incoming = static_cast<int64_t>(in.metrics.size());
      if (here > incoming || (here == incoming && existing_status == r.status && count.Text(1) == r.error)) {
        out = {*existing, ImportOutcome::kAlreadyPresent};
        return absl::OkStatus();
      }
    }
    int64_t id = 0;
    if (existing) {
      id = *existing;
      out = {id, ImportOutcome::kUpdated};
      for (const char* table : {"metrics", "allocations", "results"}) {
        Statement del(db_, absl::StrCat("DELETE FROM ", table, " WHERE run_id = ?"));
        del.Bind(1, id);
        del.Step();
        if (!del.ok() || del.rc() != SQLITE_OK) return Error(absl::StrCat("cannot replace ", table, " of run ", id));
      }
      Statement up(db_,
                   "UPDATE runs SET name = ?, spec_json = ?, code_version = ?, seed = ?, host = ?, device = ?, "
                   "status = ?, error = ?, finished_at = ?, data_fingerprint = ? WHERE id = ?");
      up.Bind(1, r.name).Bind(2, r.spec_json).Bind(3, r.code_version).Bind(4, r.seed).Bind(5, r.host);
      up.Bind(6, r.device).Bind(7, r.status).Bind(8, r.error).Bind(9, r.finished_at).Bind(10, r.data_fingerprint);
      up.Bind(11, id);
      up.Step();
      if (!up.ok() || up.rc() != SQLITE_OK) return Error("cannot update " + who);
    } else {
      bool id_free = r.id > 0;
      if (id_free) {
        Statement st(db_, "SELECT 1 FROM runs WHERE id = ?");
        st.Bind(1, r.id);
        id_free = !st.Step();
        if (!st.ok() || st.rc() != SQLITE_OK) return Error("cannot look up run id " + std::to_string(r.id));
      }
      Statement ins(db_,
                    "INSERT INTO runs(id, name, spec_json, spec_hash, code_version, seed, host, device, status, error, "
                    "created_at, finished_at, data_fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      if (id_free) ins.Bind(1, r.id);  // else NULL: the next free id
      ins.Bind(2, r.name).Bind(3, r.spec_json).Bind(4, r.spec_hash).Bind(5, r.code_version).Bind(6, r.seed);
      ins.Bind(7, r.host).Bind(8, r.device).Bind(9, r.status).Bind(10, r.error).Bind(11, r.created_at);
      ins.Bind(12, r.finished_at).Bind(13, r.data_fingerprint);
      ins.Step();
      if (!ins.ok() || ins.rc() != SQLITE_OK) return Error("cannot insert " + who);
      id = sqlite3_last_insert_rowid(db_);
      out = {id, ImportOutcome::kInserted};
    }
    if (in.result) {
      if (absl::Status e = WriteResultRow(id, *in.result); !e.ok()) return e;
    }
    Statement met(db_,
                  "INSERT INTO metrics(run_id, step, epoch, name, value, wall_time) VALUES (?, ?, ?, ?, ?, ?)");
    for (const RunExport::TimedMetric& m : in.metrics) {
      met.Bind(1, id).Bind(2, m.metric.step).Bind(3, m.metric.epoch).Bind(4, m.metric.name).Bind(5, m.metric.value);
      met.Bind(6, m.wall_time);
      met.Step();
      if (!met.ok() || met.rc() != SQLITE_OK) {
        return Error(absl::StrCat("cannot store metric ", m.metric.name, " step ", m.metric.step, " of ", who));
      }
      met.Reset();
    }
    Statement al(db_,
                 "INSERT INTO allocations(run_id, iteration, layer, kind, group_index, bits) VALUES (?, ?, ?, ?, ?, ?)");
    for (const auto& [iteration, groups] : in.allocations) {
      for (const GroupBits& g : groups) {
        al.Bind(1, id).Bind(2, iteration).Bind(3, g.layer).Bind(4, std::string(g.is_weight ? "weight" : "activation"));
        al.Bind(5, g.group).Bind(6, g.bits);
        al.Step();
        if (!al.ok() || al.rc() != SQLITE_OK) {
          return Error(absl::StrCat("cannot store allocation ", iteration, " ", g.layer, "[", g.group, "] of ", who));
        }
        al.Reset();
      }
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::optional<std::string>> ResultStore::CachedDigest(const std::string& path, int64_t size,
                                                                    int64_t mtime_ns) {
  Statement st(db_, "SELECT digest FROM file_digests WHERE path = ? AND size = ? AND mtime_ns = ?");
  st.Bind(1, path).Bind(2, size).Bind(3, mtime_ns);
  if (st.Step()) return std::optional<std::string>(st.Text(0));
  if (!st.ok() || st.rc() != SQLITE_OK) return Error("cannot read the digest of " + path);
  return std::optional<std::string>();
}

absl::Status ResultStore::PutDigest(const std::string& path, int64_t size, int64_t mtime_ns, const std::string& digest) {
  return Transaction([&]() -> absl::Status {
    Statement st(db_, "INSERT OR REPLACE INTO file_digests(path, size, mtime_ns, digest) VALUES (?, ?, ?, ?)");
    st.Bind(1, path).Bind(2, size).Bind(3, mtime_ns).Bind(4, digest);
    st.Step();
    if (!st.ok() || st.rc() != SQLITE_OK) return Error("cannot store the digest of " + path);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<std::vector<std::string>>> ResultStore::QueryText(const std::string& sql) {
  Statement st(db_, sql);
  if (!st.ok()) return Error("cannot prepare query");
  if (!st.read_only()) {
    return absl::InvalidArgumentError(absl::StrCat("results database ", path_, ": query must be read-only: ", sql));
  }
  std::vector<std::vector<std::string>> rows(1);
  for (int c = 0; c < st.columns(); ++c) rows[0].push_back(st.column_name(c));
  while (st.Step()) {
    std::vector<std::string> row;
    for (int c = 0; c < st.columns(); ++c) row.push_back(st.Text(c));
    rows.push_back(std::move(row));
  }
  if (st.rc() != SQLITE_OK) return Error("query failed");
  return rows;
}

}  // namespace mpq::results

// healthcheck: proves that LibTorch (Debian's, built with glog + gflags), absl flags
// and SQLite coexist in one binary: flags parse, a tensor op runs on the configured
// thread count, and an in-memory SQLite database round-trips a row.
//
//   bazel run //tools:healthcheck -- --threads=2
//
// Exit status 0 and a line "healthcheck: OK" when everything works.
#include <ATen/Parallel.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/ones.h>
#include <c10/util/Exception.h>
#include <sqlite3.h>
#include <torch_info.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"

ABSL_FLAG(int, threads, 0, "Intra-op threads for LibTorch; 0 keeps LibTorch's default.");
ABSL_FLAG(std::string, probe, "", "Echoed back, so a test can check that flag parsing worked.");

namespace {

bool CheckTorch(int threads) {
  if (threads > 0) at::set_num_threads(threads);
  // (64x64 of ones) @ (64x64 of ones) = 64 everywhere: exercises BLAS and dispatch.
  at::Tensor a = at::ones({64, 64});
  at::Tensor c = at::matmul(a, a);
  const double got = c.sum().item<double>();
  const double want = 64.0 * 64 * 64;
  absl::PrintF("torch: %s (%s, cuda=%d), intra-op threads %d, matmul sum %.0f (want %.0f)\n",
               MPQ_LIBTORCH_VERSION, MPQ_LIBTORCH_SOURCE, MPQ_LIBTORCH_HAS_CUDA,
               at::get_num_threads(), got, want);
  try {
    TORCH_CHECK(threads >= 0, "threads must be >= 0, got ", threads);
  } catch (const c10::Error& e) {
    absl::FPrintF(stderr, "torch check: %s\n", e.what_without_backtrace());
    return false;
  }
  return got == want;
}

bool CheckSqlite() {
  sqlite3* db = nullptr;
  if (sqlite3_open(":memory:", &db) != SQLITE_OK) {
    absl::FPrintF(stderr, "sqlite: cannot open an in-memory database: %s\n", sqlite3_errmsg(db));
    sqlite3_close(db);
    return false;
  }
  char* error = nullptr;
  int value = -1;
  const int rc = sqlite3_exec(
      db, "CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (42); SELECT x FROM t;",
      [](void* out, int, char** row, char**) {
        *static_cast<int*>(out) = std::stoi(row[0]);
        return 0;
      },
      &value, &error);
  if (rc != SQLITE_OK) {
    absl::FPrintF(stderr, "sqlite: %s\n", error ? error : "unknown error");
    sqlite3_free(error);
  }
  sqlite3_close(db);
  absl::PrintF("sqlite: %s, round trip %d (want 42)\n", sqlite3_libversion(), value);
  return rc == SQLITE_OK && value == 42;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    absl::FPrintF(stderr, "healthcheck: unexpected argument '%s' (it takes flags only)\n", positional[1]);
    return 2;
  }
  absl::PrintF("flags: probe='%s' threads=%d\n", absl::GetFlag(FLAGS_probe), absl::GetFlag(FLAGS_threads));
  const bool ok = CheckTorch(absl::GetFlag(FLAGS_threads)) && CheckSqlite();
  absl::PrintF("healthcheck: %s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}

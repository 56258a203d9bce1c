// data_parallel.h — data-parallel training across processes with LibTorch's c10d:
// ProcessGroupGloo over TCP (CPU tensors), its TCPStore for the rendezvous. No
// communication code of our own: this wraps c10d's broadcast and all-reduce.
//
//   absl::StatusOr<DistEnv> env = DistEnvFromEnvironment();          // RANK, WORLD_SIZE, ...
//   absl::StatusOr<std::unique_ptr<DataParallel>> dp = DataParallel::Connect(*env);
//   trainer.set_data_parallel(dp->get());                            // lib/train/trainer.h
//
// The environment is torch.distributed's: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (as
// torchrun sets them), or Slurm's SLURM_PROCID and SLURM_NTASKS (srun), with MASTER_ADDR
// (else SLURM_LAUNCH_NODE_IPADDR) and MASTER_PORT (default 29500). Rank 0 hosts the store.
//
// Gradients are averaged exactly as one process with the global batch would: each rank
// multiplies its gradients by its local example count, the sums are all-reduced in
// buckets of at most 25 MiB (DDP's default bucket size) together with the counts, and
// divided by the global count; so ranks may hold unequal shares of a batch (a partial
// last batch, skipped bad examples) or none. A parameter without a gradient on every
// rank stays without one (as in one process: the optimizer skips it).
#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mpq::dist {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "default";  // "torch" (RANK/WORLD_SIZE), "slurm", or "default" (one process)
};

// From the environment (see above); one process when neither RANK/WORLD_SIZE nor
// SLURM_PROCID/SLURM_NTASKS is set. A malformed or inconsistent variable is an error
// naming it and its value.
absl::StatusOr<DistEnv> DistEnvFromEnvironment();
// The same from an explicit lookup (tests): `get(name)` returns nullptr when unset.
absl::StatusOr<DistEnv> DistEnvFrom(const std::function<const char*(const char*)>& get);

class DataParallel {
 public:
  // Joins the group: every rank must call it with the same world size and master.
  // `timeout` bounds the rendezvous and every collective (a rank that died makes the
  // others fail with c10d's error instead of hanging).
  static absl::StatusOr<std::unique_ptr<DataParallel>> Connect(
      const DistEnv& env, std::chrono::milliseconds timeout = std::chrono::minutes(10));
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }

  // Every tensor takes rank 0's values (parameters and buffers before training).
  absl::Status Broadcast(const std::vector<at::Tensor>& tensors);
  // For each tensor (a parameter), its .grad() becomes sum_r n_r grad_r / sum_r n_r over
  // the ranks r, n_r = `local_count` there; undefined on every rank stays undefined,
  // undefined on some counts as zero there. Returns sum_r n_r (0: nobody had data;
  // gradients are then left as they were).
  absl::StatusOr<int64_t> AverageGradients(const std::vector<at::Tensor>& parameters, int64_t local_count);
  // Element-wise sums over the ranks (epoch statistics).
  absl::StatusOr<std::vector<double>> SumOverRanks(const std::vector<double>& values);
  // Waits for every rank.
  absl::Status Barrier();
  // Rank 0's `value` under `key` (a key used once), through the rendezvous store: rank 0
  // sets it and returns once every other rank has read it; they wait for it (up to the
  // timeout).
  absl::StatusOr<std::string> ShareFromRankZero(const std::string& key, const std::string& value);

 private:
  struct Impl;
  DataParallel(int rank, int world_size, std::unique_ptr<Impl> impl);
  int rank_ = 0, world_size_ = 1;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mpq::dist

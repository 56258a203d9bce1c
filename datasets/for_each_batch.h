// for_each_batch.h — one pass over a DataLoader's epoch with the loader's errors and the
// callback's errors both ending the pass, the loop every measuring pass writes
// (BatchNorm re-estimation, Hessian traces).
//
//   absl::Status s = data::ForEachBatch(loader, 0, [&](const data::Batch& b) {
//     model.forward(b.images);
//     return absl::OkStatus();
//   });
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "datasets/loader.h"

namespace mpq::data {

// Calls fn(batch) for every batch of epoch `epoch`; returns the first error of the loader
// or of fn (the pass stops there), else OK.
template <typename Fn>
absl::Status ForEachBatch(DataLoader& loader, int64_t epoch, Fn&& fn) {
  loader.StartEpoch(epoch);
  Batch batch;
  while (true) {
    absl::StatusOr<bool> more = loader.Next(&batch);
    if (!more.ok()) return more.status();
    if (!*more) return absl::OkStatus();
    if (absl::Status s = fn(static_cast<const Batch&>(batch)); !s.ok()) return s;
  }
}

}  // namespace mpq::data

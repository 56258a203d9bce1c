// interrupt.h — SIGTERM and SIGINT as a request to stop cleanly. Slurm sends SIGTERM
// before it preempts or requeues a job, and Ctrl-C sends SIGINT: the runner installs
// the handlers, long loops (the trainer's steps, Hutchinson's iterations, the batches of
// IMPQ's sensitivity pass) call CheckInterrupt, and the run is stored as "interrupted"
// (resumable) instead of being left "running" by a killed process.
//
//   runtime::InstallInterruptHandlers();                       // once, in main
//   if (absl::Status s = runtime::CheckInterrupt("epoch 3"); !s.ok()) return s;  // Cancelled
//
// The handler only records the signal (async-signal-safe) and restores the default
// action, so a second signal terminates at once; state files are written atomically, so
// that is safe too, just less tidy.
#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace mpq::runtime {

void InstallInterruptHandlers();
// The signal received (SIGTERM, SIGINT), or 0.
int InterruptSignal();
// Cancelled ("interrupted by SIGTERM during <where>; ...") once a signal arrived, else OK.
absl::Status CheckInterrupt(std::string_view where);
// Another process of a data-parallel group was signalled (it stops at the same step as
// this one): from now on this process is interrupted too, as if SIGTERM had arrived,
// so it ends the same way (the run resumable, exit 143). No-op when a signal arrived.
void InterruptFromAnotherRank();
// For tests: as if `signal` had arrived (0 clears it).
void SetInterruptForTesting(int signal);

}  // namespace mpq::runtime

#include "lib/runtime/interrupt.h"

#include <signal.h>
#include <string.h>

#include <atomic>
#include <string>

#include "absl/strings/str_cat.h"

namespace mpq::runtime {
namespace {

std::atomic<int> received{0};
static_assert(std::atomic<int>::is_always_lock_free, "the handler needs a lock-free atomic");

extern "C" void OnInterrupt(int signal) { received.store(signal, std::memory_order_relaxed); }

}  // namespace

void InstallInterruptHandlers() {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND;  // a second signal takes the default action
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

int InterruptSignal() { return received.load(std::memory_order_relaxed); }

absl::Status CheckInterrupt(std::string_view where) {
  const int signal = InterruptSignal();
  if (signal == 0) return absl::OkStatus();
  const std::string name = signal == SIGTERM ? "SIGTERM" : signal == SIGINT ? "SIGINT" : absl::StrCat("signal ", signal);
  return absl::CancelledError(
      absl::StrCat("interrupted by ", name, " during ", std::string(where), "; run it again to resume from its last checkpoint"));
}

void InterruptFromAnotherRank() {
  int none = 0;
  received.compare_exchange_strong(none, SIGTERM, std::memory_order_relaxed);
}

void SetInterruptForTesting(int signal) { received.store(signal, std::memory_order_relaxed); }

}  // namespace mpq::runtime

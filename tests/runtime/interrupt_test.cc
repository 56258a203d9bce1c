// A stop request: the signal recorded, CheckInterrupt's message, and a data-parallel
// rank stopped by another rank's signal ending the same way (as if SIGTERM had arrived).
#include "lib/runtime/interrupt.h"

#include <gtest/gtest.h>

#include <csignal>
#include <string>

namespace mpq::runtime {
namespace {

TEST(InterruptTest, ASignalBecomesACancelledStatusNamingIt) {
  SetInterruptForTesting(0);
  EXPECT_TRUE(CheckInterrupt("epoch 1").ok());
  SetInterruptForTesting(SIGINT);
  const absl::Status s = CheckInterrupt("epoch 2");
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  EXPECT_NE(std::string(s.message()).find("interrupted by SIGINT during epoch 2"), std::string::npos) << s;
  SetInterruptForTesting(0);
}

TEST(InterruptTest, AnotherRanksSignalInterruptsThisOneAsSigterm) {
  SetInterruptForTesting(0);
  InterruptFromAnotherRank();
  EXPECT_EQ(InterruptSignal(), SIGTERM);
  EXPECT_NE(std::string(CheckInterrupt("step 3").message()).find("interrupted by SIGTERM during step 3"),
            std::string::npos);
  // A signal of its own is kept.
  SetInterruptForTesting(SIGINT);
  InterruptFromAnotherRank();
  EXPECT_EQ(InterruptSignal(), SIGINT);
  SetInterruptForTesting(0);
}

}  // namespace
}  // namespace mpq::runtime

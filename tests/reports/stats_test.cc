// The leaderboard's statistics against closed forms (Student's t with 2 degrees of
// freedom has CDF 1/2 + t / (2 sqrt(t^2 + 2))) and textbook quantiles.
#include "reports/stats.h"

#include <gtest/gtest.h>

#include <cmath>

namespace mpq::reports {
namespace {

TEST(StatsTest, MeanSdAndTheStudentTInterval) {
  const Summary s = Summarize({1, 2, 3});
  EXPECT_EQ(s.n, 3);
  EXPECT_DOUBLE_EQ(s.mean, 2);
  EXPECT_DOUBLE_EQ(s.sd, 1);
  // t_{0.975, 2} = 0.95 / sqrt(2 * 0.975 * 0.025) in closed form.
  const double t2 = 0.95 / std::sqrt(2 * 0.975 * 0.025);
  EXPECT_NEAR(s.ci_high - s.mean, t2 / std::sqrt(3.0), 1e-9);
  EXPECT_NEAR(s.mean - s.ci_low, t2 / std::sqrt(3.0), 1e-9);
  // Closed forms against GSL: 1e-9 leaves room for its quantile's ~1e-10 relative error,
  // whatever the CPU (no vectorised arithmetic involved).
  // Textbook t_{0.975, df}: 12.706 (1), 2.776 (4), 2.262 (9), printed to 4 decimals: 1e-4
  // covers that rounding; the df = 1 check compares a derived interval, so 1e-3.
  EXPECT_NEAR(Summarize({0, 1}).ci_high - 0.5, 12.7062 * std::sqrt(0.5) / std::sqrt(2.0), 1e-3);
  const Summary five = Summarize({1, 2, 3, 4, 5});
  EXPECT_NEAR((five.ci_high - five.mean) / (five.sd / std::sqrt(5.0)), 2.7764, 1e-4);
  const Summary ten = Summarize({1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  EXPECT_NEAR((ten.ci_high - ten.mean) / (ten.sd / std::sqrt(10.0)), 2.2622, 1e-4);
  EXPECT_NEAR((Summarize({1, 2, 3}, 0.9).ci_high - 2) * std::sqrt(3.0), 0.9 / std::sqrt(2 * 0.95 * 0.05), 1e-9);
}

TEST(StatsTest, OneOrNoValueHasNoInterval) {
  const Summary one = Summarize({89.5});
  EXPECT_EQ(one.n, 1);
  EXPECT_DOUBLE_EQ(one.mean, 89.5);
  EXPECT_FALSE(one.has_ci());
  EXPECT_EQ(Summarize({}).n, 0);
}

TEST(StatsTest, PairedTTestByClosedForm) {
  // Differences 1, 2, 3: t = 2 / (1 / sqrt 3); p = 2 (1/2 - t / (2 sqrt(t^2 + 2))) for 2 df.
  const PairedTest r = PairedT({11, 12, 13}, {10, 10, 10});
  ASSERT_TRUE(r.defined());
  EXPECT_DOUBLE_EQ(r.mean_difference, 2);
  EXPECT_NEAR(r.t, 2 * std::sqrt(3.0), 1e-12);
  EXPECT_NEAR(r.p, 1 - r.t / std::sqrt(r.t * r.t + 2), 1e-9);
  EXPECT_NEAR(r.p, 0.0742, 1e-4);
  // The sign follows a - b; p does not.
  const PairedTest back = PairedT({10, 10, 10}, {11, 12, 13});
  EXPECT_NEAR(back.t, -r.t, 1e-12);
  EXPECT_NEAR(back.p, r.p, 1e-12);
}

TEST(StatsTest, DegenerateDifferences) {
  EXPECT_DOUBLE_EQ(PairedT({1, 2, 3}, {1, 2, 3}).p, 1);
  const PairedTest shift = PairedT({2, 3, 4}, {1, 2, 3});
  EXPECT_DOUBLE_EQ(shift.p, 0);
  EXPECT_TRUE(std::isinf(shift.t));
  EXPECT_FALSE(PairedT({1}, {2}).defined());
  EXPECT_THROW(PairedT({1, 2}, {1}), std::invalid_argument);
}

}  // namespace
}  // namespace mpq::reports

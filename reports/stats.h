// stats.h — the statistics of the leaderboard: a mean with its Student-t confidence
// interval over seeds, and a paired t-test of two methods run with the same seeds.
// Distribution functions come from GSL (libgsl-dev: gsl_cdf_tdist_Pinv, _Q).
//
//   Summary s = Summarize({89.1, 89.6, 88.9});          // n 3, mean, sd, 95% CI
//   PairedTest t = PairedT({88.0, 88.4, 87.9}, {89.1, 89.6, 88.9});  // a - b per seed
#pragma once

#include <vector>

namespace mpq::reports {

struct Summary {
  int n = 0;
  double mean = 0;
  double sd = 0;                    // sample standard deviation (n - 1); 0 when n < 2
  double ci_low = 0, ci_high = 0;   // mean -+ t_{(1+c)/2, n-1} sd / sqrt(n); = mean when n < 2
  bool has_ci() const { return n >= 2; }
};
Summary Summarize(const std::vector<double>& values, double confidence = 0.95);

// Two-sided paired t-test of mean(a - b) = 0, pairs (a[i], b[i]) from the same seed.
struct PairedTest {
  int n = 0;
  double mean_difference = 0;  // mean of a - b
  double sd_difference = 0;
  double t = 0;
  double p = 1;                // two-sided; 1 when n < 2; 0 when every difference is the same non-zero value
  bool defined() const { return n >= 2; }
};
PairedTest PairedT(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace mpq::reports

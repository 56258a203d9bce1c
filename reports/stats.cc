#include "reports/stats.h"

#include <gsl/gsl_cdf.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace mpq::reports {

Summary Summarize(const std::vector<double>& values, double confidence) {
  Summary s;
  s.n = static_cast<int>(values.size());
  if (s.n == 0) return s;
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / s.n;
  s.ci_low = s.ci_high = s.mean;
  if (s.n < 2) return s;
  double ss = 0;
  for (double v : values) ss += (v - s.mean) * (v - s.mean);
  s.sd = std::sqrt(ss / (s.n - 1));
  const double t = gsl_cdf_tdist_Pinv(0.5 + confidence / 2, s.n - 1);
  const double half = t * s.sd / std::sqrt(static_cast<double>(s.n));
  s.ci_low = s.mean - half;
  s.ci_high = s.mean + half;
  return s;
}

PairedTest PairedT(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) throw std::invalid_argument("PairedT: the samples differ in size");
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  const Summary s = Summarize(d);
  PairedTest r;
  r.n = s.n;
  r.mean_difference = s.mean;
  r.sd_difference = s.sd;
  if (r.n < 2) return r;
  if (s.sd == 0) {
    r.t = s.mean == 0 ? 0 : std::copysign(std::numeric_limits<double>::infinity(), s.mean);
    r.p = s.mean == 0 ? 1 : 0;
    return r;
  }
  r.t = s.mean / (s.sd / std::sqrt(static_cast<double>(r.n)));
  r.p = 2 * gsl_cdf_tdist_Q(std::fabs(r.t), r.n - 1);
  return r;
}

}  // namespace mpq::reports

// reference.h — helpers for quantizer tests: seeded random tensors, float64 element
// access, and comparison against a float64 reference that tolerates rounding ties.
//
// Why ties: the kernels compute in float32, the references in float64. An element
// whose pre-rounding value lies within 1e-4 of a rounding boundary may legitimately
// round to the neighbouring level; everywhere else results must agree to float
// precision. The reference reports, per element, its distance to the nearest boundary.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace mpq::testing {

// Seeds ATen's generator from the running test's name: fresh inputs per test, the
// same inputs on every run.
inline void SeedFromTestName() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  at::manual_seed(std::hash<std::string>()(std::string(info->test_suite_name()) + "." + info->name()));
}

inline std::vector<double> ToVector(const at::Tensor& t) {
  const at::Tensor d = t.detach().to(at::kDouble).contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

struct ReferenceElement {
  double value = 0;     // quantized value in float64
  double tie = 1;       // |frac(u) - 1/2| of the pre-rounding value u (1 when no rounding)
  double step = 0;      // one quantization step around this element
  double u = 0;         // the pre-rounding value itself
  double magnitude = 0; // size of intermediates when larger than the result (e.g. 2q - 1)
};

// How close to a boundary float32 arithmetic may land on the other side: a fixed 1e-4
// for the different operation order, plus float32's resolution at |u| (large at 16 bits,
// where |u| reaches 2^15).
inline double TieWindow(const ReferenceElement& e) { return 1e-4 + 4 * 1.1920929e-7 * std::abs(e.u); }

// |frac(u) - 1/2|: 0 exactly on a round-half boundary.
inline double DistanceToRoundingBoundary(double u) {
  const double f = u - std::floor(u);
  return std::abs(f - 0.5);
}

// Expects ours[i] == ref[i].value to float precision, or within one step where the
// reference sits on a rounding boundary. Reports the first few mismatches.
inline void ExpectMatchesReference(const at::Tensor& ours, const std::vector<ReferenceElement>& ref) {
  const std::vector<double> got = ToVector(ours);
  ASSERT_EQ(got.size(), ref.size());
  int mismatches = 0, ties_used = 0;
  double expected_ties = 0;  // sum of window widths: the chance of landing in one
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = std::abs(got[i] - ref[i].value);
    // float32 arithmetic on values of magnitude ~|ref| and ~step.
    const double tolerance = 2e-6 * (std::abs(ref[i].value) + ref[i].step + ref[i].magnitude) + 1e-12;
    if (ref[i].step > 0) expected_ties += 2 * TieWindow(ref[i]);
    if (diff <= tolerance) continue;
    if (ref[i].tie < TieWindow(ref[i]) && diff <= ref[i].step + tolerance) {
      ++ties_used;
      continue;
    }
    if (++mismatches <= 5) {
      ADD_FAILURE() << "element " << i << ": got " << got[i] << ", float64 reference " << ref[i].value
                    << " (step " << ref[i].step << ", distance to rounding boundary " << ref[i].tie << ")";
    }
  }
  EXPECT_EQ(mismatches, 0);
  // Ties must stay as rare as the windows are narrow, or the tolerance is hiding a
  // systematic error (bound: 3x the expected count, plus a few).
  EXPECT_LE(ties_used, 3 * expected_ties + 5);
}

inline void ExpectAllClose(const std::vector<double>& got, const std::vector<double>& want, double rtol,
                           double atol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::abs(got[i] - want[i]) > atol + rtol * std::abs(want[i]) && ++bad <= 5) {
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i];
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

// Central finite difference of f at p (float64), for parameter gradients.
inline double FiniteDifference(const std::function<double(double)>& f, double p, double h) {
  return (f(p + h) - f(p - h)) / (2 * h);
}

}  // namespace mpq::testing

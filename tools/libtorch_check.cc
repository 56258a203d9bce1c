// libtorch_check — checks lib/quant against whichever LibTorch it was built with.
//
//   bazel run //tools:libtorch_check              (Debian's LibTorch, or LIBTORCH=...)
//   tools/check_libtorch.sh /path/to/libtorch     (no Bazel: g++ only, e.g. a GPU machine)
//
// 1. Every quantizer's fused CPU kernel against its op chain (lib/quant/op_chain.h) on the
//    CPU: values and gradients of sum(c * q(x)) for fresh random inputs.
// 2. When CUDA is available: the same quantizers called on CUDA tensors (lib/quant sends
//    them to the op chain on the GPU) against the fused CPU kernels, values and gradients.
// 3. Time per forward+backward on a 16M-element tensor: fused CPU kernel, op chain on the
//    CPU, and (with CUDA) the op chain on the GPU, median of 15 after 3 warm-ups.
// Prints one line per check and exits 1 if any check fails.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "lib/quant/kernels.h"
#include "lib/quant/op_chain.h"
#include "lib/quant/quant.h"
#include "lib/runtime/malloc_tuning.h"

namespace mpq::quant {
namespace {

using Fn = std::function<at::Tensor(const std::vector<at::Tensor>&)>;

struct Case {
  std::string name;
  Fn fused, chain;
  std::function<std::vector<at::Tensor>(int64_t rows, int64_t cols)> inputs;  // x first
};

std::vector<Case> Cases() {
  auto w = [](int64_t r, int64_t c) { return at::randn({r, c}) * 0.3; };
  auto bits = [](int64_t r) {
    at::Tensor b = at::empty({r}, at::kInt);
    const int32_t pattern[] = {1, 2, 3, 4, 32, 2, 3, 4};
    for (int64_t i = 0; i < r; ++i) b[i] = pattern[i % 8];
    return b;
  };
  std::vector<Case> cases;
  cases.push_back({"lin", [=](auto& t) { return LinQuantize(t[0], bits(t[0].size(0))); },
                   [=](auto& t) { return op_chain::Lin(t[0], bits(t[0].size(0)).to(t[0].device())); },
                   [=](int64_t r, int64_t c) { return std::vector<at::Tensor>{w(r, c)}; }});
  cases.push_back({"dorefa_weight", [=](auto& t) { return DorefaQuantizeWeight(t[0], bits(t[0].size(0))); },
                   [=](auto& t) { return op_chain::DorefaWeight(t[0], bits(t[0].size(0)).to(t[0].device())); },
                   [=](int64_t r, int64_t c) { return std::vector<at::Tensor>{w(r, c)}; }});
  cases.push_back({"hwgq_weight", [=](auto& t) { return HwgqQuantizeWeight(t[0], bits(t[0].size(0))); },
                   [=](auto& t) { return op_chain::HwgqWeight(t[0], bits(t[0].size(0)).to(t[0].device())); },
                   [=](int64_t r, int64_t c) { return std::vector<at::Tensor>{w(r, c)}; }});
  cases.push_back({"lsq", [](auto& t) { return LsqQuantize(t[0], t[1], 3, true, 0.1); },
                   [](auto& t) { return op_chain::Lsq(t[0], t[1], 3, true, 0.1); },
                   [=](int64_t r, int64_t c) { return std::vector<at::Tensor>{w(r, c), at::rand({r}) * 0.1 + 0.05}; }});
  cases.push_back({"uhlich_uniform", [](auto& t) { return UhlichUniformQuantize(t[0], t[1], t[2], true); },
                   [](auto& t) { return op_chain::UhlichUniform(t[0], t[1], t[2], true); },
                   [=](int64_t r, int64_t c) {
                     return std::vector<at::Tensor>{w(r, c), at::full({r}, 0.05), at::full({r}, 0.4)};
                   }});
  cases.push_back({"uhlich_pow2", [](auto& t) { return UhlichPow2Quantize(t[0], t[1], t[2], true, true); },
                   [](auto& t) { return op_chain::UhlichPow2(t[0], t[1], t[2], true, true); },
                   [=](int64_t r, int64_t c) {
                     return std::vector<at::Tensor>{w(r, c), at::full({1}, 1.0 / 64), at::full({1}, 0.5)};
                   }});
  auto act = [](int64_t r, int64_t c) { return at::randn({r * c}) * 0.8 + 0.2; };
  cases.push_back({"dorefa_act", [](auto& t) { return DorefaQuantizeActivation(t[0], 3); },
                   [](auto& t) { return op_chain::DorefaActivation(t[0], 3); },
                   [=](int64_t r, int64_t c) { return std::vector<at::Tensor>{act(r, c)}; }});
  cases.push_back({"pact", [](auto& t) { return PactQuantize(t[0], t[1], 3); },
                   [](auto& t) { return op_chain::Pact(t[0], t[1], 3); },
                   [=](int64_t r, int64_t c) { return std::vector<at::Tensor>{act(r, c), at::full({1}, 0.9)}; }});
  cases.push_back({"hwgq_act", [](auto& t) { return HwgqQuantizeActivation(t[0], 2); },
                   [](auto& t) { return op_chain::HwgqActivation(t[0], 2); },
                   [=](int64_t r, int64_t c) { return std::vector<at::Tensor>{act(r, c)}; }});
  return cases;
}

// (output, gradient of every input) of sum(c * f(inputs)), inputs as fresh leaves on `device`.
std::vector<at::Tensor> ValueAndGrads(const Fn& f, const std::vector<at::Tensor>& inputs, const at::Tensor& c,
                                      at::Device device) {
  std::vector<at::Tensor> leaves;
  for (const at::Tensor& t : inputs) leaves.push_back(t.detach().to(device).clone().set_requires_grad(true));
  const at::Tensor out = f(leaves);
  (out * c.to(device)).sum().backward();
  std::vector<at::Tensor> result = {out.detach().cpu()};
  for (const at::Tensor& l : leaves) result.push_back(l.grad().defined() ? l.grad().cpu() : at::zeros_like(l).cpu());
  return result;
}

// Values may differ by one level at rounding ties (a handful of elements); gradients of
// learned parameters are sums over the tensor, compared relative to their size.
bool Same(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b, std::string* why) {
  const double mismatch = (a[0] - b[0]).abs().gt(1e-5).to(at::kDouble).mean().item<double>();
  if (mismatch >= 1e-3) {
    *why = "values differ on a fraction " + std::to_string(mismatch);
    return false;
  }
  for (size_t i = 1; i < a.size(); ++i) {
    const double tol = 1e-4 * (1 + b[i].abs().max().item<double>());
    const double diff = (a[i] - b[i]).abs().max().item<double>();
    if (!(diff <= tol)) {
      *why = "gradient of input " + std::to_string(i - 1) + " differs by " + std::to_string(diff);
      return false;
    }
  }
  return true;
}

double MedianMs(const std::function<void()>& body, bool cuda) {
  for (int i = 0; i < 3; ++i) body();
  if (cuda) torch::cuda::synchronize();
  std::vector<double> ms;
  for (int i = 0; i < 15; ++i) {
    const auto start = std::chrono::steady_clock::now();
    body();
    if (cuda) torch::cuda::synchronize();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(ms.begin(), ms.begin() + 7, ms.end());
  return ms[7];
}

int Main() {
  runtime::TuneMallocForRepeatedLargeAllocations();
  const bool cuda = torch::cuda::is_available();
  std::printf("LibTorch %s, kernels %s, %d intra-op threads, CUDA %s\n", TORCH_VERSION, CpuKernels().isa,
              at::get_num_threads(), cuda ? "available" : "not available");
  at::manual_seed(20261123);
  int failures = 0;
  auto report = [&](const std::string& what, bool ok, const std::string& why) {
    std::printf("%-44s %s%s%s\n", what.c_str(), ok ? "ok" : "FAILED", ok ? "" : ": ", ok ? "" : why.c_str());
    if (!ok) ++failures;
  };
  for (const Case& c : Cases()) {
    // 8 x 50 (tails, 1-bit and 32-bit groups) and 64 x 4099 (above the parallel threshold).
    for (const auto& [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{8, 50}, {64, 4099}}) {
      const std::vector<at::Tensor> in = c.inputs(rows, cols);
      const at::Tensor weight = at::randn(c.fused(in).sizes());
      const std::string shape = std::to_string(rows) + "x" + std::to_string(cols);
      const auto fused = ValueAndGrads(c.fused, in, weight, at::kCPU);
      std::string why;
      const bool cpu_ok = Same(fused, ValueAndGrads(c.chain, in, weight, at::kCPU), &why);
      report(c.name + " " + shape + " cpu: fused vs op chain", cpu_ok, why);
      if (cuda) {
        const bool gpu_ok = Same(ValueAndGrads(c.fused, in, weight, at::kCUDA), fused, &why);
        report(c.name + " " + shape + " cuda (op chain) vs cpu fused", gpu_ok, why);
      }
    }
  }
  std::printf("\nforward+backward, 16M elements (4096 x 4096), median ms of 15:\n");
  std::printf("%-16s %12s %14s %14s\n", "quantizer", "cpu fused", "cpu op chain", "cuda op chain");
  for (const Case& c : Cases()) {
    const std::vector<at::Tensor> in = c.inputs(4096, 4096);
    const at::Tensor ones = at::ones(c.fused(in).sizes());
    auto time_on = [&](const Fn& f, at::Device device) {
      std::vector<at::Tensor> leaves;
      for (const at::Tensor& t : in) leaves.push_back(t.to(device).clone().set_requires_grad(true));
      const at::Tensor g = ones.to(device);
      return MedianMs(
          [&] {
            f(leaves).backward(g);
            for (at::Tensor& l : leaves) l.mutable_grad().reset();
          },
          device.is_cuda());
    };
    const double fused = time_on(c.fused, at::kCPU), chain = time_on(c.chain, at::kCPU);
    if (cuda) {
      std::printf("%-16s %12.2f %14.2f %14.3f\n", c.name.c_str(), fused, chain, time_on(c.fused, at::kCUDA));
    } else {
      std::printf("%-16s %12.2f %14.2f %14s\n", c.name.c_str(), fused, chain, "-");
    }
  }
  std::printf("\n%s\n", failures == 0 ? "all checks passed" : (std::to_string(failures) + " checks FAILED").c_str());
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace mpq::quant

int main() { return mpq::quant::Main(); }

// Fused quantizer kernels against (a) LibTorch's built-in fake-quant ops and (b) the
// same math as a chain of tensor ops (the papers' style), and against this machine's
// copy bandwidth — all measured in one run.
//
//   bazel run //tests/quant:quantizer_benchmark -- --benchmark_min_time=0.2
//
// For every (quantizer, tensor, pass) the rows run in the order copy, torch builtin
// (where an equivalent exists), op chain, fused; the fused row reports
//   x_vs_chain   = op-chain time / fused time        (goal >= 2)
//   x_vs_builtin = builtin time / fused time         (goal >= 1)
//   copy_frac    = fused forward bytes/s / copy bytes/s (goal >= 0.5; forward only)
// glibc is told to keep freed memory (lib/runtime/malloc_tuning.h) unless
// --malloc_tuning=0 is passed: without it, large outputs page-fault on every call.
// Bytes counted: 4 read + 4 written per element forward; forward+backward adds the
// gradient read, the input re-read and the gradient written (12 more).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "lib/quant/kernels.h"
#include "lib/runtime/malloc_tuning.h"
#include "lib/quant/op_chain.h"
#include "lib/quant/quant.h"

namespace mpq::quant {
namespace {

struct Shape {
  std::string name;
  std::vector<int64_t> sizes;
};

// Inputs for one quantizer on one tensor; `params` require grad where learned.
struct Inputs {
  at::Tensor x;
  std::vector<at::Tensor> params;
};
using Quantize = std::function<at::Tensor(const Inputs&)>;

struct QuantizerCase {
  std::string name;
  bool is_weight;
  std::function<Inputs(const std::vector<int64_t>&)> make;
  Quantize fused, chain, builtin;  // builtin may be empty
};

at::Tensor PerChannelBits(const at::Tensor& w, int64_t b) { return at::full({w.size(0)}, b, at::kInt); }

std::vector<QuantizerCase> Cases() {
  auto weight = [](const std::vector<int64_t>& s) { return Inputs{at::randn(s) * 0.1, {}}; };
  auto act = [](const std::vector<int64_t>& s) { return Inputs{at::randn(s).relu_() * 2, {}}; };
  // Per-channel scale/zero point as LibTorch's per-channel fake quant wants them.
  auto per_channel_builtin = [](const Inputs& in, int64_t b) {
    const at::Tensor& w = in.x;
    const at::Tensor scale = (w.detach().flatten(1).abs().amax(1) * 2 / (1 << b)).clamp_min(1e-8);
    return at::fake_quantize_per_channel_affine(w, scale, at::zeros({w.size(0)}, at::kInt), 0, -(1 << (b - 1)),
                                                (1 << (b - 1)) - 1);
  };
  std::vector<QuantizerCase> cases;
  cases.push_back({"lin_w4_per_channel", true, weight,
                   [](const Inputs& in) { return LinQuantize(in.x, PerChannelBits(in.x, 4)); },
                   [](const Inputs& in) { return op_chain::Lin(in.x, PerChannelBits(in.x, 4)); },
                   [=](const Inputs& in) { return per_channel_builtin(in, 4); }});
  cases.push_back({"dorefa_w4", true, weight,
                   [](const Inputs& in) { return DorefaQuantizeWeight(in.x, at::full({1}, 4, at::kInt)); },
                   [](const Inputs& in) { return op_chain::DorefaWeight(in.x, at::full({1}, 4, at::kInt)); }, {}});
  cases.push_back({"hwgq_w2", true, weight,
                   [](const Inputs& in) { return HwgqQuantizeWeight(in.x, at::full({1}, 2, at::kInt)); },
                   [](const Inputs& in) { return op_chain::HwgqWeight(in.x, at::full({1}, 2, at::kInt)); }, {}});
  cases.push_back({"lsq_w4_per_channel", true,
                   [](const std::vector<int64_t>& s) {
                     Inputs in{at::randn(s) * 0.1, {}};
                     in.params.push_back((at::ones({s[0]}) * 0.02).set_requires_grad(true));
                     return in;
                   },
                   [](const Inputs& in) { return LsqQuantize(in.x, in.params[0], 4, true, 0.01); },
                   [](const Inputs& in) { return op_chain::Lsq(in.x, in.params[0], 4, true, 0.01); },
                   [](const Inputs& in) {
                     return at::_fake_quantize_learnable_per_channel_affine(
                         in.x, in.params[0], at::zeros({in.x.size(0)}), 0, -8, 7, 0.01);
                   }});
  cases.push_back({"uhlich_uniform_w", true,
                   [](const std::vector<int64_t>& s) {
                     Inputs in{at::randn(s) * 0.1, {}};
                     in.params.push_back(at::full({1}, 1.0 / 64).set_requires_grad(true));
                     in.params.push_back(at::full({1}, 0.25).set_requires_grad(true));
                     return in;
                   },
                   [](const Inputs& in) { return UhlichUniformQuantize(in.x, in.params[0], in.params[1], true); },
                   [](const Inputs& in) { return op_chain::UhlichUniform(in.x, in.params[0], in.params[1], true); },
                   {}});
  cases.push_back({"uhlich_pow2_w", true,
                   [](const std::vector<int64_t>& s) {
                     Inputs in{at::randn(s) * 0.1, {}};
                     in.params.push_back(at::full({1}, 1.0 / 256).set_requires_grad(true));
                     in.params.push_back(at::full({1}, 0.25).set_requires_grad(true));
                     return in;
                   },
                   [](const Inputs& in) { return UhlichPow2Quantize(in.x, in.params[0], in.params[1], true, true); },
                   [](const Inputs& in) { return op_chain::UhlichPow2(in.x, in.params[0], in.params[1], true, true); },
                   {}});
  // BitPruning's learned bitlengths: b = 4.5 interpolates 4 and 5 bits (two levels per element).
  cases.push_back({"fracbits_w4.5_per_channel", true,
                   [](const std::vector<int64_t>& s) {
                     Inputs in{at::randn(s) * 0.1, {}};
                     in.params.push_back(at::full({s[0]}, 4.5).set_requires_grad(true));
                     return in;
                   },
                   [](const Inputs& in) { return FracBitsQuantizeWeight(in.x, in.params[0]); },
                   [](const Inputs& in) { return op_chain::FracBitsWeight(in.x, in.params[0]); }, {}});
  cases.push_back({"fracbits_a3.5", false,
                   [](const std::vector<int64_t>& s) {
                     Inputs in{at::randn(s).relu_() * 2, {}};
                     in.params.push_back(at::full({1}, 3.5).set_requires_grad(true));
                     in.params.push_back(at::full({1}, 3.0).set_requires_grad(true));
                     return in;
                   },
                   [](const Inputs& in) { return FracBitsQuantizeActivation(in.x, in.params[0], in.params[1]); },
                   [](const Inputs& in) { return op_chain::FracBitsActivation(in.x, in.params[0], in.params[1]); },
                   {}});
  auto per_tensor_builtin = [](const Inputs& in, double scale, int64_t b) {
    return at::fake_quantize_per_tensor_affine(in.x, scale, 0, 0, (1 << b) - 1);
  };
  cases.push_back({"dorefa_a4", false, act, [](const Inputs& in) { return DorefaQuantizeActivation(in.x, 4); },
                   [](const Inputs& in) { return op_chain::DorefaActivation(in.x, 4); },
                   [=](const Inputs& in) { return per_tensor_builtin(in, 1.0 / 15, 4); }});
  cases.push_back({"pact_a4", false,
                   [](const std::vector<int64_t>& s) {
                     Inputs in{at::randn(s).relu_() * 2, {}};
                     in.params.push_back(at::full({1}, 3.0).set_requires_grad(true));
                     return in;
                   },
                   [](const Inputs& in) { return PactQuantize(in.x, in.params[0], 4); },
                   [](const Inputs& in) { return op_chain::Pact(in.x, in.params[0], 4); },
                   [=](const Inputs& in) { return per_tensor_builtin(in, 3.0 / 15, 4); }});
  cases.push_back({"hwgq_a2", false, act, [](const Inputs& in) { return HwgqQuantizeActivation(in.x, 2); },
                   [](const Inputs& in) { return op_chain::HwgqActivation(in.x, 2); },
                   [=](const Inputs& in) { return per_tensor_builtin(in, 0.538, 2); }});
  return cases;
}

std::vector<Shape> WeightShapes() {
  return {{"16M", {4096, 4096}}, {"resnet20_conv", {64, 64, 3, 3}}, {"mobilenet_pw", {1024, 1024, 1, 1}}};
}
std::vector<Shape> ActivationShapes() {
  return {{"16M", {16, 1024, 32, 32}}, {"resnet20_act_b128", {128, 64, 8, 8}}, {"mobilenet_act_b32", {32, 512, 14, 14}}};
}

// Seconds per iteration of each (case/shape/pass, variant), for the ratios.
std::map<std::string, double>& Times() {
  static std::map<std::string, double> times;
  return times;
}

void RunTimed(benchmark::State& state, const std::string& key, const std::function<void()>& body, double bytes) {
  body();  // warm-up: allocator, first-touch pages
  const auto start = std::chrono::steady_clock::now();
  int64_t iterations = 0;
  for (auto _ : state) {
    body();
    ++iterations;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Times()[key] = seconds / std::max<int64_t>(iterations, 1);
  state.SetBytesProcessed(static_cast<int64_t>(bytes * iterations));
}

// The copy baseline of a shape: dst.copy_(src), 4 bytes read + 4 written per element.
void RegisterCopy(const Shape& shape) {
  const double elements = static_cast<double>(c10::multiply_integers(shape.sizes));
  benchmark::RegisterBenchmark(("copy/" + shape.name).c_str(), [=](benchmark::State& state) {
    const at::Tensor src = at::randn(shape.sizes);
    at::Tensor dst = at::empty_like(src);
    RunTimed(state, "copy/" + shape.name, [&] { dst.copy_(src); }, elements * 8);
  })->UseRealTime();
}

void Register(const QuantizerCase& c, const Shape& shape, bool backward) {
  const std::string pass = backward ? "fwd_bwd" : "fwd";
  const std::string base = c.name + "/" + shape.name + "/" + pass;
  const double elements = static_cast<double>(c10::multiply_integers(shape.sizes));
  const double bytes = elements * (backward ? 20 : 8);
  auto make_body = [=](const Quantize& q) {
    auto inputs = std::make_shared<Inputs>(c.make(shape.sizes));
    if (backward) inputs->x.set_requires_grad(true);
    auto grad = std::make_shared<at::Tensor>(at::ones(shape.sizes));
    return [=]() {
      at::Tensor out = q(*inputs);
      if (backward) {
        out.backward(*grad);
        inputs->x.mutable_grad().reset();
        for (const at::Tensor& p : inputs->params) p.mutable_grad().reset();
      }
      benchmark::DoNotOptimize(out.data_ptr());
    };
  };
  if (c.builtin) {
    benchmark::RegisterBenchmark((base + "/torch_builtin").c_str(), [=](benchmark::State& state) {
      RunTimed(state, base + "/builtin", make_body(c.builtin), bytes);
    })->UseRealTime();
  }
  benchmark::RegisterBenchmark((base + "/op_chain").c_str(), [=](benchmark::State& state) {
    RunTimed(state, base + "/chain", make_body(c.chain), bytes);
  })->UseRealTime();
  benchmark::RegisterBenchmark((base + "/fused").c_str(), [=](benchmark::State& state) {
    RunTimed(state, base + "/fused", make_body(c.fused), bytes);
    const double fused = Times()[base + "/fused"];
    state.counters["x_vs_chain"] = Times()[base + "/chain"] / fused;
    if (c.builtin) state.counters["x_vs_builtin"] = Times()[base + "/builtin"] / fused;
    if (!backward) state.counters["copy_frac"] = Times()["copy/" + shape.name] / fused;
  })->UseRealTime();
}

}  // namespace
}  // namespace mpq::quant

int main(int argc, char** argv) {
  // --malloc_tuning=0 measures with glibc's defaults (see lib/runtime/malloc_tuning.h).
  bool tune = true;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--malloc_tuning=0") {
      tune = false;
      for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
      --argc;
      break;
    }
  }
  if (tune) mpq::runtime::TuneMallocForRepeatedLargeAllocations();
  std::printf("malloc tuning: %s\n", tune ? "on (lib/runtime/malloc_tuning.h)" : "off (glibc defaults)");
  at::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::printf("kernels: %s, LibTorch intra-op threads: %d\n", mpq::quant::CpuKernels().isa, at::get_num_threads());
  for (const auto& shape : mpq::quant::WeightShapes()) mpq::quant::RegisterCopy(shape);
  for (const auto& shape : mpq::quant::ActivationShapes()) mpq::quant::RegisterCopy(shape);
  for (const auto& c : mpq::quant::Cases()) {
    for (const auto& shape : c.is_weight ? mpq::quant::WeightShapes() : mpq::quant::ActivationShapes()) {
      mpq::quant::Register(c, shape, /*backward=*/false);
      mpq::quant::Register(c, shape, /*backward=*/true);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

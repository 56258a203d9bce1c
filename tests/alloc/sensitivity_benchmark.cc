// IMPQ's sensitivity pass, three ways, on the same 4-bit network (ResNet-20 unless named),
// examples and classes,
// in one run (docs/impq.md "Speed"):
//   ours     MeasureSensitivity: one backward per compared class for the whole batch,
//            per-example weight-gradient norms for all classes at once (a grouped
//            weight-gradient convolution, or Gram matrices where cheaper); also with the
//            convolution path forced for every layer, to show what the Gram path buys;
//   authors  their get_evalues loop (gsujankumar/IMPQ, utils/QuantModules.py) in LibTorch:
//            for every example and runner-up class, one backward of Z_k - Z_top through
//            the batch's graph, accumulating grad^2 / d^2. Each backward runs through the
//            whole batch, so its cost per (example, class) pair grows with the batch: the
//            defaults are the authors' ResNet-20 setting (config.py: --batch-size 100,
//            eval_top 10);
//   bound    the arithmetic the answer needs, about 2 x MACs of the network per
//            (example, class) pair, at the machine's measured MAC rate (a forward pass
//            of the same batch, timed here).
// Ours is timed 3 times and the median printed (the authors' loop once: it takes minutes),
// with the ratios. The two computations of E are compared too, layer by layer by name
// (largest relative difference of a kernel's E).
//
//   bazel run //tests/alloc:sensitivity_benchmark -- [examples=100] [classes=10] [threads=2] [model=resnet20]
// (model: any model of the zoo, built for 32x32 inputs; e.g. vgg_small, whose last stage
// takes the Gram path.)
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "datasets/loader.h"
#include "datasets/synthetic.h"
#include "datasets/transforms.h"
#include "lib/alloc/sensitivity.h"
#include "lib/models/registry.h"
#include "lib/nn/qconv.h"
#include "lib/runtime/malloc_tuning.h"

namespace mpq::alloc {
namespace {

double MedianSeconds(const std::function<void()>& f, int repeats = 3) {
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// The weights whose E both methods compute (QConv2d and QLinear), by module name.
struct NamedWeight {
  std::string name;
  at::Tensor weight;
};
std::vector<NamedWeight> QuantizedWeights(models::Model& model) {
  std::vector<NamedWeight> w;
  for (const auto& m : model.named_modules("", /*include_self=*/false)) {
    if (auto* c = dynamic_cast<nn::QConv2dImpl*>(m.value().get())) w.push_back({m.key(), c->weight});
    if (auto* l = dynamic_cast<nn::QLinearImpl*>(m.value().get())) w.push_back({m.key(), l->weight});
  }
  return w;
}

// The authors' loop: per example i and runner-up k, backward of d = Z_k - Z_top through
// the whole batch's graph; E += grad^2 / d^2 per weight. Returns E per output channel
// (sum over the kernel), per layer, without the 1/12, summed over examples.
std::vector<at::Tensor> AuthorsLoop(models::Model& model, const at::Tensor& images, int64_t classes) {
  std::vector<at::Tensor> weights;
  for (const NamedWeight& w : QuantizedWeights(model)) weights.push_back(w.weight);
  std::vector<at::Tensor> e;
  for (const at::Tensor& w : weights) e.push_back(at::zeros({w.size(0)}, at::kDouble));
  const at::Tensor logits = model.forward(images);
  const at::Tensor order = logits.detach().argsort(1, /*descending=*/true);
  for (int64_t i = 0; i < images.size(0); ++i) {
    const int64_t top = order[i][0].item<int64_t>();
    for (int64_t c = 1; c < classes; ++c) {
      const at::Tensor d = logits[i][order[i][c].item<int64_t>()] - logits[i][top];
      const double dv = d.item<double>();
      if (dv == 0) continue;
      const std::vector<at::Tensor> g = torch::autograd::grad({d}, weights, {}, /*retain_graph=*/true);
      at::NoGradGuard no_grad;
      for (size_t j = 0; j < weights.size(); ++j) {
        e[j] += g[j].to(at::kDouble).pow(2).reshape({g[j].size(0), -1}).sum(1) / (dv * dv);
      }
    }
  }
  return e;
}

int Main(int argc, char** argv) {
  const int64_t examples = argc > 1 ? std::atoll(argv[1]) : 100;
  const int64_t classes = argc > 2 ? std::atoll(argv[2]) : 10;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 2;
  const std::string model_name = argc > 4 ? argv[4] : "resnet20";
  at::set_num_threads(threads);
  at::manual_seed(1);
  models::ModelOptions o;
  o.in_channels = 1;
  o.num_classes = 10;
  o.image_size = 32;
  o.quant.weight_bits = 4;  // Lin, per kernel: IMPQ's start
  const auto entry = models::FindModel(model_name);
  if (!entry.ok()) {
    std::fprintf(stderr, "%s\n", std::string(entry.status().message()).c_str());
    return 2;
  }
  std::shared_ptr<models::Model> net = (*entry)->make(o);
  net->eval();

  data::SyntheticOptions so;
  so.num_examples = examples;
  std::unique_ptr<data::InMemoryDataset> ds = std::move(*data::MakeSynthetic(so));
  std::vector<int64_t> idx(examples);
  for (int64_t i = 0; i < examples; ++i) idx[i] = i;
  data::LoaderOptions lo;
  lo.batch_size = examples;  // one batch: both methods see the same graph
  lo.num_workers = 0;
  std::unique_ptr<data::DataLoader> loader =
      std::move(*data::DataLoader::Create(*ds, idx, data::FashionMnistPipelines(32).eval, lo));
  data::Batch batch;
  loader->StartEpoch(0);
  (void)*loader->Next(&batch);

  SensitivityOptions so_opts;
  so_opts.eval_top = classes;
  absl::StatusOr<SensitivityReport> ours_report;
  (void)MeasureSensitivity(*net, *loader, so_opts);  // untimed: the libraries' one-time setup
  const double t_ours = MedianSeconds([&] { ours_report = MeasureSensitivity(*net, *loader, so_opts); });
  if (!ours_report.ok()) {
    std::fprintf(stderr, "sensitivity: %s\n", std::string(ours_report.status().message()).c_str());
    return 1;
  }
  SensitivityOptions direct_opts = so_opts;
  direct_opts.conv_path = GradNormPath::kDirect;
  const double t_direct = MedianSeconds([&] { (void)MeasureSensitivity(*net, *loader, direct_opts); });
  std::vector<at::Tensor> authors;
  const double t_authors = MedianSeconds([&] { authors = AuthorsLoop(*net, batch.images, classes); }, 1);
  double t_forward = 0;
  {
    at::NoGradGuard no_grad;
    t_forward = MedianSeconds([&] { net->forward(batch.images); }, 5);
  }
  const double pairs = static_cast<double>(examples) * (classes - 1);
  const double t_bound = pairs * 2.0 * t_forward / static_cast<double>(examples);

  // Agreement, layer by layer by name: ours holds E/12 averaged over examples, per kernel
  // (or one group per layer at layer granularity, compared with the kernels' sum).
  std::map<std::string, std::vector<double>> mine;
  for (const GroupSensitivity& g : ours_report->groups) {
    if (g.is_weight) mine[g.layer].push_back(g.energy * 12.0 * static_cast<double>(examples));
  }
  double worst = 0;
  int64_t compared = 0, missing = 0;
  const std::vector<NamedWeight> named = QuantizedWeights(*net);
  for (size_t j = 0; j < authors.size(); ++j) {
    const auto it = mine.find(named[j].name);
    const at::Tensor& theirs = authors[j];
    if (it == mine.end() || (it->second.size() != 1 && static_cast<int64_t>(it->second.size()) != theirs.size(0))) {
      ++missing;
      continue;
    }
    const bool whole = it->second.size() == 1 && theirs.size(0) != 1;
    for (int64_t c = 0; c < (whole ? 1 : theirs.size(0)); ++c, ++compared) {
      const double t = whole ? theirs.sum().item<double>() : theirs[c].item<double>();
      if (t > 0) worst = std::max(worst, std::abs(it->second[static_cast<size_t>(c)] - t) / t);
    }
  }
  std::printf("%s (4-bit Lin per kernel), %lld examples x %lld compared classes, %d threads\n",
              model_name.c_str(), static_cast<long long>(examples), static_cast<long long>(classes - 1), threads);
  std::printf("  %-8s %9.2f s\n", "ours", t_ours);
  std::printf("  %-8s %9.2f s   (ours with the convolution path for every layer; / ours = %.2fx)\n", "direct",
              t_direct, t_direct / t_ours);
  std::printf("  %-8s %9.2f s   (authors / ours = %.1fx)\n", "authors", t_authors, t_authors / t_ours);
  std::printf("  %-8s %9.2f s   (ours / bound = %.1fx)\n", "bound", t_bound, t_ours / t_bound);
  std::printf("  largest relative difference of a kernel's E, ours vs the authors' loop: %.2g (%lld groups compared",
              worst, static_cast<long long>(compared));
  if (missing > 0) std::printf("; %lld layers missing from ours", static_cast<long long>(missing));
  std::printf(")\n");
  return 0;
}

}  // namespace
}  // namespace mpq::alloc

int main(int argc, char** argv) {
  mpq::runtime::TuneMallocForRepeatedLargeAllocations();
  return mpq::alloc::Main(argc, argv);
}

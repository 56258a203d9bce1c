// batched_hvp.h — Hessian-vector products for several vectors at once, in one
// second-order backward pass, with LibTorch's (legacy) vmap: the grad_outputs carry a
// batch dimension, as torch.autograd.grad(..., is_grads_batched=True) does in Python
// (LibTorch 1.13's C++ autograd::grad has no such flag). The question HAWQ-V3's trace
// pass asks of it: is one batched backward cheaper than one backward per vector
// (tests/alloc:hessian_trace_benchmark measures it; tests/alloc:batched_hvp_test checks
// the products against one at a time).
//
//   std::vector<at::Tensor> g = torch::autograd::grad({loss}, w, {}, true, /*create_graph=*/true);
//   std::vector<at::Tensor> hv = BatchedHessianVectorProducts(g, w, V);  // V[j]: [m, w[j].sizes()...]
//   // hv[j][k] = (H v_k)_j, the block of H times the k-th vector (all layers jointly)
#pragma once

#include <ATen/ATen.h>
#include <ATen/VmapMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <cstdint>
#include <vector>

namespace mpq::alloc::testing {

// grads: the first-order gradients of a loss with respect to `weights`, built with
// create_graph; vectors[j]: m vectors for weights[j], stacked on dimension 0. The graph is
// kept (retain_graph) so that it can be used again.
inline std::vector<at::Tensor> BatchedHessianVectorProducts(const std::vector<at::Tensor>& grads,
                                                            const std::vector<at::Tensor>& weights,
                                                            const std::vector<at::Tensor>& vectors) {
  const int64_t m = vectors.at(0).size(0);
  const int64_t level = at::impl::VmapMode::increment_nesting();
  std::vector<at::Tensor> batched;
  for (const at::Tensor& v : vectors) batched.push_back(at::_add_batch_dim(v, 0, level));
  const std::vector<at::Tensor> h =
      torch::autograd::grad(grads, weights, batched, /*retain_graph=*/true, /*create_graph=*/false);
  std::vector<at::Tensor> out;
  for (const at::Tensor& t : h) out.push_back(at::_remove_batch_dim(t, level, m, 0));
  at::impl::VmapMode::decrement_nesting();
  return out;
}

// The same products one vector at a time: m second-order backward passes.
inline std::vector<at::Tensor> LoopedHessianVectorProducts(const std::vector<at::Tensor>& grads,
                                                           const std::vector<at::Tensor>& weights,
                                                           const std::vector<at::Tensor>& vectors) {
  const int64_t m = vectors.at(0).size(0);
  std::vector<std::vector<at::Tensor>> per_vector;
  for (int64_t k = 0; k < m; ++k) {
    std::vector<at::Tensor> v;
    for (const at::Tensor& t : vectors) v.push_back(t[k]);
    per_vector.push_back(torch::autograd::grad(grads, weights, v, /*retain_graph=*/true, /*create_graph=*/false));
  }
  std::vector<at::Tensor> out;
  for (size_t j = 0; j < weights.size(); ++j) {
    std::vector<at::Tensor> column;
    for (int64_t k = 0; k < m; ++k) column.push_back(per_vector[k][j]);
    out.push_back(at::stack(column));
  }
  return out;
}

// m Rademacher vectors (+-1) for each weight, stacked on dimension 0.
inline std::vector<at::Tensor> RademacherVectors(const std::vector<at::Tensor>& weights, int64_t m) {
  std::vector<at::Tensor> out;
  for (const at::Tensor& w : weights) {
    std::vector<int64_t> shape = w.sizes().vec();
    shape.insert(shape.begin(), m);
    out.push_back(at::randint(0, 2, shape, w.options()).mul_(2).sub_(1));
  }
  return out;
}

}  // namespace mpq::alloc::testing

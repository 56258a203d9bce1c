// The vmap-batched Hessian-vector products (tests/alloc/batched_hvp.h) equal the products
// taken one vector at a time, on a quantized convolutional network in eval mode (the
// network HAWQ-V3's traces see), and each equals the exact H v of a small quadratic.
#include "tests/alloc/batched_hvp.h"

#include <gtest/gtest.h>

#include "tests/alloc/tiny_net.h"

namespace mpq::alloc {
namespace {

TEST(BatchedHvpTest, EqualsOneVectorAtATimeOnAConvNet) {
  at::manual_seed(5);
  testing::Data d = testing::MakeData(64, 16, 32, 32);
  testing::TinyNetOptions o;
  o.weight_bits = 32;
  auto net = std::make_shared<testing::TinyNet>(o);
  net->eval();
  std::vector<at::Tensor> weights;  // the layers' weights and biases (the PACT clips are unused at 32 bits)
  for (const auto& p : net->named_parameters()) {
    if (p.key().find("alpha") == std::string::npos) weights.push_back(p.value());
  }
  ASSERT_EQ(weights.size(), 4u);  // conv1, conv2 (no biases), fc weight and bias
  d.calibration->StartEpoch(0);
  data::Batch b;
  ASSERT_TRUE(*d.calibration->Next(&b));
  const at::Tensor loss = at::cross_entropy_loss(net->forward(b.images), b.labels);
  const std::vector<at::Tensor> g = torch::autograd::grad({loss}, weights, {}, true, /*create_graph=*/true);
  const std::vector<at::Tensor> v = testing::RademacherVectors(weights, 4);
  const std::vector<at::Tensor> batched = testing::BatchedHessianVectorProducts(g, weights, v);
  const std::vector<at::Tensor> looped = testing::LoopedHessianVectorProducts(g, weights, v);
  ASSERT_EQ(batched.size(), weights.size());
  double largest = 0;
  for (size_t j = 0; j < weights.size(); ++j) {
    ASSERT_EQ(batched[j].sizes(), looped[j].sizes()) << "weight " << j;
    largest = std::max(largest, looped[j].abs().max().item<double>());
  }
  ASSERT_GT(largest, 0) << "every product is zero: the test would not see a difference";
  for (size_t j = 0; j < weights.size(); ++j) {
    // Float sums in another order: agreement to 1e-5 of the largest entry.
    EXPECT_LE((batched[j] - looped[j]).abs().max().item<double>(), 1e-5 * largest) << "weight " << j;
  }
  // The 4 vectors give 4 different products (the batch dimension is not broadcast).
  EXPECT_GT((batched[0][0] - batched[0][1]).abs().max().item<double>(), 1e-3 * largest);
}

TEST(BatchedHvpTest, ExactOnAQuadratic) {
  // L(w) = 1/2 w^T A w with A symmetric: H = A, so H v = A v exactly.
  at::manual_seed(6);
  const at::Tensor r = at::randn({5, 5}, at::kDouble);
  const at::Tensor a = r + r.t();
  at::Tensor w = at::randn({5}, at::kDouble).requires_grad_(true);
  const at::Tensor loss = 0.5 * at::dot(w, at::mv(a, w));
  const std::vector<at::Tensor> g = torch::autograd::grad({loss}, {w}, {}, true, /*create_graph=*/true);
  const at::Tensor v = at::randn({3, 5}, at::kDouble);
  const at::Tensor hv = testing::BatchedHessianVectorProducts(g, {w}, {v})[0];
  EXPECT_TRUE(at::allclose(hv, at::mm(v, a), 1e-12, 1e-12)) << hv << "\n" << at::mm(v, a);
}

}  // namespace
}  // namespace mpq::alloc

#include "lib/nn/mixq.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include "lib/nn/layer_record.h"
#include "lib/quant/hwgq.h"

namespace mpq::nn {
namespace {

at::Tensor CandidateBuffer(const std::vector<int64_t>& bits, const char* what) {
  TORCH_CHECK(!bits.empty(), what, ": candidate_bits is empty");
  for (int64_t b : bits) TORCH_CHECK(b >= 1 && b <= 4, what, ": candidate bits ", b, " has no HWGQ constant; expected 1..4");
  return at::tensor(bits, at::kInt);
}

int64_t Argmax(const at::Tensor& alpha, const at::Tensor& candidates) {
  return candidates[alpha.detach().argmax().item<int64_t>()].item<int64_t>();
}

}  // namespace

MixQConv2dImpl::MixQConv2dImpl(MixQConv2dOptions options_) : options(std::move(options_)) { reset(); }

void MixQConv2dImpl::reset() {
  const auto& o = options;
  TORCH_CHECK(o.in_channels() % o.groups() == 0 && o.out_channels() % o.groups() == 0, "MixQConv2d: channels ",
              o.in_channels(), "/", o.out_channels(), " not divisible by groups ", o.groups());
  candidate_bits = register_buffer("candidate_bits", CandidateBuffer(o.candidate_bits(), "MixQConv2d"));
  weight = register_parameter("weight", at::empty({o.out_channels(), o.in_channels() / o.groups(),
                                                  (*o.kernel_size())[0], (*o.kernel_size())[1]}));
  torch::nn::init::kaiming_normal_(weight, 0.0, torch::kFanOut, torch::kReLU);
  if (o.bias()) bias = register_parameter("bias", at::zeros({o.out_channels()}));
  alpha = register_parameter("alpha", at::full({static_cast<int64_t>(o.candidate_bits().size())}, o.alpha_init()));
}

at::Tensor MixQConv2dImpl::composite_weight() const {
  const at::Tensor p = at::softmax(alpha, 0);
  at::Tensor mixed;
  for (int64_t i = 0; i < candidate_bits.numel(); ++i) {
    const at::Tensor q = quant::HwgqQuantizeWeight(weight, candidate_bits.slice(0, i, i + 1));
    mixed = mixed.defined() ? mixed + p[i] * q : p[i] * q;
  }
  return mixed;
}

at::Tensor MixQConv2dImpl::expected_weight_bits() const {
  return (at::softmax(alpha, 0) * candidate_bits.to(at::kFloat)).sum();
}

int64_t MixQConv2dImpl::selected_bits() const { return Argmax(alpha, candidate_bits); }

at::Tensor MixQConv2dImpl::forward(const at::Tensor& x) {
  at::Tensor y;
  if (options.parallel()) {
    const at::Tensor p = at::softmax(alpha, 0);
    for (int64_t i = 0; i < candidate_bits.numel(); ++i) {
      const at::Tensor yi = at::conv2d(x, quant::HwgqQuantizeWeight(weight, candidate_bits.slice(0, i, i + 1)), bias,
                                       *options.stride(), *options.padding(), 1, options.groups());
      y = y.defined() ? y + p[i] * yi : p[i] * yi;
    }
  } else {
    y = at::conv2d(x, composite_weight(), bias, *options.stride(), *options.padding(), 1, options.groups());
  }
  if (LayerRecorder* recorder = LayerRecorder::Active()) {
    recorder->Add(ConvRecord(this, options.in_channels(), options.out_channels(), options.groups(),
                             options.kernel_size()->data(), options.stride()->data(), options.padding()->data(),
                             std::vector<int64_t>(options.out_channels(), selected_bits()), x, y));
  }
  return y;
}

void MixQConv2dImpl::pretty_print(std::ostream& stream) const {
  stream << "mpq::nn::MixQConv2d(" << options.in_channels() << ", " << options.out_channels()
         << ", kernel_size=" << options.kernel_size() << ", candidates=" << candidate_bits.numel()
         << ", selected=" << selected_bits() << ")";
}

MixQActImpl::MixQActImpl(MixQActOptions options_) : options(std::move(options_)) { reset(); }

void MixQActImpl::reset() {
  candidate_bits = register_buffer("candidate_bits", CandidateBuffer(options.candidate_bits(), "MixQAct"));
  alpha = register_parameter("alpha",
                             at::full({static_cast<int64_t>(options.candidate_bits().size())}, options.alpha_init()));
}

at::Tensor MixQActImpl::forward(const at::Tensor& x) {
  const at::Tensor p = at::softmax(alpha, 0);
  at::Tensor y;
  for (int64_t i = 0; i < candidate_bits.numel(); ++i) {
    const at::Tensor q = quant::HwgqQuantizeActivation(x, candidate_bits[i].item<int64_t>());
    y = y.defined() ? y + p[i] * q : p[i] * q;
  }
  if (LayerRecorder* recorder = LayerRecorder::Active()) {
    recorder->Add(ActivationRecord{this, y, selected_bits(), x.dim() > 1 ? x.numel() / x.size(0) : x.numel()});
  }
  return y;
}

at::Tensor MixQActImpl::expected_bits() const { return (at::softmax(alpha, 0) * candidate_bits.to(at::kFloat)).sum(); }

int64_t MixQActImpl::selected_bits() const { return Argmax(alpha, candidate_bits); }

void MixQActImpl::pretty_print(std::ostream& stream) const {
  stream << "mpq::nn::MixQAct(candidates=" << candidate_bits.numel() << ", selected=" << selected_bits() << ")";
}

}  // namespace mpq::nn

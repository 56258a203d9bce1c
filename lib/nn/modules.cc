// Implementations of weight_quantization.h, qact.h and qconv.h:
// one translation unit, since each pulls in the (slow to parse) torch::nn headers.
#include <ATen/ATen.h>
#include <torch/nn/functional/conv.h>
#include <torch/nn/functional/linear.h>
#include <torch/nn/init.h>

#include <cmath>

#include "lib/nn/layer_record.h"
#include "lib/nn/qact.h"
#include "lib/nn/qconv.h"
#include "lib/quant/hwgq_tables.h"
#include "lib/quant/quant.h"

namespace mpq::nn {

// ------------------------------------------------------------------ weights

WeightQuantization RegisterWeightQuantization(torch::nn::Module& module, WeightQuantizer kind,
                                              Granularity granularity, int64_t initial_bits,
                                              const at::Tensor& weight, UhlichParametrization uhlich) {
  TORCH_CHECK(initial_bits == kFullPrecision || (initial_bits >= 1 && initial_bits <= 16), module.name(),
              ": bits = ", initial_bits, " out of range; expected 1..16 or 32");
  WeightQuantization q;
  q.kind = kind;
  q.granularity = granularity;
  q.uhlich = uhlich;
  const int64_t groups = granularity == Granularity::kPerChannel ? weight.size(0) : 1;
  q.bits = module.register_buffer("weight_bits", at::full({groups}, initial_bits, at::kInt));
  const int64_t b = initial_bits == kFullPrecision ? 8 : initial_bits;
  const at::Tensor w = weight.detach().reshape({groups, -1});
  TORCH_CHECK(kind != WeightQuantizer::kSymmetric || b >= 2, module.name(),
              ": symmetric weights need >= 2 bits (2^(B-1) - 1 positive levels), got ", b);
  if (kind == WeightQuantizer::kFracBits) {
    TORCH_CHECK(initial_bits >= 2, module.name(), ": fracbits weights need >= 2 bits, got ", initial_bits);
    q.fbits = module.register_parameter("weight_fbits", at::full({groups}, static_cast<double>(initial_bits)));
  } else if (kind == WeightQuantizer::kLsq) {
    TORCH_CHECK(b >= 2, module.name(), ": LSQ weights need >= 2 bits, got ", b);
    const double qp = std::ldexp(1.0, static_cast<int>(b) - 1) - 1;
    q.step = module.register_parameter("weight_step", (w.abs().mean(1) * (2.0 / std::sqrt(qp))).clamp_min(1e-8));
  } else if (kind == WeightQuantizer::kUhlich) {
    // qmax = max|w| per group; delta_xmax: d = qmax / (2^(b-1) - 1); b_xmax: b; xmin_xmax:
    // xmax = 2^round(log2 qmax), xmin = xmax / 2^(2^(b-1) - 1) (b bits: sign + 2^(b-1)
    // magnitudes). The Uhlich method re-initialises them from trained weights
    // (lib/alloc/uhlich.h, the authors' find_delta).
    const at::Tensor qmax = w.abs().amax(1).clamp_min(1e-8);
    switch (uhlich) {
      case UhlichParametrization::kDeltaXmax: {
        // Both computed before registering: register_parameter makes its tensor require
        // grad, and a value computed from it afterwards would not be a leaf.
        const at::Tensor d = qmax / (std::ldexp(1.0, static_cast<int>(b) - 1) - 1);
        q.qmax = module.register_parameter("weight_qmax", qmax);
        q.step = module.register_parameter("weight_d", d);
        break;
      }
      case UhlichParametrization::kBXmax:
        q.qmax = module.register_parameter("weight_qmax", qmax);
        q.b = module.register_parameter("weight_b", at::full({groups}, static_cast<double>(b)));
        break;
      case UhlichParametrization::kXminXmax: {
        const at::Tensor xmax = at::exp2(at::round(at::log2(qmax)));
        const at::Tensor xmin = xmax / std::ldexp(1.0, (1 << (b - 1)) - 1);
        q.qmax = module.register_parameter("weight_xmax", xmax);
        q.xmin = module.register_parameter("weight_xmin", xmin);
        break;
      }
    }
  }
  return q;
}

// The bits the cost model records: those applied. Without a weight quantizer the
// weights stay float32 whatever the bits buffer says.
std::vector<int64_t> AppliedWeightBits(const WeightQuantization& q, const at::Tensor& bits, int64_t out_channels) {
  if (q.kind == WeightQuantizer::kNone) return std::vector<int64_t>(static_cast<size_t>(out_channels), kFullPrecision);
  return PerChannelBits(bits, out_channels);
}

at::Tensor QuantizeWeight(const WeightQuantization& q, const at::Tensor& weight) {
  switch (q.kind) {
    case WeightQuantizer::kNone:
      return weight;
    case WeightQuantizer::kLin:
      return quant::LinQuantize(weight, q.bits);
    case WeightQuantizer::kDorefa:
      return quant::DorefaQuantizeWeight(weight, q.bits);
    case WeightQuantizer::kHwgq:
      return quant::HwgqQuantizeWeight(weight, q.bits);
    case WeightQuantizer::kSymmetric:
      return quant::SymmetricQuantize(weight, q.bits);
    case WeightQuantizer::kFracBits:
      return quant::FracBitsQuantizeWeight(weight, q.fbits);
    case WeightQuantizer::kLsq: {
      // LSQ takes one bit-width; a full-precision layer skips quantization.
      const int64_t b = q.bits.max().item<int64_t>();
      TORCH_CHECK(q.bits.min().item<int64_t>() == b, "LSQ weights: one bit-width per layer, got ", q.bits);
      if (b == kFullPrecision) return weight;
      const int64_t per_group = weight.numel() / q.step.numel();
      return quant::LsqQuantize(weight, q.step, b, true, quant::LsqGradScale(per_group, b, true));
    }
    case WeightQuantizer::kUhlich:
      switch (q.uhlich) {
        case UhlichParametrization::kDeltaXmax:
          return quant::UhlichUniformQuantize(weight, quant::RoundToPowerOfTwo(q.step), q.qmax, true);
        case UhlichParametrization::kBXmax:
          return quant::UhlichUniformQuantize(
              weight, quant::RoundToPowerOfTwo(quant::UhlichStepFromBits(q.b, q.qmax, true)), q.qmax, true);
        case UhlichParametrization::kXminXmax:
          return quant::UhlichPow2Quantize(weight, quant::RoundToPowerOfTwo(q.xmin), quant::RoundToPowerOfTwo(q.qmax),
                                           true, /*with_zero=*/false);
      }
      break;
  }
  TORCH_CHECK(false, "unknown weight quantizer");
}

// ------------------------------------------------------------------ QConv2d / QLinear

QConv2dImpl::QConv2dImpl(QConv2dOptions options_) : options(std::move(options_)) { reset(); }

void QConv2dImpl::reset() {
  const auto& o = options;
  const int64_t kh = (*o.kernel_size())[0], kw = (*o.kernel_size())[1];
  TORCH_CHECK(o.in_channels() > 0 && o.out_channels() > 0 && kh > 0 && kw > 0 && o.groups() > 0 &&
                  o.in_channels() % o.groups() == 0 && o.out_channels() % o.groups() == 0,
              "QConv2d: in_channels ", o.in_channels(), ", out_channels ", o.out_channels(), ", kernel_size ",
              o.kernel_size(), " must be positive and divisible by groups ", o.groups());
  weight = register_parameter("weight", at::empty({o.out_channels(), o.in_channels() / o.groups(), kh, kw}));
  torch::nn::init::kaiming_normal_(weight, 0.0, torch::kFanOut, torch::kReLU);
  if (o.bias()) bias = register_parameter("bias", at::zeros({o.out_channels()}));
  quantization =
      RegisterWeightQuantization(*this, o.weight_quantizer(), o.granularity(), o.bits(), weight, o.uhlich());
  weight_bits = quantization.bits;
}

at::Tensor QConv2dImpl::quantized_weight() const { return QuantizeWeight(quantization, weight); }

at::Tensor QConv2dImpl::forward(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == options.in_channels(), "QConv2d: input of shape ", x.sizes(),
              "; expected [N, ", options.in_channels(), ", H, W]");
  at::Tensor y = at::conv2d(x, quantized_weight(), bias, *options.stride(), *options.padding(), 1, options.groups());
  if (LayerRecorder* recorder = LayerRecorder::Active()) {
    LayerRecord r = ConvRecord(this, options.in_channels(), options.out_channels(), options.groups(),
                               options.kernel_size()->data(), options.stride()->data(), options.padding()->data(),
                               AppliedWeightBits(quantization, weight_bits, options.out_channels()), x, y);
    r.has_bias = bias.defined();
    recorder->Add(std::move(r));
  }
  return y;
}

void QConv2dImpl::pretty_print(std::ostream& stream) const {
  stream << "mpq::nn::QConv2d(" << options.in_channels() << ", " << options.out_channels()
         << ", kernel_size=" << options.kernel_size() << ", stride=" << options.stride()
         << ", padding=" << options.padding() << ", groups=" << options.groups()
         << ", quantizer=" << Name(options.weight_quantizer()) << ", granularity=" << Name(options.granularity())
         << ", bits=[" << weight_bits.min().item<int>() << ".." << weight_bits.max().item<int>() << "])";
}

QLinearImpl::QLinearImpl(QLinearOptions options_) : options(std::move(options_)) { reset(); }

void QLinearImpl::reset() {
  const auto& o = options;
  TORCH_CHECK(o.in_features() > 0 && o.out_features() > 0, "QLinear: in_features ", o.in_features(),
              " and out_features ", o.out_features(), " must be positive");
  weight = register_parameter("weight", at::empty({o.out_features(), o.in_features()}));
  const double bound = 1.0 / std::sqrt(static_cast<double>(o.in_features()));
  weight.data().uniform_(-bound, bound);
  if (o.bias()) bias = register_parameter("bias", at::empty({o.out_features()}).uniform_(-bound, bound));
  quantization =
      RegisterWeightQuantization(*this, o.weight_quantizer(), o.granularity(), o.bits(), weight, o.uhlich());
  weight_bits = quantization.bits;
}

at::Tensor QLinearImpl::quantized_weight() const { return QuantizeWeight(quantization, weight); }

at::Tensor QLinearImpl::forward(const at::Tensor& x) {
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) == options.in_features(), "QLinear: input of shape ", x.sizes(),
              "; expected [..., ", options.in_features(), "]");
  at::Tensor y = at::linear(x, quantized_weight(), bias);
  if (LayerRecorder* recorder = LayerRecorder::Active()) {
    LayerRecord r;
    r.module = this;
    r.is_linear = true;
    r.in_channels = options.in_features();
    r.out_channels = options.out_features();
    r.weight_bits = AppliedWeightBits(quantization, weight_bits, options.out_features());
    r.has_bias = bias.defined();
    r.input = x;
    r.input_elements = x.numel() / (x.dim() > 1 ? x.size(0) : 1);
    r.output = y;
    recorder->Add(std::move(r));
  }
  return y;
}

void QLinearImpl::pretty_print(std::ostream& stream) const {
  stream << "mpq::nn::QLinear(" << options.in_features() << ", " << options.out_features()
         << ", quantizer=" << Name(options.weight_quantizer()) << ", granularity=" << Name(options.granularity())
         << ", bits=[" << weight_bits.min().item<int>() << ".." << weight_bits.max().item<int>() << "])";
}

// ------------------------------------------------------------------ QAct

QActImpl::QActImpl(QActOptions options_) : options(options_) { reset(); }

void QActImpl::reset() {
  const ActQuantizer q = options.quantizer();
  const bool unsigned_only = q == ActQuantizer::kDorefa || q == ActQuantizer::kPact || q == ActQuantizer::kHwgq ||
                             q == ActQuantizer::kFracBits;
  TORCH_CHECK(!(unsigned_only && options.is_signed()), "QAct: ", Name(q),
              " quantizes unsigned activations only; use kLsq or kUhlich for signed inputs");
  TORCH_CHECK(options.bits() == kFullPrecision || (options.bits() >= 1 && options.bits() <= 16),
              "QAct: bits = ", options.bits(), " out of range; expected 1..16 or 32");
  TORCH_CHECK(options.alpha_init() > 0, "QAct: alpha_init = ", options.alpha_init(), " must be > 0");
  bits = register_buffer("bits", at::full({1}, options.bits(), at::kInt));
  if (q == ActQuantizer::kPact || q == ActQuantizer::kFracBits) {
    alpha = register_parameter("alpha", at::full({1}, options.alpha_init()));
  }
  if (q == ActQuantizer::kFracBits) {
    fbits = register_parameter("fbits", at::full({1}, static_cast<double>(options.bits())));
  }
  if (q == ActQuantizer::kLsq) {
    step = register_parameter("step", at::ones({1}));
    initialized = register_buffer("initialized", at::zeros({1}, at::kInt));
  }
  if (q == ActQuantizer::kUhlich) {
    const int64_t b = options.bits() == kFullPrecision ? 8 : options.bits();
    const double levels = std::ldexp(1.0, static_cast<int>(options.is_signed() ? b - 1 : b)) - 1;
    switch (options.uhlich()) {
      case UhlichParametrization::kDeltaXmax:
        qmax = register_parameter("qmax", at::full({1}, options.alpha_init()));
        step = register_parameter("d", at::full({1}, options.alpha_init() / levels));
        break;
      case UhlichParametrization::kBXmax:
        qmax = register_parameter("qmax", at::full({1}, options.alpha_init()));
        b_param = register_parameter("b", at::full({1}, static_cast<double>(b)));
        break;
      case UhlichParametrization::kXminXmax: {
        // b bits, unsigned with zero: 2^(b-1) powers of two below xmax (the authors' nonl).
        const double xmax = std::exp2(std::round(std::log2(options.alpha_init())));
        qmax = register_parameter("xmax", at::full({1}, xmax));
        xmin = register_parameter("xmin", at::full({1}, xmax / std::ldexp(1.0, (1 << (b - 1)) - 1)));
        break;
      }
    }
  }
}

int64_t QActImpl::current_bits() const { return bits.item<int64_t>(); }

double QActImpl::clip() const {
  const int64_t b = current_bits();
  if (b < 1 || b > 16) return 0;  // full precision: no range
  switch (options.quantizer()) {
    case ActQuantizer::kNone:
      return 0;
    case ActQuantizer::kDorefa:
      return 1.0;
    case ActQuantizer::kPact:
    case ActQuantizer::kFracBits:
      return alpha.item<double>();
    case ActQuantizer::kHwgq:
      return b <= quant::kHwgqMaxBits ? quant::HwgqActivationStep(b) * (std::ldexp(1.0, static_cast<int>(b)) - 1) : 0;
    case ActQuantizer::kLsq: {
      const double qp = options.is_signed() ? std::ldexp(1.0, static_cast<int>(b) - 1) - 1
                                            : std::ldexp(1.0, static_cast<int>(b)) - 1;
      return step.item<double>() * qp;
    }
    case ActQuantizer::kUhlich:
      return qmax.item<double>();
  }
  return 0;
}

void QActImpl::set_bits(int64_t b) {
  TORCH_CHECK(b == kFullPrecision || (b >= 1 && b <= 16), "QAct: bits = ", b, " out of range; expected 1..16 or 32");
  bits.fill_(b);
  if (fbits.defined()) {
    at::NoGradGuard no_grad;
    fbits.fill_(static_cast<double>(b));
  }
}

at::Tensor QActImpl::forward(const at::Tensor& x) {
  const int64_t b = current_bits();
  at::Tensor y;
  if (b == kFullPrecision || options.quantizer() == ActQuantizer::kNone) {
    y = x;
  } else {
    switch (options.quantizer()) {
      case ActQuantizer::kDorefa:
        y = quant::DorefaQuantizeActivation(x, b);
        break;
      case ActQuantizer::kPact:
        y = quant::PactQuantize(x, alpha, b);
        break;
      case ActQuantizer::kFracBits:
        y = quant::FracBitsQuantizeActivation(x, fbits, alpha);
        break;
      case ActQuantizer::kHwgq:
        y = quant::HwgqQuantizeActivation(x, b);
        break;
      case ActQuantizer::kLsq: {
        if (initialized.item<int>() == 0 && is_training()) {
          at::NoGradGuard no_grad;
          step.copy_(quant::LsqInitialStep(x, b, options.is_signed()));
          initialized.fill_(1);
        }
        const int64_t per_example = x.dim() > 1 ? x.numel() / x.size(0) : x.numel();
        y = quant::LsqQuantize(x, step, b, options.is_signed(),
                               quant::LsqGradScale(per_example, b, options.is_signed()));
        break;
      }
      case ActQuantizer::kUhlich:
        switch (options.uhlich()) {
          case UhlichParametrization::kDeltaXmax:
            y = quant::UhlichUniformQuantize(x, quant::RoundToPowerOfTwo(step), qmax, options.is_signed());
            break;
          case UhlichParametrization::kBXmax:
            y = quant::UhlichUniformQuantize(
                x, quant::RoundToPowerOfTwo(quant::UhlichStepFromBits(b_param, qmax, options.is_signed())), qmax,
                options.is_signed());
            break;
          case UhlichParametrization::kXminXmax:
            y = quant::UhlichPow2Quantize(x, quant::RoundToPowerOfTwo(xmin), quant::RoundToPowerOfTwo(qmax),
                                          options.is_signed(), /*with_zero=*/true);
            break;
        }
        break;
      case ActQuantizer::kNone:
        break;
    }
  }
  // Only a quantizer produces a known bit-width: a kNone QAct passes its input through
  // (the network input keeps its own bits in the cost model).
  LayerRecorder* recorder = LayerRecorder::Active();
  if (recorder != nullptr && options.quantizer() != ActQuantizer::kNone) {
    recorder->Add(ActivationRecord{this, y, b, x.dim() > 1 ? x.numel() / x.size(0) : x.numel()});
  }
  return y;
}

void QActImpl::pretty_print(std::ostream& stream) const {
  stream << "mpq::nn::QAct(quantizer=" << Name(options.quantizer()) << ", bits=" << current_bits()
         << ", signed=" << (options.is_signed() ? "true" : "false") << ")";
}

}  // namespace mpq::nn

#include "lib/alloc/allocator.h"

#include <ATen/ATen.h>

#include "lib/alloc/option_reader.h"
#include "lib/alloc/uniform.h"

namespace mpq::alloc {

absl::StatusOr<AllocationPoint> MeasurePoint(AllocatorContext& context, int64_t index, std::string note) {
  models::Model& model = *context.model;
  AllocationPoint p;
  p.index = index;
  p.note = std::move(note);
  p.allocation = ReadAllocation(model);
  if (context.validation != nullptr) {
    absl::StatusOr<train::EvalResult> v = train::Evaluate(model, *context.validation);
    if (!v.ok()) return v.status();
    p.val_top1 = v->top1;
  }
  if (context.test != nullptr) {
    absl::StatusOr<train::EvalResult> t = train::Evaluate(model, *context.test);
    if (!t.ok()) return t.status();
    p.test_top1 = t->top1;
  }
  const bool was_training = model.is_training();
  model.eval();
  p.cost = cost::MeasureModelCost(
               model, [&](const at::Tensor& x) { return model.forward(x); }, context.input_shape)
               .totals;
  model.train(was_training);
  return p;
}

absl::Status ReportEpochPoint(AllocatorContext& context, models::Model& model, const train::EpochStats& stats,
                              const char* phase, std::string note) {
  const int64_t point = stats.epoch + 1;
  if (context.on_epoch) {
    if (absl::Status s = context.on_epoch({phase, point, static_cast<double>(point), stats}); !s.ok()) return s;
  }
  AllocationPoint p;
  p.index = point;
  p.allocation = ReadAllocation(model);
  p.val_top1 = stats.val_top1;
  const bool was_training = model.is_training();
  model.eval();
  p.cost = cost::MeasureModelCost(
               model, [&](const at::Tensor& x) { return model.forward(x); }, context.input_shape)
               .totals;
  model.train(was_training);
  p.note = std::move(note);
  return context.on_point ? context.on_point(p) : absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const MethodOptions>> UniformOptions::Parse(const nlohmann::json* options,
                                                                           const MethodContext&) {
  OptionReader r(options, "uniform.");
  if (absl::Status s = r.Finish(); !s.ok()) return s;
  return std::shared_ptr<const MethodOptions>(std::make_shared<UniformOptions>());
}

nlohmann::json UniformOptions::ToJson() const { return nlohmann::json::object(); }

absl::StatusOr<AllocatorResult> UniformAllocator::Run(AllocatorContext& context) {
  absl::StatusOr<AllocationPoint> p = MeasurePoint(context, 0, "uniform: the bits the model was built with");
  if (!p.ok()) return p.status();
  if (context.on_point) {
    if (absl::Status s = context.on_point(*p); !s.ok()) return s;
  }
  AllocatorResult r;
  r.allocation = p->allocation;
  r.points = 1;
  r.stop_reason = "uniform allocation (nothing to search)";
  return r;
}

}  // namespace mpq::alloc

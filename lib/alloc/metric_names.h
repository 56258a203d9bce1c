// metric_names.h — every metric and artifact name that the runner, the allocators and
// the report exchange through the results store, in one place. Torch-free.
//
//   store.AddMetrics(run, {{step, epoch, PhaseMetric(kPhaseFinetune, kTrainLoss), loss}});  // "finetune_train_loss"
//   store.AddMetrics(run, {{point, point, PointMetric(kBitops), bitops}});                  // "point_bitops"
//   AlphaMetric("body.1.conv1.conv", /*is_weight=*/true, 2)                                 // "alpha:body.1.conv1.conv:w2"
//
// Metrics rows are (step, epoch, name, value): per-epoch training metrics have step =
// the batch count or the allocator's own counter and epoch = the (fractional) epoch;
// point metrics have step = epoch = the point index.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>

namespace mpq::alloc::names {

// Per-epoch training metrics (trainer.h EpochStats).
inline constexpr char kTrainLoss[] = "train_loss";
inline constexpr char kTrainTop1[] = "train_top1";
inline constexpr char kValLoss[] = "val_loss";
inline constexpr char kValTop1[] = "val_top1";
inline constexpr char kValTop5[] = "val_top5";
inline constexpr char kLr[] = "lr";
inline constexpr char kImagesPerSecond[] = "images_per_second";

// Phases of training, as prefixes of the per-epoch names: the spec's own training (the
// starting model, or the final network a search method retrains) has none.
inline constexpr char kPhaseTrain[] = "";
inline constexpr char kPhaseSearch[] = "search_";      // EdMIPS's search epochs
inline constexpr char kPhaseFinetune[] = "finetune_";  // fine-tuning after an allocation step
inline std::string PhaseMetric(const char* phase, const char* metric) { return std::string(phase) + metric; }

// Points (allocator.h AllocationPoint): "point_<field>".
inline constexpr char kPointPrefix[] = "point_";
inline constexpr char kTestTop1[] = "test_top1";
inline constexpr char kBwEff[] = "bw_eff";
inline constexpr char kBaEff[] = "ba_eff";
inline constexpr char kCc[] = "cc";
inline constexpr char kBitops[] = "bitops";
inline constexpr char kWeightBytes[] = "weight_bytes";
inline constexpr char kCompressionRatio[] = "compression_ratio";
// Uhlich et al.'s memory in KB (lib/cost/cost_model.h), also results columns.
inline constexpr char kMemoryWeightKb[] = "memory_weight_kb";
inline constexpr char kMemoryActKbMax[] = "memory_act_kb_max";
inline constexpr char kMemoryActKbSum[] = "memory_act_kb_sum";
inline std::string PointMetric(const char* field) { return std::string(kPointPrefix) + field; }

// HAWQ-V3's sensitivity (lib/alloc/hawq.h), metrics of point 0: per layer the Hessian
// trace estimate ("hessian_trace:<layer>"), its samples ("hessian_trace_iterations:"),
// last relative change ("hessian_trace_relative_change:"), standard error
// ("hessian_trace_standard_error:"), and Omega per candidate ("hawq_omega:<layer>:b<bits>").
inline std::string HessianTraceMetric(const std::string& layer, const char* field = "") {
  return std::string("hessian_trace") + (*field ? "_" : "") + field + ":" + layer;
}
inline std::string OmegaMetric(const std::string& layer, int64_t bits) {
  return "hawq_omega:" + layer + ":b" + std::to_string(bits);
}
// EdMIPS's soft architecture after a search epoch: softmax(alpha) of candidate `bits` of
// a layer's weights ("w") or input activation ("a").
inline constexpr char kAlphaPrefix[] = "alpha:";
inline std::string AlphaMetric(const std::string& layer, bool is_weight, int64_t bits) {
  return kAlphaPrefix + layer + (is_weight ? ":w" : ":a") + std::to_string(bits);
}
// Inverse of AlphaMetric; false for any other name.
inline bool ParseAlphaMetric(const std::string& name, std::string* layer, bool* is_weight, int64_t* bits) {
  const size_t prefix = sizeof kAlphaPrefix - 1;
  if (name.compare(0, prefix, kAlphaPrefix) != 0) return false;
  const size_t colon = name.rfind(':');
  if (colon == std::string::npos || colon <= prefix || colon + 2 > name.size()) return false;
  const char kind = name[colon + 1];
  if (kind != 'w' && kind != 'a') return false;
  *layer = name.substr(prefix, colon - prefix);
  *is_weight = kind == 'w';
  *bits = std::atoll(name.c_str() + colon + 2);
  return true;
}
inline constexpr char kExpectedBitopsRatio[] = "expected_bitops_ratio";  // EdMIPS's penalty / first-layer MACs

// Keys of a finished run's results.extra_json.
inline constexpr char kExtraBestEpoch[] = "best_epoch";
inline constexpr char kExtraMacs[] = "macs";
inline constexpr char kExtraParams[] = "params";
inline constexpr char kExtraTrainExamples[] = "train_examples";
inline constexpr char kExtraAllocator[] = "allocator";
inline constexpr char kExtraFinalPoint[] = "final_point";
inline constexpr char kExtraPoints[] = "points";
inline constexpr char kExtraAllocatorDetails[] = "allocator_details";
inline constexpr char kDetailsStopReason[] = "stop_reason";  // inside allocator_details
// The cost of a method's sensitivity pass in training epochs (inside allocator_details):
// example passes (one forward + backward, or one extra second-order backward, of one
// example) over the training split's size. HAWQ-V3's Hutchinson traces record it; the
// leaderboard adds it to the method's epochs.
inline constexpr char kDetailsSensitivityEpochs[] = "sensitivity_epochs";

}  // namespace mpq::alloc::names

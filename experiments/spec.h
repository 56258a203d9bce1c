// spec.h — an experiment as data: what to train, on what, how quantized, with which
// budget. experiment() targets (experiments/defs.bzl) write one as JSON; the runner
// reads it, applies flag overrides and records it with every run.
//
//   absl::StatusOr<ExperimentSpec> spec = ParseSpec(json_text, "experiments/quickstart_fp32.json");
//   // unknown keys and bad values are errors that name the key and list what is valid
//   std::string hash = SpecHash(*spec, code_version);   // run identity
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mpq::experiments {

struct ExperimentSpec {
  std::string name;                        // required: the target's name
  std::string model = "resnet20";          // lib/models registry
  std::string dataset = "fashion_mnist";   // datasets registry
  std::string data_dir;                    // "" = the dataset's default location
  int64_t image_size = 32;                 // network input size (Fashion-MNIST is padded to it)
  std::string method = "uniform";          // uniform, impq or edmips (lib/alloc)
  std::string weight_quantizer = "lin";    // none, lin, dorefa, lsq, hwgq, uhlich
  std::string granularity = "per_channel"; // per_channel (kernel) or per_tensor (layer)
  int64_t weight_bits = 32;                // 1..16, 32 = full precision
  std::string act_quantizer = "none";      // none, dorefa, pact, lsq, hwgq, uhlich
  int64_t act_bits = 32;
  bool quantize_first_and_last = true;
  int64_t epochs = 1;
  int64_t batch_size = 128;
  std::string optimizer = "sgd";           // sgd or adam
  double lr = 0.1;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  std::string schedule = "cosine";         // constant, step, multistep, cosine
  int64_t warmup_epochs = 0;
  double validation_fraction = 0.1;        // held out from train, per class
  int64_t train_subset = 0;                // use only the first N training examples (after the split); 0 = all
  int64_t seed = 1;
  std::string paper_row;                   // "" or the published row this reproduces (experiments/papers)

  // method = "impq" (lib/alloc/impq.h): after the training above (the starting model),
  // iterative sensitivity-ordered reduction.
  std::string impq_metric = "paper";       // paper (2^-2B E) or code (the authors' ranking)
  int64_t impq_eval_top = 0;               // classes compared: 0 = all, else top + eval_top-1 runner-ups
  double impq_eval_fraction = 0.05;        // share of the training split used for sensitivity
  std::string impq_weight_schedule = "0:400";  // "ITER:GROUPS,..." weight groups losing a bit
  std::string impq_act_schedule;           // same for activation groups; "" = weights only
  int64_t impq_max_iterations = 10;
  int64_t impq_finetune_epochs = 1;
  double impq_finetune_lr = 2e-4;
  int64_t impq_finetune_warmup_epochs = 0;
  double impq_target_bw_eff = 0;           // stop when B_w,eff <= this (0 = off)
  double impq_target_cc_gbitops = 0;       // stop when C_C <= this many Gbit-OPs (0 = off)
  double impq_max_val_drop = -1;           // stop (and keep the previous iteration) when validation
                                           // top-1 falls more than this many points (< 0 = off)
  int64_t impq_min_weight_bits = 1;
  int64_t impq_min_act_bits = 2;

  // method = "edmips" (lib/alloc/edmips.h): search (these keys), then retrain the
  // discrete network with the settings above (epochs, lr, schedule, ...). Needs HWGQ
  // weights and activations and per_tensor granularity. The first conv and the
  // classifier are not searched: FP with quantize_first_and_last = false (the paper's
  // setting, used by the targets), else at the uniform weight_bits / act_bits.
  double edmips_cd = 0.00335;              // complexity weight
  int64_t edmips_search_epochs = 25;
  int64_t edmips_search_step_size = 10;    // search lr /10 every this many epochs
  double edmips_arch_lr = 0.01;
  std::string edmips_weight_candidates = "1,2,3,4";
  std::string edmips_act_candidates = "2,3,4";
  std::string edmips_discretize = "argmax";  // argmax (winner-take-all) or sample
  bool edmips_alternate = false;           // alternate W and alpha updates instead of joint
};

// Parses and validates. `source` names the file in error messages.
absl::StatusOr<ExperimentSpec> ParseSpec(const std::string& json_text, const std::string& source);

// "1,2,3,4" -> {1, 2, 3, 4}: EdMIPS candidate bit-widths (1..4, no repeats).
absl::StatusOr<std::vector<int64_t>> ParseCandidates(const std::string& text);

// Canonical JSON (all keys, sorted) of a spec.
std::string SpecToJson(const ExperimentSpec& spec);

// Run identity: 16 hex digits of FNV-1a 64 over the canonical JSON (without data_dir,
// which says where the data is, not what it is) and the code version.
std::string SpecHash(const ExperimentSpec& spec, const std::string& code_version);

}  // namespace mpq::experiments

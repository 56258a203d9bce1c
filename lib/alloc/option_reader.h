// option_reader.h — reads one JSON object of a spec (the spec itself, or a method's
// nested options) into typed values with every check a user needs: unknown keys are
// listed with the valid ones, each value's type and range is checked, and the first
// problem is reported as `"<prefix><key>": what; expected ...`.
//
//   OptionReader r(&spec["impq"], "impq.");                     // nullptr: all defaults
//   o.finetune_epochs = r.Integer("finetune_epochs", 1, 1, 100000);
//   o.finetune_lr = r.Number("finetune_lr", 2e-4, Range::Positive());
//   o.metric_name = r.OneOf("metric", "paper", {"paper", "code"});
//   if (absl::Status s = r.Finish(); !s.ok()) return s;         // also: unknown keys
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"

namespace mpq::alloc {

// An interval of allowed numbers, with its text for error messages.
struct Range {
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
  static Range Positive() { return {0, std::numeric_limits<double>::infinity(), true, false}; }
  static Range NonNegative() { return {0, std::numeric_limits<double>::infinity(), false, false}; }
  static Range Closed(double lo, double hi) { return {lo, hi, false, false}; }
  bool Contains(double v) const;
  std::string Text() const;  // e.g. "(0, 1]"
};

class OptionReader {
 public:
  // `object` may be nullptr (every option at its default); a non-object is an error.
  OptionReader(const nlohmann::json* object, std::string prefix);

  double Number(const char* key, double fallback, Range range = {});
  int64_t Integer(const char* key, int64_t fallback, int64_t lo, int64_t hi);
  bool Bool(const char* key, bool fallback);
  std::string String(const char* key, const std::string& fallback);
  std::string OneOf(const char* key, const std::string& fallback, const std::vector<std::string>& valid);
  // The value under `key` as it is (nullptr when absent), marked as a known key.
  const nlohmann::json* Object(const char* key);
  // A bit-width list written as text, "2,4,8": sorted, each in min_bits..16, none
  // twice; "" only when allow_empty.
  std::vector<int64_t> BitList(const char* key, const std::vector<int64_t>& fallback, bool allow_empty,
                               int64_t min_bits = 1);

  // Records `"<prefix><key>": message` as an error unless one is recorded already.
  void Fail(const std::string& key, const std::string& message);
  // The first error; else an error for the first unknown key, listing the known ones.
  absl::Status Finish() const;

 private:
  const nlohmann::json* Find(const char* key);

  const nlohmann::json* object_;
  std::string prefix_;
  std::vector<std::string> known_;
  std::string error_;
};

}  // namespace mpq::alloc

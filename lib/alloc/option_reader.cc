#include "lib/alloc/option_reader.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace mpq::alloc {
namespace {

std::string NumberText(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return absl::StrCat(v);
}

}  // namespace

bool Range::Contains(double v) const {
  if (std::isnan(v)) return false;
  if (lo_open ? !(v > lo) : !(v >= lo)) return false;
  if (hi_open ? !(v < hi) : !(v <= hi)) return false;
  return true;
}

std::string Range::Text() const {
  return absl::StrCat(lo_open ? "(" : "[", NumberText(lo), ", ", NumberText(hi), hi_open ? ")" : "]");
}

OptionReader::OptionReader(const nlohmann::json* object, std::string prefix)
    : object_(object), prefix_(std::move(prefix)) {
  if (object_ != nullptr && !object_->is_object()) {
    error_ = absl::StrCat("\"", prefix_.empty() ? "" : prefix_.substr(0, prefix_.size() - 1),
                          "\": expected a JSON object of options, got ", object_->dump());
    object_ = nullptr;
  }
}

const nlohmann::json* OptionReader::Find(const char* key) {
  known_.push_back(key);
  if (object_ == nullptr) return nullptr;
  auto it = object_->find(key);
  return it == object_->end() ? nullptr : &*it;
}

const nlohmann::json* OptionReader::Object(const char* key) { return Find(key); }

void OptionReader::Fail(const std::string& key, const std::string& message) {
  if (error_.empty()) error_ = absl::StrCat("\"", prefix_, key, "\": ", message);
}

double OptionReader::Number(const char* key, double fallback, Range range) {
  const nlohmann::json* v = Find(key);
  if (v == nullptr) return fallback;
  if (!v->is_number()) {
    Fail(key, absl::StrCat("expected a number, got ", v->dump()));
    return fallback;
  }
  const double x = v->get<double>();
  if (!range.Contains(x)) {
    Fail(key, absl::StrCat(NumberText(x), " is out of range: must be in ", range.Text()));
    return fallback;
  }
  return x;
}

int64_t OptionReader::Integer(const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  const nlohmann::json* v = Find(key);
  if (v == nullptr) return fallback;
  if (!v->is_number()) {
    Fail(key, absl::StrCat("expected a number, got ", v->dump()));
    return fallback;
  }
  if (!v->is_number_integer()) {
    Fail(key, absl::StrCat("expected a number without a fraction (an integer), got ", v->dump()));
    return fallback;
  }
  // Unsigned values above INT64_MAX and signed ones outside [lo, hi] alike.
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi)) {
    Fail(key, absl::StrCat(v->dump(), " is out of range: must be an integer in [", lo, ", ", hi, "]"));
    return fallback;
  }
  const int64_t x = v->get<int64_t>();
  if (x < lo || x > hi) {
    Fail(key, absl::StrCat(x, " is out of range: must be an integer in [", lo, ", ", hi, "]"));
    return fallback;
  }
  return x;
}

bool OptionReader::Bool(const char* key, bool fallback) {
  const nlohmann::json* v = Find(key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) {
    Fail(key, absl::StrCat("expected a boolean, got ", v->dump()));
    return fallback;
  }
  return v->get<bool>();
}

std::string OptionReader::String(const char* key, const std::string& fallback) {
  const nlohmann::json* v = Find(key);
  if (v == nullptr) return fallback;
  if (!v->is_string()) {
    Fail(key, absl::StrCat("expected a string, got ", v->dump()));
    return fallback;
  }
  return v->get<std::string>();
}

std::string OptionReader::OneOf(const char* key, const std::string& fallback, const std::vector<std::string>& valid) {
  const std::string s = String(key, fallback);
  if (std::find(valid.begin(), valid.end(), s) == valid.end()) {
    Fail(key, absl::StrCat("'", s, "' is not one of ", absl::StrJoin(valid, ", ")));
    return fallback;
  }
  return s;
}

absl::Status OptionReader::Finish() const {
  if (!error_.empty()) return absl::InvalidArgumentError(error_);
  if (object_ == nullptr) return absl::OkStatus();
  for (const auto& item : object_->items()) {
    if (std::find(known_.begin(), known_.end(), item.key()) == known_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("\"", prefix_, item.key(), "\": unknown key; valid keys: ",
                                                     absl::StrJoin(known_, ", ")));
    }
  }
  return absl::OkStatus();
}

std::vector<int64_t> OptionReader::BitList(const char* key, const std::vector<int64_t>& fallback, bool allow_empty,
                                           int64_t min_bits) {
  const std::string text = String(key, absl::StrJoin(fallback, ","));
  std::vector<int64_t> out;
  if (absl::StripAsciiWhitespace(text).empty()) {
    if (!allow_empty) Fail(key, "the list is empty; expected bit-widths such as \"2,3,4\"");
    return allow_empty ? out : fallback;
  }
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int64_t b = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &b) || b < min_bits || b > 16) {
      Fail(key, absl::StrCat("'", part, "' is not a bit-width in ", min_bits, "..16"));
      return fallback;
    }
    if (std::find(out.begin(), out.end(), b) != out.end()) {
      Fail(key, absl::StrCat("bit-width ", b, " is listed twice"));
      return fallback;
    }
    out.push_back(b);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace mpq::alloc

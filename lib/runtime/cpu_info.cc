#include "lib/runtime/cpu_info.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace mpq::runtime {

std::string CpuModel(const std::string& cpuinfo) {
  std::ifstream in(cpuinfo);
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, "model name")) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string model(absl::StripAsciiWhitespace(absl::string_view(line).substr(colon + 1)));
    if (!model.empty()) return model;
  }
  return "unknown CPU";
}

}  // namespace mpq::runtime

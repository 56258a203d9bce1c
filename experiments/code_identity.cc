#include "experiments/code_identity.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "lib/runtime/digest.h"

namespace mpq::experiments {
namespace {

// stdout of `command` run by /bin/sh, and whether it exited 0.
bool Capture(const std::string& command, std::string* out) {
  out->clear();
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return false;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  return pclose(p) == 0;
}

std::string Quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

const std::vector<std::string>& ResultPaths() {
  static const std::vector<std::string> paths = {
      "lib",
      "datasets",
      "third_party",
      "WORKSPACE",
      ".bazelrc",
      "tools/build_defs.bzl",
      ":(glob)experiments/*.cc",
      ":(glob)experiments/*.h",
  };
  return paths;
}

std::string CodeVersion(const std::string& workspace) {
  std::string out;
  Capture(absl::StrCat("git -C ", Quoted(workspace), " describe --always --dirty 2>/dev/null"), &out);
  out = std::string(absl::StripAsciiWhitespace(out));
  return out.empty() ? "unknown" : out;
}

std::string CodeIdentity(const std::string& workspace, const std::string& binary) {
  std::string top;
  if (Capture(absl::StrCat("git -C ", Quoted(workspace), " rev-parse --show-toplevel 2>/dev/null"), &top)) {
    top = std::string(absl::StripAsciiWhitespace(top));
    std::string specs;
    for (const std::string& p : ResultPaths()) absl::StrAppend(&specs, " ", Quoted(p));
    // Tracked and untracked (not ignored) files under the paths, as they are on disk.
    std::string listing;
    if (Capture(absl::StrCat("git -C ", Quoted(top), " ls-files -co --exclude-standard -z --", specs, " 2>/dev/null"),
                &listing)) {
      std::vector<std::string> names = absl::StrSplit(listing, '\0', absl::SkipEmpty());
      std::sort(names.begin(), names.end());
      names.erase(std::unique(names.begin(), names.end()), names.end());
      runtime::Fnv1a64 h;
      for (const std::string& name : names) {
        std::error_code ec;
        const std::filesystem::path path = std::filesystem::path(top) / name;
        if (!std::filesystem::is_regular_file(path, ec)) continue;  // a tracked file deleted on disk
        std::ifstream in(path, std::ios::binary);
        std::ostringstream content;
        content << in.rdbuf();
        const std::string bytes = content.str();
        h.Add(name).Add(std::string_view("\0", 1)).Add(absl::StrCat(bytes.size())).Add(std::string_view("\0", 1)).Add(bytes);
      }
      return absl::StrCat("src:", h.Hex());
    }
  }
  std::ifstream in(binary, std::ios::binary);
  if (!in) return "unknown";
  runtime::Fnv1a64 h;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) h.Add(std::string_view(buf, static_cast<size_t>(in.gcount())));
  return absl::StrCat("bin:", h.Hex());
}

}  // namespace mpq::experiments

#include "experiments/data_fingerprint.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lib/runtime/digest.h"

namespace mpq::experiments {
namespace {

namespace fs = std::filesystem;

// `path` relative to `root` when it lies below it, else its file name.
std::string RelativeName(const std::string& path, const std::string& root) {
  const fs::path p(path), r(root);
  const fs::path rel = p.lexically_relative(r);
  if (!rel.empty() && *rel.begin() != "..") return rel.string();
  return p.filename().string();
}

absl::Status AddSplit(const data::Dataset& ds, const char* split, results::ResultStore& store, runtime::Fnv1a64& h) {
  const data::DatasetInfo& info = ds.info();
  const std::vector<std::string>& files = ds.source_files();
  h.Add(split).Add(" ").Add(std::to_string(files.size())).Add("\n");
  for (const std::string& f : files) {
    h.Add(RelativeName(f, info.source)).Add(" ");
    if (info.fingerprint_by_listing) {
      std::error_code ec;
      const auto size = fs::file_size(f, ec);
      if (ec) return absl::NotFoundError(absl::StrCat("dataset fingerprint: cannot stat ", f, ": ", ec.message()));
      h.Add(std::to_string(size));
    } else {
      absl::StatusOr<std::string> d = FileDigest(f, store);
      if (!d.ok()) return d.status();
      h.Add(*d);
    }
    h.Add("\n");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> FileDigest(const std::string& path, results::ResultStore& store) {
  std::error_code ec;
  const std::string absolute = fs::absolute(path, ec).lexically_normal().string();
  struct stat st;
  if (stat(absolute.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("dataset fingerprint: cannot stat ", absolute, ": ", std::strerror(errno)));
  }
  const int64_t size = st.st_size;
  const int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  absl::StatusOr<std::optional<std::string>> cached = store.CachedDigest(absolute, size, mtime_ns);
  if (!cached.ok()) return cached.status();
  if (cached->has_value()) return **cached;
  std::ifstream in(absolute, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("dataset fingerprint: cannot read ", absolute));
  runtime::Fnv1a64 h;
  std::vector<char> buffer(1 << 20);
  int64_t total = 0;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    h.Add(std::string_view(buffer.data(), static_cast<size_t>(n)));
    total += n;
  }
  if (total != size) {
    return absl::DataLossError(absl::StrCat("dataset fingerprint: read ", total, " of ", size, " bytes of ", absolute));
  }
  const std::string digest = absl::StrCat(h.Hex(), ":", size);
  if (absl::Status s = store.PutDigest(absolute, size, mtime_ns, digest); !s.ok()) return s;
  return digest;
}

absl::StatusOr<std::string> DataFingerprint(const data::Dataset& train, const data::Dataset& test,
                                            results::ResultStore& store) {
  runtime::Fnv1a64 h;
  h.Add(train.info().name).Add("\n");
  if (absl::Status s = AddSplit(train, "train", store, h); !s.ok()) return s;
  if (absl::Status s = AddSplit(test, "test", store, h); !s.ok()) return s;
  return h.Hex();
}

}  // namespace mpq::experiments

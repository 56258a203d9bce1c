#include "lib/runtime/atomic_file.h"

#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace mpq::runtime {

absl::Status ReplaceFileAtomically(const std::string& path,
                                   const std::function<absl::Status(const std::string& tmp)>& write) {
  const std::string tmp = path + ".tmp";
  absl::Status status;
  try {
    status = write(tmp);
  } catch (const std::exception& e) {
    status = absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", e.what()));
  }
  std::error_code ec;
  if (status.ok()) {
    std::filesystem::rename(tmp, path, ec);
    if (!ec) return absl::OkStatus();
    status = absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path, ": ", ec.message()));
  }
  std::filesystem::remove(tmp, ec);  // best effort; `path` is untouched either way
  return status;
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view content) {
  return ReplaceFileAtomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::trunc | std::ios::binary);
    if (!out) return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
    return absl::OkStatus();
  });
}

}  // namespace mpq::runtime

#include "lib/runtime/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mpq::runtime {
namespace {

constexpr char kTrailerMagic[] = "mpqcrc32";  // 8 bytes, then 8 + 16 hex digits

std::string Errno() { return std::strerror(errno); }

// fsync of an existing file or directory; `what` names it in the error.
absl::Status Sync(const std::string& path, bool directory) {
  const int fd = open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot open ", path, " to sync it: ", Errno()));
  const bool synced = fsync(fd) == 0;
  const std::string error = synced ? "" : Errno();
  close(fd);
  if (!synced) return absl::InternalError(absl::StrCat("cannot sync ", path, ": ", error));
  return absl::OkStatus();
}

uint32_t Crc32(std::string_view content) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(content.data());
  size_t left = content.size();
  while (left > 0) {  // zlib takes uInt lengths
    const uInt n = static_cast<uInt>(std::min<size_t>(left, 1u << 30));
    crc = crc32(crc, p, n);
    p += n;
    left -= n;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

absl::Status ReplaceFileAtomically(const std::string& path,
                                   const std::function<absl::Status(const std::string& tmp)>& write) {
  const std::string tmp = path + ".tmp";
  absl::Status status;
  try {
    status = write(tmp);
  } catch (const std::exception& e) {
    status = absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", e.what()));
  }
  if (status.ok()) status = Sync(tmp, /*directory=*/false);
  std::error_code ec;
  if (status.ok()) {
    std::filesystem::rename(tmp, path, ec);
    if (!ec) {
      std::string dir = std::filesystem::path(path).parent_path().string();
      return Sync(dir.empty() ? "." : dir, /*directory=*/true);
    }
    status = absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path, ": ", ec.message()));
  }
  std::filesystem::remove(tmp, ec);  // best effort; `path` is untouched either way
  return status;
}

absl::Status WriteFileAtomically(const std::string& path, std::string_view content) {
  return ReplaceFileAtomically(path, [&](const std::string& tmp) {
    const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", Errno()));
    const char* p = content.data();
    size_t left = content.size();
    while (left > 0) {
      const ssize_t n = ::write(fd, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const std::string error = n < 0 ? Errno() : "wrote nothing";
        close(fd);
        return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", error));
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    if (close(fd) != 0) return absl::InternalError(absl::StrCat("cannot write ", tmp, ": ", Errno()));
    return absl::OkStatus();
  });
}

absl::Status WriteChecksummedFile(const std::string& path, std::string_view content) {
  std::string framed;
  framed.reserve(content.size() + kChecksumTrailerBytes);
  framed.append(content.data(), content.size());
  framed += absl::StrFormat("%s%08x%016x", kTrailerMagic, Crc32(content), static_cast<uint64_t>(content.size()));
  return WriteFileAtomically(path, framed);
}

absl::StatusOr<std::string> ReadChecksummedFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return absl::NotFoundError(absl::StrCat(path, " does not exist"));
    return absl::PermissionDeniedError(absl::StrCat("cannot read ", path, ": ", Errno()));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string content = buffer.str();
  const std::string fix = "; it is damaged: delete it (or the run's state directory) and the run redoes that step";
  if (content.size() < kChecksumTrailerBytes ||
      content.compare(content.size() - kChecksumTrailerBytes, 8, kTrailerMagic) != 0) {
    return absl::DataLossError(absl::StrCat(path, " has no mpqbench checksum trailer (truncated, or not written by "
                                            "this build)", fix));
  }
  const std::string_view trailer(content.data() + content.size() - kChecksumTrailerBytes, kChecksumTrailerBytes);
  uint32_t stored_crc = 0;
  uint64_t stored_size = 0;
  if (!absl::SimpleHexAtoi(absl::string_view(trailer.data() + 8, 8), &stored_crc) ||
      !absl::SimpleHexAtoi(absl::string_view(trailer.data() + 16, 16), &stored_size)) {
    return absl::DataLossError(absl::StrCat(path, " has an unreadable checksum trailer", fix));
  }
  content.resize(content.size() - kChecksumTrailerBytes);
  if (stored_size != content.size()) {
    return absl::DataLossError(absl::StrFormat("%s holds %d bytes but its trailer says %d%s", path, content.size(),
                                               stored_size, fix));
  }
  if (const uint32_t crc = Crc32(content); crc != stored_crc) {
    return absl::DataLossError(
        absl::StrFormat("%s fails its checksum (CRC-32 %08x, trailer says %08x)%s", path, crc, stored_crc, fix));
  }
  return content;
}

}  // namespace mpq::runtime

// atomic_file.h — replace a file so that a crash, kill or power loss at any moment leaves
// either the old file or the complete new one, never a torn one: write `<path>.tmp`,
// fsync it, rename it over `path` (atomic within one file system), fsync the directory.
// Used for every piece of resumable state (trainer checkpoints, allocator state) and for
// the reports.
//
//   absl::Status s = WriteFileAtomically(dir + "/report.md", text);
//   absl::Status t = WriteChecksummedFile(dir + "/last.pt", bytes);      // + CRC-32 trailer
//   absl::StatusOr<std::string> b = ReadChecksummedFile(dir + "/last.pt"); // DataLoss if damaged
//
// Errors name the file and the reason (errno's text: "No space left on device"); on
// failure the temporary file is removed and `path` is untouched.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mpq::runtime {

// `write(tmp)` must create the complete file at `tmp` or return an error; exceptions it
// throws (std::exception) become an InternalError naming `tmp`. The file is fsynced
// before the rename and the directory after it.
absl::Status ReplaceFileAtomically(const std::string& path,
                                   const std::function<absl::Status(const std::string& tmp)>& write);

absl::Status WriteFileAtomically(const std::string& path, std::string_view content);

// State files: `content` followed by a 32-byte trailer "mpqcrc32" + CRC-32 (8 hex digits)
// + content size (16 hex digits), written as WriteFileAtomically does.
inline constexpr size_t kChecksumTrailerBytes = 32;
absl::Status WriteChecksummedFile(const std::string& path, std::string_view content);
// The content without its trailer. NotFound when `path` does not exist; DataLoss naming
// the file when it is truncated, lacks the trailer, or its checksum does not match.
absl::StatusOr<std::string> ReadChecksummedFile(const std::string& path);

}  // namespace mpq::runtime

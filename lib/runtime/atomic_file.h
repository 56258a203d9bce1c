// atomic_file.h — replace a file so that a crash or kill at any moment leaves either the
// old file or the complete new one, never a torn one: write `<path>.tmp`, then rename
// it over `path` (atomic within one file system). Used for every piece of resumable
// state (trainer checkpoints, IMPQ/EdMIPS state) and for the reports.
//
//   absl::Status s = WriteFileAtomically(dir + "/state.json", json.dump(2));
//   absl::Status t = ReplaceFileAtomically(path, [&](const std::string& tmp) {
//     archive.save_to(tmp);  // any writer that creates `tmp`
//     return absl::OkStatus();
//   });
//
// Errors name the file and the reason; on failure the temporary file is removed and
// `path` is untouched.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace mpq::runtime {

// `write(tmp)` must create the complete file at `tmp` or return an error; exceptions it
// throws (std::exception) become an InternalError naming `tmp`.
absl::Status ReplaceFileAtomically(const std::string& path,
                                   const std::function<absl::Status(const std::string& tmp)>& write);

absl::Status WriteFileAtomically(const std::string& path, std::string_view content);

}  // namespace mpq::runtime

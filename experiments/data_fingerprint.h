// data_fingerprint.h — the dataset part of a run's identity: a digest of the files the
// run's train and test splits were read from, so a finished run is cached only for the
// same data (not for another directory's copy that differs, nor for a missing one).
//
//   absl::StatusOr<std::string> f = DataFingerprint(*train_set, *test_set, store);
//   std::string hash = SpecHash(spec, code_identity, *f);
//
// Each file is read in full and digested (FNV-1a 64) once: the digest is cached in the
// results database under its absolute path, keyed by size and modification time, so the
// next run only stats it. Image folders (fingerprint_by_listing) are named by their
// files' relative paths and sizes instead of being read (a million JPEGs). The
// fingerprint covers file names relative to the dataset's source directory and
// contents, never the directory itself: the same files elsewhere are the same data.
// Generated data (no files) is fingerprinted by its dataset name.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "datasets/dataset.h"
#include "results/store.h"

namespace mpq::experiments {

absl::StatusOr<std::string> DataFingerprint(const data::Dataset& train, const data::Dataset& test,
                                            results::ResultStore& store);

// The digest of one file's content (the cache is consulted and filled); errors name it.
absl::StatusOr<std::string> FileDigest(const std::string& path, results::ResultStore& store);

}  // namespace mpq::experiments

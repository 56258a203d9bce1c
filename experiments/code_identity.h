// code_identity.h — which code a run was made with: its provenance and its identity.
//
//   std::string version = CodeVersion(workspace);    // "d4c49d2" / "d4c49d2-dirty": the runs table's code_version
//   std::string id = CodeIdentity(workspace, argv0);  // "src:1f0c..." : what SpecHash digests
//
// The provenance is `git describe --always --dirty`: the commit, to find the code again.
// The identity is a digest of the sources that can change a result, so that a commit
// touching only docs, tests, reports, tools or experiment targets keeps every cached
// run (a leaderboard filled over several sittings, the nightly running only what is
// missing), while any change to them starts new runs: the digest covers the name and
// content on disk of every tracked or untracked (not ignored) file under ResultPaths(),
// committed or not (two different dirty trees are two identities, not one "-dirty";
// the same files on two machines are one).
// Spec changes are not here: the spec itself is hashed. Outside a git work tree the
// identity is the digest of the running binary ("bin:..."), read from /proc/self/exe.
#pragma once

#include <string>
#include <vector>

namespace mpq::experiments {

// The git pathspecs whose content can change what a run measures: the library, the
// dataset readers, the runner and the spec parser, the third-party BUILD files and the
// workspace (the LibTorch and compiler flags). Not results/ (storage, query, snapshot),
// reports/, docs/, tests/, tools/, experiments' BUILD targets, paper rows or scripts.
const std::vector<std::string>& ResultPaths();

std::string CodeVersion(const std::string& workspace);

// "src:<16 hex>" inside a git work tree, else "bin:<16 hex>" of `binary` (default
// /proc/self/exe), else "unknown".
std::string CodeIdentity(const std::string& workspace, const std::string& binary = "/proc/self/exe");

}  // namespace mpq::experiments

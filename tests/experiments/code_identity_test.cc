// The code identity (experiments/code_identity.h) on a scratch git repository: what
// keeps it and what changes it.
#include "experiments/code_identity.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace mpq::experiments {
namespace {

class CodeIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    ws_ = std::string(tmp ? tmp : "/tmp") + "/code_identity_repo";
    std::filesystem::remove_all(ws_);
    std::filesystem::create_directories(ws_ + "/lib");
    std::filesystem::create_directories(ws_ + "/docs");
    std::filesystem::create_directories(ws_ + "/experiments");
    Write("lib/a.cc", "int a = 1;\n");
    Write("docs/x.md", "docs\n");
    Write("experiments/BUILD", "targets\n");
    Write("experiments/spec.cc", "int spec;\n");
    Git("init -q");
    Commit("first");
  }

  void Write(const std::string& path, const std::string& text) { std::ofstream(ws_ + "/" + path) << text; }
  void Git(const std::string& args) {
    const std::string cmd = "cd '" + ws_ + "' && git -c user.name=t -c user.email=t@t " + args + " >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  void Commit(const std::string& message) { Git("add -A && git -c user.name=t -c user.email=t@t commit -q -m " + message); }
  std::string Id() { return CodeIdentity(ws_); }

  std::string ws_;
};

TEST_F(CodeIdentityTest, IsADigestOfTheSources) {
  const std::string id = Id();
  EXPECT_EQ(id.rfind("src:", 0), 0u) << id;
  EXPECT_EQ(id.size(), 4u + 16u);
  EXPECT_EQ(Id(), id);  // deterministic
  // Asked from a subdirectory of the work tree: the same identity.
  EXPECT_EQ(CodeIdentity(ws_ + "/docs"), id);
}

TEST_F(CodeIdentityTest, ADocsOrTargetsCommitKeepsIt) {
  const std::string id = Id();
  Write("docs/x.md", "more docs\n");
  Write("experiments/BUILD", "another target\n");
  Write("docs/new.md", "new\n");
  EXPECT_EQ(Id(), id) << "uncommitted docs and targets";
  Commit("docs");
  EXPECT_EQ(Id(), id) << "committed docs and targets";
  EXPECT_NE(CodeVersion(ws_), "unknown");
}

TEST_F(CodeIdentityTest, ASourceChangeChangesIt) {
  const std::string clean = Id();
  Write("lib/a.cc", "int a = 2;\n");
  const std::string dirty = Id();
  EXPECT_NE(dirty, clean) << "an uncommitted change";
  Write("lib/a.cc", "int a = 3;\n");
  EXPECT_NE(Id(), dirty) << "two different dirty trees are two identities";
  Write("lib/a.cc", "int a = 2;\n");
  EXPECT_EQ(Id(), dirty);
  Commit("two");
  EXPECT_NE(Id(), clean);
  const std::string two = Id();
  Write("experiments/spec.cc", "int spec = 1;\n");
  EXPECT_NE(Id(), two) << "the runner's sources count";
}

TEST_F(CodeIdentityTest, AnUntrackedSourceFileCounts) {
  const std::string id = Id();
  Write("lib/b.cc", "int b;\n");
  const std::string with_b = Id();
  EXPECT_NE(with_b, id);
  Write("lib/b.cc", "int b = 1;\n");
  EXPECT_NE(Id(), with_b) << "by content, not only by name";
}

TEST(CodeIdentity, OutsideGitItIsTheBinarysDigest) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(tmp ? tmp : "/tmp") + "/not_a_repo";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/binary") << "some bytes";
  const std::string a = CodeIdentity(dir, dir + "/binary");
  EXPECT_EQ(a.rfind("bin:", 0), 0u) << a;
  std::ofstream(dir + "/binary") << "other bytes";
  EXPECT_NE(CodeIdentity(dir, dir + "/binary"), a);
  EXPECT_EQ(CodeIdentity(dir, dir + "/missing"), "unknown");
  EXPECT_EQ(CodeVersion(dir), "unknown");
}

}  // namespace
}  // namespace mpq::experiments

// WriteFileAtomically / ReplaceFileAtomically: new content replaces old; a failing or
// throwing writer leaves the old file intact and no temporary behind; errors name files.
#include "lib/runtime/atomic_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace mpq::runtime {
namespace {

namespace fs = std::filesystem;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(testing::TempDir()) / testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  fs::path dir_;
};

TEST_F(AtomicFileTest, WritesAndReplaces) {
  const std::string path = (dir_ / "state.json").string();
  ASSERT_TRUE(WriteFileAtomically(path, "first").ok());
  EXPECT_EQ(Read(path), "first");
  const std::string binary("a\0b\n", 4);
  ASSERT_TRUE(WriteFileAtomically(path, binary).ok());
  EXPECT_EQ(Read(path), binary);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST_F(AtomicFileTest, FailingOrThrowingWriterKeepsTheOldFile) {
  const std::string path = (dir_ / "model.pt").string();
  ASSERT_TRUE(WriteFileAtomically(path, "old").ok());
  absl::Status s = ReplaceFileAtomically(path, [](const std::string& tmp) {
    std::ofstream(tmp) << "half";
    return absl::InternalError("disk full");
  });
  EXPECT_EQ(s.message(), "disk full");
  EXPECT_EQ(Read(path), "old");
  EXPECT_FALSE(fs::exists(path + ".tmp"));

  s = ReplaceFileAtomically(path, [](const std::string& tmp) -> absl::Status {
    std::ofstream(tmp) << "half";
    throw std::runtime_error("serializer failed");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find(path + ".tmp"), std::string::npos) << s;
  EXPECT_NE(s.message().find("serializer failed"), std::string::npos) << s;
  EXPECT_EQ(Read(path), "old");
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST_F(AtomicFileTest, ChecksummedFilesRoundTripAndDamageIsNamed) {
  const std::string path = (dir_ / "last.pt").string();
  const std::string content = std::string("PK\0\x03 model bytes ") + std::string(5000, 'w');
  ASSERT_TRUE(WriteChecksummedFile(path, content).ok());
  EXPECT_EQ(Read(path).size(), content.size() + kChecksumTrailerBytes);
  absl::StatusOr<std::string> back = ReadChecksummedFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, content);

  // One flipped byte anywhere in the content.
  std::string damaged = Read(path);
  damaged[1234] ^= 0x10;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << damaged;
  absl::Status s = ReadChecksummedFile(path).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find(path + " fails its checksum"), std::string::npos) << s;
  EXPECT_NE(s.message().find("delete it"), std::string::npos) << s;

  // Truncated: the trailer is gone (or, cut inside it, unreadable).
  ASSERT_TRUE(WriteChecksummedFile(path, content).ok());
  const std::string whole = Read(path);
  for (size_t keep : {size_t{0}, size_t{10}, whole.size() - 40, whole.size() - 5}) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << whole.substr(0, keep);
    s = ReadChecksummedFile(path).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << keep;
    EXPECT_NE(s.message().find(path), std::string::npos) << s;
  }
  // A file from a build without trailers, and a missing file.
  ASSERT_TRUE(WriteFileAtomically(path, "{\"done\": 3}").ok());
  EXPECT_NE(ReadChecksummedFile(path).status().message().find("no mpqbench checksum trailer"), std::string::npos);
  EXPECT_EQ(ReadChecksummedFile(path + ".absent").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(AtomicFileTest, MissingDirectoryIsNamed) {
  const std::string path = (dir_ / "no_such_dir" / "x.json").string();
  const absl::Status s = WriteFileAtomically(path, "x");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(path + ".tmp"), std::string::npos) << s;
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(AtomicFileTest, RenameOntoADirectoryFailsAndCleansUp) {
  const std::string path = (dir_ / "occupied").string();
  fs::create_directories(fs::path(path) / "child");
  const absl::Status s = WriteFileAtomically(path, "x");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cannot rename"), std::string::npos) << s;
  EXPECT_TRUE(fs::is_directory(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

}  // namespace
}  // namespace mpq::runtime

// CpuModel reads the first "model name" of a /proc/cpuinfo-format file, and says so when
// there is none.
#include "lib/runtime/cpu_info.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace mpq::runtime {
namespace {

std::string Write(const std::string& name, const std::string& text) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(CpuInfoTest, TheFirstModelName) {
  const std::string path = Write("cpuinfo", "processor\t: 0\nvendor_id\t: AuthenticAMD\n"
                                            "model name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2\n\n"
                                            "processor\t: 1\nmodel name\t: AMD EPYC 7B13\n");
  EXPECT_EQ(CpuModel(path), "AMD EPYC 7B13");
}

TEST(CpuInfoTest, UnknownWhenMissingOrWithoutAModelName) {
  EXPECT_EQ(CpuModel(std::string(std::getenv("TEST_TMPDIR")) + "/none"), "unknown CPU");
  EXPECT_EQ(CpuModel(Write("arm", "processor\t: 0\nBogoMIPS\t: 50.00\nmodel name\t:   \n")), "unknown CPU");
}

TEST(CpuInfoTest, ThisMachineHasOne) {
  // Linux x86-64 (the machines this project runs on) names its processor.
  EXPECT_NE(CpuModel(), "unknown CPU");
}

}  // namespace
}  // namespace mpq::runtime

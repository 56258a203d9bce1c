// The report rendered from a fixture database: Markdown against a golden file, the HTML
// well-formed and self-contained, clear errors for a missing or empty database.
#include "reports/report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "results/store.h"

namespace mpq::reports {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Tmp(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  return std::string(base ? base : "/tmp") + "/" + name;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Two finished runs (a uniform FP32 one and an IMPQ one with three points), a failed
// one, and a paper file + table file that refer to them.
ReportInputs MakeFixture() {
  const std::string dir = Tmp("fixture");
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  ReportInputs in;
  in.db_path = dir + "/fixture.db";
  auto store = std::move(*results::ResultStore::Open(in.db_path));

  results::NewRun fp;
  fp.name = "fp32_fmnist";
  fp.spec_json = R"({"name":"fp32_fmnist","model":"resnet20","dataset":"fashion_mnist","method":"uniform",)"
                 R"("weight_quantizer":"none","weight_bits":32,"act_bits":32,"epochs":2,"train_subset":0,)"
                 R"("paper_row":"p:t1:fp"})";
  fp.spec_hash = "h1";
  const int64_t r1 = *store->CreateRun(fp);
  EXPECT_TRUE(store->AddMetrics(r1, {{10, 1, "val_top1", 80.5}, {20, 2, "val_top1", 85.25}}).ok());
  EXPECT_TRUE(store->AddMetrics(r1, {{0, 0, "point_val_top1", 85.25}, {0, 0, "point_test_top1", 84.5},
                                     {0, 0, "point_bw_eff", 32}, {0, 0, "point_bitops", 4.0e10},
                                     {0, 0, "point_weight_bytes", 1.0e6}}).ok());
  EXPECT_TRUE(store->AddAllocation(r1, 0, {{"conv", true, 0, 32}, {"fc", true, 0, 32}}).ok());
  results::FinalResult f1;
  f1.dataset = "fashion_mnist";
  f1.test_top1 = 84.5;
  f1.val_top1 = 85.25;
  f1.bitops = 4.0e10;
  f1.cc = 4.4e10;
  f1.weight_bytes = 1.0e6;
  f1.bw_eff = 32;
  f1.ba_eff = 31.5;
  EXPECT_TRUE(store->FinishRun(r1, f1).ok());

  results::NewRun im = fp;
  im.name = "impq_fmnist";
  // Stored in the flat layout of the runs before the method registry (an existing database).
  im.spec_json = R"({"name":"impq_fmnist","model":"resnet20","dataset":"fashion_mnist","method":"impq",)"
                 R"("weight_quantizer":"lin","weight_bits":4,"act_bits":32,"epochs":1,"train_subset":1000,)"
                 R"("impq_finetune_epochs":1,"paper_row":"p:t1:impq"})";
  im.spec_hash = "h2";
  const int64_t r2 = *store->CreateRun(im);
  const double bw[] = {4, 3, 2.5}, val[] = {84, 83.5, 82.25}, test[] = {83.75, 83, 81.5};
  for (int p = 0; p < 3; ++p) {
    EXPECT_TRUE(store->AddMetrics(r2, {{p, double(p), "point_val_top1", val[p]}, {p, double(p), "point_test_top1", test[p]},
                                       {p, double(p), "point_bw_eff", bw[p]}, {p, double(p), "point_ba_eff", 32},
                                       {p, double(p), "point_cc", 2e9 * bw[p]}, {p, double(p), "point_bitops", 1e9 * bw[p]},
                                       {p, double(p), "point_weight_bytes", 1e5 * bw[p]},
                                       {p, double(p), "point_compression_ratio", 16 / bw[p]}})
                    .ok());
    EXPECT_TRUE(store->AddAllocation(r2, p, {{"conv", true, 0, 4 - p}, {"conv", true, 1, 4}, {"conv", true, 2, 3},
                                             {"fc", true, 0, 4 - (p > 1)}})
                    .ok());
  }
  EXPECT_TRUE(store->AddMetrics(r2, {{10, 1, "val_top1", 84}}).ok());
  // A differentiable search's soft architecture at two epochs (as EdMIPS stores it).
  EXPECT_TRUE(store->AddMetrics(r2, {{1, 1, "alpha:body.1.conv:w1", 0.5}, {1, 1, "alpha:body.1.conv:w2", 0.5},
                                     {1, 1, "alpha:body.1.act:a2", 0.25}, {1, 1, "alpha:body.1.act:a4", 0.75},
                                     {2, 2, "alpha:body.1.conv:w1", 0.0}, {2, 2, "alpha:body.1.conv:w2", 1.0},
                                     {2, 2, "alpha:body.1.act:a2", 1.0}, {2, 2, "alpha:body.1.act:a4", 0.0}})
                  .ok());
  results::FinalResult f2 = f1;
  f2.test_top1 = 81.5;
  f2.val_top1 = 82.25;
  f2.bitops = 2.5e9;
  f2.cc = 5e9;
  f2.weight_bytes = 2.5e5;
  f2.bw_eff = 2.5;
  f2.ba_eff = 32;
  f2.extra_json = R"({"final_point": 2, "allocator_details": {"stop_reason": "B_w,eff 2.500 reached the target 2.600"}})";
  EXPECT_TRUE(store->FinishRun(r2, f2).ok());

  results::NewRun bad = fp;
  bad.name = "broken";
  bad.spec_hash = "h3";
  const int64_t r3 = *store->CreateRun(bad);
  EXPECT_TRUE(store->MarkRun(r3, results::RunStatus::kFailed, "diverged").ok());

  // A uniform 2-bit run whose BitOps (3.2e9) lie inside the IMPQ trajectory's range, with
  // its training budget: 1000 examples, 11 epochs (IMPQ: 1 + 10 iterations x 1).
  results::NewRun w2 = fp;
  w2.name = "w2_fmnist";
  w2.spec_json = R"({"name":"w2_fmnist","model":"resnet20","dataset":"fashion_mnist","method":"uniform",)"
                 R"("weight_quantizer":"lin","weight_bits":2,"act_bits":32,"epochs":11,"train_subset":1000})";
  w2.spec_hash = "h4";
  const int64_t r4 = *store->CreateRun(w2);
  EXPECT_TRUE(store->AddMetrics(r4, {{0, 0, "point_test_top1", 82.0}, {0, 0, "point_bitops", 3.2e9}}).ok());
  results::FinalResult f4 = f1;
  f4.test_top1 = 82.0;
  f4.val_top1 = 82.5;
  f4.bitops = 3.2e9;
  f4.bw_eff = 2;
  f4.ba_eff = 32;
  EXPECT_TRUE(store->FinishRun(r4, f4).ok());

  WriteFile(dir + "/p.json", R"({"paper": "A. Author, A Paper, 2022", "rows": [
    {"id": "p:t1:fp", "table": "T1", "row": "FP baseline", "top1": 92.1},
    {"id": "p:t1:impq", "table": "T1", "row": "Mixed", "top1": 92.0, "bw_eff": 1.74}]})");
  WriteFile(dir + "/t1.table.json",
            R"({"name":"t1","paper":"p","table":"T1","dataset":"cifar10","experiments":[)"
            R"({"name":"fp32_cifar","dataset":"cifar10","epochs":160,"train_subset":0,"paper_row":"p:t1:fp"},)"
            R"({"name":"fp32_fmnist","dataset":"fashion_mnist","epochs":2,"train_subset":0,"paper_row":"p:t1:fp"},)"
            R"({"name":"impq_cifar","dataset":"cifar10","epochs":200,"train_subset":0,"method":"impq","weight_bits":4,)"
            R"("impq":{"finetune_epochs":30},"paper_row":"p:t1:impq"},)"
            R"({"name":"impq_fmnist","dataset":"fashion_mnist","epochs":1,"train_subset":1000,"method":"impq",)"
            R"("weight_bits":4,"impq":{"finetune_epochs":1},"paper_row":"p:t1:impq"},)"
            R"({"name":"broken","dataset":"fashion_mnist","epochs":2,"train_subset":0,"paper_row":""}]})");
  in.paper_files = {dir + "/p.json"};
  in.table_files = {dir + "/t1.table.json"};
  return in;
}

TEST(ReportTest, MarkdownMatchesTheGoldenFile) {
  absl::StatusOr<Report> r = BuildReport(MakeFixture());
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string golden_path = "tests/reports/golden/report.md";
  if (const char* ws = std::getenv("MPQ_UPDATE_GOLDEN")) {  // MPQ_UPDATE_GOLDEN=<workspace> to regenerate
    WriteFile(std::string(ws) + "/" + golden_path, r->markdown);
    GTEST_SKIP() << "golden file rewritten";
  }
  const std::string golden = ReadFile(golden_path);
  ASSERT_FALSE(golden.empty()) << "cannot read " << golden_path;
  EXPECT_EQ(r->markdown, golden) << "regenerate with: MPQ_UPDATE_GOLDEN=$PWD bazel run //tests/reports:report_test "
                                    "(then review the diff)";
}

TEST(ReportTest, MarksSubstituteDatasetsReducedBudgetsAndMissingRuns) {
  absl::StatusOr<Report> r = BuildReport(MakeFixture());
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string& md = r->markdown;
  EXPECT_THAT(md, HasSubstr("| ours | `fp32_cifar` | cifar10 |  |  |  |  |  |  |  | not run |  |"));
  EXPECT_THAT(md, HasSubstr("| run 1 | substitute dataset, reduced budget |"));
  EXPECT_THAT(md, HasSubstr("| run 2 | substitute dataset, reduced budget |"));
  EXPECT_THAT(md, HasSubstr("run 3 (failed)"));
  EXPECT_THAT(md, HasSubstr("`p:t1:impq` (experiments/papers/p.json)"));
  EXPECT_THAT(md, HasSubstr("Stopped: B_w,eff 2.500 reached the target 2.600."));
  // The IMPQ run's bit map is at its final point 2: conv groups 2, 4, 3 bits.
  EXPECT_THAT(md, HasSubstr("| `conv` | 3 | 2 | 3.00 | 4 |"));
  // The soft architecture: E[b_w] / E[b_a] of unit body.1 at epochs 1 and 2.
  EXPECT_THAT(md, HasSubstr("| `body.1` | 1.50 / 3.50 | 2.00 / 2.00 |"));
}

// Tag balance of an XML-style document (void elements must be self-closed).
bool WellFormed(const std::string& html, std::string* why) {
  std::vector<std::string> stack;
  for (size_t i = html.find('<'); i != std::string::npos; i = html.find('<', i + 1)) {
    const size_t end = html.find('>', i);
    if (end == std::string::npos) return *why = "unterminated tag", false;
    const std::string tag = html.substr(i + 1, end - i - 1);
    if (tag.rfind("!DOCTYPE", 0) == 0) continue;
    if (tag.empty()) return *why = "empty tag", false;
    if (tag.back() == '/') continue;
    const bool closing = tag[0] == '/';
    const std::string name = tag.substr(closing ? 1 : 0, tag.find_first_of(" \n", closing ? 1 : 0) - (closing ? 1 : 0));
    if (!closing) {
      stack.push_back(name);
    } else if (stack.empty() || stack.back() != name) {
      return *why = "</" + name + "> does not close <" + (stack.empty() ? "" : stack.back()) + ">", false;
    } else {
      stack.pop_back();
    }
  }
  if (!stack.empty()) return *why = "<" + stack.back() + "> not closed", false;
  return true;
}

TEST(ReportTest, ComparesRunsWithTheIterativeTrajectoryAtNoMoreBitOps) {
  absl::StatusOr<Report> r = BuildReport(MakeFixture());
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string& md = r->markdown;
  // 3.2 GBitOps: IMPQ's points are at 4, 3 and 2.5; the one with the most BitOps <= 3.2 is point 1.
  EXPECT_THAT(md, HasSubstr("| `w2_fmnist` (run 4) | uniform W2A32 | 3.200 | 2.00 / 32.00 | 82.00 | "
                            "`impq_fmnist` (run 2) point 1 | 3.000 | 3.00 / 32.00 | 83.00 | +1.00 |"));
  // The FP32 run (40 GBitOps) is outside the trajectory's 2.5..4 range: no row.
  EXPECT_THAT(md, Not(HasSubstr("| `fp32_fmnist` (run 1) | FP32 | 40.000")));
}

TEST(ReportTest, PairsOnlyRunsWithTheSameTrainingBudget) {
  ReportInputs in = MakeFixture();
  {
    auto store = std::move(*results::ResultStore::Open(in.db_path));
    // Inside the trajectory's BitOps range, but on 4x the examples, and on the same
    // examples for 3 epochs: neither is a matched comparison.
    int64_t hash = 0;
    for (const auto& [name, subset, epochs] : {std::tuple<const char*, int, int>{"w2_more_data", 4000, 11},
                                               {"w2_fewer_epochs", 1000, 3}}) {
      results::NewRun n;
      n.name = name;
      n.spec_json = absl::StrCat(R"({"name":")", name, R"(","model":"resnet20","dataset":"fashion_mnist",)",
                                 R"("method":"uniform","weight_quantizer":"lin","weight_bits":2,"act_bits":32,)",
                                 R"("epochs":)", epochs, R"(,"train_subset":)", subset, "}");
      n.spec_hash = absl::StrCat("other", hash++);
      n.code_version = "t";
      const int64_t id = *store->CreateRun(n);
      results::FinalResult f;
      f.test_top1 = 70;
      f.val_top1 = 70;
      f.bitops = 3.1e9;
      f.bw_eff = 2;
      f.ba_eff = 32;
      EXPECT_TRUE(store->FinishRun(id, f).ok());
    }
  }
  absl::StatusOr<Report> r = BuildReport(in);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->markdown, HasSubstr("| `w2_fmnist` (run 4) | uniform W2A32 | 3.200"));
  EXPECT_THAT(r->markdown, Not(HasSubstr("| `w2_more_data`")));
  EXPECT_THAT(r->markdown, Not(HasSubstr("| `w2_fewer_epochs`")));
}

TEST(ReportTest, HtmlIsWellFormedAndSelfContained) {
  absl::StatusOr<Report> r = BuildReport(MakeFixture());
  ASSERT_TRUE(r.ok()) << r.status();
  std::string why;
  EXPECT_TRUE(WellFormed(r->html, &why)) << why;
  EXPECT_EQ(r->html.find("<script"), std::string::npos);
  EXPECT_EQ(r->html.find("src="), std::string::npos);
  EXPECT_EQ(r->html.find("href="), std::string::npos);
  EXPECT_EQ(r->html.find("url("), std::string::npos);
  EXPECT_EQ(r->html.find("@import"), std::string::npos);
  // The only "http" is the SVG namespace name (an identifier, not fetched).
  std::string rest = r->html;
  size_t pos = 0;
  while ((pos = rest.find("http", pos)) != std::string::npos) {
    EXPECT_EQ(rest.compare(pos, 26, "http://www.w3.org/2000/svg"), 0) << rest.substr(pos, 40);
    pos += 4;
  }
  // Every figure of the Markdown is inline in the HTML.
  EXPECT_GE(r->figures.size(), 5u);  // 2 Pareto, 1 bit map, 1 trajectory, 1 curves
  for (const auto& [name, svg] : r->figures) {
    EXPECT_NE(r->html.find(svg), std::string::npos) << name;
    EXPECT_TRUE(WellFormed(svg, &why)) << name << ": " << why;
  }
}

TEST(ReportTest, WritesTheFiles) {
  absl::StatusOr<Report> r = BuildReport(MakeFixture());
  ASSERT_TRUE(r.ok());
  const std::string out = Tmp("out");
  ASSERT_TRUE(WriteReport(*r, out).ok());
  EXPECT_EQ(ReadFile(out + "/report.md"), r->markdown);
  EXPECT_EQ(ReadFile(out + "/report.html"), r->html);
  for (const auto& [name, svg] : r->figures) EXPECT_EQ(ReadFile(out + "/" + name), svg);
}

TEST(ReportTest, MissingOrEmptyDatabaseIsAClearError) {
  ReportInputs in = MakeFixture();
  in.db_path = Tmp("nope/none.db");
  absl::StatusOr<Report> r = BuildReport(in);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("no results database at " + in.db_path));
  EXPECT_FALSE(std::filesystem::exists(in.db_path));  // not created by the attempt

  in.db_path = Tmp("empty.db");
  std::filesystem::remove(in.db_path);
  ASSERT_TRUE(results::ResultStore::Open(in.db_path).ok());
  r = BuildReport(in);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("has no runs yet"));

  in = MakeFixture();
  WriteFile(in.table_files[0], "{not json");
  r = BuildReport(in);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("t1.table.json is not valid JSON"));
}

}  // namespace
}  // namespace mpq::reports

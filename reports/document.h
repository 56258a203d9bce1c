// document.h — the report's document model and its two renderings: a list of blocks
// (headings, paragraphs with inline `code` and **bold**, tables, SVG figures) written
// as Markdown (figures as files beside it) or as one self-contained HTML page (figures
// inline, no scripts, fonts or links to other files).
//
//   Document doc;
//   doc.Heading(2, "Accuracy vs cost");
//   doc.Table({"run", "top-1"}, {{"`x` (run 1)", "91.20"}});
//   doc.Figure("pareto.svg", "test top-1 vs BitOps", svg);
//   std::string md = doc.ToMarkdown(), html = doc.ToHtml("mpqbench report");
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace mpq::reports {

struct Block {
  enum Kind { kHeading, kParagraph, kTable, kFigure } kind = kParagraph;
  int level = 2;
  std::string text;                              // heading, paragraph (inline `code` and **bold** only)
  std::vector<std::string> header;               // table
  std::vector<std::vector<std::string>> rows;    // table
  std::string figure_file, svg;                  // figure (text = caption)
};

class Document {
 public:
  void Heading(int level, std::string text);
  void Paragraph(std::string text);
  void Table(std::vector<std::string> header, std::vector<std::vector<std::string>> rows);
  void Figure(const std::string& file, const std::string& caption, std::string svg);

  std::string ToMarkdown() const;
  std::string ToHtml(const std::string& title) const;
  // (file name, SVG) of every figure, in order: the files the Markdown refers to.
  const std::vector<std::pair<std::string, std::string>>& figures() const { return figures_; }

 private:
  std::vector<Block> blocks_;
  std::vector<std::pair<std::string, std::string>> figures_;
};

}  // namespace mpq::reports

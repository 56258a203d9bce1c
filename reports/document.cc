#include "reports/document.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "reports/svg.h"

namespace mpq::reports {
namespace {

std::string MdCell(const std::string& s) { return absl::StrReplaceAll(s, {{"|", "\\|"}, {"\n", " "}}); }

// Inline Markdown subset -> HTML: `code`, **bold**.
std::string InlineHtml(const std::string& s) {
  std::string out;
  bool code = false, bold = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '`') {
      out += code ? "</code>" : "<code>";
      code = !code;
    } else if (!code && s.compare(i, 2, "**") == 0) {
      out += bold ? "</b>" : "<b>";
      bold = !bold;
      ++i;
    } else {
      out += Escape(std::string(1, s[i]));
    }
  }
  if (code) out += "</code>";
  if (bold) out += "</b>";
  return out;
}

}  // namespace

void Document::Heading(int level, std::string text) {
  Block b;
  b.kind = Block::kHeading;
  b.level = level;
  b.text = std::move(text);
  blocks_.push_back(std::move(b));
}

void Document::Paragraph(std::string text) {
  Block b;
  b.kind = Block::kParagraph;
  b.level = 0;
  b.text = std::move(text);
  blocks_.push_back(std::move(b));
}

void Document::Table(std::vector<std::string> header, std::vector<std::vector<std::string>> rows) {
  Block b;
  b.kind = Block::kTable;
  b.header = std::move(header);
  b.rows = std::move(rows);
  blocks_.push_back(std::move(b));
}

void Document::Figure(const std::string& file, const std::string& caption, std::string svg) {
  Block b;
  b.kind = Block::kFigure;
  b.text = caption;
  b.figure_file = file;
  b.svg = svg;
  figures_.emplace_back(file, std::move(svg));
  blocks_.push_back(std::move(b));
}

std::string Document::ToMarkdown() const {
  const std::vector<Block>& doc = blocks_;
  std::string md;
  for (const Block& b : doc) {
    switch (b.kind) {
      case Block::kHeading: md += std::string(b.level, '#') + " " + b.text + "\n\n"; break;
      case Block::kParagraph: md += b.text + "\n\n"; break;
      case Block::kTable: {
        md += "| " + absl::StrJoin(b.header, " | ", [](std::string* o, const std::string& c) { o->append(MdCell(c)); }) + " |\n";
        md += "|" + std::string() + absl::StrJoin(std::vector<std::string>(b.header.size(), "---"), "|") + "|\n";
        for (const auto& r : b.rows) {
          md += "| " + absl::StrJoin(r, " | ", [](std::string* o, const std::string& c) { o->append(MdCell(c)); }) + " |\n";
        }
        md += "\n";
        break;
      }
      case Block::kFigure: md += absl::StrCat("![", b.text, "](", b.figure_file, ")\n\n"); break;
    }
  }
  return md;
}

std::string Document::ToHtml(const std::string& title) const {
  const std::vector<Block>& doc = blocks_;
  std::string h = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>", Escape(title),
      "</title>\n<style>\nbody{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\n"
      "table{border-collapse:collapse;margin:0.5em 0 1.5em 0;font-size:13px}\n"
      "th,td{border:1px solid #ccc;padding:3px 7px;text-align:left}\nth{background:#f2f2f2}\n"
      "tr.paper td{background:#f8f8ff}\ncode{background:#f4f4f4;padding:0 3px}\n"
      "figure{margin:0.5em 0 1.5em 0}\nfigcaption{font-size:12px;color:#555}\n</style>\n</head>\n<body>\n");
  for (const Block& b : doc) {
    switch (b.kind) {
      case Block::kHeading: absl::StrAppendFormat(&h, "<h%d>%s</h%d>\n", b.level, InlineHtml(b.text), b.level); break;
      case Block::kParagraph: h += "<p>" + InlineHtml(b.text) + "</p>\n"; break;
      case Block::kTable: {
        h += "<table>\n<tr>";
        for (const std::string& c : b.header) h += "<th>" + InlineHtml(c) + "</th>";
        h += "</tr>\n";
        for (const auto& r : b.rows) {
          h += !r.empty() && r[0] == "paper" ? "<tr class=\"paper\">" : "<tr>";
          for (const std::string& c : r) h += "<td>" + InlineHtml(c) + "</td>";
          h += "</tr>\n";
        }
        h += "</table>\n";
        break;
      }
      case Block::kFigure:
        h += "<figure>\n" + b.svg + "<figcaption>" + InlineHtml(b.text) + "</figcaption>\n</figure>\n";
        break;
    }
  }
  return h + "</body>\n</html>\n";
}


}  // namespace mpq::reports

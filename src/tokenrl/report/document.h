#pragma once
// The report documents of `tokenrl report` (report.h): report.md and
// report.html, written side by side from the same calls, and the small
// Markdown/HTML builders they (and table.md) use.

#include <set>
#include <string>
#include <vector>

#include "tokenrl/core/status.h"
#include "tokenrl/report/analysis.h"
#include "tokenrl/report/tables.h"
#include "tokenrl/report/types.h"

namespace tokenrl::report {

// A document being written as Markdown and as HTML at once.
struct Doc {
  std::string md;
  std::string html;
};
void Heading(Doc& d, int level, const std::string& text);
void Paragraph(Doc& d, const std::string& text);
void Bullets(Doc& d, const std::vector<std::string>& items);
// first_col_code: a settings table (keys as code, every column left-aligned).
void Table(Doc& d, const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
           bool first_col_code = false);
// The figure `name` (PNG in Markdown, SVG in HTML), or a note when not drawn.
void Image(Doc& d, const std::string& name, const std::string& alt, bool drawn);

// report.md and report.html: sources, the aggregate table, the figures
// (`drawn` names those with images), diagnostics, each variant's settings and
// scores file (`slugs`), the shared settings, warnings and the file list.
Status WriteDocuments(const ReportOptions& options, const Analysis& analysis, const AggregateTable& table,
                      const std::vector<std::string>& slugs, const std::set<std::string>& drawn,
                      ReportResult& result);

}  // namespace tokenrl::report

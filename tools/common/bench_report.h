// The bench tool's output: a Markdown table in llama-bench's columns plus each
// device's limits, or JSON with every figure (one object per row); and, when the
// rows span several devices, a table of them side by side.
#pragma once

#include <string>
#include <vector>

#include "common/bench_runner.h"

namespace qilin::tools {

// The table's header and separator lines (each ending in a newline).
std::string bench_markdown_header();
// One table row (ending in a newline): model, type, size, params, threads, test,
// t/s (mean ± sd), median, what was achieved and how it compares with the roofline.
std::string bench_markdown_row(const BenchRow& row);
// A JSON array of the rows, every figure as a number.
std::string bench_json(const std::vector<BenchRow>& rows);

// The rows regrouped to compare devices: one group per model, type and test (in the
// order they first appear), one cell per device column ("cpu", "cpu 2t" when the CPU
// ran at several thread counts, "cuda"); nullptr where a device has no such row.
struct BenchComparison {
  struct Group {
    std::string model, type;
    BenchTest test;
    std::vector<const BenchRow*> cells;  // one per column
  };
  std::vector<std::string> columns;
  std::vector<Group> groups;
};
BenchComparison compare_devices(const std::vector<BenchRow>& rows);

// The comparison as a Markdown table: t/s and % of the device's own roofline per
// device, and the GPU's speed over the CPU's (its fastest thread count) when both ran;
// "" when the rows hold fewer than two device columns.
std::string bench_comparison_markdown(const std::vector<BenchRow>& rows);

}  // namespace qilin::tools

// The bench tool's output: a Markdown table in llama-bench's columns plus this
// machine's limits, or JSON with every figure (one object per row).
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

}  // namespace qilin::tools

// qilin-bench's chart: an SVG drawing (written by hand, no dependency) of throughput
// by model and weight type, one bar per device, prompt processing (pp) and text
// generation (tg) in separate panels, each bar labelled with its t/s and its share
// of its own device's roofline.
#pragma once

#include <string>
#include <vector>

#include "common/bench_runner.h"

namespace qilin::tools {

// A standalone SVG document. Every bar is a <rect class="bar"> carrying data-device,
// data-model, data-type, data-test and data-value (mean t/s) attributes, one per row.
std::string bench_svg_chart(const std::vector<BenchRow>& rows);

}  // namespace qilin::tools

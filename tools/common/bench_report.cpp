#include "common/bench_report.h"

#include <fmt/core.h>

#include <nlohmann/json.hpp>

namespace qilin::tools {
namespace {

std::string percent_of(double achieved, double limit) {
  return limit > 0 ? fmt::format("{:.0f}%", 100.0 * achieved / limit) : std::string("-");
}

// What the row reached, and against which limit.
std::string achieved_cell(const BenchRow& row) {
  if (row.test.kind == BenchTest::Kind::prompt) return fmt::format("{:.0f} GFLOP/s", row.gflops);
  return fmt::format("{:.1f} GB/s", row.achieved_gbs);
}

std::string roofline_cell(const BenchRow& row) {
  if (row.test.kind == BenchTest::Kind::prompt) {
    if (row.fma_peak_gflops <= 0) return "-";
    return fmt::format("{} of f32 FMA peak {:.0f} GFLOP/s", percent_of(row.gflops, row.fma_peak_gflops),
                       row.fma_peak_gflops);
  }
  std::string cell;
  if (row.dram_gbs > 0) {
    cell = fmt::format("{} of DRAM {:.0f} t/s ({:.1f} GB/s)", percent_of(row.stats.mean, row.dram_roofline_tps),
                       row.dram_roofline_tps, row.dram_gbs);
  }
  if (row.model_sized_gbs > 0) {
    if (!cell.empty()) cell += " · ";
    cell += fmt::format("{} of {:.0f} MiB-set {:.0f} t/s ({:.1f} GB/s)",
                        percent_of(row.stats.mean, row.model_sized_roofline_tps), row.model.bytes_per_token / 1048576.0,
                        row.model_sized_roofline_tps, row.model_sized_gbs);
  }
  return cell.empty() ? "-" : cell;
}

}  // namespace

std::string bench_markdown_header() {
  return "| model | type | size | params | threads | test | t/s | median t/s | achieved | vs. roofline |\n"
         "|---|---|---:|---:|---:|---|---:|---:|---:|---|\n";
}

std::string bench_markdown_row(const BenchRow& row) {
  return fmt::format("| {} | {} | {:.2f} MiB | {:.2f} M | {} | {} | {:.2f} ± {:.2f} | {:.2f} | {} | {} |\n",
                     row.model.name, row.model.type, static_cast<double>(row.model.size_bytes) / 1048576.0,
                     static_cast<double>(row.model.params) / 1e6, row.threads, row.test.name(), row.stats.mean,
                     row.stats.sd, row.stats.median, achieved_cell(row), roofline_cell(row));
}

std::string bench_json(const std::vector<BenchRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const BenchRow& r : rows) {
    nlohmann::json j = {
        {"model", r.model.name},
        {"type", r.model.type},
        {"size_bytes", r.model.size_bytes},
        {"params", r.model.params},
        {"weight_bytes_per_token", r.model.bytes_per_token},
        {"threads", r.threads},
        {"batch", r.batch},
        {"kv_type", r.kv_type},
        {"test", r.test.name()},
        {"n_prompt", r.test.kind == BenchTest::Kind::prompt ? r.test.tokens : 0},
        {"n_gen", r.test.kind == BenchTest::Kind::generation ? r.test.tokens : 0},
        {"samples_ts", r.tokens_per_second},
        {"avg_ts", r.stats.mean},
        {"stddev_ts", r.stats.sd},
        {"median_ts", r.stats.median},
    };
    if (r.test.kind == BenchTest::Kind::prompt) {
      j["gflops"] = r.gflops;
      j["fma_peak_gflops"] = r.fma_peak_gflops;
    } else {
      j["achieved_gbs"] = r.achieved_gbs;
      j["dram_gbs"] = r.dram_gbs;
      j["dram_roofline_ts"] = r.dram_roofline_tps;
      j["model_sized_gbs"] = r.model_sized_gbs;
      j["model_sized_roofline_ts"] = r.model_sized_roofline_tps;
    }
    out.push_back(std::move(j));
  }
  return out.dump(2) + "\n";
}

}  // namespace qilin::tools

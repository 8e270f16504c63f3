#include "common/bench_report.h"

#include <fmt/core.h>

#include <algorithm>
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
  if (row.device == Device::cuda) {
    if (row.test.kind == BenchTest::Kind::prompt) {
      if (row.gemm_peak_gflops <= 0) return "-";
      return fmt::format("{} of cuBLAS bf16 GEMM {:.0f} GFLOP/s", percent_of(row.gflops, row.gemm_peak_gflops),
                         row.gemm_peak_gflops);
    }
    if (row.hbm_gbs <= 0) return "-";
    return fmt::format("{} of HBM {:.0f} t/s ({:.0f} GB/s)", percent_of(row.stats.mean, row.hbm_roofline_tps),
                       row.hbm_roofline_tps, row.hbm_gbs);
  }
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
  return "| model | type | size | params | device | threads | test | t/s | median t/s | achieved | vs. roofline |\n"
         "|---|---|---:|---:|---|---:|---|---:|---:|---:|---|\n";
}

std::string bench_markdown_row(const BenchRow& row) {
  return fmt::format("| {} | {} | {:.2f} MiB | {:.2f} M | {} | {} | {} | {:.2f} ± {:.2f} | {:.2f} | {} | {} |\n",
                     row.model.name, row.model.type, static_cast<double>(row.model.size_bytes) / 1048576.0,
                     static_cast<double>(row.model.params) / 1e6, name_of(row.device), row.threads, row.test.name(),
                     row.stats.mean, row.stats.sd, row.stats.median, achieved_cell(row), roofline_cell(row));
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
        {"device", std::string(name_of(r.device))},
        {"device_name", r.device_name},
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
    const bool gpu = r.device == Device::cuda;
    if (r.test.kind == BenchTest::Kind::prompt) {
      j["gflops"] = r.gflops;
      j[gpu ? "bf16_gemm_peak_gflops" : "fma_peak_gflops"] = gpu ? r.gemm_peak_gflops : r.fma_peak_gflops;
    } else {
      j["achieved_gbs"] = r.achieved_gbs;
      if (gpu) {
        j["hbm_gbs"] = r.hbm_gbs;
        j["hbm_roofline_ts"] = r.hbm_roofline_tps;
      } else {
        j["dram_gbs"] = r.dram_gbs;
        j["dram_roofline_ts"] = r.dram_roofline_tps;
        j["model_sized_gbs"] = r.model_sized_gbs;
        j["model_sized_roofline_ts"] = r.model_sized_roofline_tps;
      }
    }
    j["roofline_percent"] = roofline_percent(r);
    out.push_back(std::move(j));
  }
  return out.dump(2) + "\n";
}

BenchComparison compare_devices(const std::vector<BenchRow>& rows) {
  BenchComparison c;
  const bool with_threads = several_cpu_thread_counts(rows);
  for (const BenchRow& r : rows) {
    const std::string label = device_label(r, with_threads);
    if (std::find(c.columns.begin(), c.columns.end(), label) == c.columns.end()) c.columns.push_back(label);
  }
  for (const BenchRow& r : rows) {
    const auto column = static_cast<size_t>(
        std::find(c.columns.begin(), c.columns.end(), device_label(r, with_threads)) - c.columns.begin());
    auto group = std::find_if(c.groups.begin(), c.groups.end(), [&](const BenchComparison::Group& g) {
      return g.model == r.model.name && g.type == r.model.type && g.test.kind == r.test.kind &&
             g.test.tokens == r.test.tokens;
    });
    if (group == c.groups.end()) {
      c.groups.push_back({r.model.name, r.model.type, r.test, std::vector<const BenchRow*>(c.columns.size())});
      group = c.groups.end() - 1;
    }
    group->cells[column] = &r;
  }
  return c;
}

std::string bench_comparison_markdown(const std::vector<BenchRow>& rows) {
  const BenchComparison c = compare_devices(rows);
  if (c.columns.size() < 2) return "";
  bool has_cpu = false, has_gpu = false;
  for (const BenchRow& r : rows) (r.device == Device::cuda ? has_gpu : has_cpu) = true;
  const bool ratio = has_cpu && has_gpu;
  std::string out = "| model | type | test |";
  std::string rule = "|---|---|---|";
  for (const std::string& column : c.columns) {
    out += fmt::format(" {} t/s (% of roofline) |", column);
    rule += "---:|";
  }
  if (ratio) {
    out += " cuda ÷ cpu |";
    rule += "---:|";
  }
  out += "\n" + rule + "\n";
  for (const BenchComparison::Group& g : c.groups) {
    out += fmt::format("| {} | {} | {} |", g.model, g.type, g.test.name());
    double best_cpu = 0, best_gpu = 0;
    for (const BenchRow* r : g.cells) {
      if (r == nullptr) {
        out += " - |";
        continue;
      }
      const double percent = roofline_percent(*r);
      out += percent > 0 ? fmt::format(" {:.2f} ({:.0f}%) |", r->stats.mean, percent)
                         : fmt::format(" {:.2f} |", r->stats.mean);
      double& best = r->device == Device::cuda ? best_gpu : best_cpu;
      best = std::max(best, r->stats.mean);
    }
    if (ratio) out += best_cpu > 0 && best_gpu > 0 ? fmt::format(" {:.1f}× |", best_gpu / best_cpu) : " - |";
    out += "\n";
  }
  return out;
}

}  // namespace qilin::tools

// qilin-generate: run a model on a prompt, or chat with it.
//
//   qilin-generate -m model.gguf -p "The capital of France is" -n 32
//   qilin-generate -m model.gguf -i [--system "You are terse."] [-p "first message"]
//
// Text streams to stdout as it is produced; load time and prompt / generation
// speed go to stderr (or, with --json, one JSON object to stdout at the end).
#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/cli.h"
#include "core/error.h"
#include "models/cuda_decoder.h"
#include "models/model.h"
#include "models/session.h"

namespace {

using namespace qilin;

constexpr const char* kUsage = R"(usage: qilin-generate -m MODEL [options]

  -m, --model PATH        .gguf file or Hugging Face folder (default: $QILIN_MODEL)
  -p, --prompt TEXT       prompt (raw text; with -i the first user message)
  -f, --file PATH         read the prompt from a file
  -i, --chat              interactive chat: one user message per line on stdin, using the
                          model's chat template; earlier turns stay in the KV cache
      --system TEXT       system prompt for chat
  -n, --n-predict N       tokens to generate (default 256; -1 until EOS or context end)
  -t, --threads N         threads (default: all)
  -c, --ctx-size N        context length (default 4096, capped at the model's)
  -b, --batch-size N      prompt tokens per forward pass (default 512)
      --temp X            temperature (default 0.8; 0 = greedy)
      --top-k N           (default 40; 0 = off)
      --top-p X           (default 0.95; 1 = off)
      --min-p X           (default 0.05; 0 = off)
      --repeat-penalty X  (default 1.0 = off)   --repeat-last-n N (default 64)
      --presence-penalty X, --frequency-penalty X   (default 0)
      --seed N            random seed (default: fixed, runs are reproducible)
      --stop TEXT         stop string (repeatable)
      --ignore-eos        keep generating past end-of-sequence
      --kv-type T         KV-cache type: f16 (default), f32, or q8_0 (47% less memory than f16)
      --no-bf16           prompt matmuls in f32 (default: bf16 on AMX / AVX512-BF16)
      --mmap              read float weights from the page cache (default: huge-page copies, faster decode)
      --dequantize T      expand Q4_0/Q4_1/Q8_0/Q4_K/Q6_K weights to T (f32, f16, bf16) at load
                          instead of running them on the quantized kernels
      --device cpu|cuda   where the model runs (default cpu); cuda: weights, KV cache and
                          forward pass on the GPU
      --no-cuda-graphs    with --device cuda: launch every kernel of a decode step one by one
      --json              print one JSON object with the text and the timings
      --verbose           print the model's configuration and matmul plans
)";

struct Cli {
  std::string model, prompt, system;
  bool chat = false, json = false, verbose = false;
  LoadOptions load;
  GenerateOptions gen;
};

Cli parse(int argc, char** argv) {
  tools::Args args(argc, argv);
  if (args.has({"-h", "--help"})) {
    fmt::print("{}", kUsage);
    std::exit(0);
  }
  Cli cli;
  const char* env_model = std::getenv("QILIN_MODEL");
  cli.model = args.get({"-m", "--model"}, env_model ? env_model : "");
  cli.prompt = args.get({"-p", "--prompt"});
  const std::string file = args.get({"-f", "--file"});
  if (!file.empty()) cli.prompt = tools::read_text_file(file);
  cli.chat = args.has({"-i", "--chat", "--interactive"});
  cli.system = args.get({"--system", "-sys"});
  cli.json = args.has({"--json"});
  cli.verbose = args.has({"--verbose", "-v"});
  cli.gen.max_new_tokens = static_cast<int32_t>(args.get_int({"-n", "--n-predict"}, 256));
  cli.load.threads = static_cast<int>(args.get_int({"-t", "--threads"}, 0));
  cli.load.context = args.get_int({"-c", "--ctx-size"}, 4096);
  cli.load.batch = args.get_int({"-b", "--batch-size"}, 512);
  SamplerOptions& s = cli.gen.sampling;
  s.temperature = static_cast<float>(args.get_float({"--temp"}, s.temperature));
  s.top_k = static_cast<int32_t>(args.get_int({"--top-k"}, s.top_k));
  s.top_p = static_cast<float>(args.get_float({"--top-p"}, s.top_p));
  s.min_p = static_cast<float>(args.get_float({"--min-p"}, s.min_p));
  s.repeat_penalty = static_cast<float>(args.get_float({"--repeat-penalty"}, s.repeat_penalty));
  s.repeat_last_n = static_cast<int32_t>(args.get_int({"--repeat-last-n"}, s.repeat_last_n));
  s.presence_penalty = static_cast<float>(args.get_float({"--presence-penalty"}, s.presence_penalty));
  s.frequency_penalty = static_cast<float>(args.get_float({"--frequency-penalty"}, s.frequency_penalty));
  s.seed = static_cast<uint64_t>(args.get_int({"--seed", "-s"}, static_cast<int64_t>(s.seed)));
  cli.gen.stop = args.get_all({"--stop"});
  cli.gen.ignore_eos = args.has({"--ignore-eos"});
  const std::string kv = args.get({"--kv-type", "-ctk"}, "f16");
  if (kv != "f16" && kv != "f32" && kv != "q8_0") fail("args", "--kv-type must be f16, f32 or q8_0, not '{}'", kv);
  dtype_from_name(kv, &cli.load.kv_type);
  cli.load.bf16_prefill = !args.has({"--no-bf16"});
  cli.load.mmap = args.has({"--mmap"});
  if (const std::string dq = args.get({"--dequantize"}); !dq.empty()) {
    if (!dtype_from_name(dq, &cli.load.dequantize_to) || !traits(cli.load.dequantize_to).is_float) {
      fail("args", "--dequantize must be f32, f16 or bf16, not '{}'", dq);
    }
    cli.load.dequantize = true;
  }
  cli.load.device = tools::parse_device(args.get({"--device", "-dev"}, "cpu"));
  cli.load.cuda_graphs = !args.has({"--no-cuda-graphs"});
  args.finish();
  if (cli.model.empty()) fail("args", "no model: pass -m PATH (or set QILIN_MODEL); see --help");
  if (!cli.chat && cli.prompt.empty()) fail("args", "no prompt: pass -p TEXT, -f FILE, or -i for a chat");
  return cli;
}

void print_stats(const GenerateResult& r) {
  fmt::print(stderr, "\n[prompt: {} tokens ({} reused) in {:.3f} s, {:.1f} tokens/s | generation: {} tokens in {:.3f} s, "
             "{:.1f} tokens/s | stop: {}]\n",
             r.stats.prompt_tokens, r.stats.reused_tokens, r.stats.prompt_seconds, r.stats.prompt_tokens_per_second(),
             r.stats.generated_tokens, r.stats.generate_seconds, r.stats.generate_tokens_per_second(),
             name_of(r.stop_reason));
}

nlohmann::json to_json(const GenerateResult& r) {
  return {{"text", r.text},
          {"tokens", r.tokens},
          {"stop_reason", std::string(name_of(r.stop_reason))},
          {"prompt_tokens", r.stats.prompt_tokens},
          {"reused_tokens", r.stats.reused_tokens},
          {"generated_tokens", r.stats.generated_tokens},
          {"prompt_seconds", r.stats.prompt_seconds},
          {"generate_seconds", r.stats.generate_seconds},
          {"prompt_tokens_per_second", r.stats.prompt_tokens_per_second()},
          {"generate_tokens_per_second", r.stats.generate_tokens_per_second()}};
}

int run(const Cli& cli) {
  if (cli.verbose) setenv("QILIN_VERBOSE", "1", 1);
  std::unique_ptr<Model> model = Model::load(cli.model, cli.load);
  const ModelConfig& c = model->config();
  fmt::print(stderr, "[loaded {} ({}, {} layers, d_model {}, vocab {}) in {:.3f} s; {}, {} threads, context {}, KV {} {:.1f} MiB]\n",
             c.name, name_of(c.family), c.n_layers, c.d_model, c.vocab_size, model->load_seconds(),
             name_of(model->options().device), model->options().threads, model->context(),
             name_of(model->cache().dtype()), model->cache().bytes() / 1048576.0);
  Session session(*model);
  session.set_system_prompt(cli.system);
  auto stream = [&](std::string_view piece) {
    if (!cli.json) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  };
  nlohmann::json turns = nlohmann::json::array();
  auto finish_turn = [&](const GenerateResult& r) {
    if (cli.json) {
      turns.push_back(to_json(r));
    } else {
      print_stats(r);
    }
  };

  if (!cli.chat) {
    finish_turn(session.complete(cli.prompt, cli.gen, stream));
  } else {
    const bool tty = isatty(STDIN_FILENO);
    std::string line = cli.prompt;
    bool have = !line.empty();
    while (true) {
      if (!have) {
        if (tty) fmt::print(stderr, "> ");
        if (!std::getline(std::cin, line)) break;
        if (line.empty()) continue;
      }
      have = false;
      finish_turn(session.chat(line, cli.gen, stream));
      if (!cli.json) std::fputc('\n', stdout);
    }
  }
  if (cli.verbose && model->decoder().cuda() != nullptr) {
    const CudaDecoder::GraphStats g = model->decoder().cuda()->graph_stats();
    fmt::print(stderr, "[cuda graphs: {}; {} passes as graphs, {} kernel by kernel; {} instantiations, {} updates{}{}]\n",
               g.enabled ? "on" : "off", g.graph_passes, g.direct_passes, g.instantiations, g.updates,
               g.disabled_reason.empty() ? "" : "; capture failed: ", g.disabled_reason);
  }
  if (cli.json) {
    nlohmann::json out = {{"model", cli.model}, {"load_seconds", model->load_seconds()},
                          {"threads", model->options().threads}};
    out["turns"] = turns;
    fmt::print("{}\n", out.dump(2));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    fmt::print(stderr, "qilin-generate: {}\n", e.what());
    return 1;
  }
}

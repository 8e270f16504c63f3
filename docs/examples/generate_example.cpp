// The smallest program that runs a model through Qilin's C++ API:
//
//   generate_example MODEL.gguf "Your question"
//
// It loads the model, asks the question as one chat turn, streams the answer to
// stdout and prints the timings. Built by the test suite both inside the source
// tree and against an installed Qilin (find_package(qilin), tests/consumer/).
#include <cstdio>
#include <exception>
#include <string_view>

#include "models/model.h"
#include "models/session.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL QUESTION\n", argv[0]);
    return 2;
  }
  try {
    qilin::LoadOptions load;
    load.threads = 2;
    load.context = 1024;
    std::unique_ptr<qilin::Model> model = qilin::Model::load(argv[1], load);

    qilin::Session session(*model);
    qilin::GenerateOptions options;
    options.sampling.temperature = 0;  // greedy: the same answer every run
    options.max_new_tokens = 48;
    const qilin::GenerateResult result = session.chat(argv[2], options, [](std::string_view piece) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
      return true;  // false would stop the generation
    });

    std::fprintf(stderr, "\n%lld prompt tokens at %.1f t/s, %lld generated at %.1f t/s, stop: %s\n",
                 static_cast<long long>(result.stats.prompt_tokens), result.stats.prompt_tokens_per_second(),
                 static_cast<long long>(result.stats.generated_tokens), result.stats.generate_tokens_per_second(),
                 std::string(qilin::name_of(result.stop_reason)).c_str());
    return 0;
  } catch (const std::exception& e) {  // qilin::Error says what and where
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

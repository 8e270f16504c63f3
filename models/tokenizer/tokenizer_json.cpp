// Tokenizer::from_json: a Hugging Face tokenizer.json, for the configurations
// Qilin reproduces exactly; anything else is rejected with a message naming it.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/tokenizer/tokenizer.h"

namespace qilin {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kGpt2Regex = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kSpaceMark = "\xE2\x96\x81";

std::string type_of(const Json& j) { return j.is_object() && j.contains("type") ? j["type"].get<std::string>() : "?"; }

// A Sequence flattened into its parts; null is empty.
std::vector<Json> flatten(const Json& j, const char* list_key) {
  if (j.is_null()) return {};
  if (type_of(j) == "Sequence") {
    std::vector<Json> out;
    for (const Json& part : j.at(list_key)) {
      auto sub = flatten(part, list_key);
      out.insert(out.end(), sub.begin(), sub.end());
    }
    return out;
  }
  return {j};
}

struct Parser {
  std::string_view name;
  TokenizerConfig c;

  [[noreturn]] void reject(const std::string& what) const { fail(name, "{}", what); }

  void model(const Json& m) {
    if (type_of(m) != "BPE") reject(fmt::format("model type '{}' is not supported (only BPE)", type_of(m)));
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (m.contains(key) && m[key].is_string() && !m[key].get<std::string>().empty())
        reject(fmt::format("BPE {} is not supported", key));
    const Json& vocab = m.at("vocab");
    if (!vocab.is_object()) reject("model.vocab is not an object");
    size_t n = 0;
    for (const auto& [token, id] : vocab.items()) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (int64_t{1} << 30))
        reject(fmt::format("token '{}' has a bad id", token));
      n = std::max(n, id.get<size_t>() + 1);
    }
    c.tokens.resize(n);
    for (const auto& [token, id] : vocab.items()) c.tokens[id.get<size_t>()] = token;
    for (const Json& merge : m.at("merges")) {
      if (merge.is_string()) {
        const std::string s = merge.get<std::string>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
          reject(fmt::format("merge '{}' is not two tokens", s));
        c.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
      } else if (merge.is_array() && merge.size() == 2) {
        c.merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
      } else {
        reject("a merge is neither \"a b\" nor [a, b]");
      }
    }
    c.ignore_merges = m.value("ignore_merges", false);
    if (m.value("byte_fallback", false)) c.model = TokenizerModel::sentencepiece_bpe;
    if (m.contains("unk_token") && m["unk_token"].is_string()) {
      const std::string unk = m["unk_token"].get<std::string>();
      if (vocab.contains(unk)) c.unk_id = vocab[unk].get<int32_t>();
    }
  }

  void added_tokens(const Json& list) {
    if (list.is_null()) return;
    for (const Json& t : list) {
      AddedToken a;
      a.content = t.at("content").get<std::string>();
      a.id = t.at("id").get<int32_t>();
      a.special = t.value("special", false);
      a.lstrip = t.value("lstrip", false);
      a.rstrip = t.value("rstrip", false);
      a.single_word = t.value("single_word", false);
      c.added_tokens.push_back(std::move(a));
    }
  }

  // SentencePiece's Prepend("▁") + Replace(" ", "▁"), or NFC; nothing else.
  bool normalizer(const Json& n) {
    const std::vector<Json> parts = flatten(n, "normalizers");
    if (parts.empty()) return false;
    if (parts.size() == 1 && type_of(parts[0]) == "NFC") {
      c.normalizer = Normalizer::nfc;
      return false;
    }
    bool prepend = false, replace = false;
    for (const Json& p : parts) {
      if (type_of(p) == "Prepend" && p.value("prepend", "") == kSpaceMark) {
        prepend = true;
      } else if (type_of(p) == "Replace" && p.at("pattern").value("String", "") == " " &&
                 p.value("content", "") == kSpaceMark) {
        replace = true;
      } else {
        reject(fmt::format("normalizer '{}' is not supported", type_of(p)));
      }
    }
    if (!replace) reject("a SentencePiece normalizer without Replace(' ', '▁') is not supported");
    c.model = TokenizerModel::sentencepiece_bpe;
    c.space_prefix = prepend ? SpacePrefix::every_segment : SpacePrefix::never;
    return true;
  }

  void pre_tokenizer(const Json& p, bool spm_normalizer) {
    const std::vector<Json> parts = flatten(p, "pretokenizers");
    std::vector<std::string> types;
    for (const Json& part : parts) types.push_back(type_of(part));
    const auto byte_level = [&](size_t i, bool use_regex) {
      return types[i] == "ByteLevel" && parts[i].value("use_regex", true) == use_regex &&
             !parts[i].value("add_prefix_space", false);
    };
    if (parts.empty() && (spm_normalizer || c.model == TokenizerModel::sentencepiece_bpe)) {
      c.model = TokenizerModel::sentencepiece_bpe;
      return;
    }
    if (parts.size() == 1 && types[0] == "Metaspace" && parts[0].value("replacement", "") == kSpaceMark) {
      c.model = TokenizerModel::sentencepiece_bpe;
      const std::string scheme = parts[0].value("prepend_scheme", "always");
      c.space_prefix = scheme == "never"   ? SpacePrefix::never
                       : scheme == "first" ? SpacePrefix::first_segment_once
                                           : SpacePrefix::every_segment_once;
      c.split_on_space = parts[0].value("split", true);
      return;
    }
    if (c.model == TokenizerModel::sentencepiece_bpe) reject("a byte-fallback BPE with a byte-level pre-tokenizer");
    if (parts.size() == 1 && byte_level(0, true)) {
      c.pre_tokenizer = PreTokenizer::gpt2;
      return;
    }
    if (parts.size() == 2 && types[0] == "Digits" && parts[0].value("individual_digits", false) &&
        byte_level(1, true)) {
      c.pre_tokenizer = PreTokenizer::smollm;
      return;
    }
    if (parts.size() == 2 && types[0] == "Split" && byte_level(1, false) &&
        parts[0].value("behavior", "") == "Isolated" && !parts[0].value("invert", false)) {
      const std::string regex = parts[0].at("pattern").value("Regex", "");
      if (regex == kQwen2Regex) {
        c.pre_tokenizer = PreTokenizer::qwen2;
        return;
      }
      if (regex == kLlama3Regex) {
        c.pre_tokenizer = PreTokenizer::llama3;
        return;
      }
      if (regex == kGpt2Regex) {
        c.pre_tokenizer = PreTokenizer::gpt2;
        return;
      }
      reject(fmt::format("the pre-tokenizer regex {} is not one Qilin implements", regex));
    }
    std::string list;
    for (const std::string& t : types) list += (list.empty() ? "" : ", ") + t;
    reject(fmt::format("pre-tokenizer [{}] is not supported", list));
  }

  // TemplateProcessing's "single" template: special tokens before and after $A. One token
  // before is the BOS; several (GLM's "[gMASK] <sop> $A") become the prefix.
  void post_processor(const Json& p) {
    for (const Json& part : flatten(p, "processors")) {
      if (type_of(part) != "TemplateProcessing") continue;
      bool seen_sequence = false;
      std::vector<int32_t> before;
      for (const Json& item : part.at("single")) {
        if (item.contains("Sequence")) {
          seen_sequence = true;
          continue;
        }
        const std::string token = item.at("SpecialToken").at("id").get<std::string>();
        const Json& specials = part.at("special_tokens");
        if (!specials.contains(token) || specials[token].at("ids").size() != 1)
          reject(fmt::format("post-processor token '{}' is not a single id", token));
        const int32_t id = specials[token]["ids"][0].get<int32_t>();
        if (!seen_sequence) {
          before.push_back(id);
          continue;
        }
        c.eos_id = id;
        c.add_eos = true;
      }
      if (before.size() == 1) {
        c.bos_id = before[0];
        c.add_bos = true;
      } else {
        c.prefix_ids = std::move(before);
      }
    }
  }
};

}  // namespace

TokenizerConfig tokenizer_config_from_json(std::string_view json, std::string_view name) {
  Parser p{name, {}};
  try {
    const Json j = Json::parse(json.begin(), json.end());
    if (!j.is_object() || !j.contains("model")) p.reject("no model: not a tokenizer.json");
    p.model(j["model"]);
    p.added_tokens(j.value("added_tokens", Json()));
    const bool spm_normalizer = p.normalizer(j.value("normalizer", Json()));
    p.pre_tokenizer(j.value("pre_tokenizer", Json()), spm_normalizer);
    p.post_processor(j.value("post_processor", Json()));
  } catch (const Json::exception& e) {
    fail(name, "{}", e.what());
  }
  // BOS/EOS named by the added tokens when the post-processor does not say.
  for (const AddedToken& t : p.c.added_tokens) {
    if (p.c.bos_id < 0 && (t.content == "<s>" || t.content == "<|begin_of_text|>")) p.c.bos_id = t.id;
    if (p.c.eos_id < 0 && (t.content == "</s>" || t.content == "<|endoftext|>" || t.content == "<|end_of_text|>"))
      p.c.eos_id = t.id;
  }
  return std::move(p.c);
}

TokenizerConfig tokenizer_config_from_json_file(const std::string& path) {
  auto read = [](const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) fail(file.string(), "cannot open the file");
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  TokenizerConfig c = tokenizer_config_from_json(read(path), path);
  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  const std::filesystem::path config = folder / "tokenizer_config.json";
  if (std::filesystem::exists(config)) {
    try {
      const Json j = Json::parse(read(config));
      const Json templ = j.value("chat_template", Json());
      if (templ.is_string()) c.chat_template = templ.get<std::string>();
      if (templ.is_array())  // [{name, template}]: the default one
        for (const Json& named : templ)
          if (named.value("name", "") == "default") c.chat_template = named.value("template", "");
    } catch (const Json::exception& e) {
      fail(config.string(), "{}", e.what());
    }
  }
  // transformers >= 4.43 saves the template in its own file.
  const std::filesystem::path jinja = folder / "chat_template.jinja";
  if (c.chat_template.empty() && std::filesystem::exists(jinja)) c.chat_template = read(jinja);
  return c;
}

Tokenizer Tokenizer::from_json(std::string_view json, std::string_view name) {
  return Tokenizer(tokenizer_config_from_json(json, name));
}

Tokenizer Tokenizer::from_json_file(const std::string& path) {
  return Tokenizer(tokenizer_config_from_json_file(path));
}

}  // namespace qilin

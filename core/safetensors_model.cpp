// A Hugging Face checkpoint folder: one model.safetensors, or shards listed by
// model.safetensors.index.json. Tensors are looked up by name across shards.
#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/mmap_file.h"
#include "core/safetensors.h"
#include "core/safetensors_json.h"

namespace qilin {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxIndexBytes = 100'000'000;  // real ones are tens of kB

template <class... Args>
[[noreturn]] void error(const std::string& path, fmt::format_string<Args...> format, Args&&... args) {
  fail("safetensors", "{}: {}", path, fmt::format(format, std::forward<Args>(args)...));
}

// A shard must be a file of the model's own folder, not a path elsewhere.
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name.find('\0') == std::string::npos;
}

}  // namespace

SafetensorsModel SafetensorsModel::open(const std::string& path) {
  SafetensorsModel m;
  m.path_ = path;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    m.add_shard(SafetensorsFile::open(path));
    return m;
  }
  if (!fs::is_directory(path, ec)) error(path, "no such model folder or safetensors file");
  const fs::path folder(path);
  if (const fs::path single = folder / "model.safetensors"; fs::exists(single, ec)) {
    m.add_shard(SafetensorsFile::open(single.string()));
    return m;
  }
  const std::string index_path = (folder / "model.safetensors.index.json").string();
  if (!fs::exists(index_path, ec))
    error(path, "the folder has neither model.safetensors nor model.safetensors.index.json");

  const std::shared_ptr<MappedFile> index_file = MappedFile::open(index_path);
  if (index_file->size() > kMaxIndexBytes) {
    error(index_path, "{} bytes, more than the limit of {} for an index", index_file->size(), kMaxIndexBytes);
  }
  const std::vector<std::pair<std::string, std::string>> weight_map = safetensors_json::parse_weight_map(
      {reinterpret_cast<const char*>(index_file->data()), index_file->size()}, index_path);
  if (weight_map.empty()) error(index_path, "weight_map is empty");

  // Each shard once, in file name order; each must be a file of this folder.
  std::set<std::string> files;
  for (const auto& [tensor, file] : weight_map) {
    if (!is_plain_file_name(file)) error(index_path, "weight_map '{}': '{}' is not a file name", tensor, file);
    if (files.insert(file).second && !fs::is_regular_file(folder / file, ec)) {
      error(index_path, "weight_map '{}': shard '{}' does not exist in the folder", tensor, file);
    }
  }
  std::vector<std::string> shard_files(files.begin(), files.end());
  for (const std::string& file : shard_files) m.add_shard(SafetensorsFile::open((folder / file).string()));

  for (const auto& [tensor, file] : weight_map) {
    const size_t s =
        static_cast<size_t>(std::lower_bound(shard_files.begin(), shard_files.end(), file) - shard_files.begin());
    if (m.shards_[s].find_tensor(tensor) == nullptr) {
      error(index_path, "weight_map puts tensor '{}' in '{}', which has no such tensor", tensor, file);
    }
  }
  return m;
}

void SafetensorsModel::add_shard(SafetensorsFile file) {
  const size_t s = shards_.size();
  for (size_t i = 0; i < file.tensors().size(); ++i) {
    const std::string& name = file.tensors()[i].name;
    const auto [it, inserted] = index_.try_emplace(name, Location{s, i});
    if (!inserted) {
      error(path_, "tensor '{}' is in two shards, '{}' and '{}'", name, shards_[it->second.shard].path(), file.path());
    }
  }
  shards_.push_back(std::move(file));
}

std::vector<std::string> SafetensorsModel::tensor_names() const {
  std::vector<std::string> names;
  names.reserve(index_.size());
  for (const auto& entry : index_) names.push_back(entry.first);
  std::sort(names.begin(), names.end());
  return names;
}

const SafetensorsTensorInfo* SafetensorsModel::find_tensor(std::string_view name) const noexcept {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &shards_[it->second.shard].tensors()[it->second.tensor];
}

const SafetensorsTensorInfo& SafetensorsModel::require_tensor(std::string_view name) const {
  const SafetensorsTensorInfo* t = find_tensor(name);
  if (t == nullptr) error(path_, "tensor '{}' is missing", name);
  return *t;
}

const SafetensorsFile& SafetensorsModel::shard_of(std::string_view name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) error(path_, "tensor '{}' is missing", name);
  return shards_[it->second.shard];
}

TensorView SafetensorsModel::view(std::string_view name) const { return shard_of(name).view(require_tensor(name)); }

Tensor SafetensorsModel::tensor(std::string_view name) const { return shard_of(name).tensor(name); }

}  // namespace qilin

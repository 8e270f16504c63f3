// GPT-2's byte-level alphabet: each byte is shown as a printable character so
// that a byte-level BPE vocabulary is valid text ("Ġ" is the space byte, "Ċ"
// the newline). Qilin stores tokens as raw bytes and uses this mapping only to
// read vocabularies and merges and to show tokens.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace qilin {

char32_t byte_to_unicode(unsigned char byte) noexcept;
// The raw bytes of a byte-level token; nullopt when a character is not one of the 256.
std::optional<std::string> byte_level_decode(std::string_view token);
std::string byte_level_encode(std::string_view bytes);

}  // namespace qilin

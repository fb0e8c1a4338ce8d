#include "symbol_index.h"

#include <gelf.h>

#include <algorithm>

namespace ebpf {
namespace {

// How far back Find() looks for a symbol that encloses later-starting ones.
constexpr size_t kMaxNestedLookback = 8;

bool IsFunction(const GElf_Sym& symbol) {
  int type = GELF_ST_TYPE(symbol.st_info);
  return type == STT_FUNC || type == STT_GNU_IFUNC;
}

uint8_t BindingRank(const GElf_Sym& symbol) {
  switch (GELF_ST_BIND(symbol.st_info)) {
    case STB_GLOBAL: return 2;
    case STB_WEAK: return 1;
    default: return 0;
  }
}

// End of the section holding a symbol, in module addresses; 0 if unknown.
uint64_t SectionEnd(Elf* elf, GElf_Word sectionIndex, Dwarf_Addr bias) {
  Elf_Scn* section = elf ? elf_getscn(elf, sectionIndex) : nullptr;
  GElf_Shdr header;
  if (section == nullptr || gelf_getshdr(section, &header) == nullptr) return 0;
  return header.sh_addr + header.sh_size + bias;
}

}  // namespace

SymbolIndex::SymbolIndex(Dwfl_Module* module) {
  int count = dwfl_module_getsymtab(module);
  std::vector<Symbol> all;
  for (int i = 1; i < count; ++i) {
    GElf_Sym symbol;
    GElf_Addr address = 0;
    GElf_Word sectionIndex = 0;
    Elf* elf = nullptr;
    Dwarf_Addr bias = 0;
    const char* name =
        dwfl_module_getsym_info(module, i, &symbol, &address, &sectionIndex, &elf, &bias);
    if (name == nullptr || name[0] == '\0' || !IsFunction(symbol) || sectionIndex == SHN_UNDEF) {
      continue;
    }
    bool sized = symbol.st_size != 0;
    uint64_t end = sized ? address + symbol.st_size : SectionEnd(elf, sectionIndex, bias);
    if (end <= address) continue;
    all.push_back({address, end, name, sized, BindingRank(symbol)});
  }
  // One symbol per address: a sized one over a sizeless one, then by binding.
  std::sort(all.begin(), all.end(), [](const Symbol& a, const Symbol& b) {
    if (a.start != b.start) return a.start < b.start;
    if (a.sized != b.sized) return a.sized;
    return a.rank > b.rank;
  });
  for (const Symbol& symbol : all) {
    if (!symbols_.empty() && symbols_.back().start == symbol.start) continue;
    symbols_.push_back(symbol);
  }
  // A symbol without a size (hand-written assembly) runs to the next symbol,
  // but never past its section.
  for (size_t i = 0; i + 1 < symbols_.size(); ++i) {
    if (!symbols_[i].sized) symbols_[i].end = std::min(symbols_[i].end, symbols_[i + 1].start);
  }
}

const char* SymbolIndex::Find(uint64_t address) const {
  auto after = std::upper_bound(symbols_.begin(), symbols_.end(), address,
                                [](uint64_t value, const Symbol& s) { return value < s.start; });
  for (size_t back = 0; back < kMaxNestedLookback && after != symbols_.begin(); ++back) {
    --after;
    if (address < after->end) return after->name;
  }
  return nullptr;
}

}  // namespace ebpf

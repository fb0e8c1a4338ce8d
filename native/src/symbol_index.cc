#include "symbol_index.h"

#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace ebpf {
namespace {

// How far back Find() looks for a symbol that encloses later-starting ones.
constexpr size_t kMaxNestedLookback = 8;
// Symbols read per pread.
constexpr size_t kChunkSymbols = 4096;
// Longer names are cut: a Rust or C++ name this long is a rarity, and a bound keeps a bad offset cheap.
constexpr size_t kMaxNameLength = 64 * 1024;

bool IsFunction(unsigned char info) {
  int type = GELF_ST_TYPE(info);
  return type == STT_FUNC || type == STT_GNU_IFUNC;
}

uint8_t BindingRank(unsigned char info) {
  switch (GELF_ST_BIND(info)) {
    case STB_GLOBAL: return 2;
    case STB_WEAK: return 1;
    default: return 0;
  }
}

// The first section of `type`, or nullptr.
Elf_Scn* FindSection(Elf* elf, GElf_Word type) {
  if (elf == nullptr) return nullptr;
  for (Elf_Scn* section = elf_nextscn(elf, nullptr); section; section = elf_nextscn(elf, section)) {
    GElf_Shdr header;
    if (gelf_getshdr(section, &header) != nullptr && header.sh_type == type) return section;
  }
  return nullptr;
}

// The table is read as raw structures, so only files in this machine's byte order qualify.
bool NativeByteOrder(Elf* elf) {
  const char* ident = elf_getident(elf, nullptr);
  if (ident == nullptr) return false;
  return ident[EI_DATA] == (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB);
}

}  // namespace

SymbolIndex::SymbolIndex(Dwfl_Module* module, int mainFd, int debugFd) {
  GElf_Addr mainBias = 0;
  Elf* main = dwfl_module_getelf(module, &mainBias);
  Elf* chosen = main;
  Elf_Scn* table = FindSection(main, SHT_SYMTAB);
  int chosenFd = mainFd;
  GElf_Addr bias = mainBias;
  if (table == nullptr) {
    // A stripped file's full table may be in its separate debug file.
    Dwarf_Addr debugBias = 0;
    Dwarf* dwarf = dwfl_module_getdwarf(module, &debugBias);
    Elf* debug = dwarf ? dwarf_getelf(dwarf) : nullptr;
    if (debug != nullptr && debug != main && debugFd >= 0 && FindSection(debug, SHT_SYMTAB)) {
      chosen = debug;
      table = FindSection(debug, SHT_SYMTAB);
      chosenFd = debugFd;
      bias = debugBias;
    } else {
      table = FindSection(main, SHT_DYNSYM);
    }
  }
  if (table == nullptr || !NativeByteOrder(chosen)) return;
  fd_ = fcntl(chosenFd, F_DUPFD_CLOEXEC, 0);
  if (fd_ < 0) return;
  Read(chosen, table, bias);
}

SymbolIndex::~SymbolIndex() {
  if (fd_ >= 0) close(fd_);
}

void SymbolIndex::Read(Elf* elf, Elf_Scn* table, uint64_t bias) {
  GElf_Shdr header;
  if (gelf_getshdr(table, &header) == nullptr || (header.sh_flags & SHF_COMPRESSED)) return;
  GElf_Shdr stringsHeader;
  Elf_Scn* strings = elf_getscn(elf, header.sh_link);
  if (strings == nullptr || gelf_getshdr(strings, &stringsHeader) == nullptr) return;
  stringsOffset_ = stringsHeader.sh_offset;
  stringsSize_ = stringsHeader.sh_size;

  const bool wide = gelf_getclass(elf) == ELFCLASS64;
  const size_t entrySize = wide ? sizeof(Elf64_Sym) : sizeof(Elf32_Sym);
  const size_t count = header.sh_size / entrySize;
  // Section ends, for sizeless symbols: section headers are few and small.
  size_t sectionCount = 0;
  elf_getshdrnum(elf, &sectionCount);
  std::vector<uint64_t> sectionEnds(sectionCount, 0);
  for (size_t i = 0; i < sectionCount; ++i) {
    GElf_Shdr section;
    if (gelf_getshdr(elf_getscn(elf, i), &section) != nullptr) sectionEnds[i] = section.sh_addr + section.sh_size + bias;
  }

  std::vector<Symbol> all;
  std::vector<unsigned char> chunk(kChunkSymbols * entrySize);
  for (size_t first = 1; first < count; first += kChunkSymbols) {
    size_t n = std::min(kChunkSymbols, count - first);
    ssize_t got = pread(fd_, chunk.data(), n * entrySize, off_t(header.sh_offset + first * entrySize));
    if (got != ssize_t(n * entrySize)) break;
    for (size_t i = 0; i < n; ++i) {
      const unsigned char* raw = chunk.data() + i * entrySize;
      uint32_t name;
      unsigned char info;
      uint16_t section;
      uint64_t value, size;
      if (wide) {
        Elf64_Sym symbol;
        memcpy(&symbol, raw, sizeof symbol);
        name = symbol.st_name, info = symbol.st_info, section = symbol.st_shndx, value = symbol.st_value, size = symbol.st_size;
      } else {
        Elf32_Sym symbol;
        memcpy(&symbol, raw, sizeof symbol);
        name = symbol.st_name, info = symbol.st_info, section = symbol.st_shndx, value = symbol.st_value, size = symbol.st_size;
      }
      if (name == 0 || !IsFunction(info) || section == SHN_UNDEF || section >= SHN_LORESERVE) continue;
      uint64_t start = value + bias;
      bool sized = size != 0;
      uint64_t end = sized ? start + size : (section < sectionEnds.size() ? sectionEnds[section] : 0);
      if (end <= start) continue;
      all.push_back({start, end, name, sized, BindingRank(info)});
    }
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
  symbols_.shrink_to_fit();
  // A symbol without a size (hand-written assembly) runs to the next symbol,
  // but never past its section.
  for (size_t i = 0; i + 1 < symbols_.size(); ++i) {
    if (!symbols_[i].sized) symbols_[i].end = std::min(symbols_[i].end, symbols_[i + 1].start);
  }
}

std::string SymbolIndex::Find(uint64_t address) const {
  auto after = std::upper_bound(symbols_.begin(), symbols_.end(), address,
                                [](uint64_t value, const Symbol& s) { return value < s.start; });
  for (size_t back = 0; back < kMaxNestedLookback && after != symbols_.begin(); ++back) {
    --after;
    if (address >= after->end) continue;
    if (after->name >= stringsSize_) return {};
    std::string name;
    char buffer[512];
    uint64_t position = stringsOffset_ + after->name;
    const uint64_t limit = stringsOffset_ + stringsSize_;
    while (position < limit && name.size() < kMaxNameLength) {
      ssize_t got = pread(fd_, buffer, size_t(std::min<uint64_t>(sizeof buffer, limit - position)), off_t(position));
      if (got <= 0) break;
      const void* end = memchr(buffer, '\0', size_t(got));
      if (end != nullptr) return name.append(buffer, static_cast<const char*>(end) - buffer);
      name.append(buffer, size_t(got));
      position += uint64_t(got);
    }
    return name;
  }
  return {};
}

}  // namespace ebpf

// The function symbols of one dwfl module sorted by address. libdwfl's own
// dwfl_module_addrinfo scans the whole symbol table per lookup, which costs
// milliseconds per address in a binary like node (100k+ symbols). The table
// is read with pread rather than through elfutils' mapping of the file:
// walking node's .symtab and .strtab through the mapping keeps 10 MB of them
// resident for as long as the binary stays cached. Names are read on lookup.
#pragma once

#include <elfutils/libdwfl.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ebpf {

class SymbolIndex {
 public:
  // Reads .symtab (of the file or of its debug file) or else .dynsym, once.
  // `mainFd` and `debugFd` (-1 if none) are the files elfutils reads for the
  // module: the table is read from a duplicate of one, never reopened by path.
  SymbolIndex(Dwfl_Module* module, int mainFd, int debugFd);
  ~SymbolIndex();
  SymbolIndex(const SymbolIndex&) = delete;
  SymbolIndex& operator=(const SymbolIndex&) = delete;

  // The mangled name of the function symbol whose range holds `address`, or "".
  std::string Find(uint64_t address) const;

  size_t size() const { return symbols_.size(); }

 private:
  struct Symbol {
    uint64_t start;
    uint64_t end;   // exclusive; for a sizeless symbol, first its section's end
    uint32_t name;  // offset in the string table
    bool sized;
    uint8_t rank;   // aliases at one address: global over weak over local
  };

  // Adds the function symbols of section `symbols` of `elf` (read from `fd`).
  void Read(Elf* elf, Elf_Scn* symbols, uint64_t bias);

  std::vector<Symbol> symbols_;  // sorted by start, one per start address
  int fd_ = -1;                  // the file holding the chosen table
  uint64_t stringsOffset_ = 0;   // its string table, in the file
  uint64_t stringsSize_ = 0;
};

}  // namespace ebpf

// The function symbols of one dwfl module sorted by address. libdwfl's own
// dwfl_module_addrinfo scans the whole symbol table per lookup, which costs
// milliseconds per address in a binary like node (100k+ symbols).
#pragma once

#include <elfutils/libdwfl.h>

#include <cstdint>
#include <vector>

namespace ebpf {

class SymbolIndex {
 public:
  // Reads .symtab (of the file or its debug file) or else .dynsym, once.
  explicit SymbolIndex(Dwfl_Module* module);

  // The mangled name of the function symbol whose range holds `address`, or
  // nullptr. Names point into the module's ELF data, valid while it is open.
  const char* Find(uint64_t address) const;

  size_t size() const { return symbols_.size(); }

 private:
  struct Symbol {
    uint64_t start;
    uint64_t end;  // exclusive; for a sizeless symbol, first its section's end
    const char* name;
    bool sized;
    uint8_t rank;  // aliases at one address: global over weak over local
  };
  std::vector<Symbol> symbols_;  // sorted by start, one per start address
};

}  // namespace ebpf

// One executable or shared object opened with elfutils (libdwfl): its build
// id, its loadable segments, and names for its addresses from .symtab/.dynsym
// and DWARF, including separate debug files found by build id or .gnu_debuglink.
#pragma once

#include <elfutils/libdwfl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "debug_file_cache.h"
#include "symbol_index.h"

namespace ebpf {

// Where a module's separate debug file is looked for (its dwfl userdata).
struct DebugSearch {
  std::vector<std::string> dirs;
  DebugFileCache cache;
};

// Lower-case hex of a build id.
std::string Hex(const unsigned char* bytes, size_t length);

struct SymbolInfo {
  std::string function;  // demangled; empty when unknown
  std::string file;      // source file; empty when unknown
  uint32_t line = 0;     // 0 when unknown
};

class ElfBinary {
 public:
  // Opens `path` with the given callbacks (which carry the debuginfo path)
  // and debug search (the module's userdata, for its find_debuginfo); both
  // must outlive the binary. Throws std::runtime_error with the reason.
  ElfBinary(const std::string& path, const Dwfl_Callbacks* callbacks, const DebugSearch* debugSearch);

  // Lower-case hex of the GNU build id note; empty if the file has none.
  const std::string& buildId() const { return buildId_; }

  // The ELF virtual address at `fileOffset`, through the PT_LOAD segments.
  std::optional<uint64_t> VirtualAddress(uint64_t fileOffset) const;

  // Function (demangled), source file and line; fields stay empty when unknown.
  SymbolInfo Lookup(uint64_t address);

  // Asks the kernel to reclaim the pages elfutils' mappings of the file and of
  // its debug file hold for this process alone (madvise MADV_PAGEOUT): a
  // libc debug file left ~7 MB resident after a few lookups. Contents are
  // kept; a later lookup reads its pages back.
  void PageOutFileImages();

 private:
  struct Segment {
    uint64_t fileOffset;
    uint64_t fileSize;
    uint64_t address;
  };
  struct DwflCloser {
    void operator()(Dwfl* dwfl) const { dwfl_end(dwfl); }
  };

  std::string FunctionFromSymbols(uint64_t address);
  std::string FunctionFromDwarf(uint64_t address) const;

  std::unique_ptr<Dwfl, DwflCloser> dwfl_;
  std::string path_;
  Dwfl_Module* module_ = nullptr;
  std::string buildId_;
  std::vector<Segment> segments_;
  std::optional<SymbolIndex> symbols_;  // built on the first lookup
};

}  // namespace ebpf

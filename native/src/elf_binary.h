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
#include "mapped_file.h"
#include "symbol_index.h"

namespace ebpf {

// Where separate debug files are looked for, for every binary.
struct DebugSearch {
  std::vector<std::string> dirs;
  DebugFileCache cache;
};

// One binary's search for its debug file: the module's dwfl userdata, which
// its find_debuginfo callback reads and fills.
struct DebugLookup {
  const DebugSearch* search = nullptr;
  // The root of the process that maps the binary, and the binary's path in it
  // (both as /proc/PID/maps shows it): a .gnu_debuglink file beside the
  // binary is opened there, inside that root. Set only while the binary opens.
  int rootFd = -1;
  std::string rootName;  // "/proc/PID/root", for messages
  std::string pathInRoot;
  // The debug file handed to elfutils, kept for SymbolIndex to read.
  UniqueFd debugFd;
  // What the search refused, e.g. a debuglink name that is a path.
  std::vector<Refusal> refusals;
};

// A binary as a process maps it, opened and checked (see mapped_file.h).
struct BinarySource {
  UniqueFd fd;
  std::string name;  // how messages name it: /proc/PID/root/<path> or /proc/PID/map_files/<range>
  // The process's root (-1 if it could not be opened), "/proc/PID/root", and
  // the binary's path in it, for a .gnu_debuglink file beside the binary.
  int rootFd = -1;
  std::string rootName;
  std::string pathInRoot;
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
  // Reads `source` with the given callbacks (which carry the debuginfo path)
  // and debug search; both must outlive the binary. Its debug file is looked
  // for now, while the source's root is open. Throws std::runtime_error with
  // the reason.
  ElfBinary(BinarySource source, const Dwfl_Callbacks* callbacks, const DebugSearch* debugSearch);
  ElfBinary(const ElfBinary&) = delete;
  ElfBinary& operator=(const ElfBinary&) = delete;

  // Lower-case hex of the GNU build id note; empty if the file has none.
  const std::string& buildId() const { return buildId_; }

  // What opening it refused (e.g. its debuglink name).
  const std::vector<Refusal>& refusals() const { return lookup_.refusals; }

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

  DebugLookup lookup_;  // the module's userdata: declared before dwfl_, which is ended first
  std::unique_ptr<Dwfl, DwflCloser> dwfl_;
  UniqueFd fd_;  // the file elfutils reads, kept for SymbolIndex
  Dwfl_Module* module_ = nullptr;
  std::string buildId_;
  std::vector<Segment> segments_;
  std::optional<SymbolIndex> symbols_;  // built on the first lookup
};

}  // namespace ebpf

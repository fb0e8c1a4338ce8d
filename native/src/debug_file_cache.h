// Separate debug files often store their DWARF compressed (SHF_COMPRESSED,
// as in Debian's -dbg packages). libdw inflates every such section into
// memory when it opens the file: 14 MB resident for libc's, for as long as
// the binary stays cached. DebugFileCache keeps an uncompressed copy on disk
// instead, written by streaming zlib 64 KiB at a time, which libdw maps: only
// the pages that lookups touch become resident, and they stay reclaimable.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace ebpf {

class DebugFileCache {
 public:
  // Copies live in `directory` (created when first needed); beyond `maxBytes`
  // in total the least recently used are removed.
  DebugFileCache(std::string directory, uint64_t maxBytes)
      : directory_(std::move(directory)), maxBytes_(maxBytes) {}

  // What to read instead of the debug file open as `fd`: an fd of its
  // uncompressed copy, and the copy's path in `path`, when it has
  // zlib-compressed sections and the copy can be made; else `fd` itself.
  // Takes ownership of `fd`.
  int Substitute(int fd, std::string* path) const;

 private:
  void Prune(const std::string& keep) const;

  std::string directory_;
  uint64_t maxBytes_;
};

}  // namespace ebpf

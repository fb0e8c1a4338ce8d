// Separate debug files often store their DWARF compressed (SHF_COMPRESSED,
// as in Debian's -dbg packages). libdw inflates every such section into
// memory when it opens the file: 14 MB resident for libc's, for as long as
// the binary stays cached. DebugFileCache keeps an uncompressed copy on disk
// instead, written by streaming zlib 64 KiB at a time, which libdw maps: only
// the pages that lookups touch become resident, and they stay reclaimable.
//
// The copies are read back as DWARF, so the directory must be one only the
// collector can write: it is checked once and then used through a directory
// descriptor, so that it cannot be swapped for another afterwards.
#pragma once

#include <cstdint>
#include <string>

#include "mapped_file.h"

namespace ebpf {

class DebugFileCache {
 public:
  // With maxBytes 0, no copies are made and no directory is used. Otherwise
  // `directory` is created (mode 0700, parents 0755) if missing, and must be
  // a directory, not a symlink, owned by this effective uid, writable by no
  // group or other; throws std::runtime_error naming the path and the fault.
  // All files in it count against maxBytes; the least recently used go first.
  DebugFileCache(std::string directory, uint64_t maxBytes);

  // What to read instead of the debug file open as `fd`: an fd of its
  // uncompressed copy, and the copy's path in `path`, when it has
  // zlib-compressed sections and a copy within the bound can be made; else
  // `fd` itself. Takes ownership of `fd`.
  int Substitute(int fd, std::string* path) const;

 private:
  // Removes the least recently used files until `needed` more bytes fit.
  void MakeRoom(uint64_t needed) const;

  std::string directory_;
  uint64_t maxBytes_;
  UniqueFd directoryFd_;
};

}  // namespace ebpf

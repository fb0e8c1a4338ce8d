// Symbolization of file offsets per binary, with bounded caches: open ELF
// handles (LRU by count, shared by every file with the same build id) and
// symbol results (LRU by count). Thread-safe: batches run on worker threads,
// one at a time in the process, since elfutils does not promise thread safety.
#pragma once

#include <elfutils/libdwfl.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "elf_binary.h"
#include "lru_cache.h"
#include "mapped_file.h"

namespace ebpf {

struct SymbolCacheOptions {
  size_t maxBinaries;
  size_t maxSymbols;
  // Absolute directories searched for debug files by build id and by .gnu_debuglink.
  std::vector<std::string> debugDirs;
  // Uncompressed copies of debug files with compressed DWARF (see DebugFileCache).
  std::string debugCacheDir;
  uint64_t debugCacheMaxBytes;
};

// A file as a process maps it: one line of /proc/PID/maps, and the offsets to name in it.
struct MappedFileRequest {
  int pid = 0;
  std::string path;      // as the process sees it
  std::string mapFiles;  // "start-end" (hex) of a deleted file, opened through /proc/PID/map_files
  MappedIdentity identity;
  std::vector<uint64_t> fileOffsets;  // address - start + offset
};

// What one binary's lookups produced: build id or error, one SymbolInfo per
// offset, and what was refused on the way (the file itself, or its debuglink).
struct BinaryResult {
  std::string buildId;
  std::string error;
  std::vector<SymbolInfo> symbols;
  std::vector<Refusal> refusals;
};

struct SymbolCacheStats {
  size_t binaries;
  size_t symbols;
};

class SymbolCache {
 public:
  explicit SymbolCache(SymbolCacheOptions options);
  // Closes the ELF handles, waiting for any batch that is using elfutils.
  ~SymbolCache();
  SymbolCache(const SymbolCache&) = delete;
  SymbolCache& operator=(const SymbolCache&) = delete;

  // Names the file offsets of a mapped binary, if the file found at its path
  // inside the process's root is the one mapped (see mapped_file.h).
  BinaryResult Symbolize(const MappedFileRequest& request);

  // Readable without waiting for a running batch.
  SymbolCacheStats Stats() const { return {binaryCount_.load(), symbolCount_.load()}; }

 private:
  // A binary, or why it could not be opened (kept so a bad file is not re-read every batch).
  struct Entry {
    uint64_t serial;
    std::shared_ptr<ElfBinary> binary;
    std::string error;
    std::vector<std::string> fileKeys;  // the file identities that resolve to this entry
  };
  struct SymbolKey {
    uint64_t serial;
    uint64_t address;
    bool operator==(const SymbolKey& other) const {
      return serial == other.serial && address == other.address;
    }
  };
  struct SymbolKeyHash {
    size_t operator()(const SymbolKey& key) const {
      return std::hash<uint64_t>()(key.address * 31 + key.serial);
    }
  };

  Entry* Resolve(const MappedFileRequest& request, BinaryResult* result);
  Entry* Remember(const std::string& entryKey, const std::string& fileKey, Entry entry);

  DebugSearch debugSearch_;
  std::string debuginfoPath_;
  char* debuginfoPathPointer_;
  Dwfl_Callbacks callbacks_;
  uint64_t nextSerial_ = 1;
  // Keyed by "build-id:<hex>", or "file:<identity>" for files without a build id.
  LruCache<std::string, Entry> entries_;
  // The mapped identity (maps' device and inode) with the opened file's
  // (dev, inode, size, mtime), checked to agree once → entry key.
  std::unordered_map<std::string, std::string> entryKeyByFile_;
  LruCache<SymbolKey, SymbolInfo, SymbolKeyHash> symbols_;
  std::atomic<size_t> binaryCount_{0};
  std::atomic<size_t> symbolCount_{0};
};

}  // namespace ebpf

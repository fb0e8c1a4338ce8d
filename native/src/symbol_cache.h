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

// What one binary's lookups produced: build id or error, and one SymbolInfo per offset.
struct BinaryResult {
  std::string buildId;
  std::string error;
  std::vector<SymbolInfo> symbols;
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

  // Names the file offsets of the binary at `path` (as given in
  // /proc/PID/maps: address - start + offset).
  BinaryResult Symbolize(const std::string& path, const std::vector<uint64_t>& fileOffsets);

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

  Entry* Resolve(const std::string& path, std::string* error);
  Entry* Remember(const std::string& entryKey, const std::string& fileKey, Entry entry);

  DebugSearch debugSearch_;
  std::string debuginfoPath_;
  char* debuginfoPathPointer_;
  Dwfl_Callbacks callbacks_;
  uint64_t nextSerial_ = 1;
  // Keyed by "build-id:<hex>", or "file:<identity>" for files without a build id.
  LruCache<std::string, Entry> entries_;
  // File identity (dev, inode, size, mtime) → entry key.
  std::unordered_map<std::string, std::string> entryKeyByFile_;
  LruCache<SymbolKey, SymbolInfo, SymbolKeyHash> symbols_;
  std::atomic<size_t> binaryCount_{0};
  std::atomic<size_t> symbolCount_{0};
};

}  // namespace ebpf

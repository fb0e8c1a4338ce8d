#include "symbol_cache.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace ebpf {
namespace {

// Every SymbolCache's elfutils work, so that two processors never run it concurrently.
std::mutex elfutilsMutex;

// Which file this is, without reading it: a replaced or rebuilt file gets a new identity.
std::string FileIdentity(const struct stat& status) {
  return std::to_string(status.st_dev) + ":" + std::to_string(status.st_ino) + ":" +
         std::to_string(status.st_size) + ":" + std::to_string(status.st_mtim.tv_sec) + "." +
         std::to_string(status.st_mtim.tv_nsec);
}

// dwfl's path syntax: "" is the binary's own directory, ".debug" a subdirectory of it.
std::string DebuginfoPath(const std::vector<std::string>& debugDirs) {
  std::string path = ":.debug";
  for (const std::string& dir : debugDirs) path += ":" + dir;
  return path;
}

}  // namespace

SymbolCache::SymbolCache(SymbolCacheOptions options)
    : debuginfoPath_(DebuginfoPath(options.debugDirs)),
      debuginfoPathPointer_(debuginfoPath_.data()),
      callbacks_{},
      entries_(options.maxBinaries),
      symbols_(options.maxSymbols) {
  callbacks_.find_elf = dwfl_build_id_find_elf;
  callbacks_.find_debuginfo = dwfl_standard_find_debuginfo;
  callbacks_.section_address = dwfl_offline_section_address;
  callbacks_.debuginfo_path = &debuginfoPathPointer_;
}

SymbolCache::~SymbolCache() {
  std::lock_guard<std::mutex> lock(elfutilsMutex);
  entries_.Clear();
}

SymbolCache::Entry* SymbolCache::Resolve(const std::string& path, std::string* error) {
  struct stat status;
  if (stat(path.c_str(), &status) != 0) {
    *error = std::string("cannot stat: ") + std::strerror(errno);
    return nullptr;
  }
  std::string fileKey = FileIdentity(status);
  auto known = entryKeyByFile_.find(fileKey);
  if (known != entryKeyByFile_.end()) {
    if (Entry* entry = entries_.Find(known->second)) return entry;
    entryKeyByFile_.erase(known);
  }

  Entry entry{nextSerial_++, nullptr, {}, {}};
  try {
    entry.binary = std::make_shared<ElfBinary>(path, &callbacks_);
  } catch (const std::exception& failure) {
    entry.error = failure.what();
  }
  if (!entry.binary || entry.binary->buildId().empty()) {
    return Remember("file:" + fileKey, fileKey, std::move(entry));
  }
  std::string entryKey = "build-id:" + entry.binary->buildId();
  // The same build in another container or under another path: keep the handle already open.
  if (Entry* same = entries_.Find(entryKey)) {
    same->fileKeys.push_back(fileKey);
    entryKeyByFile_[fileKey] = entryKey;
    return same;
  }
  return Remember(entryKey, fileKey, std::move(entry));
}

SymbolCache::Entry* SymbolCache::Remember(const std::string& entryKey, const std::string& fileKey,
                                          Entry entry) {
  entry.fileKeys.push_back(fileKey);
  entryKeyByFile_[fileKey] = entryKey;
  if (auto evicted = entries_.Insert(entryKey, std::move(entry))) {
    for (const std::string& key : evicted->second.fileKeys) entryKeyByFile_.erase(key);
  }
  binaryCount_ = entries_.size();
  return entries_.Find(entryKey);
}

BinaryResult SymbolCache::Symbolize(const std::string& path,
                                    const std::vector<uint64_t>& fileOffsets) {
  std::lock_guard<std::mutex> lock(elfutilsMutex);
  BinaryResult result;
  result.symbols.resize(fileOffsets.size());
  Entry* entry = Resolve(path, &result.error);
  if (entry == nullptr) return result;
  if (!entry->binary) {
    result.error = entry->error;
    return result;
  }
  // The entry may be evicted by a later Resolve; the handle lives as long as this batch needs it.
  std::shared_ptr<ElfBinary> binary = entry->binary;
  uint64_t serial = entry->serial;
  result.buildId = binary->buildId();
  for (size_t i = 0; i < fileOffsets.size(); ++i) {
    std::optional<uint64_t> address = binary->VirtualAddress(fileOffsets[i]);
    if (!address) continue;
    SymbolKey key{serial, *address};
    if (const SymbolInfo* cached = symbols_.Find(key)) {
      result.symbols[i] = *cached;
      continue;
    }
    result.symbols[i] = binary->Lookup(*address);
    symbols_.Insert(key, result.symbols[i]);
  }
  symbolCount_ = symbols_.size();
  return result;
}

}  // namespace ebpf

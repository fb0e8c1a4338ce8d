#include "symbol_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <regex>
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

// dwfl's path syntax, used by dwfl_build_id_find_debuginfo: "" is the
// binary's own directory, ".debug" a subdirectory of it.
std::string DebuginfoPath(const std::vector<std::string>& debugDirs) {
  std::string path = ":.debug";
  for (const std::string& dir : debugDirs) path += ":" + dir;
  return path;
}

// CRC-32 of the whole file, as .gnu_debuglink records it; nullopt if unreadable.
std::optional<uint32_t> FileCrc(int fd) {
  std::vector<unsigned char> buffer(1 << 16);
  uLong crc = crc32(0, nullptr, 0);
  off_t offset = 0;
  for (;;) {
    ssize_t got = pread(fd, buffer.data(), buffer.size(), offset);
    if (got < 0) return std::nullopt;
    if (got == 0) return uint32_t(crc);
    crc = crc32(crc, buffer.data(), uInt(got));
    offset += got;
  }
}

// The debug file of a module whose build id is `hex`, under a debug directory.
int OpenByBuildId(const std::string& hex, const std::vector<std::string>& dirs, std::string* path) {
  if (hex.size() < 3) return -1;
  for (const std::string& dir : dirs) {
    std::string candidate = dir + "/.build-id/" + hex.substr(0, 2) + "/" + hex.substr(2) + ".debug";
    int fd = open(candidate.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      *path = candidate;
      return fd;
    }
  }
  return -1;
}

// The file .gnu_debuglink names, beside the binary, in its .debug/ or under a
// debug directory at the binary's host path; it must match the link's CRC.
int OpenByDebuglink(const std::string& binary, const char* debuglinkFile, uint32_t crc,
                    const std::vector<std::string>& dirs, std::string* path) {
  std::string directory = binary.substr(0, binary.rfind('/') + 1);
  std::vector<std::string> candidates = {directory + debuglinkFile, directory + ".debug/" + debuglinkFile};
  // Debug directories mirror the host's tree: /proc/PID/root/usr/bin/x → DIR/usr/bin/x.debug.
  static const std::regex kProcRoot("^/proc/[0-9]+/root(?=/)");
  std::smatch procRoot;
  std::string hostDirectory = std::regex_search(directory, procRoot, kProcRoot)
                                  ? directory.substr(size_t(procRoot.length(0)))
                                  : directory;
  if (!hostDirectory.empty() && hostDirectory[0] == '/') {
    for (const std::string& dir : dirs) candidates.push_back(dir + hostDirectory + debuglinkFile);
  }
  for (const std::string& candidate : candidates) {
    if (candidate == binary) continue;
    int fd = open(candidate.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (FileCrc(fd) == crc) {
      *path = candidate;
      return fd;
    }
    close(fd);
  }
  return -1;
}

// dwfl_standard_find_debuginfo ends by asking debuginfod servers: that
// dlopens libdebuginfod and libcurl (5 MB resident) even with no server
// configured, and would put network fetches in the symbolization path; and
// for a file found by build id it opens the Elf itself, so compressed
// sections could not be swapped for the cache's copy. The collector reads
// local files only, where the standard finder looks first: by build id under
// each debug directory, then by .gnu_debuglink. The module's userdata is its
// DebugSearch (see ElfBinary).
int FindLocalDebuginfo(Dwfl_Module* module, void** userdata, const char* moduleName, Dwarf_Addr base,
                       const char* fileName, const char* debuglinkFile, GElf_Word debuglinkCrc,
                       char** debuginfoFileName) {
  // libdw's request for a dwz alternate file (.gnu_debugaltlink) comes with no CRC; elfutils finds those by build id.
  if (debuglinkCrc == 0 && debuglinkFile != nullptr) {
    return dwfl_build_id_find_debuginfo(module, userdata, moduleName, base, fileName, debuglinkFile, debuglinkCrc,
                                        debuginfoFileName);
  }
  const auto* search = static_cast<const DebugSearch*>(*userdata);
  if (search == nullptr) return -1;
  std::string path;
  const unsigned char* bits = nullptr;
  GElf_Addr noteAddress = 0;
  int length = dwfl_module_build_id(module, &bits, &noteAddress);
  int fd = length > 0 ? OpenByBuildId(Hex(bits, size_t(length)), search->dirs, &path) : -1;
  if (fd < 0 && debuglinkFile != nullptr && fileName != nullptr) {
    fd = OpenByDebuglink(fileName, debuglinkFile, debuglinkCrc, search->dirs, &path);
  }
  if (fd < 0) return -1;
  fd = search->cache.Substitute(fd, &path);
  *debuginfoFileName = strdup(path.c_str());
  return fd;
}

}  // namespace

SymbolCache::SymbolCache(SymbolCacheOptions options)
    : debugSearch_{options.debugDirs, DebugFileCache(options.debugCacheDir, options.debugCacheMaxBytes)},
      debuginfoPath_(DebuginfoPath(options.debugDirs)),
      debuginfoPathPointer_(debuginfoPath_.data()),
      callbacks_{},
      entries_(options.maxBinaries),
      symbols_(options.maxSymbols) {
  callbacks_.find_elf = dwfl_build_id_find_elf;
  callbacks_.find_debuginfo = FindLocalDebuginfo;
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
    entry.binary = std::make_shared<ElfBinary>(path, &callbacks_, &debugSearch_);
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
  bool lookedUp = false;
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
    lookedUp = true;
  }
  // The answers are cached now; the DWARF pages read for them would only sit in resident memory.
  if (lookedUp) binary->PageOutFileImages();
  symbolCount_ = symbols_.size();
  return result;
}

}  // namespace ebpf

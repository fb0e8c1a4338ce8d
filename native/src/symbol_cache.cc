#include "symbol_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>

namespace ebpf {
namespace {

// Every SymbolCache's elfutils work, so that two processors never run it concurrently.
std::mutex elfutilsMutex;

// A debuglink candidate is read whole for its CRC, holding elfutilsMutex: a sparse file of a terabyte
// planted in a container would stall every lookup for minutes. Debug files this large are found by build id.
constexpr uint64_t kMaxDebuglinkBytes = uint64_t(4) << 30;

// Which file this is, without reading it: a replaced or rebuilt file gets a new identity.
std::string FileIdentity(const struct stat& status) {
  return std::to_string(status.st_dev) + ":" + std::to_string(status.st_ino) + ":" +
         std::to_string(status.st_size) + ":" + std::to_string(status.st_mtim.tv_sec) + "." +
         std::to_string(status.st_mtim.tv_nsec);
}

// dwfl's path syntax, used by dwfl_build_id_find_debuginfo for a dwz file
// by build id: only the configured (absolute) directories, never the binary's
// own directory, which may be a container's.
std::string DebuginfoPath(const std::vector<std::string>& debugDirs) {
  std::string path;
  for (const std::string& dir : debugDirs) path += (path.empty() ? "" : ":") + dir;
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
UniqueFd OpenByBuildId(const std::string& hex, const std::vector<std::string>& dirs, std::string* path) {
  if (hex.size() < 3) return UniqueFd();
  for (const std::string& dir : dirs) {
    std::string candidate = dir + "/.build-id/" + hex.substr(0, 2) + "/" + hex.substr(2) + ".debug";
    OpenedFile opened = OpenTrusted(candidate);
    if (opened.fd) {
      *path = candidate;
      return std::move(opened.fd);
    }
  }
  return UniqueFd();
}

// .gnu_debuglink holds a file name: one with a '/' (or "." or "..") would
// lead the search out of the directories it is meant for.
bool IsPlainFileName(const char* name) {
  return name[0] != '\0' && std::strchr(name, '/') == nullptr && std::strcmp(name, ".") != 0 &&
         std::strcmp(name, "..") != 0;
}

// The file .gnu_debuglink names: beside the binary or in its .debug/, inside
// the process's root, or under a debug directory at the binary's path; it
// must match the link's CRC.
UniqueFd OpenByDebuglink(DebugLookup& lookup, const char* name, uint32_t crc, std::string* path) {
  if (!IsPlainFileName(name)) {
    lookup.refusals.push_back(Refusal::kDebuglinkName);
    return UniqueFd();
  }
  std::string directory = lookup.pathInRoot.substr(0, lookup.pathInRoot.rfind('/') + 1);
  if (directory.empty() || directory[0] != '/') return UniqueFd();
  struct Candidate {
    std::string path;
    bool inRoot;
  };
  std::vector<Candidate> candidates;
  if (lookup.rootFd >= 0) {
    if (directory + name != lookup.pathInRoot) candidates.push_back({directory + name, true});
    candidates.push_back({directory + ".debug/" + name, true});
  }
  // Debug directories mirror the tree the binary is in: /usr/bin/x → DIR/usr/bin/x.debug.
  for (const std::string& dir : lookup.search->dirs) candidates.push_back({dir + directory + name, false});
  for (const Candidate& candidate : candidates) {
    OpenedFile opened = candidate.inRoot ? OpenInRoot(lookup.rootFd, candidate.path) : OpenTrusted(candidate.path);
    if (!opened.fd) continue;
    if (uint64_t(opened.status.st_size) > kMaxDebuglinkBytes) {
      lookup.refusals.push_back(Refusal::kDebuglinkTooLarge);
      continue;
    }
    if (FileCrc(opened.fd.get()) != crc) continue;
    *path = candidate.inRoot ? lookup.rootName + candidate.path : candidate.path;
    return std::move(opened.fd);
  }
  return UniqueFd();
}

// dwfl_standard_find_debuginfo ends by asking debuginfod servers: that
// dlopens libdebuginfod and libcurl (5 MB resident) even with no server
// configured, and would put network fetches in the symbolization path; it
// opens files by path, following whatever symlinks a container planted; and
// for a file found by build id it opens the Elf itself, so compressed
// sections could not be swapped for the cache's copy. The collector reads
// local files only, where the standard finder looks first: by build id under
// each debug directory, then by .gnu_debuglink. The module's userdata is its
// DebugLookup (see ElfBinary).
int FindLocalDebuginfo(Dwfl_Module* module, void** userdata, const char* moduleName, Dwarf_Addr base,
                       const char* fileName, const char* debuglinkFile, GElf_Word debuglinkCrc,
                       char** debuginfoFileName) {
  // libdw's request for a dwz alternate file (.gnu_debugaltlink) comes with no CRC; elfutils finds those by build id.
  if (debuglinkCrc == 0 && debuglinkFile != nullptr) {
    return dwfl_build_id_find_debuginfo(module, userdata, moduleName, base, fileName, debuglinkFile, debuglinkCrc,
                                        debuginfoFileName);
  }
  auto* lookup = static_cast<DebugLookup*>(*userdata);
  if (lookup == nullptr || lookup->search == nullptr) return -1;
  std::string path;
  const unsigned char* bits = nullptr;
  GElf_Addr noteAddress = 0;
  int length = dwfl_module_build_id(module, &bits, &noteAddress);
  UniqueFd fd = length > 0 ? OpenByBuildId(Hex(bits, size_t(length)), lookup->search->dirs, &path) : UniqueFd();
  if (!fd && debuglinkFile != nullptr) fd = OpenByDebuglink(*lookup, debuglinkFile, debuglinkCrc, &path);
  if (!fd) return -1;
  int found = lookup->search->cache.Substitute(fd.Release(), &path);
  lookup->debugFd = UniqueFd(fcntl(found, F_DUPFD_CLOEXEC, 0));
  *debuginfoFileName = strdup(path.c_str());
  return found;
}

// Another user's /proc/PID/map_files is theirs and mode 0500: without
// CAP_DAC_READ_SEARCH the collector cannot open it, but the deleted executable
// itself is still reachable through /proc/PID/exe with CAP_SYS_PTRACE alone.
// Taken only when it is the mapped file; otherwise map_files' error stands.
void OpenDeletedExecutable(const MappedFileRequest& request, BinarySource* source, OpenedFile* file) {
  std::string exe = "/proc/" + std::to_string(request.pid) + "/exe";
  OpenedFile opened = OpenTrusted(exe);
  MappedIdentity identity;
  std::string ignored;
  if (!opened.fd || !MappedIdentityOf(opened.fd.get(), &identity, &ignored) || !(identity == request.identity)) return;
  source->name = exe;
  *file = std::move(opened);
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

SymbolCache::Entry* SymbolCache::Resolve(const MappedFileRequest& request, BinaryResult* result) {
  BinarySource source;
  source.rootName = "/proc/" + std::to_string(request.pid) + "/root";
  source.pathInRoot = request.path;
  std::string rootError;
  UniqueFd root = OpenProcessRoot(request.pid, &rootError);
  OpenedFile file;
  if (!request.mapFiles.empty()) {
    // The kernel's own link to the mapped file: a deleted file has no path left to resolve.
    source.name = "/proc/" + std::to_string(request.pid) + "/map_files/" + request.mapFiles;
    file = OpenTrusted(source.name);
    if (!file.fd) OpenDeletedExecutable(request, &source, &file);
  } else if (!root) {
    result->error = rootError;
    return nullptr;
  } else {
    source.name = source.rootName + request.path;
    file = OpenInRoot(root.get(), request.path);
  }
  if (!file.fd) {
    result->error = file.error;
    if (file.refusal != Refusal::kNone) result->refusals.push_back(file.refusal);
    return nullptr;
  }

  std::string fileKey = ToString(request.identity) + "=" + FileIdentity(file.status);
  auto known = entryKeyByFile_.find(fileKey);
  if (known != entryKeyByFile_.end()) {
    if (Entry* entry = entries_.Find(known->second)) return entry;
    entryKeyByFile_.erase(known);
  }
  MappedIdentity opened;
  if (!MappedIdentityOf(file.fd.get(), &opened, &result->error)) return nullptr;
  if (!(opened == request.identity)) {
    result->error = source.name + " is not the mapped file: /proc/" + std::to_string(request.pid) +
                    "/maps has device and inode " + ToString(request.identity) + ", the file there has " +
                    ToString(opened);
    result->refusals.push_back(Refusal::kReplaced);
    return nullptr;
  }

  Entry entry{nextSerial_++, nullptr, {}, {}};
  source.fd = std::move(file.fd);
  source.rootFd = root.get();
  try {
    entry.binary = std::make_shared<ElfBinary>(std::move(source), &callbacks_, &debugSearch_);
    const std::vector<Refusal>& refused = entry.binary->refusals();
    result->refusals.insert(result->refusals.end(), refused.begin(), refused.end());
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

BinaryResult SymbolCache::Symbolize(const MappedFileRequest& request) {
  std::lock_guard<std::mutex> lock(elfutilsMutex);
  const std::vector<uint64_t>& fileOffsets = request.fileOffsets;
  BinaryResult result;
  result.symbols.resize(fileOffsets.size());
  Entry* entry = Resolve(request, &result);
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

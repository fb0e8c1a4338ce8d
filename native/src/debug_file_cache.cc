#include "debug_file_cache.h"

#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

namespace ebpf {
namespace {

constexpr size_t kChunk = 64 * 1024;
constexpr const char* kSuffix = ".debug";
// The file system block that disk use is counted in (st_blocks rounds up to it).
constexpr uint64_t kBlock = 4096;
// Larger section alignments are not real DWARF; refusing them keeps the layout arithmetic small.
constexpr uint64_t kMaxAlignment = 4096;

bool ReadAt(int fd, void* out, size_t size, uint64_t offset) {
  return pread(fd, out, size, off_t(offset)) == ssize_t(size);
}

bool WriteAt(int fd, const void* data, size_t size, uint64_t offset) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t done = pwrite(fd, bytes, size, off_t(offset));
    if (done <= 0) return false;
    bytes += done, size -= size_t(done), offset += uint64_t(done);
  }
  return true;
}

uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  alignment = std::max<uint64_t>(alignment, 1);
  return (value + alignment - 1) / alignment * alignment;
}

// The section headers of a 64-bit ELF file in this machine's byte order, or false.
bool ReadHeaders(int fd, Elf64_Ehdr& header, std::vector<Elf64_Shdr>& sections) {
  const unsigned char nativeOrder = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB;
  if (!ReadAt(fd, &header, sizeof header, 0) || memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 ||
      header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_ident[EI_DATA] != nativeOrder ||
      header.e_shentsize != sizeof(Elf64_Shdr) || header.e_shnum == 0) {
    return false;
  }
  sections.resize(header.e_shnum);
  return ReadAt(fd, sections.data(), sections.size() * sizeof(Elf64_Shdr), header.e_shoff);
}

bool IsCompressed(const Elf64_Shdr& section) {
  return (section.sh_flags & SHF_COMPRESSED) != 0 && section.sh_type != SHT_NOBITS;
}

// Inflates the zlib stream at [offset, offset + size) of `in` into `out` at
// `outOffset`; true if it holds exactly `expected` bytes. Stops as soon as it
// would exceed them, so a stream that inflates without end cannot fill the disk.
bool Inflate(int in, uint64_t offset, uint64_t size, int out, uint64_t outOffset, uint64_t expected) {
  z_stream stream{};
  if (inflateInit(&stream) != Z_OK) return false;
  std::vector<unsigned char> input(kChunk), output(kChunk);
  uint64_t consumed = 0, written = 0;
  int status = Z_OK;
  while (status == Z_OK) {
    if (stream.avail_in == 0) {
      size_t length = size_t(std::min<uint64_t>(kChunk, size - consumed));
      if (length == 0 || !ReadAt(in, input.data(), length, offset + consumed)) break;
      consumed += length;
      stream.next_in = input.data();
      stream.avail_in = uInt(length);
    }
    stream.next_out = output.data();
    stream.avail_out = uInt(kChunk);
    status = inflate(&stream, Z_NO_FLUSH);
    if (status != Z_OK && status != Z_STREAM_END) break;
    size_t produced = kChunk - stream.avail_out;
    if (produced > expected - written || !WriteAt(out, output.data(), produced, outOffset + written)) {
      status = Z_ERRNO;
      break;
    }
    written += produced;
  }
  inflateEnd(&stream);
  return status == Z_STREAM_END && written == expected;
}

// Where the uncompressed copy puts things: the whole original file first, then
// each compressed section inflated after it, then section headers pointing at
// those; the old compressed bytes stay unused, so segments and every other
// offset are untouched.
struct CopyLayout {
  Elf64_Ehdr header;
  std::vector<Elf64_Shdr> sections;   // as they will be in the copy
  std::vector<Elf64_Shdr> originals;  // where the compressed bytes are
  uint64_t size;                      // of the whole copy
};

// The layout of the copy of a file of `fileSize` bytes, or false if a section
// is compressed in a way this does not read or the copy would exceed `limit`.
bool PlanCopy(int in, uint64_t fileSize, const Elf64_Ehdr& header, const std::vector<Elf64_Shdr>& sections,
              uint64_t limit, CopyLayout* layout) {
  layout->header = header;
  layout->sections = sections;
  layout->originals = sections;
  uint64_t end = fileSize;
  for (Elf64_Shdr& section : layout->sections) {
    if (!IsCompressed(section)) continue;
    Elf64_Chdr compression;
    if (section.sh_size < sizeof compression || !ReadAt(in, &compression, sizeof compression, section.sh_offset) ||
        compression.ch_type != ELFCOMPRESS_ZLIB || compression.ch_addralign > kMaxAlignment ||
        (compression.ch_addralign & (compression.ch_addralign - 1)) != 0) {
      return false;
    }
    end = AlignUp(end, compression.ch_addralign);
    if (end > limit || compression.ch_size > limit - end) return false;
    section.sh_offset = end;
    section.sh_size = compression.ch_size;
    section.sh_addralign = compression.ch_addralign;
    section.sh_flags &= ~uint64_t(SHF_COMPRESSED);
    end += compression.ch_size;
  }
  layout->header.e_shoff = AlignUp(end, 8);
  layout->size = layout->header.e_shoff + sections.size() * sizeof(Elf64_Shdr);
  return layout->size <= limit;
}

bool WriteUncompressedCopy(int in, uint64_t fileSize, const CopyLayout& layout, int out) {
  std::vector<unsigned char> buffer(kChunk);
  for (uint64_t offset = 0; offset < fileSize; offset += kChunk) {
    size_t length = size_t(std::min<uint64_t>(kChunk, fileSize - offset));
    if (!ReadAt(in, buffer.data(), length, offset) || !WriteAt(out, buffer.data(), length, offset)) return false;
  }
  for (size_t i = 0; i < layout.sections.size(); ++i) {
    const Elf64_Shdr& original = layout.originals[i];
    if (!IsCompressed(original)) continue;
    const Elf64_Shdr& copy = layout.sections[i];
    if (!Inflate(in, original.sh_offset + sizeof(Elf64_Chdr), original.sh_size - sizeof(Elf64_Chdr), out,
                 copy.sh_offset, copy.sh_size)) {
      return false;
    }
  }
  return WriteAt(out, layout.sections.data(), layout.sections.size() * sizeof(Elf64_Shdr), layout.header.e_shoff) &&
         WriteAt(out, &layout.header, sizeof layout.header, 0);
}

std::string OctalMode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", unsigned(mode & 07777));
  return text;
}

// Parents as mkdir -p makes them; false with errno set if one cannot be made.
bool MakeParents(const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    if (mkdir(path.substr(0, slash).c_str(), 0755) != 0 && errno != EEXIST) return false;
  }
  return true;
}

}  // namespace

DebugFileCache::DebugFileCache(std::string directory, uint64_t maxBytes)
    : directory_(std::move(directory)), maxBytes_(maxBytes) {
  if (maxBytes_ == 0) return;
  const std::string what = "debug-file cache directory " + directory_;
  if (!MakeParents(directory_) || (mkdir(directory_.c_str(), 0700) != 0 && errno != EEXIST)) {
    throw std::runtime_error("cannot create the " + what + ": " + std::strerror(errno));
  }
  struct stat link;
  if (lstat(directory_.c_str(), &link) != 0) {
    throw std::runtime_error("cannot stat the " + what + ": " + std::strerror(errno));
  }
  if (S_ISLNK(link.st_mode)) throw std::runtime_error(what + " is a symbolic link; it must be a real directory");
  if (!S_ISDIR(link.st_mode)) throw std::runtime_error(what + " is not a directory");
  directoryFd_ = UniqueFd(open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  struct stat status;
  if (!directoryFd_ || fstat(directoryFd_.get(), &status) != 0) {
    throw std::runtime_error("cannot open the " + what + ": " + std::strerror(errno));
  }
  // Checked on the open directory, which is what every later operation uses.
  if (status.st_dev != link.st_dev || status.st_ino != link.st_ino) {
    throw std::runtime_error(what + " was replaced while it was being opened");
  }
  if (status.st_uid != geteuid()) {
    throw std::runtime_error(what + " is owned by uid " + std::to_string(status.st_uid) + ", not by the collector's uid " +
                             std::to_string(geteuid()));
  }
  if ((status.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    throw std::runtime_error(what + " has mode " + OctalMode(status.st_mode) +
                             ": group or others can write to it; it must be 0700 (or removed, to be created so)");
  }
}

int DebugFileCache::Substitute(int fd, std::string* path) const {
  struct stat status;
  Elf64_Ehdr header;
  std::vector<Elf64_Shdr> sections;
  CopyLayout layout;
  if (!directoryFd_ || fstat(fd, &status) != 0 || !ReadHeaders(fd, header, sections) ||
      std::none_of(sections.begin(), sections.end(), IsCompressed) ||
      !PlanCopy(fd, uint64_t(status.st_size), header, sections, maxBytes_, &layout)) {
    return fd;
  }
  const int directory = directoryFd_.get();
  // Named after the file's identity: a replaced debug file gets a new copy.
  std::string name = std::to_string(status.st_dev) + "-" + std::to_string(status.st_ino) + "-" +
                     std::to_string(status.st_size) + "-" + std::to_string(status.st_mtim.tv_sec) + kSuffix;
  int copy = openat(directory, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (copy < 0) {
    MakeRoom(AlignUp(layout.size, kBlock));  // disk use is counted in whole blocks
    static std::atomic<uint64_t> serial{0};
    std::string temporary = name + "." + std::to_string(getpid()) + "." + std::to_string(serial++) + ".tmp";
    int out = openat(directory, temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) return fd;
    bool written = WriteUncompressedCopy(fd, uint64_t(status.st_size), layout, out);
    close(out);
    // Renamed only when complete, so another collector never maps half a file.
    if (!written || renameat(directory, temporary.c_str(), directory, name.c_str()) != 0) {
      unlinkat(directory, temporary.c_str(), 0);
      return fd;
    }
    copy = openat(directory, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (copy < 0) return fd;
  }
  futimens(copy, nullptr);  // recently used: removed last
  close(fd);
  *path = directory_ + "/" + name;
  return copy;
}

void DebugFileCache::MakeRoom(uint64_t needed) const {
  int listing = openat(directoryFd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* directory = listing >= 0 ? fdopendir(listing) : nullptr;
  if (directory == nullptr) {
    if (listing >= 0) close(listing);
    return;
  }
  struct File {
    std::string name;
    uint64_t size;
    int64_t usedNs;
  };
  std::vector<File> files;
  uint64_t total = 0;
  // Every regular file counts, temporaries a crash left behind too; they are the least recently used.
  while (dirent* entry = readdir(directory)) {
    struct stat status;
    if (fstatat(directoryFd_.get(), entry->d_name, &status, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(status.st_mode)) {
      continue;
    }
    uint64_t size = uint64_t(status.st_blocks) * 512;
    files.push_back({entry->d_name, size, int64_t(status.st_mtim.tv_sec) * 1000000000 + status.st_mtim.tv_nsec});
    total += size;
  }
  closedir(directory);
  std::sort(files.begin(), files.end(), [](const File& a, const File& b) { return a.usedNs < b.usedNs; });
  for (const File& file : files) {
    if (total + needed <= maxBytes_) break;
    if (unlinkat(directoryFd_.get(), file.name.c_str(), 0) == 0) total -= file.size;
  }
}

}  // namespace ebpf

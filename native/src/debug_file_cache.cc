#include "debug_file_cache.h"

#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

namespace ebpf {
namespace {

constexpr size_t kChunk = 64 * 1024;
constexpr const char* kSuffix = ".debug";

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
// `outOffset`; returns the bytes written, or -1.
int64_t Inflate(int in, uint64_t offset, uint64_t size, int out, uint64_t outOffset) {
  z_stream stream{};
  if (inflateInit(&stream) != Z_OK) return -1;
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
    if (!WriteAt(out, output.data(), produced, outOffset + written)) {
      status = Z_ERRNO;
      break;
    }
    written += produced;
  }
  inflateEnd(&stream);
  return status == Z_STREAM_END ? int64_t(written) : -1;
}

// The whole of `in`, then each compressed section inflated after it, then
// section headers pointing at those; the old compressed bytes stay unused,
// so segments and every other offset are untouched.
bool WriteUncompressedCopy(int in, uint64_t size, Elf64_Ehdr header, std::vector<Elf64_Shdr> sections, int out) {
  std::vector<unsigned char> buffer(kChunk);
  for (uint64_t offset = 0; offset < size; offset += kChunk) {
    size_t length = size_t(std::min<uint64_t>(kChunk, size - offset));
    if (!ReadAt(in, buffer.data(), length, offset) || !WriteAt(out, buffer.data(), length, offset)) return false;
  }
  uint64_t end = size;
  for (Elf64_Shdr& section : sections) {
    if (!IsCompressed(section)) continue;
    Elf64_Chdr compression;
    if (section.sh_size < sizeof compression || !ReadAt(in, &compression, sizeof compression, section.sh_offset) ||
        compression.ch_type != ELFCOMPRESS_ZLIB) {
      return false;
    }
    end = AlignUp(end, compression.ch_addralign);
    int64_t written = Inflate(in, section.sh_offset + sizeof compression, section.sh_size - sizeof compression, out, end);
    if (written != int64_t(compression.ch_size)) return false;
    section.sh_offset = end;
    section.sh_size = compression.ch_size;
    section.sh_addralign = compression.ch_addralign;
    section.sh_flags &= ~uint64_t(SHF_COMPRESSED);
    end += compression.ch_size;
  }
  header.e_shoff = AlignUp(end, 8);
  return WriteAt(out, sections.data(), sections.size() * sizeof(Elf64_Shdr), header.e_shoff) &&
         WriteAt(out, &header, sizeof header, 0);
}

bool MakeDirectories(const std::string& path) {
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    std::string prefix = path.substr(0, slash);
    if (mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) return false;
    if (slash == std::string::npos) return true;
  }
}

}  // namespace

int DebugFileCache::Substitute(int fd, std::string* path) const {
  struct stat status;
  Elf64_Ehdr header;
  std::vector<Elf64_Shdr> sections;
  if (fstat(fd, &status) != 0 || !ReadHeaders(fd, header, sections) ||
      std::none_of(sections.begin(), sections.end(), IsCompressed)) {
    return fd;
  }
  // Named after the file's identity: a replaced debug file gets a new copy.
  std::string target = directory_ + "/" + std::to_string(status.st_dev) + "-" + std::to_string(status.st_ino) + "-" +
                       std::to_string(status.st_size) + "-" + std::to_string(status.st_mtim.tv_sec) + kSuffix;
  int copy = open(target.c_str(), O_RDONLY | O_CLOEXEC);
  if (copy >= 0) {
    futimens(copy, nullptr);  // recently used: pruned last
    close(fd);
    *path = target;
    return copy;
  }
  if (!MakeDirectories(directory_)) return fd;
  std::string temporary = target + ".XXXXXX";
  int out = mkostemp(temporary.data(), O_CLOEXEC);
  if (out < 0) return fd;
  bool written = WriteUncompressedCopy(fd, uint64_t(status.st_size), header, std::move(sections), out);
  close(out);
  // Renamed only when complete, so another collector never maps half a file.
  if (!written || rename(temporary.c_str(), target.c_str()) != 0) {
    unlink(temporary.c_str());
    return fd;
  }
  Prune(target);
  copy = open(target.c_str(), O_RDONLY | O_CLOEXEC);
  if (copy < 0) return fd;
  close(fd);
  *path = target;
  return copy;
}

void DebugFileCache::Prune(const std::string& keep) const {
  DIR* directory = opendir(directory_.c_str());
  if (directory == nullptr) return;
  struct File {
    std::string path;
    uint64_t size;
    int64_t usedNs;
  };
  std::vector<File> files;
  uint64_t total = 0;
  while (dirent* entry = readdir(directory)) {
    std::string name = entry->d_name;
    if (name.size() <= strlen(kSuffix) || name.compare(name.size() - strlen(kSuffix), std::string::npos, kSuffix) != 0) continue;
    std::string path = directory_ + "/" + name;
    struct stat status;
    if (stat(path.c_str(), &status) != 0) continue;
    files.push_back({path, uint64_t(status.st_size), int64_t(status.st_mtim.tv_sec) * 1000000000 + status.st_mtim.tv_nsec});
    total += uint64_t(status.st_size);
  }
  closedir(directory);
  std::sort(files.begin(), files.end(), [](const File& a, const File& b) { return a.usedNs < b.usedNs; });
  for (const File& file : files) {
    if (total <= maxBytes_) break;
    if (file.path == keep) continue;
    if (unlink(file.path.c_str()) == 0) total -= file.size;
  }
}

}  // namespace ebpf

#include "elf_binary.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "demangle.h"

namespace ebpf {
namespace {

std::string DwflError() {
  const char* message = dwfl_errmsg(-1);
  return message ? message : "unknown libdwfl error";
}

// Line tables may name files relative to the compilation directory.
std::string SourcePath(Dwfl_Line* line, const char* file) {
  if (file[0] == '/') return file;
  const char* directory = dwfl_line_comp_dir(line);
  if (directory == nullptr || directory[0] == '\0') return file;
  return std::string(directory) + "/" + file;
}

// The whole pages of the file image libelf holds for `elf`. MADV_PAGEOUT
// never changes contents, so it is safe even where libelf read the file into
// memory instead of mapping it; pages other processes map too are left alone.
void PageOut(Elf* elf) {
  if (elf == nullptr) return;
  size_t size = 0;
  char* image = elf_rawfile(elf, &size);
  if (image == nullptr || size == 0) return;
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t start = (uintptr_t(image) + page - 1) & ~(page - 1);
  const uintptr_t end = (uintptr_t(image) + size) & ~(page - 1);
  // Best effort: kernels before 5.4 lack MADV_PAGEOUT and the pages then just stay.
  if (end > start) madvise(reinterpret_cast<void*>(start), end - start, MADV_PAGEOUT);
}

}  // namespace

std::string Hex(const unsigned char* bytes, size_t length) {
  static const char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (size_t i = 0; i < length; ++i) {
    hex += kDigits[bytes[i] >> 4];
    hex += kDigits[bytes[i] & 0xf];
  }
  return hex;
}

ElfBinary::ElfBinary(BinarySource source, const Dwfl_Callbacks* callbacks, const DebugSearch* debugSearch)
    : dwfl_(dwfl_begin(callbacks)), fd_(dup(source.fd.get())) {
  if (!dwfl_) throw std::runtime_error("dwfl_begin: " + DwflError());
  if (!fd_) throw std::runtime_error(std::string("dup: ") + std::strerror(errno));
  lookup_.search = debugSearch;
  dwfl_report_begin(dwfl_.get());
  // Base 0 relative to p_vaddr: module addresses are the ELF's own virtual
  // addresses, for executables and shared objects alike.
  const char* name = source.name.c_str();
  module_ = dwfl_report_elf(dwfl_.get(), name, name, source.fd.get(), 0, true);
  if (module_ == nullptr) throw std::runtime_error(DwflError());
  source.fd.Release();  // elfutils owns it now
  dwfl_report_end(dwfl_.get(), nullptr, nullptr);
  void** userdata = nullptr;
  dwfl_module_info(module_, &userdata, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
  *userdata = &lookup_;

  GElf_Addr bias = 0;
  Elf* elf = dwfl_module_getelf(module_, &bias);
  if (elf == nullptr) throw std::runtime_error(DwflError());
  GElf_Ehdr header;
  if (gelf_getehdr(elf, &header) == nullptr) throw std::runtime_error(elf_errmsg(-1));
  if (header.e_type != ET_EXEC && header.e_type != ET_DYN) {
    throw std::runtime_error("not an executable or shared object");
  }
  size_t count = 0;
  if (elf_getphdrnum(elf, &count) != 0) throw std::runtime_error(elf_errmsg(-1));
  for (size_t i = 0; i < count; ++i) {
    GElf_Phdr program;
    if (gelf_getphdr(elf, int(i), &program) == nullptr || program.p_type != PT_LOAD) continue;
    segments_.push_back({program.p_offset, program.p_filesz, program.p_vaddr + bias});
  }

  const unsigned char* bits = nullptr;
  GElf_Addr noteAddress = 0;
  int length = dwfl_module_build_id(module_, &bits, &noteAddress);
  if (length > 0) buildId_ = Hex(bits, size_t(length));

  // Every lookup needs the DWARF, so nothing is lost by finding the debug file
  // now, while the root it may be in is open; elfutils remembers the outcome.
  lookup_.rootFd = source.rootFd;
  lookup_.rootName = source.rootName;
  lookup_.pathInRoot = source.pathInRoot;
  Dwarf_Addr dwarfBias = 0;
  dwfl_module_getdwarf(module_, &dwarfBias);
  lookup_.rootFd = -1;
}

std::optional<uint64_t> ElfBinary::VirtualAddress(uint64_t fileOffset) const {
  for (const Segment& segment : segments_) {
    if (fileOffset >= segment.fileOffset && fileOffset - segment.fileOffset < segment.fileSize) {
      return segment.address + (fileOffset - segment.fileOffset);
    }
  }
  return std::nullopt;
}

SymbolInfo ElfBinary::Lookup(uint64_t address) {
  SymbolInfo info;
  info.function = FunctionFromSymbols(address);
  if (info.function.empty()) info.function = FunctionFromDwarf(address);
  if (Dwfl_Line* line = dwfl_module_getsrc(module_, address)) {
    int lineNumber = 0;
    const char* file = dwfl_lineinfo(line, nullptr, &lineNumber, nullptr, nullptr, nullptr);
    if (file != nullptr && lineNumber > 0) {
      info.file = SourcePath(line, file);
      info.line = uint32_t(lineNumber);
    }
  }
  return info;
}

void ElfBinary::PageOutFileImages() {
  GElf_Addr bias = 0;
  PageOut(dwfl_module_getelf(module_, &bias));
  // Lookup() has already searched for the debug file, so this only returns what was found.
  Dwarf_Addr dwarfBias = 0;
  if (Dwarf* dwarf = dwfl_module_getdwarf(module_, &dwarfBias)) PageOut(dwarf_getelf(dwarf));
}

// .symtab of the file or of its debug file, else .dynsym. Only a function
// symbol that covers the address names it: a stripped binary gets no name
// rather than its nearest exported neighbour's.
std::string ElfBinary::FunctionFromSymbols(uint64_t address) {
  if (!symbols_) symbols_.emplace(module_, fd_.get(), lookup_.debugFd.get());
  std::string name = symbols_->Find(address);
  return name.empty() ? name : Demangle(name);
}

// The subprogram DIE around the address, for code the symbol tables miss.
std::string ElfBinary::FunctionFromDwarf(uint64_t address) const {
  Dwarf_Addr bias = 0;
  Dwarf_Die* unit = dwfl_module_addrdie(module_, address, &bias);
  if (unit == nullptr) return {};
  Dwarf_Die* scopes = nullptr;
  int count = dwarf_getscopes(unit, address - bias, &scopes);
  std::string name;
  for (int i = 0; i < count && name.empty(); ++i) {
    if (dwarf_tag(&scopes[i]) != DW_TAG_subprogram) continue;
    Dwarf_Attribute attribute;
    const char* linkage = dwarf_formstring(dwarf_attr_integrate(&scopes[i], DW_AT_linkage_name, &attribute));
    const char* plain = dwarf_diename(&scopes[i]);
    if (linkage != nullptr) {
      name = Demangle(linkage);
    } else if (plain != nullptr) {
      name = plain;
    }
  }
  std::free(scopes);
  return name;
}

}  // namespace ebpf

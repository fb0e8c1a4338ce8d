// Kernel symbols from /proc/kallsyms in one compact, address-sorted table.
// kallsyms lists ~120k symbols; kept as JS strings and arrays they cost tens
// of megabytes, here about 40 bytes each. It has no sizes: a symbol ends where
// the next begins. Symbols of modules and JIT-compiled BPF programs carry
// their module ("bpf" for the latter).
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ebpf {

class KernelSymbolTable {
 public:
  // The core kernel's text (module ""), or one module's symbols: a frame's mapping.
  struct Range {
    std::string module;
    uint64_t start;
    uint64_t end;
  };

  // Parses a kallsyms file; throws std::runtime_error if it cannot be read or
  // lists no addresses (kptr_restrict hides them without CAP_SYSLOG).
  explicit KernelSymbolTable(const std::string& path);

  // The row of the text symbol holding `address`, or -1.
  int64_t Find(uint64_t address) const;
  const char* Name(size_t row) const { return names_.data() + rows_[row].name; }
  // Index into ranges() of the row's module.
  size_t RangeOf(size_t row) const { return rows_[row].module; }
  // ranges()[0] is the core kernel's text, from _stext to _etext.
  const std::vector<Range>& ranges() const { return ranges_; }

 private:
  struct Row {
    uint64_t address;
    uint32_t name;    // offset of a NUL-terminated name in names_
    uint16_t module;  // index into ranges_
    bool text;
  };
  std::vector<Row> rows_;  // sorted by address; equal addresses keep the file's order
  std::string names_;
  std::vector<Range> ranges_;
};

// JS class KernelSymbols: `read(path)` parses on a worker thread and swaps the
// table in; `lookup(addresses)` names a batch; `ranges()` lists the mappings.
class KernelSymbols : public Napi::ObjectWrap<KernelSymbols> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit KernelSymbols(const Napi::CallbackInfo& info);

 private:
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Lookup(const Napi::CallbackInfo& info);
  Napi::Value Ranges(const Napi::CallbackInfo& info);

  std::shared_ptr<const KernelSymbolTable> table_;
  friend class ReadKallsymsWorker;
};

// JS class KernelSymbolEvents: `changed()` tells whether a kernel symbol came
// or went (a BPF program, trampoline or dispatcher: what kallsyms lists beyond
// the core kernel and modules) since the last call. One dummy perf event per
// online CPU with `ksymbol` set, as `perf record` uses: the kernel writes a
// PERF_RECORD_KSYMBOL into the ring of the CPU where the symbol changed. That
// needs CAP_PERFMON, where listing BPF programs (BPF_PROG_GET_NEXT_ID) needs
// CAP_SYS_ADMIN. Records are never parsed: a moved head is the news.
class KernelSymbolEvents : public Napi::ObjectWrap<KernelSymbolEvents> {
 public:
  static Napi::Function Define(Napi::Env env);
  // Throws a SystemError if an event cannot be opened or mapped.
  explicit KernelSymbolEvents(const Napi::CallbackInfo& info);
  ~KernelSymbolEvents() override;

 private:
  struct Ring {
    int fd;
    void* base;  // the metadata page, then one data page
  };
  Napi::Value Changed(const Napi::CallbackInfo& info);
  void Release();

  std::vector<Ring> rings_;
};

}  // namespace ebpf

#include "kernel_symbols.h"

#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "cpus.h"
#include "diagnostics.h"

namespace ebpf {
namespace {

// The last symbol (often a BPF program) has no successor to end it: it gets this much.
constexpr uint64_t kLastSymbolSpan = 0x10000;

bool IsTextType(char type) { return type == 't' || type == 'T' || type == 'w' || type == 'W'; }

}  // namespace

KernelSymbolTable::KernelSymbolTable(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(fopen(path.c_str(), "re"), fclose);
  if (!file) throw std::runtime_error("cannot read " + path + ": " + strerror(errno));
  ranges_.push_back({"", 0, 0});
  std::unordered_map<std::string, uint16_t> moduleIndex;
  uint64_t stext = 0, etext = 0;
  char* line = nullptr;
  size_t capacity = 0;
  ssize_t length;
  // "ffffffff816d61a0 T ksys_read" or "ffffffffc0a01000 t fn\t[module]"
  while ((length = getline(&line, &capacity, file.get())) > 0) {
    if (line[length - 1] == '\n') line[--length] = '\0';
    char* end = nullptr;
    uint64_t address = strtoull(line, &end, 16);
    if (address == 0 || end == line || end[0] != ' ' || end[1] == '\0' || end[2] != ' ') continue;
    char type = end[1];
    char* name = end + 3;
    char* tab = strchr(name, '\t');
    uint16_t module = 0;
    if (tab != nullptr) {
      *tab = '\0';
      std::string owner(tab + 1);
      if (owner.size() >= 2 && owner.front() == '[' && owner.back() == ']') owner = owner.substr(1, owner.size() - 2);
      auto [found, inserted] = moduleIndex.emplace(owner, uint16_t(ranges_.size()));
      if (inserted) {
        if (ranges_.size() > UINT16_MAX) throw std::runtime_error(path + " lists too many modules");
        ranges_.push_back({owner, 0, 0});
      }
      module = found->second;
    } else if (strcmp(name, "_stext") == 0) {
      stext = address;
    } else if (strcmp(name, "_etext") == 0) {
      etext = address;
    }
    rows_.push_back({address, uint32_t(names_.size()), module, IsTextType(type)});
    names_.append(name, strlen(name) + 1);
  }
  free(line);
  if (ferror(file.get())) throw std::runtime_error("cannot read " + path + ": " + strerror(errno));
  // Sorted but for modules and BPF programs.
  std::stable_sort(rows_.begin(), rows_.end(), [](const Row& a, const Row& b) { return a.address < b.address; });
  auto firstText = std::find_if(rows_.begin(), rows_.end(), [](const Row& row) { return row.text; });
  if (firstText == rows_.end()) {
    throw std::runtime_error(path +
                             " lists no addresses (kernel.kptr_restrict, or kernel.perf_event_paranoid >= 2, "
                             "hides them without CAP_SYSLOG)");
  }
  const uint64_t lowestText = firstText->address;
  rows_.shrink_to_fit();
  names_.shrink_to_fit();
  std::vector<bool> seen(ranges_.size(), false);
  for (size_t i = 0; i < rows_.size(); ++i) {
    const Row& row = rows_[i];
    if (row.module == 0) continue;
    // A module spans from its first symbol to the symbol that follows its last.
    Range& range = ranges_[row.module];
    if (!seen[row.module]) range.start = row.address;
    seen[row.module] = true;
    range.end = i + 1 < rows_.size() ? rows_[i + 1].address : row.address + kLastSymbolSpan;
  }
  ranges_[0].start = stext != 0 ? stext : lowestText;
  ranges_[0].end = etext != 0 ? etext : rows_.back().address;
}

int64_t KernelSymbolTable::Find(uint64_t address) const {
  auto after = std::upper_bound(rows_.begin(), rows_.end(), address,
                                [](uint64_t value, const Row& row) { return value < row.address; });
  if (after == rows_.begin()) return -1;
  const Row& row = *(after - 1);
  if (!row.text) return -1;
  if (after == rows_.end() && address - row.address >= kLastSymbolSpan) return -1;
  if (row.module == 0 && address >= ranges_[0].end) return -1;
  return (after - 1) - rows_.begin();
}

class ReadKallsymsWorker : public Napi::AsyncWorker {
 public:
  ReadKallsymsWorker(Napi::Env env, KernelSymbols* target, Napi::Object targetObject, std::string path)
      : Napi::AsyncWorker(env, "ebpf:kallsyms"),
        deferred_(Napi::Promise::Deferred::New(env)),
        target_(target),
        targetRef_(Napi::Persistent(targetObject)),
        path_(std::move(path)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      table_ = std::make_shared<const KernelSymbolTable>(path_);
    } catch (const std::exception& error) {
      SetError(error.what());
    }
  }

  void OnOK() override {
    target_->table_ = std::move(table_);
    deferred_.Resolve(Env().Undefined());
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  KernelSymbols* target_;
  Napi::ObjectReference targetRef_;  // keeps the target alive until the worker is done
  std::string path_;
  std::shared_ptr<const KernelSymbolTable> table_;
};

Napi::Function KernelSymbols::Define(Napi::Env env) {
  return DefineClass(env, "KernelSymbols",
                     {
                         InstanceMethod<&KernelSymbols::Read>("read"),
                         InstanceMethod<&KernelSymbols::Lookup>("lookup"),
                         InstanceMethod<&KernelSymbols::Ranges>("ranges"),
                     });
}

KernelSymbols::KernelSymbols(const Napi::CallbackInfo& info) : Napi::ObjectWrap<KernelSymbols>(info) {}

Napi::Value KernelSymbols::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
  auto* worker = new ReadKallsymsWorker(env, this, info.This().As<Napi::Object>(), info[0].As<Napi::String>());
  Napi::Promise promise = worker->Promise();
  worker->Queue();  // the worker deletes itself after OnOK/OnError
  return promise;
}

// { symbol: Int32Array (index into names, -1: none), range: Int32Array (index into ranges(), -1: none), names }
Napi::Value KernelSymbols::Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!table_) throw Napi::Error::New(env, "kernel symbols are not read yet");
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array) {
    throw Napi::TypeError::New(env, "addresses must be a BigUint64Array");
  }
  Napi::TypedArrayOf<uint64_t> addresses = info[0].As<Napi::TypedArrayOf<uint64_t>>();
  size_t count = addresses.ElementLength();
  Napi::Int32Array symbols = Napi::Int32Array::New(env, count);
  Napi::Int32Array ranges = Napi::Int32Array::New(env, count);
  Napi::Array names = Napi::Array::New(env);
  std::unordered_map<int64_t, int32_t> nameIndex;
  for (size_t i = 0; i < count; ++i) {
    int64_t row = table_->Find(addresses[i]);
    if (row < 0) {
      symbols[i] = -1;
      ranges[i] = -1;
      continue;
    }
    auto [found, inserted] = nameIndex.emplace(row, int32_t(nameIndex.size()));
    if (inserted) names.Set(uint32_t(found->second), Napi::String::New(env, table_->Name(size_t(row))));
    symbols[i] = found->second;
    ranges[i] = int32_t(table_->RangeOf(size_t(row)));
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("symbol", symbols);
  result.Set("range", ranges);
  result.Set("names", names);
  return result;
}

// [{ module, start, end }], the core kernel's text first (module "").
Napi::Value KernelSymbols::Ranges(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!table_) throw Napi::Error::New(env, "kernel symbols are not read yet");
  const auto& ranges = table_->ranges();
  Napi::Array result = Napi::Array::New(env, ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    Napi::Object range = Napi::Object::New(env);
    range.Set("module", ranges[i].module);
    range.Set("start", Napi::BigInt::New(env, ranges[i].start));
    range.Set("end", Napi::BigInt::New(env, ranges[i].end));
    result.Set(uint32_t(i), range);
  }
  return result;
}

Napi::Function KernelSymbolEvents::Define(Napi::Env env) {
  return DefineClass(env, "KernelSymbolEvents", {InstanceMethod<&KernelSymbolEvents::Changed>("changed")});
}

KernelSymbolEvents::KernelSymbolEvents(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<KernelSymbolEvents>(info) {
  Napi::Env env = info.Env();
  LogScope log;
  perf_event_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_DUMMY;
  attr.ksymbol = 1;
  attr.exclude_kernel = 1;
  attr.exclude_hv = 1;
  const size_t length = 2 * size_t(sysconf(_SC_PAGESIZE));
  // A CPU brought online later is not watched: a program loaded there shows once another CPU sees a change.
  for (int cpu : OnlineCpus(env)) {
    int fd = int(syscall(__NR_perf_event_open, &attr, -1 /* any pid */, cpu, -1 /* no group */, PERF_FLAG_FD_CLOEXEC));
    if (fd < 0) {
      int err = errno;
      Release();
      throw SystemError(env, "cannot watch kernel symbols: perf_event_open on CPU " + std::to_string(cpu), err);
    }
    // Writable, so that the kernel honours data_tail and never overwrites what is not yet seen.
    void* base = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
      int err = errno;
      close(fd);
      Release();
      throw SystemError(env, "cannot watch kernel symbols: mmap of the perf ring on CPU " + std::to_string(cpu), err);
    }
    rings_.push_back({fd, base});
  }
}

KernelSymbolEvents::~KernelSymbolEvents() { Release(); }

void KernelSymbolEvents::Release() {
  const size_t length = 2 * size_t(sysconf(_SC_PAGESIZE));
  for (const Ring& ring : rings_) {
    munmap(ring.base, length);
    close(ring.fd);
  }
  rings_.clear();
}

Napi::Value KernelSymbolEvents::Changed(const Napi::CallbackInfo& info) {
  bool changed = false;
  for (const Ring& ring : rings_) {
    auto* page = static_cast<perf_event_mmap_page*>(ring.base);
    uint64_t head = __atomic_load_n(&page->data_head, __ATOMIC_ACQUIRE);
    if (head == page->data_tail) continue;
    changed = true;
    // Consumed unread. A ring that filled meanwhile dropped records, but its head had moved all the same.
    __atomic_store_n(&page->data_tail, head, __ATOMIC_RELEASE);
  }
  return Napi::Boolean::New(info.Env(), changed);
}

}  // namespace ebpf

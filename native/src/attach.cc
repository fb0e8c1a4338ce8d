#include "attach.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <functional>
#include <sstream>
#include <string>
#include <utility>

#include "args.h"
#include "cpus.h"
#include "diagnostics.h"

namespace ebpf {

Link Link::FromFd(int fd) {
  Link link(nullptr);
  link.fd_ = fd;
  return link;
}

Link::Link(Link&& other) noexcept : link_(std::move(other.link_)), fd_(std::exchange(other.fd_, -1)) {}

// Closing the last fd of a link that is not pinned detaches it.
Link::~Link() {
  if (fd_ >= 0) close(fd_);
}

namespace {

constexpr int64_t kMaxSafeInteger = (int64_t(1) << 53) - 1;

// From Linux 6.6's UAPI linux/bpf.h, which Debian 12's headers (6.1) and libbpf 1.1 predate.
constexpr bpf_attach_type kTraceUprobeMulti = bpf_attach_type(48);  // BPF_TRACE_UPROBE_MULTI
constexpr uint32_t kUprobeMultiReturn = 1;                          // BPF_F_UPROBE_MULTI_RETURN

// The BPF_LINK_CREATE part of union bpf_attr with its uprobe_multi member (Linux 6.6).
struct UprobeMultiLinkAttr {
  uint32_t prog_fd;
  uint32_t target_fd;
  uint32_t attach_type;
  uint32_t flags;
  uint64_t path;
  uint64_t offsets;
  uint64_t ref_ctr_offsets;
  uint64_t cookies;
  uint32_t cnt;
  uint32_t uprobe_flags;
  uint32_t pid;  // 0: every process
};

// One uprobe (or uretprobe) at `offset` in `path`; a link fd, or -1 with errno set.
int CreateUprobeMultiLink(int programFd, const char* path, uint64_t offset, bool retprobe, uint32_t pid) {
  UprobeMultiLinkAttr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.prog_fd = uint32_t(programFd);
  attr.attach_type = kTraceUprobeMulti;
  attr.path = uint64_t(uintptr_t(path));
  attr.offsets = uint64_t(uintptr_t(&offset));
  attr.cnt = 1;
  attr.uprobe_flags = retprobe ? kUprobeMultiReturn : 0;
  attr.pid = pid;
  return int(syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr)));
}

// libbpf's probe_uprobe_multi_link (1.3+): a program loaded for uprobe-multi links, then a link on "/",
// which a kernel with them refuses as no regular file (EBADF). Linux 6.6 to 6.9 filtered by thread, not
// process ("bpf: Fix multi-uprobe PID filtering logic", also in stable kernels); a fixed kernel refuses
// pid -1 before it looks at the path.
bool ProbeUprobeMultiLinks() {
  const bpf_insn program[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, options, .expected_attach_type = kTraceUprobeMulti);
  int programFd = bpf_prog_load(BPF_PROG_TYPE_KPROBE, nullptr, "GPL", program, 2, &options);
  if (programFd < 0) return false;
  int linkFd = CreateUprobeMultiLink(programFd, "/", 0, false, 0);
  bool has = linkFd < 0 && errno == EBADF;
  if (has) {
    linkFd = CreateUprobeMultiLink(programFd, "/", 0, false, uint32_t(-1));
    has = linkFd < 0 && errno == EINVAL;
  }
  if (linkFd >= 0) close(linkFd);
  close(programFd);
  return has;
}

bool KernelHasUprobeMultiLinks() {
  static const bool has = ProbeUprobeMultiLinks();
  return has;
}

// Cleared by service::kernel_features::disable's uprobe_multi, so that the perf_event path is tested here too.
std::atomic<bool> uprobeMultiWanted{true};

// Bare SEC("uprobe") and SEC("uretprobe"): programs only an explicit uprobe spec attaches.
bool IsUprobeProgram(bpf_program* program) {
  const char* section = bpf_program__section_name(program);
  return bpf_program__type(program) == BPF_PROG_TYPE_KPROBE &&
         (std::strcmp(section, "uprobe") == 0 || std::strcmp(section, "uretprobe") == 0);
}

Napi::Error AttachError(Napi::Env env, bpf_program* program, const std::string& description,
                        int err) {
  return SystemError(
      env, std::string("cannot attach ") + bpf_program__name(program) + " (" + description + ")",
      err);
}

std::vector<int> CpuList(Napi::Env env, const Napi::Value& value) {
  if (!IsPresent(value)) return OnlineCpus(env);
  if (!value.IsArray()) throw Napi::TypeError::New(env, "spec.cpus must be an array of CPU numbers");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<int> cpus;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    cpus.push_back(int(RequireInteger(env, array.Get(i), "spec.cpus[" + std::to_string(i) + "]",
                                      0, INT_MAX)));
  }
  if (cpus.empty()) throw Napi::RangeError::New(env, "spec.cpus must not be empty");
  return cpus;
}

// One cpu-clock sampling event per CPU, each carrying the program.
std::vector<Link> AttachPerfEvent(Napi::Env env, bpf_program* program,
                                     const Napi::Object& spec) {
  int64_t frequency = RequireInteger(env, spec.Get("frequencyHz"), "spec.frequencyHz", 1, INT_MAX);
  std::vector<int> cpus = CpuList(env, spec.Get("cpus"));
  std::ostringstream description;
  description << "perf_event cpu-clock " << frequency << " Hz on CPUs ";
  for (size_t i = 0; i < cpus.size(); ++i) description << (i ? "," : "") << cpus[i];

  perf_event_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.freq = 1;
  attr.sample_freq = uint64_t(frequency);

  std::vector<Link> links;
  for (int cpu : cpus) {
    int fd = int(syscall(__NR_perf_event_open, &attr, -1 /* any pid */, cpu, -1 /* no group */,
                         PERF_FLAG_FD_CLOEXEC));
    if (fd < 0) {
      int err = errno;
      throw AttachError(env, program,
                        description.str() + "; perf_event_open on CPU " + std::to_string(cpu), err);
    }
    bpf_link* link = bpf_program__attach_perf_event(program, fd);
    if (link == nullptr) {
      int err = errno;
      close(fd);  // the link owns the fd only once attached
      throw AttachError(env, program, description.str() + "; CPU " + std::to_string(cpu), err);
    }
    links.emplace_back(link);
  }
  return links;
}

struct ElfFile {
  int fd;
  Elf* elf;
  ~ElfFile() {
    elf_end(elf);
    close(fd);
  }
};

// The file offset of function `name` (or `name@VERSION`, `name@@VERSION`) in an ELF file, found as libbpf
// 1.1's elf_find_func_offset finds it for perf_event uprobes: in .symtab, else .dynsym; one non-weak
// definition wins over weak ones; its address less its section's address plus the section's file offset.
// 0 if there is none; throws if the file cannot be read or two strong definitions make it ambiguous.
uint64_t FunctionFileOffset(const std::function<Napi::Error(const std::string&, int)>& fail, const std::string& path,
                            const std::string& name) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw fail("cannot open " + path, errno);
  elf_version(EV_CURRENT);
  ElfFile file{fd, elf_begin(fd, ELF_C_READ_MMAP, nullptr)};
  Elf* elf = file.elf;
  if (!elf || elf_kind(elf) != ELF_K_ELF) throw fail(path + " is not an ELF file", ENOEXEC);
  bool qualified = name.find('@') != std::string::npos;
  for (Elf64_Word symbolTable : {SHT_SYMTAB, SHT_DYNSYM}) {
    uint64_t offset = 0;
    int bind = -1;
    for (Elf_Scn* section = elf_nextscn(elf, nullptr); section; section = elf_nextscn(elf, section)) {
      GElf_Shdr header;
      Elf_Data* data;
      if (!gelf_getshdr(section, &header) || header.sh_type != symbolTable || header.sh_entsize == 0 ||
          !(data = elf_getdata(section, nullptr))) {
        continue;
      }
      for (size_t i = 0; i < header.sh_size / header.sh_entsize; ++i) {
        GElf_Sym symbol;
        GElf_Shdr home;
        if (!gelf_getsym(data, int(i), &symbol) || GELF_ST_TYPE(symbol.st_info) != STT_FUNC ||
            symbol.st_shndx == SHN_UNDEF) {
          continue;
        }
        const char* symbolName = elf_strptr(elf, header.sh_link, symbol.st_name);
        if (!symbolName || std::strncmp(symbolName, name.c_str(), name.size()) != 0) continue;
        char next = symbolName[name.size()];
        if (next != '\0' && (qualified || next != '@')) continue;
        int symbolBind = GELF_ST_BIND(symbol.st_info);
        if (bind >= 0) {
          if (bind != STB_WEAK && symbolBind != STB_WEAK) {
            throw fail(path + " defines " + name + " more than once", ENOTUNIQ);
          }
          if (symbolBind == STB_WEAK) continue;
        }
        if (!gelf_getshdr(elf_getscn(elf, symbol.st_shndx), &home)) continue;
        offset = symbol.st_value - home.sh_addr + home.sh_offset;
        bind = symbolBind;
      }
    }
    if (bind >= 0) return offset;
  }
  return 0;
}

std::vector<Link> AttachUprobe(Napi::Env env, bpf_program* program, const Napi::Object& spec) {
  std::string binary = RequireString(env, spec.Get("binaryPath"), "spec.binaryPath");
  Napi::Value functionValue = spec.Get("functionName");
  Napi::Value offsetValue = spec.Get("offset");
  if (!IsPresent(functionValue) && !IsPresent(offsetValue)) {
    throw Napi::TypeError::New(env, "uprobe spec needs functionName or offset");
  }
  std::string function =
      IsPresent(functionValue) ? RequireString(env, functionValue, "spec.functionName") : "";
  int64_t offset =
      IsPresent(offsetValue) ? RequireInteger(env, offsetValue, "spec.offset", 0, kMaxSafeInteger) : 0;
  Napi::Value retprobeValue = spec.Get("retprobe");
  bool retprobe = IsPresent(retprobeValue) && RequireBoolean(env, retprobeValue, "spec.retprobe");
  Napi::Value pidValue = spec.Get("pid");
  int pid = IsPresent(pidValue) ? int(RequireInteger(env, pidValue, "spec.pid", -1, INT_MAX)) : -1;

  std::ostringstream description;
  description << (retprobe ? "uretprobe " : "uprobe ") << binary;
  if (!function.empty()) description << ":" << function;
  if (offset != 0) description << "+0x" << std::hex << offset << std::dec;
  if (pid >= 0) description << " pid " << pid;

  std::vector<Link> links;
  if (bpf_program__expected_attach_type(program) == kTraceUprobeMulti) {
    auto fail = [&](const std::string& why, int err) {
      return AttachError(env, program, description.str() + ", uprobe-multi link; " + why, err);
    };
    uint64_t fileOffset = uint64_t(offset);
    if (!function.empty()) {
      uint64_t functionOffset = FunctionFileOffset(fail, binary, function);
      if (functionOffset == 0) throw fail("no function " + function + " in its .symtab or .dynsym", ENOENT);
      fileOffset += functionOffset;
    }
    // As perf_event_open takes it, pid 0 is this process; to the link it means every process, as -1 does here.
    uint32_t linkPid = pid == 0 ? uint32_t(getpid()) : pid > 0 ? uint32_t(pid) : 0;
    int fd = CreateUprobeMultiLink(bpf_program__fd(program), binary.c_str(), fileOffset, retprobe, linkPid);
    if (fd < 0) throw fail("BPF_LINK_CREATE", errno);
    links.push_back(Link::FromFd(fd));
    return links;
  }

  bpf_uprobe_opts opts;
  std::memset(&opts, 0, sizeof(opts));
  opts.sz = sizeof(opts);
  opts.retprobe = retprobe;
  // With func_name set, libbpf resolves the symbol and treats offset as relative to it.
  opts.func_name = function.empty() ? nullptr : function.c_str();
  bpf_link* link = bpf_program__attach_uprobe_opts(program, pid, binary.c_str(), size_t(offset), &opts);
  int err = errno;
  if (link == nullptr) {
    if (err == EACCES || err == EPERM) {
      description << "; uprobes through perf_event need CAP_SYS_ADMIN on this kernel (Linux 6.16+); uprobe-multi "
                     "links (Linux 6.6+) need only CAP_BPF and CAP_PERFMON";
    }
    throw AttachError(env, program, description.str(), err);
  }
  links.emplace_back(link);
  return links;
}

Napi::Value ProbeUprobeMulti(const Napi::CallbackInfo& info) {
  LogScope log;
  return Napi::Boolean::New(info.Env(), KernelHasUprobeMultiLinks());
}

void UseUprobeMulti(const Napi::CallbackInfo& info) {
  if (info.Length() != 1 || !info[0].IsBoolean()) throw Napi::TypeError::New(info.Env(), "enabled must be a boolean");
  uprobeMultiWanted.store(info[0].As<Napi::Boolean>().Value());
}

}  // namespace

void PrepareUprobePrograms(bpf_object* object) {
  if (!uprobeMultiWanted.load()) return;
  bpf_program* program;
  bool any = false;
  bpf_object__for_each_program(program, object) any = any || IsUprobeProgram(program);
  if (!any || !KernelHasUprobeMultiLinks()) return;
  bpf_object__for_each_program(program, object) {
    if (IsUprobeProgram(program)) bpf_program__set_expected_attach_type(program, kTraceUprobeMulti);
  }
}

std::vector<Link> AttachProgram(Napi::Env env, bpf_program* program, const Napi::Value& specValue) {
  if (!specValue.IsObject()) throw Napi::TypeError::New(env, "attach spec must be an object");
  Napi::Object spec = specValue.As<Napi::Object>();
  std::string kind = RequireString(env, spec.Get("kind"), "spec.kind");
  if (kind == "perf_event") return AttachPerfEvent(env, program, spec);
  if (kind == "uprobe") return AttachUprobe(env, program, spec);

  std::string description;
  bpf_link* link = nullptr;
  if (kind == "auto") {
    description = std::string("auto, SEC(\"") + bpf_program__section_name(program) + "\")";
    link = bpf_program__attach(program);
  } else if (kind == "tracepoint") {
    std::string category = RequireString(env, spec.Get("category"), "spec.category");
    std::string name = RequireString(env, spec.Get("name"), "spec.name");
    description = "tracepoint " + category + "/" + name;
    link = bpf_program__attach_tracepoint(program, category.c_str(), name.c_str());
  } else if (kind == "raw_tracepoint") {
    std::string name = RequireString(env, spec.Get("name"), "spec.name");
    description = "raw_tracepoint " + name;
    link = bpf_program__attach_raw_tracepoint(program, name.c_str());
  } else {
    throw Napi::TypeError::New(env, "unknown attach kind \"" + kind + "\"");
  }
  int err = errno;
  if (link == nullptr) throw AttachError(env, program, description, err);
  std::vector<Link> links;
  links.emplace_back(link);
  return links;
}

void DefineUprobeMultiSwitch(Napi::Env env, Napi::Object exports) {
  exports.Set("probeUprobeMulti", Napi::Function::New<ProbeUprobeMulti>(env, "probeUprobeMulti"));
  exports.Set("useUprobeMulti", Napi::Function::New<UseUprobeMulti>(env, "useUprobeMulti"));
}


}  // namespace ebpf

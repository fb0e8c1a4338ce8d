#include "attach.h"

#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <sstream>
#include <string>

#include "args.h"
#include "cpus.h"
#include "diagnostics.h"

namespace ebpf {
namespace {

constexpr int64_t kMaxSafeInteger = (int64_t(1) << 53) - 1;

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
std::vector<LinkPtr> AttachPerfEvent(Napi::Env env, bpf_program* program,
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

  std::vector<LinkPtr> links;
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

std::vector<LinkPtr> AttachUprobe(Napi::Env env, bpf_program* program, const Napi::Object& spec) {
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

  bpf_uprobe_opts opts;
  std::memset(&opts, 0, sizeof(opts));
  opts.sz = sizeof(opts);
  opts.retprobe = retprobe;
  // With func_name set, libbpf resolves the symbol and treats offset as relative to it.
  opts.func_name = function.empty() ? nullptr : function.c_str();
  bpf_link* link = bpf_program__attach_uprobe_opts(program, pid, binary.c_str(), size_t(offset), &opts);
  int err = errno;
  if (link == nullptr) throw AttachError(env, program, description.str(), err);
  std::vector<LinkPtr> links;
  links.emplace_back(link);
  return links;
}

}  // namespace

std::vector<LinkPtr> AttachProgram(Napi::Env env, bpf_program* program, const Napi::Value& specValue) {
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
  std::vector<LinkPtr> links;
  links.emplace_back(link);
  return links;
}

}  // namespace ebpf

#include "kernel_features.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "attach.h"
#include "diagnostics.h"

namespace ebpf {
namespace {

struct HelperName {
  const char* name;
  bpf_func_id id;
};

#define EBPF_HELPER_NAME(x) {#x, BPF_FUNC_##x}
// Every helper the installed UAPI header knows, by its name without "bpf_".
const HelperName kHelpers[] = {__BPF_FUNC_MAPPER(EBPF_HELPER_NAME)};
#undef EBPF_HELPER_NAME

// The vmlinux BTF, or null without one (no CONFIG_DEBUG_INFO_BTF).
struct VmlinuxBtf {
  btf* types = btf__load_vmlinux_btf();
  ~VmlinuxBtf() { btf__free(types); }
};

std::string StringArgument(const Napi::CallbackInfo& info, size_t index, const char* what) {
  if (info.Length() <= index || !info[index].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  }
  return info[index].As<Napi::String>().Utf8Value();
}

// libbpf's names ("kprobe", "raw_tracepoint", "tracing"...), looked up in libbpf's own table.
bpf_prog_type ProgramType(Napi::Env env, const std::string& name) {
  for (int type = 1;; ++type) {
    const char* known = libbpf_bpf_prog_type_str(bpf_prog_type(type));
    if (!known) break;
    if (name == known) return bpf_prog_type(type);
  }
  throw Napi::TypeError::New(env, "unknown BPF program type \"" + name + "\" (libbpf's names, e.g. raw_tracepoint)");
}

bpf_map_type MapType(Napi::Env env, const std::string& name) {
  for (int type = 1;; ++type) {
    const char* known = libbpf_bpf_map_type_str(bpf_map_type(type));
    if (!known) break;
    if (name == known) return bpf_map_type(type);
  }
  throw Napi::TypeError::New(env, "unknown BPF map type \"" + name + "\" (libbpf's names, e.g. task_storage)");
}

bpf_func_id Helper(Napi::Env env, const std::string& name) {
  for (const HelperName& helper : kHelpers) {
    if (name == helper.name) return helper.id;
  }
  throw Napi::TypeError::New(env, "unknown BPF helper \"" + name + "\" (without the bpf_ prefix, e.g. loop)");
}

// BTF-enabled raw tracepoint programs (SEC("tp_btf/...")) attach to a typedef
// btf_trace_<event>; every kernel with them has sched_switch.
int TracingAttachId(const btf* types) {
  return types ? btf__find_by_name_kind(types, "btf_trace_sched_switch", BTF_KIND_TYPEDEF) : -ENOENT;
}

// Loads `call helper; r0 = 0; exit` as a program of `type` (tracing ones as
// tp_btf on sched_switch) and reads the verifier's verdict, as libbpf's
// libbpf_probe_bpf_helper does: the helper is there unless the verifier does
// not know it at all ("invalid func") or not for this program type ("unknown
// func" up to 6.x, "program of this type cannot use helper" since). libbpf
// 1.1 knows only the first two and takes tracing programs not at all.
bool HasHelper(bpf_prog_type type, bpf_func_id helper) {
  VmlinuxBtf vmlinux;
  int target = type == BPF_PROG_TYPE_TRACING ? TracingAttachId(vmlinux.types) : 0;
  if (target < 0) return false;
  const bpf_insn program[] = {
      {BPF_JMP | BPF_CALL, 0, 0, 0, helper},
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  std::vector<char> log(4096);
  LIBBPF_OPTS(bpf_prog_load_opts, options, .log_level = 1, .log_size = __u32(log.size()), .log_buf = log.data());
  if (type == BPF_PROG_TYPE_TRACING) {
    options.expected_attach_type = BPF_TRACE_RAW_TP;
    options.attach_btf_id = __u32(target);
  }
  int fd = bpf_prog_load(type, nullptr, "GPL", program, 3, &options);
  if (fd >= 0) {
    close(fd);
    return true;
  }
  log.back() = 0;
  return log[0] && !strstr(log.data(), "invalid func ") && !strstr(log.data(), "unknown func ") &&
         !strstr(log.data(), "program of this type cannot use helper ");
}

// A tracing program that loads: BTF, the program type and the attach to a BTF tracepoint all work.
bool TracingProgramsLoad() {
  VmlinuxBtf vmlinux;
  int target = TracingAttachId(vmlinux.types);
  if (target < 0) return false;
  const bpf_insn program[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, options, .expected_attach_type = BPF_TRACE_RAW_TP, .attach_btf_id = __u32(target));
  int fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, nullptr, "GPL", program, 2, &options);
  if (fd < 0) return false;
  close(fd);
  return true;
}

// probeX throws only for names it does not know; a probe the kernel refuses is `false`.
Napi::Value KernelBtf(const Napi::CallbackInfo& info) {
  LogScope log;
  VmlinuxBtf vmlinux;
  return Napi::Boolean::New(info.Env(), vmlinux.types != nullptr);
}

// kernelBtfHas(kind, name): kind is "func" (kfuncs), "typedef" (btf_trace_<tracepoint>) or "struct".
Napi::Value KernelBtfHas(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string kind = StringArgument(info, 0, "kind");
  std::string name = StringArgument(info, 1, "name");
  int btf_kind = kind == "func" ? BTF_KIND_FUNC : kind == "typedef" ? BTF_KIND_TYPEDEF : kind == "struct" ? BTF_KIND_STRUCT : -1;
  if (btf_kind < 0) throw Napi::TypeError::New(env, "kind must be func, typedef or struct, got \"" + kind + "\"");
  LogScope log;
  VmlinuxBtf vmlinux;
  return Napi::Boolean::New(env, vmlinux.types && btf__find_by_name_kind(vmlinux.types, name.c_str(), btf_kind) > 0);
}

// tracingRefusal(): why this process may not load tracing programs
// (strerror of EPERM or EACCES), or "" when it may. Every other probe reads
// such a refusal as a missing feature, so callers ask this first.
Napi::Value TracingRefusal(const Napi::CallbackInfo& info) {
  const bpf_insn program[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  LogScope log;
  int fd = bpf_prog_load(BPF_PROG_TYPE_TRACEPOINT, nullptr, "GPL", program, 2, nullptr);
  int error = errno;
  if (fd >= 0) close(fd);
  bool refused = fd < 0 && (error == EPERM || error == EACCES);
  return Napi::String::New(info.Env(), refused ? std::strerror(error) : "");
}

Napi::Value ProbeProgramType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_prog_type type = ProgramType(env, StringArgument(info, 0, "program type"));
  LogScope log;
  if (type == BPF_PROG_TYPE_TRACING) return Napi::Boolean::New(env, TracingProgramsLoad());
  return Napi::Boolean::New(env, libbpf_probe_bpf_prog_type(type, nullptr) == 1);
}

Napi::Value ProbeMapType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map_type type = MapType(env, StringArgument(info, 0, "map type"));
  LogScope log;
  return Napi::Boolean::New(env, libbpf_probe_bpf_map_type(type, nullptr) == 1);
}

// probeHelper(programType, helper): whether programs of that type may call the helper.
Napi::Value ProbeHelper(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_prog_type type = ProgramType(env, StringArgument(info, 0, "program type"));
  bpf_func_id helper = Helper(env, StringArgument(info, 1, "helper"));
  LogScope log;
  return Napi::Boolean::New(env, HasHelper(type, helper));
}

}  // namespace

void DefineKernelFeatures(Napi::Env env, Napi::Object exports) {
  exports.Set("kernelBtf", Napi::Function::New<KernelBtf>(env, "kernelBtf"));
  exports.Set("kernelBtfHas", Napi::Function::New<KernelBtfHas>(env, "kernelBtfHas"));
  exports.Set("tracingRefusal", Napi::Function::New<TracingRefusal>(env, "tracingRefusal"));
  exports.Set("probeProgramType", Napi::Function::New<ProbeProgramType>(env, "probeProgramType"));
  exports.Set("probeMapType", Napi::Function::New<ProbeMapType>(env, "probeMapType"));
  exports.Set("probeHelper", Napi::Function::New<ProbeHelper>(env, "probeHelper"));
  DefineUprobeMultiSwitch(env, exports);
}

}  // namespace ebpf

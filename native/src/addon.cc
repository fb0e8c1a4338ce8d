// Entry point of the ebpf_native addon: module functions and class registration.
#include <bpf/libbpf.h>
#include <napi.h>

#include <string>

#include <unistd.h>

#include "bpf_object.h"
#include "cpus.h"
#include "diagnostics.h"
#include "elf_symbolizer.h"
#include "kernel_features.h"
#include "kernel_symbols.h"
#include "prog_ids.h"

namespace ebpf {
namespace {

Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  LogScope log;
  return Napi::Number::New(info.Env(), PossibleCpus(info.Env()));
}

Napi::Value OnlineCpuList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LogScope log;
  std::vector<int> cpus = OnlineCpus(env);
  Napi::Array result = Napi::Array::New(env, cpus.size());
  for (size_t i = 0; i < cpus.size(); ++i) result.Set(uint32_t(i), Napi::Number::New(env, cpus[i]));
  return result;
}

// Version of the libbpf actually loaded, which may differ from the headers.
Napi::Value LibbpfVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), std::to_string(libbpf_major_version()) + "." +
                                           std::to_string(libbpf_minor_version()));
}

Napi::Value BpfProgramIds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LogScope log;
  std::vector<uint32_t> ids = LoadedProgramIds(env);
  Napi::Uint32Array result = Napi::Uint32Array::New(env, ids.size());
  for (size_t i = 0; i < ids.size(); ++i) result[i] = ids[i];
  return result;
}

// exitImmediately(code): _exit(2), without Node's exit, which joins its
// thread pool and so hangs for ever on a thread stuck in a system call (an
// open() of a FIFO, a hung network file system).
Napi::Value ExitImmediately(const Napi::CallbackInfo& info) {
  _exit(info[0].As<Napi::Number>().Int32Value());
}

}  // namespace
}  // namespace ebpf

// NODE_API_MODULE pastes the function name into an identifier: keep it unqualified.
static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ebpf::InstallLibbpfLogCapture();
  exports.Set("BpfObject", ebpf::BpfObject::Define(env));
  exports.Set("ElfSymbolizer", ebpf::ElfSymbolizer::Define(env));
  exports.Set("KernelSymbols", ebpf::KernelSymbols::Define(env));
  exports.Set("KernelSymbolEvents", ebpf::KernelSymbolEvents::Define(env));
  exports.Set("numPossibleCpus", Napi::Function::New<ebpf::NumPossibleCpus>(env, "numPossibleCpus"));
  exports.Set("onlineCpus", Napi::Function::New<ebpf::OnlineCpuList>(env, "onlineCpus"));
  exports.Set("libbpfVersion", Napi::Function::New<ebpf::LibbpfVersion>(env, "libbpfVersion"));
  exports.Set("bpfProgramIds", Napi::Function::New<ebpf::BpfProgramIds>(env, "bpfProgramIds"));
  exports.Set("exitImmediately", Napi::Function::New<ebpf::ExitImmediately>(env, "exitImmediately"));
  ebpf::DefineKernelFeatures(env, exports);
  return exports;
}

NODE_API_MODULE(ebpf_native, Init)

// What the running kernel's BPF supports, asked of the kernel itself with
// libbpf's probes (tiny programs and maps loaded and thrown away) and its BTF,
// so that receivers can refuse or fall back before loading their objects.
#pragma once

#include <napi.h>

namespace ebpf {

// Adds kernelBtf, kernelBtfHas, tracingRefusal, probeProgramType, probeMapType, probeHelper,
// probeUprobeMulti and useUprobeMulti to `exports`.
void DefineKernelFeatures(Napi::Env env, Napi::Object exports);

}  // namespace ebpf

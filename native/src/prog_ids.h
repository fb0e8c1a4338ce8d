// The ids of every BPF program loaded in the kernel: a cheap way to tell that
// the programs listed in /proc/kallsyms ([bpf] symbols) have changed.
#pragma once

#include <napi.h>

#include <cstdint>
#include <vector>

namespace ebpf {

// Ascending ids from BPF_PROG_GET_NEXT_ID; throws a SystemError (e.g. EPERM without CAP_SYS_ADMIN).
std::vector<uint32_t> LoadedProgramIds(Napi::Env env);

}  // namespace ebpf

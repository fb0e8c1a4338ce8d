// CPU topology helpers shared by the module functions and perf_event attach.
#pragma once

#include <napi.h>

#include <vector>

namespace ebpf {

// libbpf_num_possible_cpus(); per-CPU map values hold one slot per possible CPU.
int PossibleCpus(Napi::Env env);

// CPUs listed in /sys/devices/system/cpu/online (e.g. "0-3,6").
std::vector<int> OnlineCpus(Napi::Env env);

}  // namespace ebpf

// Whole-map reads (dump/drain) over the bpf(2) map syscalls.
#pragma once

#include <napi.h>

#include <linux/bpf.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ebpf {

// A loaded map with the geometry needed to size user-space buffers.
struct MapRef {
  std::string name;
  int fd;
  bpf_map_type type;
  uint32_t keySize;
  uint32_t valueSize;
  uint32_t maxEntries;
  bool perCpu;
  // Bytes per value as seen from user space: per-CPU maps return one
  // 8-byte-aligned slot per possible CPU.
  size_t valueStride;
};

// Packed entries: keys[i * keySize], values[i * valueStride].
struct MapEntries {
  size_t count = 0;
  std::vector<uint8_t> keys;
  std::vector<uint8_t> values;
};

bool IsPerCpuMap(bpf_map_type type);

// All entries, left in the map.
MapEntries DumpMap(Napi::Env env, const MapRef& map);

// All entries, removed from the map (array maps cannot delete: their values
// are zeroed instead). Exact only for a map no program writes to meanwhile,
// such as the old bank of a counter map after SwapBanks (bpf/counter_bank.h):
// increments between the read and the reset would be lost. `expectedKeys` (packed, duplicates allowed) are taken
// by key first, one syscall each: for maps without batch ops, such as stack
// maps whose ids a counts map names, that spares most of the slower walk.
MapEntries DrainMap(Napi::Env env, const MapRef& map, const uint8_t* expectedKeys = nullptr, size_t expectedSize = 0);

// Returns once every non-sleepable BPF program (tracepoint, raw_tp, tp_btf,
// perf_event, uprobe) that was running when it was called has finished, so
// that none still acts on a map value it read before: 0, or an errno value.
// Blocks for an RCU grace period (milliseconds); call it off the JS thread.
int WaitForRunningPrograms();

}  // namespace ebpf

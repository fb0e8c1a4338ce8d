#include "map_io.h"

#include <bpf/bpf.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <string_view>

#include "diagnostics.h"

namespace ebpf {
namespace {

constexpr uint32_t kBatchEntries = 256;
constexpr int kENOTSUPP = 524;

bool IsArrayMap(bpf_map_type type) {
  return type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY;
}

// What the kernel answers to an operation it lacks for a map type.
bool IsUnsupported(int err) { return err == EINVAL || err == kENOTSUPP || err == EOPNOTSUPP; }

// Stack-trace maps have no batch ops; skip the doomed attempt.
bool SupportsBatch(bpf_map_type type) { return type != BPF_MAP_TYPE_STACK_TRACE; }

void Append(MapEntries& out, const MapRef& map, const uint8_t* keys, const uint8_t* values,
            size_t count) {
  out.keys.insert(out.keys.end(), keys, keys + count * map.keySize);
  out.values.insert(out.values.end(), values, values + count * map.valueStride);
  out.count += count;
}

// Reads the map with bpf_map_lookup[_and_delete]_batch. Returns false, having
// read nothing, when the kernel does not support batch ops for this map.
bool ReadBatched(Napi::Env env, const MapRef& map, bool remove, MapEntries& out) {
  // The resume token is a bucket index for hash maps and a key for arrays.
  const size_t tokenSize = std::max<size_t>(map.keySize, sizeof(uint64_t));
  std::vector<uint8_t> inToken(tokenSize), outToken(tokenSize);
  bool first = true;
  uint32_t batch = kBatchEntries;
  for (;;) {
    std::vector<uint8_t> keys(size_t(batch) * map.keySize);
    std::vector<uint8_t> values(size_t(batch) * map.valueStride);
    uint32_t count = batch;
    void* in = first ? nullptr : inToken.data();
    int rc = remove ? bpf_map_lookup_and_delete_batch(map.fd, in, outToken.data(), keys.data(),
                                                      values.data(), &count, nullptr)
                    : bpf_map_lookup_batch(map.fd, in, outToken.data(), keys.data(),
                                           values.data(), &count, nullptr);
    int err = rc < 0 ? errno : 0;
    if (err == ENOSPC && count == 0) {
      batch *= 2;  // one hash bucket holds more entries than fit in a batch
      continue;
    }
    if (err != 0 && err != ENOENT) {
      if (first && IsUnsupported(err)) return false;
      throw SystemError(env, std::string("cannot ") + (remove ? "drain" : "dump") + " map \"" +
                                 map.name + "\"",
                        err);
    }
    Append(out, map, keys.data(), values.data(), count);
    if (err == ENOENT) return true;  // end of map; the final batch may be partial
    std::swap(inToken, outToken);
    first = false;
  }
}

// Snapshot of all keys, taken up front so that deleting entries while reading
// cannot restart or derail get_next_key iteration.
std::vector<uint8_t> CollectKeys(Napi::Env env, const MapRef& map) {
  std::vector<uint8_t> keys;
  std::vector<uint8_t> current(map.keySize), next(map.keySize);
  bool first = true;
  while (bpf_map_get_next_key(map.fd, first ? nullptr : current.data(), next.data()) == 0) {
    keys.insert(keys.end(), next.begin(), next.end());
    std::swap(current, next);
    first = false;
  }
  int err = errno;
  if (err != ENOENT) throw SystemError(env, "cannot iterate map \"" + map.name + "\"", err);
  return keys;
}

// Reads the entry at `key` into `value`, removing it if `remove`. One
// lookup_and_delete syscall where the kernel has it for the map type (hash
// maps since 5.14, stack-trace maps in newer kernels); else, once that has
// failed as unsupported (`combined` then stays false), a lookup and a delete.
// Returns false if there is no such entry.
bool ReadEntry(Napi::Env env, const MapRef& map, bool remove, const uint8_t* key, uint8_t* value,
               bool& combined) {
  if (remove && combined) {
    if (bpf_map_lookup_and_delete_elem(map.fd, key, value) == 0) return true;
    int err = errno;
    if (err == ENOENT) return false;
    if (!IsUnsupported(err)) throw SystemError(env, "cannot take from map \"" + map.name + "\"", err);
    combined = false;
  }
  if (bpf_map_lookup_elem(map.fd, key, value) != 0) {
    int err = errno;
    if (err == ENOENT) return false;  // removed concurrently
    throw SystemError(env, "cannot look up in map \"" + map.name + "\"", err);
  }
  if (remove && bpf_map_delete_elem(map.fd, key) != 0) {
    int err = errno;
    if (err != ENOENT) throw SystemError(env, "cannot delete from map \"" + map.name + "\"", err);
  }
  return true;
}

// Reads (and removes) the entries at `keys`, packed, skipping absent ones.
void ReadKeys(Napi::Env env, const MapRef& map, bool remove, const std::vector<uint8_t>& keys,
              bool& combined, MapEntries& out) {
  std::vector<uint8_t> value(map.valueStride);
  // Sized once: growing by doubling copied a stack map's values (~1 KB each) several times.
  out.keys.reserve(out.keys.size() + keys.size());
  out.values.reserve(out.values.size() + keys.size() / map.keySize * map.valueStride);
  for (size_t offset = 0; offset < keys.size(); offset += map.keySize) {
    const uint8_t* key = keys.data() + offset;
    if (ReadEntry(env, map, remove, key, value.data(), combined)) Append(out, map, key, value.data(), 1);
  }
}

// The distinct keys among `size` bytes of packed keys, in some order.
std::vector<uint8_t> DistinctKeys(const uint8_t* keys, size_t size, uint32_t keySize) {
  std::vector<std::string_view> views;
  views.reserve(size / keySize);
  for (size_t offset = 0; offset + keySize <= size; offset += keySize) {
    views.emplace_back(reinterpret_cast<const char*>(keys) + offset, keySize);
  }
  std::sort(views.begin(), views.end());
  views.erase(std::unique(views.begin(), views.end()), views.end());
  std::vector<uint8_t> distinct;
  distinct.reserve(views.size() * keySize);
  for (std::string_view view : views) distinct.insert(distinct.end(), view.begin(), view.end());
  return distinct;
}

}  // namespace

bool IsPerCpuMap(bpf_map_type type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

MapEntries DumpMap(Napi::Env env, const MapRef& map) {
  MapEntries out;
  if (!SupportsBatch(map.type) || !ReadBatched(env, map, false, out)) {
    bool combined = false;
    ReadKeys(env, map, false, CollectKeys(env, map), combined, out);
  }
  return out;
}

MapEntries DrainMap(Napi::Env env, const MapRef& map, const uint8_t* expectedKeys, size_t expectedSize) {
  if (IsArrayMap(map.type)) {
    MapEntries out = DumpMap(env, map);
    std::vector<uint8_t> zero(map.valueStride);
    for (size_t i = 0; i < out.count; ++i) {
      const uint8_t* key = out.keys.data() + i * map.keySize;
      if (bpf_map_update_elem(map.fd, key, zero.data(), BPF_EXIST) != 0) {
        int err = errno;
        throw SystemError(env, "cannot reset array map \"" + map.name + "\"", err);
      }
    }
    return out;
  }
  MapEntries out;
  bool combined = true;
  // Taking the expected entries by key first leaves the get_next_key walk below
  // (three syscalls per entry where batch ops are missing) only the others.
  if (expectedSize > 0) ReadKeys(env, map, true, DistinctKeys(expectedKeys, expectedSize, map.keySize), combined, out);
  if (!SupportsBatch(map.type) || !ReadBatched(env, map, true, out)) {
    ReadKeys(env, map, true, CollectKeys(env, map), combined, out);
  }
  return out;
}

namespace {

// A one-slot ARRAY_OF_MAPS and the map it holds, made once per process.
struct ProgramBarrier {
  int outer = -1;
  int inner = -1;
  int err = 0;
};

ProgramBarrier MakeProgramBarrier() {
  ProgramBarrier barrier;
  barrier.inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "barrier_inner", 4, 4, 1, nullptr);
  if (barrier.inner < 0) {
    barrier.err = errno;
    return barrier;
  }
  bpf_map_create_opts options{};
  options.sz = sizeof(options);
  options.inner_map_fd = uint32_t(barrier.inner);
  barrier.outer = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "barrier", 4, 4, 1, &options);
  if (barrier.outer < 0) barrier.err = errno;
  return barrier;
}

}  // namespace

// Storing a map into an ARRAY_OF_MAPS or HASH_OF_MAPS slot from user space
// makes the kernel wait, before the syscall returns, for the BPF programs that
// may still use the slot's old value: kernel/bpf/syscall.c,
// maybe_wait_bpf_programs(), which calls synchronize_rcu() for these two map
// types. Linux 4.19 to 6.7 call it at the end of bpf_map_update_value();
// 6.8 and later from map_update_elem() once the update succeeded ("Wait for
// any running non-sleepable BPF programs to complete so that userspace, when
// we return to it, knows that all non-sleepable programs that could be running
// use the new map value"). Non-sleepable programs run inside RCU read-side
// critical sections (rcu_read_lock() in __bpf_trace_run, trace_call_bpf and
// bpf_overflow_handler, or with interrupts off), so a grace period covers every
// one that started before; PREEMPT_RT's preemptible RCU still waits for them.
// Storing the same inner map again is enough: the update, not a change, waits.
int WaitForRunningPrograms() {
  static std::once_flag once;
  static ProgramBarrier barrier;
  std::call_once(once, [] { barrier = MakeProgramBarrier(); });
  if (barrier.err != 0) return barrier.err;
  uint32_t slot = 0;
  if (bpf_map_update_elem(barrier.outer, &slot, &barrier.inner, BPF_ANY) != 0) return errno;
  return 0;
}

}  // namespace ebpf

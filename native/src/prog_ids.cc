#include "prog_ids.h"

#include <bpf/bpf.h>

#include <cerrno>

#include "diagnostics.h"

namespace ebpf {

std::vector<uint32_t> LoadedProgramIds(Napi::Env env) {
  std::vector<uint32_t> ids;
  uint32_t id = 0;
  for (;;) {
    if (bpf_prog_get_next_id(id, &id) != 0) {
      int err = errno;
      if (err == ENOENT) return ids;  // past the last program
      throw SystemError(env, "cannot list BPF programs", err);
    }
    ids.push_back(id);
  }
}

}  // namespace ebpf

// Attaching programs according to a JS AttachSpec.
#pragma once

#include <bpf/libbpf.h>
#include <napi.h>

#include <memory>
#include <vector>

namespace ebpf {

struct LinkDestroyer {
  void operator()(bpf_link* link) const { bpf_link__destroy(link); }
};
// Destroying a link detaches the program and closes the link's fds,
// including the perf event fd of perf_event attachments.
using LinkPtr = std::unique_ptr<bpf_link, LinkDestroyer>;

// Attaches `program` as `spec` says. perf_event specs yield one link per CPU.
// Throws a JS Error naming the program and spec; anything attached before the
// failure is destroyed again (the returned vector is the unit of rollback).
std::vector<LinkPtr> AttachProgram(Napi::Env env, bpf_program* program, const Napi::Value& spec);

}  // namespace ebpf

// Attaching programs according to a JS AttachSpec.
#pragma once

#include <bpf/libbpf.h>
#include <napi.h>

#include <memory>
#include <vector>

namespace ebpf {

// One attachment: a libbpf link, or the fd of a link libbpf 1.1 cannot make
// (uprobe-multi). Destroying it detaches the program and closes the link's
// fds, including the perf event fd of perf_event attachments.
class Link {
 public:
  explicit Link(bpf_link* link) : link_(link) {}
  // Takes ownership of a link fd from BPF_LINK_CREATE.
  static Link FromFd(int fd);
  Link(Link&& other) noexcept;
  Link& operator=(Link&&) = delete;
  ~Link();

 private:
  struct LinkDestroyer {
    void operator()(bpf_link* link) const { bpf_link__destroy(link); }
  };
  std::unique_ptr<bpf_link, LinkDestroyer> link_;
  int fd_ = -1;
};

// Before bpf_object__load: when this kernel has uprobe-multi links (Linux
// 6.6+, with the PID filter fixed) and they are not turned off, the object's
// SEC("uprobe")/SEC("uretprobe") programs are loaded for them, so that they
// attach with CAP_BPF and CAP_PERFMON alone; otherwise as perf_event uprobes,
// which Linux 6.16+ allows only with CAP_SYS_ADMIN. It must be decided before
// load: a program loaded for one cannot attach the other way.
void PrepareUprobePrograms(bpf_object* object);

// Attaches `program` as `spec` says. perf_event specs yield one link per CPU.
// Throws a JS Error naming the program and spec; anything attached before the
// failure is destroyed again (the returned vector is the unit of rollback).
std::vector<Link> AttachProgram(Napi::Env env, bpf_program* program, const Napi::Value& spec);

// probeUprobeMulti() and useUprobeMulti(enabled) on `exports`: the kernel's
// answer, and service::kernel_features::disable's `uprobe_multi`.
void DefineUprobeMultiSwitch(Napi::Env env, Napi::Object exports);

}  // namespace ebpf

// Capture of libbpf's log output and construction of JS errors that carry it.
#pragma once

#include <napi.h>

#include <string>

namespace ebpf {

// Routes libbpf's print callback into a bounded, per-thread line buffer.
void InstallLibbpfLogCapture();

// Starts one JS-visible operation: clears the captured log so that errors only
// carry what libbpf said during this operation. DEBUG lines are kept only when
// `debug` is set (used while loading, for verifier context).
class LogScope {
 public:
  explicit LogScope(bool debug = false);
  ~LogScope();
  LogScope(const LogScope&) = delete;
  LogScope& operator=(const LogScope&) = delete;
};

// strerror-like text for a positive errno value (also libbpf/kernel-internal codes).
std::string ErrnoString(int err);

// Error("<what>: <strerror(err)>; libbpf: <captured log>"), the log part only if
// libbpf said anything during the current operation.
Napi::Error SystemError(Napi::Env env, const std::string& what, int err);

}  // namespace ebpf

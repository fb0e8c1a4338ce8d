// ElfSymbolizer: the JS handle on a SymbolCache. symbolize() takes a whole
// batch (every binary with its file offsets) and runs it on a worker thread.
#pragma once

#include <napi.h>

#include <memory>

#include "symbol_cache.h"

namespace ebpf {

class ElfSymbolizer : public Napi::ObjectWrap<ElfSymbolizer> {
 public:
  static Napi::Function Define(Napi::Env env);

  // new ElfSymbolizer({ maxBinaries, maxSymbols, debugDirs, debugCacheDir, debugCacheMaxBytes })
  explicit ElfSymbolizer(const Napi::CallbackInfo& info);

 private:
  Napi::Value Symbolize(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);

  // Shared with running workers, so close() never frees a cache in use.
  std::shared_ptr<SymbolCache> cache_;
};

}  // namespace ebpf

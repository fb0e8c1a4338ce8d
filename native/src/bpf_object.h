// BpfObject: a JS handle owning one libbpf bpf_object and its links.
#pragma once

#include <bpf/libbpf.h>
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "attach.h"
#include "map_io.h"

namespace ebpf {

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  // Creates the JS class and remembers its constructor for BpfObject.open().
  static Napi::Function Define(Napi::Env env);

  // Only reachable through open(), which passes the opened object as an External.
  explicit BpfObject(const Napi::CallbackInfo& info);
  // Runs from the GC finalizer too: an object that was never closed still
  // gets its links destroyed and its programs and maps released.
  ~BpfObject() override;

 private:
  struct ObjectCloser {
    void operator()(bpf_object* object) const { bpf_object__close(object); }
  };

  static Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Path(const Napi::CallbackInfo& info);
  Napi::Value ProgramNames(const Napi::CallbackInfo& info);
  Napi::Value MapNames(const Napi::CallbackInfo& info);
  void Load(const Napi::CallbackInfo& info);
  void Attach(const Napi::CallbackInfo& info);
  Napi::Value MapInfo(const Napi::CallbackInfo& info);
  void Update(const Napi::CallbackInfo& info);
  Napi::Value Lookup(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);
  Napi::Value Dump(const Napi::CallbackInfo& info);
  Napi::Value Drain(const Napi::CallbackInfo& info);
  Napi::Value SwapBanks(const Napi::CallbackInfo& info);
  Napi::Value ProgIds(const Napi::CallbackInfo& info);
  Napi::Value LinkCount(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);

  void EnsureOpen(Napi::Env env) const;
  bpf_program* FindProgram(Napi::Env env, const std::string& name) const;
  // Resolves a map by name; `requireLoaded` demands a map fd (i.e. after load()).
  MapRef FindMap(Napi::Env env, const Napi::Value& name, bool requireLoaded) const;
  void CheckKey(Napi::Env env, const MapRef& map, const Napi::Buffer<uint8_t>& key) const;
  void Release();

  std::string path_;
  std::unique_ptr<bpf_object, ObjectCloser> object_;
  std::vector<Link> links_;  // declared after object_, so destroyed before it
};

}  // namespace ebpf

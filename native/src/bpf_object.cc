#include "bpf_object.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>

#include "args.h"
#include "cpus.h"
#include "diagnostics.h"

namespace ebpf {
namespace {

Napi::Object EntriesToJs(Napi::Env env, const MapEntries& entries) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("count", Napi::Number::New(env, double(entries.count)));
  result.Set("keys", Napi::Buffer<uint8_t>::Copy(env, entries.keys.data(), entries.keys.size()));
  result.Set("values",
             Napi::Buffer<uint8_t>::Copy(env, entries.values.data(), entries.values.size()));
  return result;
}

std::string Quoted(const std::string& name) { return "\"" + name + "\""; }

// Resolves with `bank` once WaitForRunningPrograms() has returned, off the JS thread.
class BankSwapWorker : public Napi::AsyncWorker {
 public:
  BankSwapWorker(Napi::Env env, uint32_t bank)
      : Napi::AsyncWorker(env, "ebpf:swapBanks"), deferred_(Napi::Promise::Deferred::New(env)), bank_(bank) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override { err_ = WaitForRunningPrograms(); }

  void OnOK() override {
    if (err_ != 0) {
      deferred_.Reject(SystemError(Env(), "cannot wait for running BPF programs (map-in-map update)", err_).Value());
      return;
    }
    deferred_.Resolve(Napi::Number::New(Env(), bank_));
  }

 private:
  Napi::Promise::Deferred deferred_;
  uint32_t bank_;
  int err_ = 0;
};

}  // namespace

Napi::Function BpfObject::Define(Napi::Env env) {
  Napi::Function constructor = DefineClass(
      env, "BpfObject",
      {
          StaticMethod<&BpfObject::Open>("open"),
          InstanceAccessor<&BpfObject::Path>("path"),
          InstanceMethod<&BpfObject::ProgramNames>("programNames"),
          InstanceMethod<&BpfObject::MapNames>("mapNames"),
          InstanceMethod<&BpfObject::Load>("load"),
          InstanceMethod<&BpfObject::Attach>("attach"),
          InstanceMethod<&BpfObject::MapInfo>("mapInfo"),
          InstanceMethod<&BpfObject::Update>("update"),
          InstanceMethod<&BpfObject::Lookup>("lookup"),
          InstanceMethod<&BpfObject::Delete>("delete"),
          InstanceMethod<&BpfObject::Dump>("dump"),
          InstanceMethod<&BpfObject::Drain>("drain"),
          InstanceMethod<&BpfObject::SwapBanks>("swapBanks"),
          InstanceMethod<&BpfObject::ProgIds>("progIds"),
          InstanceMethod<&BpfObject::LinkCount>("linkCount"),
          InstanceMethod<&BpfObject::Close>("close"),
      });
  env.SetInstanceData(new Napi::FunctionReference(Napi::Persistent(constructor)));
  return constructor;
}

BpfObject::BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
  if (info.Length() != 2 || !info[0].IsExternal() || !info[1].IsString()) {
    throw Napi::TypeError::New(info.Env(), "use BpfObject.open(path) to create a BpfObject");
  }
  path_ = info[1].As<Napi::String>().Utf8Value();
  object_.reset(info[0].As<Napi::External<bpf_object>>().Data());
}

BpfObject::~BpfObject() { Release(); }

void BpfObject::Release() {
  links_.clear();
  object_.reset();
}

Napi::Value BpfObject::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = RequireString(env, info[0], "path");
  LogScope log;
  std::unique_ptr<bpf_object, ObjectCloser> object(bpf_object__open_file(path.c_str(), nullptr));
  int err = errno;
  if (!object) throw SystemError(env, "cannot open BPF object " + path, err);
  Napi::Object wrapper = env.GetInstanceData<Napi::FunctionReference>()->New(
      {Napi::External<bpf_object>::New(env, object.get()), Napi::String::New(env, path)});
  object.release();  // now owned by the wrapper
  return wrapper;
}

void BpfObject::EnsureOpen(Napi::Env env) const {
  if (!object_) throw Napi::Error::New(env, "BPF object " + path_ + " is closed");
}

bpf_program* BpfObject::FindProgram(Napi::Env env, const std::string& name) const {
  bpf_program* program = bpf_object__find_program_by_name(object_.get(), name.c_str());
  if (program == nullptr) {
    throw Napi::Error::New(env, "no program named " + Quoted(name) + " in " + path_);
  }
  return program;
}

MapRef BpfObject::FindMap(Napi::Env env, const Napi::Value& nameValue, bool requireLoaded) const {
  std::string name = RequireString(env, nameValue, "map");
  bpf_map* map = bpf_object__find_map_by_name(object_.get(), name.c_str());
  if (map == nullptr) throw Napi::Error::New(env, "no map named " + Quoted(name) + " in " + path_);
  MapRef ref;
  ref.name = name;
  ref.fd = bpf_map__fd(map);
  ref.type = bpf_map__type(map);
  ref.keySize = bpf_map__key_size(map);
  ref.valueSize = bpf_map__value_size(map);
  ref.maxEntries = bpf_map__max_entries(map);
  ref.perCpu = IsPerCpuMap(ref.type);
  ref.valueStride = ref.perCpu ? ((size_t(ref.valueSize) + 7) / 8 * 8) * size_t(PossibleCpus(env))
                               : ref.valueSize;
  if (requireLoaded && ref.fd < 0) {
    throw Napi::Error::New(env, "map " + Quoted(name) + " in " + path_ +
                                    " is not loaded; call load() first");
  }
  return ref;
}

void BpfObject::CheckKey(Napi::Env env, const MapRef& map, const Napi::Buffer<uint8_t>& key) const {
  if (key.Length() != map.keySize) {
    throw Napi::RangeError::New(env, "key for map " + Quoted(map.name) + " must be " +
                                         std::to_string(map.keySize) + " bytes, got " +
                                         std::to_string(key.Length()));
  }
}

Napi::Value BpfObject::Path(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), path_);
}

Napi::Value BpfObject::ProgramNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  Napi::Array names = Napi::Array::New(env);
  bpf_program* program;
  bpf_object__for_each_program(program, object_.get()) {
    names.Set(names.Length(), Napi::String::New(env, bpf_program__name(program)));
  }
  return names;
}

Napi::Value BpfObject::MapNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  Napi::Array names = Napi::Array::New(env);
  bpf_map* map;
  bpf_object__for_each_map(map, object_.get()) {
    names.Set(names.Length(), Napi::String::New(env, bpf_map__name(map)));
  }
  return names;
}

void BpfObject::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  LogScope log(/*debug=*/true);
  PrepareUprobePrograms(object_.get());
  int rc = bpf_object__load(object_.get());
  if (rc != 0) throw SystemError(env, "cannot load BPF object " + path_, -rc);
}

void BpfObject::Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  LogScope log;
  bpf_program* program = FindProgram(env, RequireString(env, info[0], "program"));
  for (Link& link : AttachProgram(env, program, info[1])) links_.push_back(std::move(link));
}

Napi::Value BpfObject::MapInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  LogScope log;
  MapRef map = FindMap(env, info[0], /*requireLoaded=*/false);
  const char* typeName = libbpf_bpf_map_type_str(map.type);
  Napi::Object result = Napi::Object::New(env);
  result.Set("name", map.name);
  result.Set("type", Napi::Number::New(env, map.type));
  result.Set("typeName", typeName ? typeName : "unknown");
  result.Set("keySize", Napi::Number::New(env, map.keySize));
  result.Set("valueSize", Napi::Number::New(env, map.valueSize));
  result.Set("maxEntries", Napi::Number::New(env, map.maxEntries));
  result.Set("perCpu", Napi::Boolean::New(env, map.perCpu));
  return result;
}

void BpfObject::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  LogScope log;
  MapRef map = FindMap(env, info[0], /*requireLoaded=*/true);
  Napi::Buffer<uint8_t> key = RequireBuffer(env, info[1], "key");
  Napi::Buffer<uint8_t> value = RequireBuffer(env, info[2], "value");
  CheckKey(env, map, key);
  if (value.Length() != map.valueStride) {
    throw Napi::RangeError::New(env, "value for map " + Quoted(map.name) + " must be " +
                                         std::to_string(map.valueStride) + " bytes, got " +
                                         std::to_string(value.Length()));
  }
  if (bpf_map_update_elem(map.fd, key.Data(), value.Data(), BPF_ANY) != 0) {
    int err = errno;
    throw SystemError(env, "cannot update map " + Quoted(map.name), err);
  }
}

Napi::Value BpfObject::Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  LogScope log;
  MapRef map = FindMap(env, info[0], /*requireLoaded=*/true);
  Napi::Buffer<uint8_t> key = RequireBuffer(env, info[1], "key");
  CheckKey(env, map, key);
  Napi::Buffer<uint8_t> value = Napi::Buffer<uint8_t>::New(env, map.valueStride);
  if (bpf_map_lookup_elem(map.fd, key.Data(), value.Data()) != 0) {
    int err = errno;
    if (err == ENOENT) return env.Null();
    throw SystemError(env, "cannot look up in map " + Quoted(map.name), err);
  }
  return value;
}

Napi::Value BpfObject::Delete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  LogScope log;
  MapRef map = FindMap(env, info[0], /*requireLoaded=*/true);
  Napi::Buffer<uint8_t> key = RequireBuffer(env, info[1], "key");
  CheckKey(env, map, key);
  if (bpf_map_delete_elem(map.fd, key.Data()) != 0) {
    int err = errno;
    if (err == ENOENT) return Napi::Boolean::New(env, false);
    throw SystemError(env, "cannot delete from map " + Quoted(map.name), err);
  }
  return Napi::Boolean::New(env, true);
}

Napi::Value BpfObject::Dump(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  LogScope log;
  return EntriesToJs(env, DumpMap(env, FindMap(env, info[0], /*requireLoaded=*/true)));
}

Napi::Value BpfObject::Drain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  LogScope log;
  MapRef map = FindMap(env, info[0], /*requireLoaded=*/true);
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    Napi::Buffer<uint8_t> keys = RequireBuffer(env, info[1], "expectedKeys");
    if (keys.Length() % map.keySize != 0) {
      throw Napi::RangeError::New(env, "expectedKeys for map " + Quoted(map.name) + " must be whole " +
                                           std::to_string(map.keySize) + "-byte keys, got " +
                                           std::to_string(keys.Length()) + " bytes");
    }
    return EntriesToJs(env, DrainMap(env, map, keys.Data(), keys.Length()));
  }
  return EntriesToJs(env, DrainMap(env, map));
}

Napi::Value BpfObject::SwapBanks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  LogScope log;
  MapRef map = FindMap(env, Napi::String::New(env, "counter_bank"), /*requireLoaded=*/true);
  if (map.type != BPF_MAP_TYPE_ARRAY || map.keySize != 4 || map.valueSize != 4) {
    throw Napi::Error::New(env, "map \"counter_bank\" in " + path_ + " is not bpf/counter_bank.h's u32 array");
  }
  uint32_t group = 0;
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "group must be a number");
    group = info[0].As<Napi::Number>().Uint32Value();
  }
  if (group >= map.maxEntries) {
    throw Napi::RangeError::New(env, "counter bank group " + std::to_string(group) + " is out of range: " + path_ +
                                         " has " + std::to_string(map.maxEntries));
  }
  uint32_t bank = 0;
  if (bpf_map_lookup_elem(map.fd, &group, &bank) != 0) {
    int err = errno;
    throw SystemError(env, "cannot read map \"counter_bank\"", err);
  }
  bank &= 1;  // the programs read it so
  uint32_t next = bank ^ 1;
  if (bpf_map_update_elem(map.fd, &group, &next, BPF_EXIST) != 0) {
    int err = errno;
    throw SystemError(env, "cannot switch map \"counter_bank\"", err);
  }
  auto* worker = new BankSwapWorker(env, bank);
  Napi::Promise promise = worker->Promise();
  worker->Queue();  // the worker deletes itself after OnOK
  return promise;
}

Napi::Value BpfObject::ProgIds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  LogScope log;
  Napi::Array ids = Napi::Array::New(env);
  bpf_program* program;
  bpf_object__for_each_program(program, object_.get()) {
    int fd = bpf_program__fd(program);
    if (fd < 0) continue;  // not loaded (yet, or autoload disabled)
    bpf_prog_info progInfo;
    std::memset(&progInfo, 0, sizeof(progInfo));
    __u32 length = sizeof(progInfo);
    // libbpf 1.1 predates bpf_prog_get_info_by_fd(); this is its generic form.
    if (bpf_obj_get_info_by_fd(fd, &progInfo, &length) != 0) {
      int err = errno;
      throw SystemError(env, std::string("cannot query program ") + bpf_program__name(program), err);
    }
    ids.Set(ids.Length(), Napi::Number::New(env, progInfo.id));
  }
  return ids;
}

Napi::Value BpfObject::LinkCount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  return Napi::Number::New(env, double(links_.size()));
}

void BpfObject::Close(const Napi::CallbackInfo&) { Release(); }

}  // namespace ebpf

#include "elf_symbolizer.h"

#include <malloc.h>

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "args.h"

namespace ebpf {
namespace {

constexpr int64_t kMaxCacheEntries = int64_t(1) << 32;

constexpr int64_t kMaxPid = int64_t(1) << 22;  // PID_MAX_LIMIT

// "start-end" in lower-case hex, as /proc/PID/map_files names a mapping.
bool IsMapFilesName(const std::string& name) {
  size_t dash = name.find('-');
  return dash != std::string::npos && dash > 0 && dash + 1 < name.size() &&
         name.find_first_not_of("0123456789abcdef-") == std::string::npos && name.find('-', dash + 1) == std::string::npos;
}

std::vector<MappedFileRequest> ReadRequests(Napi::Env env, const Napi::Value& value) {
  if (!value.IsArray()) throw Napi::TypeError::New(env, "requests must be an array");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<MappedFileRequest> requests(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) {
    std::string what = "requests[" + std::to_string(i) + "]";
    Napi::Value item = array.Get(i);
    if (!item.IsObject()) throw Napi::TypeError::New(env, what + " must be an object");
    Napi::Object request = item.As<Napi::Object>();
    requests[i].pid = int(RequireInteger(env, request.Get("pid"), what + ".pid", 1, kMaxPid));
    requests[i].path = RequireString(env, request.Get("path"), what + ".path");
    if (requests[i].path.empty() || requests[i].path[0] != '/') {
      throw Napi::TypeError::New(env, what + ".path must be an absolute path");
    }
    if (IsPresent(request.Get("mapFiles"))) {
      requests[i].mapFiles = RequireString(env, request.Get("mapFiles"), what + ".mapFiles");
      if (!IsMapFilesName(requests[i].mapFiles)) {
        throw Napi::TypeError::New(env, what + ".mapFiles must be \"start-end\" in lower-case hex");
      }
    }
    std::string device = RequireString(env, request.Get("device"), what + ".device");
    if (!ParseMapsDevice(device, &requests[i].identity)) {
      throw Napi::TypeError::New(env, what + ".device must be \"major:minor\" in hex, as in /proc/PID/maps");
    }
    Napi::Value inode = request.Get("inode");
    bool lossless = false;
    if (inode.IsBigInt()) requests[i].identity.inode = inode.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw Napi::TypeError::New(env, what + ".inode must be a bigint in [0, 2^64)");
    Napi::Value offsets = request.Get("fileOffsets");
    if (!offsets.IsTypedArray() ||
        offsets.As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array) {
      throw Napi::TypeError::New(env, what + ".fileOffsets must be a BigUint64Array");
    }
    Napi::TypedArrayOf<uint64_t> typed = offsets.As<Napi::TypedArrayOf<uint64_t>>();
    requests[i].fileOffsets.assign(typed.Data(), typed.Data() + typed.ElementLength());
  }
  return requests;
}

// Runs a batch off the main thread and resolves with the packed result:
// { binaries: [{buildId?, error?}], refusals: {reason: count}, strings, function, file: Int32Array
// (index into strings, -1 = unknown), line: Uint32Array (0 = unknown) },
// the three arrays parallel to the requests' offsets, concatenated.
class SymbolizeWorker : public Napi::AsyncWorker {
 public:
  SymbolizeWorker(Napi::Env env, std::shared_ptr<SymbolCache> cache, std::vector<MappedFileRequest> requests)
      : Napi::AsyncWorker(env, "ebpf:symbolize"),
        deferred_(Napi::Promise::Deferred::New(env)),
        cache_(std::move(cache)),
        requests_(std::move(requests)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    results_.reserve(requests_.size());
    for (const MappedFileRequest& request : requests_) results_.push_back(cache_->Symbolize(request));
    // elfutils frees what a batch decoded (DWARF units, decompressed sections), but
    // glibc keeps freed memory in the thread's arena: give it back between windows.
    malloc_trim(0);
  }

  void OnOK() override {
    Napi::Env env = Env();
    size_t total = 0;
    for (const BinaryResult& result : results_) total += result.symbols.size();
    Napi::Array binaries = Napi::Array::New(env, results_.size());
    Napi::Int32Array functions = Napi::Int32Array::New(env, total);
    Napi::Int32Array files = Napi::Int32Array::New(env, total);
    Napi::Uint32Array lines = Napi::Uint32Array::New(env, total);
    std::unordered_map<std::string, int32_t> stringIndex;
    Napi::Array strings = Napi::Array::New(env);
    auto intern = [&](const std::string& text) -> int32_t {
      if (text.empty()) return -1;
      auto [found, inserted] = stringIndex.emplace(text, int32_t(stringIndex.size()));
      if (inserted) strings.Set(uint32_t(found->second), Napi::String::New(env, text));
      return found->second;
    };
    Napi::Object refusals = Napi::Object::New(env);
    size_t next = 0;
    for (size_t i = 0; i < results_.size(); ++i) {
      const BinaryResult& result = results_[i];
      Napi::Object binary = Napi::Object::New(env);
      if (!result.buildId.empty()) binary.Set("buildId", result.buildId);
      if (!result.error.empty()) binary.Set("error", result.error);
      for (Refusal refusal : result.refusals) {
        const char* reason = RefusalReason(refusal);
        Napi::Value count = refusals.Get(reason);
        refusals.Set(reason, Napi::Number::New(env, (count.IsNumber() ? count.As<Napi::Number>().DoubleValue() : 0) + 1));
      }
      binaries.Set(uint32_t(i), binary);
      for (const SymbolInfo& symbol : result.symbols) {
        functions[next] = intern(symbol.function);
        files[next] = intern(symbol.file);
        lines[next] = symbol.line;
        ++next;
      }
    }
    Napi::Object packed = Napi::Object::New(env);
    packed.Set("binaries", binaries);
    packed.Set("refusals", refusals);
    packed.Set("strings", strings);
    packed.Set("function", functions);
    packed.Set("file", files);
    packed.Set("line", lines);
    deferred_.Resolve(packed);
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<SymbolCache> cache_;
  std::vector<MappedFileRequest> requests_;
  std::vector<BinaryResult> results_;
};

}  // namespace

Napi::Function ElfSymbolizer::Define(Napi::Env env) {
  return DefineClass(env, "ElfSymbolizer",
                     {
                         InstanceMethod<&ElfSymbolizer::Symbolize>("symbolize"),
                         InstanceMethod<&ElfSymbolizer::Stats>("stats"),
                         InstanceMethod<&ElfSymbolizer::Close>("close"),
                     });
}

ElfSymbolizer::ElfSymbolizer(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<ElfSymbolizer>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
  Napi::Object options = info[0].As<Napi::Object>();
  SymbolCacheOptions cacheOptions;
  cacheOptions.maxBinaries =
      size_t(RequireInteger(env, options.Get("maxBinaries"), "maxBinaries", 1, kMaxCacheEntries));
  cacheOptions.maxSymbols =
      size_t(RequireInteger(env, options.Get("maxSymbols"), "maxSymbols", 1, kMaxCacheEntries));
  Napi::Value dirs = options.Get("debugDirs");
  if (!dirs.IsArray()) throw Napi::TypeError::New(env, "debugDirs must be an array of strings");
  Napi::Array dirArray = dirs.As<Napi::Array>();
  for (uint32_t i = 0; i < dirArray.Length(); ++i) {
    std::string what = "debugDirs[" + std::to_string(i) + "]";
    std::string dir = RequireString(env, dirArray.Get(i), what);
    if (dir.empty() || dir[0] != '/' || dir.find(':') != std::string::npos) {
      throw Napi::TypeError::New(env, what + " must be an absolute path without ':'");
    }
    cacheOptions.debugDirs.push_back(std::move(dir));
  }
  cacheOptions.debugCacheDir = RequireString(env, options.Get("debugCacheDir"), "debugCacheDir");
  if (cacheOptions.debugCacheDir.size() < 2 || cacheOptions.debugCacheDir[0] != '/') {
    throw Napi::TypeError::New(env, "debugCacheDir must be an absolute path");
  }
  cacheOptions.debugCacheMaxBytes = uint64_t(RequireInteger(
      env, options.Get("debugCacheMaxBytes"), "debugCacheMaxBytes", 0, int64_t(1) << 50));
  try {
    cache_ = std::make_shared<SymbolCache>(std::move(cacheOptions));
  } catch (const std::runtime_error& failure) {
    throw Napi::Error::New(env, failure.what());  // e.g. a debug-file cache directory others can write
  }
}

Napi::Value ElfSymbolizer::Symbolize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!cache_) throw Napi::Error::New(env, "ElfSymbolizer is closed");
  auto* worker = new SymbolizeWorker(env, cache_, ReadRequests(env, info[0]));
  Napi::Promise promise = worker->Promise();
  worker->Queue();  // the worker deletes itself after OnOK/OnError
  return promise;
}

Napi::Value ElfSymbolizer::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object stats = Napi::Object::New(env);
  SymbolCacheStats counts = cache_ ? cache_->Stats() : SymbolCacheStats{0, 0};
  stats.Set("binaries", Napi::Number::New(env, double(counts.binaries)));
  stats.Set("symbols", Napi::Number::New(env, double(counts.symbols)));
  return stats;
}

void ElfSymbolizer::Close(const Napi::CallbackInfo&) { cache_.reset(); }

}  // namespace ebpf

#include "args.h"

#include <cmath>

namespace ebpf {

bool IsPresent(const Napi::Value& value) { return !value.IsUndefined() && !value.IsNull(); }

std::string RequireString(Napi::Env env, const Napi::Value& value, const std::string& what) {
  if (!value.IsString()) throw Napi::TypeError::New(env, what + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

bool RequireBoolean(Napi::Env env, const Napi::Value& value, const std::string& what) {
  if (!value.IsBoolean()) throw Napi::TypeError::New(env, what + " must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

int64_t RequireInteger(Napi::Env env, const Napi::Value& value, const std::string& what,
                       int64_t min, int64_t max) {
  if (!value.IsNumber()) throw Napi::TypeError::New(env, what + " must be a number");
  double number = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(number) || std::trunc(number) != number || number < double(min) ||
      number > double(max)) {
    throw Napi::RangeError::New(env, what + " must be an integer in [" + std::to_string(min) +
                                         ", " + std::to_string(max) + "]");
  }
  return int64_t(number);
}

Napi::Buffer<uint8_t> RequireBuffer(Napi::Env env, const Napi::Value& value,
                                    const std::string& what) {
  if (!value.IsBuffer()) throw Napi::TypeError::New(env, what + " must be a Buffer");
  return value.As<Napi::Buffer<uint8_t>>();
}

}  // namespace ebpf

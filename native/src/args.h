// Validation of JS arguments; failures throw TypeError/RangeError.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace ebpf {

// False for undefined and null, i.e. an optional field that was left out.
bool IsPresent(const Napi::Value& value);

std::string RequireString(Napi::Env env, const Napi::Value& value, const std::string& what);

bool RequireBoolean(Napi::Env env, const Napi::Value& value, const std::string& what);

// A JS number that is an integer within [min, max].
int64_t RequireInteger(Napi::Env env, const Napi::Value& value, const std::string& what,
                       int64_t min, int64_t max);

Napi::Buffer<uint8_t> RequireBuffer(Napi::Env env, const Napi::Value& value,
                                    const std::string& what);

}  // namespace ebpf

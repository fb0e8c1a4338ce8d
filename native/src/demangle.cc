#include "demangle.h"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>

namespace ebpf {
namespace {

constexpr size_t kRustHashDigits = 16;

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// Rust's legacy mangling is Itanium's with a last path component `17h<16 hex>E`.
bool HasRustLegacyHash(const std::string& symbol) {
  const std::string::size_type suffix = 2 + 1 + kRustHashDigits + 1;  // "17" "h" hex "E"
  if (symbol.size() < suffix + 3 || symbol.back() != 'E') return false;
  std::string::size_type start = symbol.size() - suffix;
  if (symbol.compare(start, 3, "17h") != 0) return false;
  for (std::string::size_type i = start + 3; i < symbol.size() - 1; ++i) {
    if (!IsLowerHex(symbol[i])) return false;
  }
  return true;
}

}  // namespace

std::string Demangle(const std::string& symbol) {
  if (symbol.compare(0, 2, "_Z") != 0) return symbol;
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> demangled(
      abi::__cxa_demangle(symbol.c_str(), nullptr, nullptr, &status), &std::free);
  if (status != 0 || !demangled) return symbol;
  std::string name(demangled.get());
  if (HasRustLegacyHash(symbol)) name.resize(name.size() - (2 + 1 + kRustHashDigits));  // "::h" hex
  return name;
}

}  // namespace ebpf

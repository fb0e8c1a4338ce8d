// Readable names for mangled C++ and Rust (legacy scheme) symbols.
#pragma once

#include <string>

namespace ebpf {

// `_ZN2ns5Klass6methodEi` → `ns::Klass::method(int)`; Rust legacy symbols lose
// their `::h<16 hex>` hash suffix. Anything else is returned unchanged.
std::string Demangle(const std::string& symbol);

}  // namespace ebpf

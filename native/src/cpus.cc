#include "cpus.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "diagnostics.h"

namespace ebpf {
namespace {

constexpr const char* kOnlinePath = "/sys/devices/system/cpu/online";

bool ParseCpuList(const std::string& text, std::vector<int>& cpus) {
  std::stringstream ranges(text);
  std::string range;
  while (std::getline(ranges, range, ',')) {
    if (range.empty()) continue;
    size_t dash = range.find('-');
    try {
      int first = std::stoi(range.substr(0, dash));
      int last = dash == std::string::npos ? first : std::stoi(range.substr(dash + 1));
      if (first < 0 || last < first) return false;
      for (int cpu = first; cpu <= last; ++cpu) cpus.push_back(cpu);
    } catch (const std::logic_error&) {
      return false;
    }
  }
  return !cpus.empty();
}

}  // namespace

int PossibleCpus(Napi::Env env) {
  int count = libbpf_num_possible_cpus();
  if (count < 0) throw SystemError(env, "cannot count possible CPUs", -count);
  return count;
}

std::vector<int> OnlineCpus(Napi::Env env) {
  std::ifstream file(kOnlinePath);
  std::string text;
  if (!file || !std::getline(file, text)) {
    throw SystemError(env, std::string("cannot read ") + kOnlinePath, errno ? errno : EIO);
  }
  std::vector<int> cpus;
  if (!ParseCpuList(text, cpus)) {
    throw Napi::Error::New(env, std::string("cannot parse ") + kOnlinePath + ": \"" + text + "\"");
  }
  return cpus;
}

}  // namespace ebpf

#include "diagnostics.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <deque>

namespace ebpf {
namespace {

constexpr size_t kMaxLines = 40;       // enough for the verifier's final words
constexpr size_t kMaxLineLength = 1024;
constexpr int kENOTSUPP = 524;         // kernel-internal, strerror() does not know it

// libbpf calls the print callback synchronously on the calling thread, so a
// thread-local buffer keeps worker threads from mixing their logs.
struct CapturedLog {
  std::deque<std::string> lines;
  bool lastLineOpen = false;  // previous message did not end with '\n'
  bool debug = false;
};
thread_local CapturedLog tlsLog;

void AppendLine(std::string line) {
  static const std::string kPrefix = "libbpf: ";
  if (line.compare(0, kPrefix.size(), kPrefix) == 0) line.erase(0, kPrefix.size());
  if (line.size() > kMaxLineLength) line.resize(kMaxLineLength);
  tlsLog.lines.push_back(std::move(line));
  if (tlsLog.lines.size() > kMaxLines) tlsLog.lines.pop_front();
}

void AppendText(const std::string& text) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    bool complete = end != std::string::npos;
    std::string piece = text.substr(start, complete ? end - start : std::string::npos);
    if (tlsLog.lastLineOpen && !tlsLog.lines.empty()) {
      tlsLog.lines.back() += piece;
    } else {
      AppendLine(std::move(piece));
    }
    tlsLog.lastLineOpen = !complete;
    start = complete ? end + 1 : text.size();
  }
}

int PrintCallback(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG && !tlsLog.debug) return 0;
  va_list sizing;
  va_copy(sizing, args);
  int length = std::vsnprintf(nullptr, 0, format, sizing);
  va_end(sizing);
  if (length <= 0) return 0;
  try {  // must not unwind through libbpf's C frames
    std::string text(static_cast<size_t>(length), '\0');
    std::vsnprintf(text.data(), text.size() + 1, format, args);
    AppendText(text);
  } catch (...) {
  }
  return length;
}

std::string CapturedText() {
  std::string joined;
  for (const std::string& line : tlsLog.lines) {
    if (line.empty()) continue;
    if (!joined.empty()) joined += '\n';
    joined += line;
  }
  return joined;
}

}  // namespace

void InstallLibbpfLogCapture() { libbpf_set_print(PrintCallback); }

LogScope::LogScope(bool debug) {
  tlsLog.lines.clear();
  tlsLog.lastLineOpen = false;
  tlsLog.debug = debug;
}

LogScope::~LogScope() { tlsLog.debug = false; }

std::string ErrnoString(int err) {
  if (err == kENOTSUPP) return "Operation not supported (ENOTSUPP)";
  char buffer[256];
  if (libbpf_strerror(err, buffer, sizeof(buffer)) != 0) {
    return "Unknown error " + std::to_string(err);
  }
  return buffer;
}

Napi::Error SystemError(Napi::Env env, const std::string& what, int err) {
  std::string message = what + ": " + ErrnoString(err);
  std::string log = CapturedText();
  if (!log.empty()) message += "; libbpf: " + log;
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("errno", Napi::Number::New(env, err));
  return error;
}

}  // namespace ebpf

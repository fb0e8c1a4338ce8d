#include "mapped_file.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ebpf {
namespace {

// Non-blocking: opening a FIFO must not wait for a writer before the type check rejects it.
constexpr int kReadFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;

OpenedFile Checked(int fd, const std::string& what) {
  OpenedFile opened;
  if (fd < 0) {
    opened.error = "cannot open " + what + ": " + std::strerror(errno);
    if (errno == ELOOP) opened.refusal = Refusal::kUnsafePath;  // RESOLVE_NO_MAGICLINKS met one
    return opened;
  }
  opened.fd = UniqueFd(fd);
  if (fstat(fd, &opened.status) != 0) {
    opened.error = "cannot stat " + what + ": " + std::strerror(errno);
    opened.fd = UniqueFd();
  } else if (!S_ISREG(opened.status.st_mode)) {
    opened.error = what + " is not a regular file";
    opened.refusal = Refusal::kNotRegular;
    opened.fd = UniqueFd();
  }
  return opened;
}

}  // namespace

const char* RefusalReason(Refusal refusal) {
  switch (refusal) {
    case Refusal::kNone: return "none";
    case Refusal::kReplaced: return "replaced";
    case Refusal::kNotRegular: return "not_regular";
    case Refusal::kUnsafePath: return "unsafe_path";
    case Refusal::kOpenat2Unavailable: return "openat2_unavailable";
    case Refusal::kDebuglinkName: return "debuglink_name";
    case Refusal::kDebuglinkTooLarge: return "debuglink_too_large";
  }
  return "unknown";
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.Release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) close(fd_);
}

int UniqueFd::Release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

bool ParseMapsDevice(const std::string& device, MappedIdentity* identity) {
  unsigned major = 0, minor = 0;
  int consumed = 0;
  if (std::sscanf(device.c_str(), "%x:%x%n", &major, &minor, &consumed) != 2 || size_t(consumed) != device.size()) {
    return false;
  }
  identity->major = major;
  identity->minor = minor;
  return true;
}

std::string ToString(const MappedIdentity& identity) {
  char text[64];
  std::snprintf(text, sizeof text, "%02x:%02x %" PRIu64, identity.major, identity.minor, identity.inode);
  return text;
}

UniqueFd OpenProcessRoot(int pid, std::string* error) {
  std::string path = "/proc/" + std::to_string(pid) + "/root";
  int fd = open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) *error = "cannot open " + path + ": " + std::strerror(errno);
  return UniqueFd(fd);
}

OpenedFile OpenInRoot(int rootFd, const std::string& path) {
  open_how how{};
  how.flags = kReadFlags;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  // EAGAIN (a rename raced with a ".."; the kernel asks for a retry) fails this batch's lookup; the next retries.
  int fd = int(syscall(SYS_openat2, rootFd, path.c_str(), &how, sizeof how));
  if (fd < 0 && errno == ENOSYS) {
    OpenedFile refused;
    refused.refusal = Refusal::kOpenat2Unavailable;
    refused.error = "openat2 is unavailable (Linux 5.6+ and a seccomp profile that allows it are needed): " + path +
                    " is not opened inside the process's root without it";
    return refused;
  }
  return Checked(fd, path);
}

OpenedFile OpenTrusted(const std::string& path) { return Checked(open(path.c_str(), kReadFlags), path); }

bool MappedIdentityOf(int fd, MappedIdentity* identity, std::string* error) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  void* mapping = mmap(nullptr, page, PROT_READ, MAP_PRIVATE, fd, 0);
  if (mapping == MAP_FAILED) {
    *error = std::string("cannot map the file to check its identity: ") + std::strerror(errno);
    return false;
  }
  char prefix[32];
  int prefixLength = std::snprintf(prefix, sizeof prefix, "%" PRIxPTR "-", uintptr_t(mapping));
  bool found = false;
  if (FILE* maps = std::fopen("/proc/self/maps", "re")) {
    char* line = nullptr;
    size_t capacity = 0;
    while (!found && getline(&line, &capacity, maps) > 0) {
      if (std::strncmp(line, prefix, size_t(prefixLength)) != 0) continue;
      unsigned major = 0, minor = 0;
      unsigned long long inode = 0;
      // start-end perms offset major:minor inode
      found = std::sscanf(line, "%*s %*s %*s %x:%x %llu", &major, &minor, &inode) == 3;
      identity->major = major;
      identity->minor = minor;
      identity->inode = inode;
    }
    std::free(line);
    std::fclose(maps);
  }
  munmap(mapping, page);
  if (!found) *error = "cannot find the file's own mapping in /proc/self/maps";
  return found;
}

}  // namespace ebpf

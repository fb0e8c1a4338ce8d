// Opening a file that another process has mapped, without trusting that
// process: its path is resolved inside the process's own root (a container's
// files, and symlinks planted among them, cannot lead outside it), only a
// regular file is accepted, and the file must be the one the kernel reports
// as mapped (device and inode in /proc/PID/maps), not whatever the path names
// now.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>

namespace ebpf {

// Why a file was not read, as counted in telemetry; kNone when it was.
enum class Refusal {
  kNone,
  kReplaced,            // the path names another file than the mapped one
  kNotRegular,          // a FIFO, device or directory
  kUnsafePath,          // a magic link (/proc/PID/root/...) or a symlink loop on the way
  kOpenat2Unavailable,  // kernel before 5.6, or a seccomp profile without openat2
  kDebuglinkName,       // a .gnu_debuglink name that is a path, not a file name
  kDebuglinkTooLarge,   // a .gnu_debuglink candidate too large to read whole for its CRC
};

const char* RefusalReason(Refusal refusal);

// An owned file descriptor, closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int Release();

 private:
  int fd_ = -1;
};

// Device and inode as /proc/PID/maps prints them ("fd:01 1234").
struct MappedIdentity {
  uint32_t major = 0;
  uint32_t minor = 0;
  uint64_t inode = 0;
  bool operator==(const MappedIdentity& other) const {
    return major == other.major && minor == other.minor && inode == other.inode;
  }
};

// Parses the device column of /proc/PID/maps ("fd:01", hex); false if malformed.
bool ParseMapsDevice(const std::string& device, MappedIdentity* identity);

std::string ToString(const MappedIdentity& identity);

// The result of an open: a file descriptor, or the refusal or error that prevented it.
struct OpenedFile {
  UniqueFd fd;
  struct stat status {};
  Refusal refusal = Refusal::kNone;
  std::string error;  // set when fd is not
};

// An O_PATH descriptor of /proc/PID/root: the process's root directory.
UniqueFd OpenProcessRoot(int pid, std::string* error);

// `path` (absolute or relative) resolved inside `rootFd` with openat2's
// RESOLVE_IN_ROOT ("/" and ".." stop at that root, absolute symlinks start
// from it) and RESOLVE_NO_MAGICLINKS; opened read-only, non-blocking, and
// accepted only if it is a regular file.
OpenedFile OpenInRoot(int rootFd, const std::string& path);

// A regular file opened at a path the collector itself trusts (a configured
// debug directory, /proc/PID/map_files): non-blocking, never a FIFO or device.
OpenedFile OpenTrusted(const std::string& path);

// How the kernel names the file open as `fd` in a mapping: the device and
// inode of a one-page mapping of it, read back from /proc/self/maps. fstat
// can disagree with /proc/PID/maps (on some kernels overlayfs shows the
// underlying layer's file in maps, its own in fstat; btrfs subvolumes differ
// in device), so the comparison is made in maps' own terms.
bool MappedIdentityOf(int fd, MappedIdentity* identity, std::string* error);

}  // namespace ebpf

// Runs a program inside ROOT the way container runtimes do: in a new mount
// namespace whose root is ROOT (pivot_root, the old root detached), so that
// /proc/PID/root is ROOT and /proc/PID/maps shows paths inside it. Mounts a
// procfs at ROOT/proc if that directory exists.
// Usage: contain ROOT PROGRAM [ARGS...], PROGRAM as seen inside ROOT.
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fail(const char* what) {
  perror(what);
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s ROOT PROGRAM [ARGS...]\n", argv[0]);
    return 2;
  }
  if (unshare(CLONE_NEWNS) != 0) return fail("unshare");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return fail("make / private");
  if (mount(argv[1], argv[1], NULL, MS_BIND | MS_REC, NULL) != 0) return fail("bind ROOT");
  if (chdir(argv[1]) != 0) return fail("chdir ROOT");
  if (access("proc", F_OK) == 0 && mount("proc", "proc", "proc", 0, NULL) != 0) return fail("mount proc");
  if (syscall(SYS_pivot_root, ".", ".") != 0) return fail("pivot_root");
  if (umount2(".", MNT_DETACH) != 0) return fail("detach the old root");
  if (chdir("/") != 0) return fail("chdir /");
  execv(argv[2], argv + 2);
  return fail("execv");
}

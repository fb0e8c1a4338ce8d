/*
 * syscall_mix GETPPIDS FAILING_OPENS: once a byte arrives on stdin, makes
 * exactly GETPPIDS getppid calls and FAILING_OPENS openat calls on a missing
 * path (each fails with ENOENT), then exits. Prints "ready" when it waits, so
 * a test can attach first: everything before (the dynamic loader's own
 * syscalls) is then out of the count.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MISSING_PATH "/nonexistent/ebpf-collector-syscall-mix"

int main(int argc, char **argv)
{
	char go;

	if (argc != 3) {
		fprintf(stderr, "usage: %s GETPPIDS FAILING_OPENS\n", argv[0]);
		return 2;
	}
	long getppids = atol(argv[1]), failing_opens = atol(argv[2]);

	if (write(STDOUT_FILENO, "ready\n", 6) != 6 || read(STDIN_FILENO, &go, 1) != 1)
		return 1;
	/* syscall() directly: libc must not answer from a cache. */
	for (long i = 0; i < getppids; i++)
		syscall(SYS_getppid);
	for (long i = 0; i < failing_opens; i++)
		if (syscall(SYS_openat, AT_FDCWD, MISSING_PATH, O_RDONLY) != -1 || errno != ENOENT)
			return 1;
	return 0;
}

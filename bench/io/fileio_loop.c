/*
 * fileio_loop pread PATH CALLS | getppid CALLS: makes CALLS 4 KiB preads of
 * PATH at offset 0 (from the page cache after the warm-up) or CALLS getppid
 * syscalls in a tight loop, and prints the mean time per call in nanoseconds.
 * The time is the thread's CPU time (user + system, which includes the BPF
 * programs the syscall runs), so waiting for a CPU on a busy machine is not
 * counted.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WARM_UP_CALLS 10000

static char buffer[4096];

static double elapsed_ns(const struct timespec *start, const struct timespec *end)
{
	return (end->tv_sec - start->tv_sec) * 1e9 + (end->tv_nsec - start->tv_nsec);
}

int main(int argc, char **argv)
{
	struct timespec start, end;
	long calls;
	int fd = -1;

	if (argc == 4 && !strcmp(argv[1], "pread")) {
		fd = open(argv[2], O_RDONLY);
		if (fd < 0) {
			perror(argv[2]);
			return 1;
		}
		calls = atol(argv[3]);
	} else if (argc == 3 && !strcmp(argv[1], "getppid")) {
		calls = atol(argv[2]);
	} else {
		fprintf(stderr, "usage: %s pread PATH CALLS | getppid CALLS\n", argv[0]);
		return 2;
	}
	if (calls <= 0)
		return 2;
	for (long i = 0; i < WARM_UP_CALLS; i++) {
		if (fd >= 0 ? pread(fd, buffer, sizeof(buffer), 0) != sizeof(buffer) : syscall(SYS_getppid) < 0) {
			perror("warm-up");
			return 1;
		}
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
	if (fd >= 0) {
		for (long i = 0; i < calls; i++)
			pread(fd, buffer, sizeof(buffer), 0);
	} else {
		/* syscall() directly: libc must not answer from a cache. */
		for (long i = 0; i < calls; i++)
			syscall(SYS_getppid);
	}
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end);
	printf("%.1f\n", elapsed_ns(&start, &end) / calls);
	return 0;
}

/*
 * getppid_loop [CALLS]: makes CALLS (default 5M) getppid syscalls in a tight
 * loop and prints the mean time per call in nanoseconds. The time is the
 * thread's CPU time (user + system, which includes the BPF programs the
 * syscall runs), so that time spent waiting for a CPU on a busy machine is
 * not counted.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WARM_UP_CALLS 10000

int main(int argc, char **argv)
{
	long calls = argc > 1 ? atol(argv[1]) : 5000000;
	struct timespec start, end;

	if (calls <= 0) {
		fprintf(stderr, "usage: %s [CALLS]\n", argv[0]);
		return 2;
	}
	for (long i = 0; i < WARM_UP_CALLS; i++)
		syscall(SYS_getppid);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
	/* syscall() directly: libc must not answer from a cache. */
	for (long i = 0; i < calls; i++)
		syscall(SYS_getppid);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end);
	printf("%.1f\n", ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / calls);
	return 0;
}

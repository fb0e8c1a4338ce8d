/*
 * sleep_loop COUNT MILLISECONDS: once a byte arrives on stdin, sleeps COUNT
 * times for MILLISECONDS with the nanosleep syscall itself (glibc's
 * nanosleep() would use clock_nanosleep), then exits. Prints "ready" when it
 * waits.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char go;

	if (argc != 3) {
		fprintf(stderr, "usage: %s COUNT MILLISECONDS\n", argv[0]);
		return 2;
	}
	long count = atol(argv[1]), ms = atol(argv[2]);
	struct timespec interval = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	if (write(STDOUT_FILENO, "ready\n", 6) != 6 || read(STDIN_FILENO, &go, 1) != 1)
		return 1;
	for (long i = 0; i < count; i++)
		if (syscall(SYS_nanosleep, &interval, NULL) != 0)
			return 1;
	return 0;
}

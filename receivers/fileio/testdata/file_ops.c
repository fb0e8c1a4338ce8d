/*
 * file_ops MODE ARGS: prints "ready", waits for a byte on stdin, then makes
 * an exact number of file syscalls and exits 0.
 *   sync PATH M     M times: pwrite 4 KiB to PATH, fsync; then M fdatasyncs, M fstats (glibc: newfstatat or statx with AT_EMPTY_PATH)
 *   virtual N       N preads of /proc/self/stat, N 1-byte reads from a pipe, N fstats of the pipe
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void check(int ok, const char *what)
{
	if (!ok) {
		perror(what);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	char go, buffer[4096];

	if (argc < 3 || (strcmp(argv[1], "sync") && strcmp(argv[1], "virtual")) || (!strcmp(argv[1], "sync") && argc < 4)) {
		fprintf(stderr, "usage: %s sync PATH M | virtual N\n", argv[0]);
		return 2;
	}
	printf("ready\n");
	fflush(stdout);
	check(read(0, &go, 1) == 1, "read stdin");

	if (!strcmp(argv[1], "sync")) {
		long m = atol(argv[3]);
		struct stat st;
		int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);

		check(fd >= 0, "open");
		memset(buffer, 'x', sizeof(buffer));
		for (long i = 0; i < m; i++) {
			check(pwrite(fd, buffer, sizeof(buffer), i * sizeof(buffer)) == sizeof(buffer), "pwrite");
			check(fsync(fd) == 0, "fsync");
		}
		for (long i = 0; i < m; i++)
			check(fdatasync(fd) == 0, "fdatasync");
		for (long i = 0; i < m; i++)
			check(fstat(fd, &st) == 0, "fstat");
		check(close(fd) == 0, "close");
	} else {
		long n = atol(argv[2]);
		int proc = open("/proc/self/stat", O_RDONLY), pipes[2];
		struct stat st;

		check(proc >= 0, "open /proc/self/stat");
		check(pipe(pipes) == 0, "pipe");
		for (long i = 0; i < n; i++) {
			check(pread(proc, buffer, sizeof(buffer), 0) > 0, "pread /proc");
			check(write(pipes[1], "x", 1) == 1, "write pipe");
			check(read(pipes[0], buffer, 1) == 1, "read pipe");
			check(fstat(pipes[0], &st) == 0, "fstat pipe");
		}
	}
	return 0;
}

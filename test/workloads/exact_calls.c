/*
 * Does an exact number of one thing, so that tests can expect exact counts:
 *
 *   exact_calls getppid N          N getppid() syscalls
 *   exact_calls enoent N           N openat() calls that fail with ENOENT
 *   exact_calls exec N             N children, each one execve() of this program ("exit": exits at once)
 *   exact_calls connect PORT N     N TCP connects to 127.0.0.1:PORT, each closed with a reset (no TIME_WAIT)
 *   exact_calls exit               nothing
 *   exact_calls wait ...           any of the above once a byte arrives on stdin (so a test can watch its pid first)
 *
 * Its comm is its file name, "exact_calls", which tests filter on. It prints
 * nothing and exits 0 only if every call did what was asked (a connect that
 * failed, an open that did not fail with ENOENT, a child that did not exit 0:
 * exit 1), so that a test knows the count it expects really happened.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long count_arg(const char *text)
{
	char *end;
	long n = strtol(text, &end, 10);

	if (*text == '\0' || *end != '\0' || n < 0) {
		fprintf(stderr, "exact_calls: not a count: %s\n", text);
		exit(2);
	}
	return n;
}

static int do_getppid(long n)
{
	/* The raw syscall: no libc may answer it from a cache. */
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
	return 0;
}

static int do_enoent(long n)
{
	for (long i = 0; i < n; i++) {
		int fd = syscall(SYS_openat, AT_FDCWD, "/nonexistent-exact-calls/file", O_RDONLY);

		if (fd >= 0 || errno != ENOENT) {
			fprintf(stderr, "exact_calls: open %ld did not fail with ENOENT\n", i);
			return 1;
		}
	}
	return 0;
}

static int do_exec(long n)
{
	/* By its own path, not /proc/self/exe: the comm an exec gives is the file name it is given. */
	char self[4096];
	ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (length < 0) {
		perror("exact_calls: readlink /proc/self/exe");
		return 1;
	}
	self[length] = '\0';
	for (long i = 0; i < n; i++) {
		int status;
		pid_t child = fork();

		if (child < 0) {
			perror("exact_calls: fork");
			return 1;
		}
		if (child == 0) {
			execl(self, "exact_calls", "exit", (char *)NULL);
			_exit(127);
		}
		if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "exact_calls: exec %ld failed\n", i);
			return 1;
		}
	}
	return 0;
}

static int do_connect(long port, long n)
{
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct linger reset = { .l_onoff = 1, .l_linger = 0 };

	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (long i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
			fprintf(stderr, "exact_calls: connect %ld: %s\n", i, strerror(errno));
			return 1;
		}
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
		close(fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	char go;

	if (argc > 2 && strcmp(argv[1], "wait") == 0) {
		if (read(STDIN_FILENO, &go, 1) != 1)
			return 1;
		argc--;
		argv++;
	}
	if (argc == 2 && strcmp(argv[1], "exit") == 0)
		return 0;
	if (argc == 3 && strcmp(argv[1], "getppid") == 0)
		return do_getppid(count_arg(argv[2]));
	if (argc == 3 && strcmp(argv[1], "enoent") == 0)
		return do_enoent(count_arg(argv[2]));
	if (argc == 3 && strcmp(argv[1], "exec") == 0)
		return do_exec(count_arg(argv[2]));
	if (argc == 4 && strcmp(argv[1], "connect") == 0)
		return do_connect(count_arg(argv[2]), count_arg(argv[3]));
	fprintf(stderr, "usage: exact_calls [wait] getppid N | enoent N | exec N | connect PORT N | exit\n");
	return 2;
}

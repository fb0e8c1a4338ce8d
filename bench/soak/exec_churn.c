/*
 * Starts RATE short-lived processes per second (fork + exec of the given
 * command), paced on an absolute clock so a slow fork does not lower the rate,
 * reaping them as they exit; prints how many it started when stopped.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;

static void stop(int signal)
{
	(void)signal;
	stopping = 1;
}

int main(int argc, char **argv)
{
	struct timespec next;
	unsigned long started = 0;
	long rate;

	if (argc < 3 || (rate = strtol(argv[1], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: %s RATE COMMAND [ARG...]\n", argv[0]);
		return 2;
	}
	signal(SIGTERM, stop);
	signal(SIGINT, stop);
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!stopping) {
		pid_t child = fork();
		if (child == 0) {
			execvp(argv[2], argv + 2);
			_exit(127);
		}
		if (child > 0)
			started++;
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		next.tv_nsec += 1000000000L / rate;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR && !stopping)
			;
	}
	while (wait(NULL) > 0)
		;
	printf("%lu\n", started);
	return 0;
}

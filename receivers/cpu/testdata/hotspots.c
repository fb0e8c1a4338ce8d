/*
 * A CPU-bound workload with a known profile: until it has used the given CPU
 * seconds (so a busy machine slows it down but does not shorten its profile)
 * it calls hot_a, hot_b and hot_c with 6, 3 and 1 units of the same work, so
 * a profiler should see them at 60%, 30% and 10%. It starts when a line
 * arrives on stdin (so a profiler can attach first), and prints the CPU
 * seconds it used from then on. Given "hold" after the seconds, it then waits
 * for the end of stdin before exiting, so that its mappings can still be read
 * when the last samples are symbolized.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define UNIT_ITERATIONS 100000L

static volatile unsigned long sink;

#define SPIN(units)                                                     \
	for (volatile long i = 0; i < (units) * UNIT_ITERATIONS; i++)  \
		sink += i

__attribute__((noinline)) void hot_a(long units) { SPIN(units); }
__attribute__((noinline)) void hot_b(long units) { SPIN(units); }
__attribute__((noinline)) void hot_c(long units) { SPIN(units); }

static double now(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 3;
	char line[16];

	if (!fgets(line, sizeof(line), stdin))
		return 1;
	double cpu_start = now(CLOCK_PROCESS_CPUTIME_ID);
	double end = cpu_start + seconds;
	while (now(CLOCK_PROCESS_CPUTIME_ID) < end) {
		hot_a(6);
		hot_b(3);
		hot_c(1);
	}
	printf("%.6f\n", now(CLOCK_PROCESS_CPUTIME_ID) - cpu_start);
	fflush(stdout);
	if (argc > 2 && strcmp(argv[2], "hold") == 0)
		while (fgets(line, sizeof(line), stdin))
			;
	return 0;
}

/*
 * A CPU-bound workload whose stack is deeper than a profiler can record: it
 * recurses 300 levels, then spins. It starts when a line arrives on stdin,
 * stops after the given CPU seconds, and prints the CPU seconds it used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define DEPTH 300

static volatile unsigned long sink;

static double now(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static void recurse(int depth, double end)
{
	if (depth > 0) {
		recurse(depth - 1, end);
		sink++;
		return;
	}
	while (now(CLOCK_PROCESS_CPUTIME_ID) < end)
		for (volatile long i = 0; i < 100000; i++)
			sink += i;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 3;
	char line[16];

	if (!fgets(line, sizeof(line), stdin))
		return 1;
	double cpu_start = now(CLOCK_PROCESS_CPUTIME_ID);
	recurse(DEPTH, cpu_start + seconds);
	printf("%.6f\n", now(CLOCK_PROCESS_CPUTIME_ID) - cpu_start);
	return 0;
}

/*
 * A CPU-bound workload with a great many distinct stacks: it recurses
 * DEPTH levels through eight functions chosen at random, then spins briefly,
 * so nearly every sample has a stack never seen before. It starts when a line
 * arrives on stdin, stops after the given CPU seconds, and prints the CPU
 * seconds it used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define DEPTH 12
#define LEAF_ITERATIONS 20000L

static volatile unsigned long sink;
static unsigned int seed = 1;

static void descend(int depth);

#define STEP(name) \
	__attribute__((noinline)) static void name(int depth) { descend(depth - 1); sink++; }
STEP(f0) STEP(f1) STEP(f2) STEP(f3) STEP(f4) STEP(f5) STEP(f6) STEP(f7)

static void (*const steps[8])(int) = { f0, f1, f2, f3, f4, f5, f6, f7 };

__attribute__((noinline)) static void descend(int depth)
{
	if (depth == 0) {
		for (volatile long i = 0; i < LEAF_ITERATIONS; i++)
			sink += i;
		return;
	}
	steps[rand_r(&seed) % 8](depth);
}

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
	while (now(CLOCK_PROCESS_CPUTIME_ID) < end)
		descend(DEPTH);
	printf("%.6f\n", now(CLOCK_PROCESS_CPUTIME_ID) - cpu_start);
	return 0;
}

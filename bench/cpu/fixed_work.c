/*
 * A fixed amount of CPU work in a two-deep call chain (built with frame
 * pointers, so a callchain walk has frames to follow); prints the seconds it
 * took. bench/cpu/sampling-cost.sh times it with and without a sampler.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

__attribute__((noinline)) static void add_up(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		sink += i;
}

__attribute__((noinline)) static void work(unsigned long rounds)
{
	for (unsigned long r = 0; r < rounds; r++)
		add_up(1000000);
}

int main(int argc, char **argv)
{
	struct timespec start, end;

	if (argc != 2) {
		fprintf(stderr, "usage: %s ROUNDS (of a million additions)\n", argv[0]);
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	work(strtoul(argv[1], NULL, 10));
	clock_gettime(CLOCK_MONOTONIC, &end);
	printf("%.6f\n", (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9);
	return 0;
}

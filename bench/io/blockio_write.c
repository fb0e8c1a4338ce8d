/*
 * blockio_write DEVICE [REQUESTS]: writes REQUESTS (default 20000) 4 KiB blocks
 * to DEVICE with O_DIRECT, one synchronous pwrite at a time, cycling over the
 * device's first 16 MiB, in chunks of CHUNK writes, and prints the mean wall
 * time per write of the fastest chunk, in nanoseconds. Each write is one
 * block request whose submit, issue and completion (and every BPF program on
 * them) lie on the writer's critical path, so added tracing shows up as added
 * time per request. Other load on the machine only ever slows a chunk down:
 * the fastest chunk is the one it disturbed least.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define SPAN_BLOCKS 4096 /* 16 MiB */
#define WARM_UP_WRITES 1000
#define CHUNK 500

static int write_blocks(int fd, const void *buffer, long count)
{
	for (long i = 0; i < count; i++)
		if (pwrite(fd, buffer, BLOCK, (off_t)(i % SPAN_BLOCKS) * BLOCK) != BLOCK) {
			perror("pwrite");
			return -1;
		}
	return 0;
}

int main(int argc, char **argv)
{
	long requests = argc > 2 ? atol(argv[2]) : 20000;
	struct timespec start, end;
	double fastest = 0;
	void *buffer;
	int fd;

	if (argc < 2 || requests <= 0) {
		fprintf(stderr, "usage: %s DEVICE [REQUESTS]\n", argv[0]);
		return 2;
	}
	fd = open(argv[1], O_WRONLY | O_DIRECT);
	if (fd < 0 || posix_memalign(&buffer, BLOCK, BLOCK)) {
		perror(argv[1]);
		return 1;
	}
	memset(buffer, 0xab, BLOCK);
	if (write_blocks(fd, buffer, WARM_UP_WRITES))
		return 1;
	for (long done = 0; done < requests; done += CHUNK) {
		double ns;

		clock_gettime(CLOCK_MONOTONIC, &start);
		if (write_blocks(fd, buffer, CHUNK))
			return 1;
		clock_gettime(CLOCK_MONOTONIC, &end);
		ns = ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / CHUNK;
		if (!fastest || ns < fastest)
			fastest = ns;
	}
	printf("%.1f\n", fastest);
	return 0;
}

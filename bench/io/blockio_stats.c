/*
 * blockio_stats: turns on the kernel's BPF run-time statistics (run_time_ns,
 * run_cnt per program) through BPF_ENABLE_STATS, prints "on", and keeps them
 * on until its stdin closes. Unlike the kernel.bpf_stats_enabled sysctl, the
 * kernel counts this holder apart, so others who use the sysctl are not
 * switched off under them.
 */
#include <linux/bpf.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
	union bpf_attr attr;
	char byte;
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.enable_stats.type = BPF_STATS_RUN_TIME;
	fd = syscall(SYS_bpf, BPF_ENABLE_STATS, &attr, sizeof(attr));
	if (fd < 0) {
		perror("BPF_ENABLE_STATS");
		return 1;
	}
	printf("on\n");
	fflush(stdout);
	while (read(0, &byte, 1) > 0)
		;
	return 0;
}

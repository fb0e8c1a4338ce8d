/*
 * tcp_connect_loop [CONNECTS]: listens on 127.0.0.1, then CONNECTS (default
 * 20000) times connects to itself, accepts, and closes both ends, and prints
 * the mean time per connect+close in nanoseconds of the timed connects and
 * how many connects it made in all (with the warm-up). The time is the thread's
 * CPU time, so that waiting for a CPU on a busy machine is not counted; on
 * loopback the handshake's softirq work runs within the thread's own calls
 * (and without IRQ time accounting is charged to it), so it includes every
 * BPF program on the way. The client closes first: its
 * TIME_WAIT sockets hold ephemeral ports, so run it in a fresh network
 * namespace (bench/network/tcp.sh does) with fewer connects than the port range.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WARM_UP_CONNECTS 1000

static void connect_once(int listener, const struct sockaddr_in *address)
{
	int client = socket(AF_INET, SOCK_STREAM, 0), server;

	if (client < 0 || connect(client, (const struct sockaddr *)address, sizeof(*address)) < 0) {
		perror("connect");
		exit(1);
	}
	server = accept(listener, NULL, NULL);
	if (server < 0) {
		perror("accept");
		exit(1);
	}
	close(client);
	close(server);
}

int main(int argc, char **argv)
{
	long connects = argc > 1 ? atol(argv[1]) : 20000;
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t length = sizeof(address);
	struct timespec start, end;
	int listener = socket(AF_INET, SOCK_STREAM, 0);

	if (connects <= 0) {
		fprintf(stderr, "usage: %s [CONNECTS]\n", argv[0]);
		return 2;
	}
	if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof(address)) < 0 || listen(listener, 128) < 0 ||
	    getsockname(listener, (struct sockaddr *)&address, &length) < 0) {
		perror("listen");
		return 1;
	}
	for (long i = 0; i < WARM_UP_CONNECTS; i++)
		connect_once(listener, &address);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
	for (long i = 0; i < connects; i++)
		connect_once(listener, &address);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &end);
	printf("%.1f %ld\n", ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / connects, WARM_UP_CONNECTS + connects);
	return 0;
}

// The loops bench/network/dns_bench.ts times; each prints nanoseconds per iteration.
//   dns_loops query SERVER NAME N        N queries for NAME over one UDP socket to SERVER:53, each waiting for its answer
//   dns_loops getaddrinfo NAME N         N getaddrinfo(NAME) calls (glibc: A and AAAA on the wire, per resolv.conf)
//   dns_loops blast ADDRESS PORT N       N 32-byte UDP datagrams to ADDRESS:PORT (a socket bound there never reads them)
#include <arpa/inet.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/* A query for an A record of `name`, recursion desired; returns its length. */
static size_t build_query(unsigned char *out, const char *name)
{
	static const unsigned char header[12] = { 0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
	size_t at = sizeof(header);
	const char *label = name;

	memcpy(out, header, sizeof(header));
	while (*label) {
		const char *dot = strchr(label, '.');
		size_t length = dot ? (size_t)(dot - label) : strlen(label);

		out[at++] = (unsigned char)length;
		memcpy(out + at, label, length);
		at += length;
		label += length + (dot ? 1 : 0);
	}
	out[at++] = 0;
	memcpy(out + at, "\0\1\0\1", 4); /* qtype A, qclass IN */
	return at + 4;
}

static int query_loop(const char *server, const char *name, long count)
{
	unsigned char query[512], answer[512];
	size_t length = build_query(query, name);
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons(53) };
	struct timeval timeout = { .tv_sec = 1 };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	long unanswered = 0;
	uint64_t start;

	inet_pton(AF_INET, server, &address.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof(address)) || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout))) {
		perror("socket");
		return 1;
	}
	start = now_ns();
	for (long i = 0; i < count; i++) {
		query[0] = (unsigned char)(i >> 8);
		query[1] = (unsigned char)i;
		if (send(fd, query, length, 0) != (ssize_t)length || recv(fd, answer, sizeof(answer), 0) < 12)
			unanswered++;
	}
	printf("%.1f\n", (double)(now_ns() - start) / count);
	if (unanswered)
		fprintf(stderr, "%ld queries unanswered\n", unanswered);
	return unanswered ? 1 : 0;
}

static int getaddrinfo_loop(const char *name, long count)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *result;
	uint64_t start = now_ns();

	for (long i = 0; i < count; i++) {
		int error = getaddrinfo(name, NULL, &hints, &result);

		if (error) {
			fprintf(stderr, "getaddrinfo %s: %s\n", name, gai_strerror(error));
			return 1;
		}
		freeaddrinfo(result);
	}
	printf("%.1f\n", (double)(now_ns() - start) / count);
	return 0;
}

static int blast(const char *host, int port, long count)
{
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons(port) };
	int sink = socket(AF_INET, SOCK_DGRAM, 0), fd = socket(AF_INET, SOCK_DGRAM, 0);
	char payload[32] = { 0 };
	uint64_t start;

	inet_pton(AF_INET, host, &address.sin_addr);
	/* Bound so that no ICMP port-unreachable is sent back; never read, so datagrams are dropped at the socket. */
	if (sink < 0 || fd < 0 || bind(sink, (struct sockaddr *)&address, sizeof(address))) {
		perror("bind");
		return 1;
	}
	start = now_ns();
	for (long i = 0; i < count; i++)
		sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&address, sizeof(address));
	printf("%.1f\n", (double)(now_ns() - start) / count);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "query"))
		return query_loop(argv[2], argv[3], atol(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "getaddrinfo"))
		return getaddrinfo_loop(argv[2], atol(argv[3]));
	if (argc == 5 && !strcmp(argv[1], "blast"))
		return blast(argv[2], atoi(argv[3]), atol(argv[4]));
	fprintf(stderr, "usage: %s query SERVER NAME N | getaddrinfo NAME N | blast ADDRESS PORT N\n", argv[0]);
	return 2;
}

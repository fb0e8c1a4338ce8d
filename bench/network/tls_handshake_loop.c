/*
 * Full TLS handshakes over loopback, timed: a forked server accepts COUNT
 * connections (SSL_accept, SSL_free), the client makes them (SNI NAME,
 * certificate verified against CA, SSL_connect, SSL_free), as curl would,
 * with libssl.so.3 on both sides. No session resumption and no tickets, so
 * every handshake is a full one and no write races the close. Prints
 * "<wall ns per handshake> <CPU ns per handshake> <handshakes>": the CPU
 * time (user and system) of client and server together, including the
 * uprobe traps, is what probes add on a machine where other work makes the
 * wall time noisy.
 *
 * usage: tls_handshake_loop CERT KEY CA NAME COUNT
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void fail(const char *what)
{
	fprintf(stderr, "tls_handshake_loop: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static double cpu_ns(int who)
{
	struct rusage usage;

	getrusage(who, &usage);
	return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e9 + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e3;
}

static void serve(int listener, const char *cert, const char *key, long count)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		fail("server certificate");
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	for (long i = 0; i < count; i++) {
		int fd = accept(listener, NULL, NULL);
		SSL *ssl = SSL_new(ctx);

		if (fd < 0 || !ssl || SSL_set_fd(ssl, fd) != 1 || SSL_accept(ssl) != 1)
			fail("accept");
		SSL_free(ssl);
		close(fd);
	}
	exit(0);
}

int main(int argc, char **argv)
{
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t length = sizeof(address);
	struct timespec start, end;
	int listener, status;
	SSL_CTX *ctx;
	long count;
	pid_t server;

	if (argc != 6)
		fail("usage: tls_handshake_loop CERT KEY CA NAME COUNT");
	count = atol(argv[5]);
	signal(SIGPIPE, SIG_IGN);
	listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof(address)) || listen(listener, 128) ||
	    getsockname(listener, (struct sockaddr *)&address, &length))
		fail("listen");
	server = fork();
	if (server == 0)
		serve(listener, argv[1], argv[2], count);

	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || SSL_CTX_load_verify_locations(ctx, argv[3], NULL) != 1)
		fail("client CA");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (long i = 0; i < count; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		SSL *ssl = SSL_new(ctx);

		if (fd < 0 || !ssl || connect(fd, (struct sockaddr *)&address, sizeof(address)))
			fail("connect");
		if (SSL_set_tlsext_host_name(ssl, argv[4]) != 1 || SSL_set1_host(ssl, argv[4]) != 1 || SSL_set_fd(ssl, fd) != 1 ||
		    SSL_connect(ssl) != 1)
			fail("handshake");
		SSL_free(ssl);
		close(fd);
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	if (waitpid(server, &status, 0) != server || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail("server");
	printf("%.0f %.0f %ld\n", ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / count,
	       (cpu_ns(RUSAGE_SELF) + cpu_ns(RUSAGE_CHILDREN)) / count, count);
	return 0;
}

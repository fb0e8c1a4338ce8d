/*
 * Exports OpenSSL's names with code that is not OpenSSL 3.0's: the tls
 * receiver must refuse it and name it. Built with -DVERSION=<OPENSSL_VERSION_NUMBER>:
 * 0x30000130 (3.0.19, whose accessors then do not match) or another version.
 */
struct fake_ssl {
	int *statem; /* the state behind a pointer: SSL_in_init is not one load from its argument */
	int server;
};

int SSL_in_init(const struct fake_ssl *s) { return s->statem[3]; }
int SSL_get_state(const struct fake_ssl *s) { return s->statem[1]; }
int SSL_in_before(const struct fake_ssl *s) { return s->statem[1] == 0 && s->statem[0] == 0; }
int SSL_is_server(const struct fake_ssl *s) { return s->server; }
long SSL_get_verify_result(const struct fake_ssl *s) { return s->statem[7]; }
int SSL_read(struct fake_ssl *s, void *buffer, int size) { (void)buffer; return s->server + size; }
int SSL_write(struct fake_ssl *s, const void *buffer, int size) { (void)buffer; return s->server - size; }
void SSL_free(struct fake_ssl *s) { s->server = -1; }
unsigned long OpenSSL_version_num(void) { return VERSION; }
void ERR_set_error(int lib, int reason, const char *format, ...) { (void)lib; (void)reason; (void)format; }

/* A statically linked probe for the `static` image (no libc there).
 *
 *   tls_probe tls PORT  TLS-connect to 127.0.0.1:PORT (by address: no DNS) and verify the
 *                       server against the default trust store, i.e. $SSL_CERT_FILE, which
 *                       the image's Env sets. Exit 0 verified, 2 verification failed,
 *                       1 anything else (connect, handshake).
 *   tls_probe tz        print the zone abbreviation and offset of $TZ in January and July.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

static int tz(void) {
    /* 2024-01-15 and 2024-07-15, 12:00 UTC */
    const time_t when[2] = {1705320000, 1721044800};
    const char *names[2] = {"jan", "jul"};
    tzset();
    printf("TZ=%s", getenv("TZ") ? getenv("TZ") : "(unset)");
    for (int i = 0; i < 2; i++) {
        struct tm tm;
        char buf[64];
        localtime_r(&when[i], &tm);
        strftime(buf, sizeof buf, "%Z %z", &tm);
        printf(" %s=%s", names[i], buf);
    }
    printf("\n");
    return 0;
}

static int tls(const char *port) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        fprintf(stderr, "set_default_verify_paths failed\n");
    }
    /* How many certificates the default paths loaded (SSL_CERT_FILE is read eagerly). */
    int loaded = sk_X509_OBJECT_num(X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx)));
    printf("SSL_CERT_FILE=%s store_objects=%d\n",
           getenv("SSL_CERT_FILE") ? getenv("SSL_CERT_FILE") : "(unset)", loaded);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(port));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("connect 127.0.0.1");
        return 1;
    }
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    /* The server certificate names IP:127.0.0.1; check it, as a real client would. */
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
    int rc = SSL_connect(ssl);
    long vr = SSL_get_verify_result(ssl);
    if (rc != 1) {
        if (vr != X509_V_OK) {
            printf("verify failed: %ld %s\n", vr, X509_verify_cert_error_string(vr));
            return 2;
        }
        printf("handshake failed\n");
        ERR_print_errors_fp(stdout);
        return 1;
    }
    if (vr != X509_V_OK) {
        printf("verify failed: %ld %s\n", vr, X509_verify_cert_error_string(vr));
        return 2;
    }
    X509 *peer = SSL_get1_peer_certificate(ssl);
    char subject[256] = "";
    if (peer) {
        X509_NAME_oneline(X509_get_issuer_name(peer), subject, sizeof subject);
    }
    printf("verify ok: %s issuer=%s\n", SSL_get_version(ssl), subject);
    SSL_shutdown(ssl);
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 2 && strcmp(argv[1], "tz") == 0) {
        return tz();
    }
    if (argc == 3 && strcmp(argv[1], "tls") == 0) {
        return tls(argv[2]);
    }
    fprintf(stderr, "usage: %s tz | tls PORT\n", argv[0]);
    return 64;
}

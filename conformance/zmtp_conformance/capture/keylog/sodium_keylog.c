/* Preloaded into libzmq (and czmq) agents so that CURVE captures can be decrypted.
 *
 * libzmq makes each connection's transient key pair with libsodium's
 * crypto_box_keypair. This library defines that symbol first (LD_PRELOAD),
 * calls libsodium's own, and appends the pair to the file named by
 * ZMTP_CURVE_KEYLOG in the format zmtp's keylog module writes:
 *
 *     ZMTP_CURVE_TRANSIENT <public hex> <secret hex>
 *
 * Long-term keys come from socket options and never pass through here.
 * For test runs only: the file opens the traffic it covers.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*keypair_fn)(unsigned char *pk, unsigned char *sk);

static void hex(char *out, const unsigned char *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
}

int crypto_box_keypair(unsigned char *pk, unsigned char *sk);

/* libsodium may sit in a local scope (Python loads pyzmq's libzmq, and with it its
 * bundled libsodium, with RTLD_LOCAL), where RTLD_NEXT does not look: find it among
 * the loaded objects by name and ask it directly. */
static int find_sodium(struct dl_phdr_info *info, size_t size, void *data)
{
    (void) size;
    if (info->dlpi_name && strstr(info->dlpi_name, "libsodium")) {
        void *h = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
        if (h) {
            keypair_fn f = (keypair_fn) dlsym(h, "crypto_box_keypair");
            if (f && f != crypto_box_keypair) {
                *(keypair_fn *) data = f;
                return 1;
            }
        }
    }
    return 0;
}

int crypto_box_keypair(unsigned char *pk, unsigned char *sk)
{
    static keypair_fn real = NULL;
    if (real == NULL) {
        real = (keypair_fn) dlsym(RTLD_NEXT, "crypto_box_keypair");
        if (real == crypto_box_keypair)
            real = NULL;
    }
    if (real == NULL)
        dl_iterate_phdr(find_sodium, &real);
    if (real == NULL)
        abort(); /* no libsodium behind us: nothing sensible to return */
    int rc = real(pk, sk);
    const char *path = getenv("ZMTP_CURVE_KEYLOG");
    if (rc == 0 && path != NULL && *path) {
        char line[21 + 64 + 1 + 64 + 2];
        memcpy(line, "ZMTP_CURVE_TRANSIENT ", 21);
        hex(line + 21, pk, 32);
        line[85] = ' ';
        hex(line + 86, sk, 32);
        line[150] = '\n';
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
        if (fd >= 0) {
            /* One write with O_APPEND: lines from several processes never interleave. */
            if (write(fd, line, 151) != 151) { /* a lost line only costs decryption */ }
            close(fd);
        }
    }
    return rc;
}

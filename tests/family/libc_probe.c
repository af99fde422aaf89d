/* A dynamically linked probe of what glibc reads from the image at run time.
 *
 * `locale`: setlocale(LC_ALL, "") with the environment's LANG (the test sets C.UTF-8),
 * then mbstowcs() of UTF-8 text. Prints `locale=NAME codeset=CODESET wide=HEX...`; exit 2
 * when setlocale fails (glibc then stays in the 7-bit C locale), 3 when the text does not
 * decode to U+00E9 U+20AC.
 *
 * `iconv CHARSET`: iconv from CHARSET's 0x80 (the euro sign in CP1252) to UTF-8, which
 * needs glibc's gconv module for any charset it does not build in. Prints
 * `iconv CHARSET: HEX`; exit 4 when iconv_open fails, 5 when the conversion does. */
#include <errno.h>
#include <iconv.h>
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

static int locale_probe(void) {
    const char *name = setlocale(LC_ALL, "");
    if (!name) {
        printf("setlocale(LC_ALL, \"\") failed for LANG=%s\n", getenv("LANG"));
        return 2;
    }
    wchar_t wide[8] = {0};
    size_t n = mbstowcs(wide, "\xc3\xa9\xe2\x82\xac", 8);
    printf("locale=%s codeset=%s wide=", name, nl_langinfo(CODESET));
    for (size_t i = 0; n != (size_t)-1 && i < n; i++)
        printf("%s%04x", i ? "," : "", (unsigned)wide[i]);
    printf("\n");
    return n == 2 && wide[0] == 0xe9 && wide[1] == 0x20ac ? 0 : 3;
}

static int iconv_probe(const char *charset) {
    iconv_t cd = iconv_open("UTF-8", charset);
    if (cd == (iconv_t)-1) {
        printf("iconv_open(UTF-8, %s): %s\n", charset, strerror(errno));
        return 4;
    }
    char in[] = "\x80", out[8] = {0};
    char *ip = in, *op = out;
    size_t il = 1, ol = sizeof out;
    if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1) {
        printf("iconv %s: %s\n", charset, strerror(errno));
        return 5;
    }
    printf("iconv %s:", charset);
    for (char *p = out; p < op; p++)
        printf(" %02x", (unsigned char)*p);
    printf("\n");
    iconv_close(cd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "locale"))
        return locale_probe();
    if (argc == 3 && !strcmp(argv[1], "iconv"))
        return iconv_probe(argv[2]);
    fprintf(stderr, "usage: %s locale | iconv CHARSET\n", argv[0]);
    return 64;
}

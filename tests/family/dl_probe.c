/* A dynamically linked probe: dlopen(LIBRARY) by soname, as programs that load OpenSSL at
 * run time do, and call SYMBOL (a `const char *f(int)` such as OpenSSL_version) with 0.
 * Exit 3 when the library does not load, 4 when the symbol is missing. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s LIBRARY SYMBOL\n", argv[0]);
        return 64;
    }
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 3;
    }
    const char *(*f)(int) = (const char *(*)(int))dlsym(h, argv[2]);
    if (!f) {
        fprintf(stderr, "dlsym: %s\n", dlerror());
        return 4;
    }
    printf("%s: %s\n", argv[2], f(0));
    return 0;
}

/* A 32-bit (i386) program for `trace --rules` (tests/tests/rules.rs), built freestanding
 * with `gcc -m32 -static -nostdlib`: one i386 chmod(2) (number 15) of TARGET, then exit. */

static long sys(long n, long a, long b) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(n), "b"(a), "c"(b) : "memory");
    return r;
}

void _start(void) {
    sys(15, (long)TARGET, 0644);
    sys(1, 0, 0);
    for (;;) {
    }
}

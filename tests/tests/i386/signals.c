/* A 32-bit (i386) program for the report-vs-auditd test, built freestanding with
 * `gcc -m32 -static -nostdlib` (no 32-bit libc needed): known numbers of i386 calls,
 * signals returned from through both `sigreturn` (119) and `rt_sigreturn` (173), then
 * an execve of a 64-bit program (entered as i386 execve, left as x86_64's). */

static long sys(long n, long a, long b, long c, long d) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(n), "b"(a), "c"(b), "d"(c), "S"(d) : "memory");
    return r;
}

/* The two restorers a libc would install: the handler returns into them. */
void restore_sig(void);
void restore_rt(void);
__asm__(".text\n"
        "restore_sig: popl %eax\n movl $119, %eax\n int $0x80\n"
        "restore_rt: movl $173, %eax\n int $0x80\n");

static void handler(int sig) { (void)sig; }

struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned int mask[2];
};

#define SA_SIGINFO 4
#define SA_RESTORER 0x04000000

void _start(void) {
    for (int i = 0; i < 7; i++)
        sys(20, 0, 0, 0, 0); /* getpid */
    for (int i = 0; i < 6; i++)
        sys(5, (long)"/nonexistent/i386", 0, 0, 0); /* open, fails */
    struct kernel_sigaction plain = {handler, SA_RESTORER, restore_sig, {0, 0}};
    struct kernel_sigaction rt = {handler, SA_RESTORER | SA_SIGINFO, restore_rt, {0, 0}};
    sys(174, 10, (long)&plain, 0, 8); /* rt_sigaction SIGUSR1 */
    sys(174, 12, (long)&rt, 0, 8);    /* rt_sigaction SIGUSR2 */
    long pid = sys(20, 0, 0, 0, 0);
    for (int i = 0; i < 5; i++)
        sys(37, pid, 10, 0, 0); /* kill: handler, then sigreturn */
    for (int i = 0; i < 6; i++)
        sys(37, pid, 12, 0, 0); /* kill: handler, then rt_sigreturn */
    char *argv[] = {"/bin/true", 0};
    char *envp[] = {0};
    sys(11, (long)"/bin/true", (long)argv, (long)envp, 0); /* execve */
    sys(1, 127, 0, 0, 0); /* exit, if the exec failed */
    for (;;) {
    }
}

# The login session of tests/tests/rules_auditd.rs: started as root, it sets its login UID,
# acts as root (uid 0) under it, then as the user, tripping the rules of Debian's example
# files. Every act on a real system path either fails or changes nothing that stays:
# opens for writing write nothing, the one file created in /etc is removed again.
#
# argv: AUID OTHER_UID WORK HOME SETUID_BINARY
import ctypes
import os
import signal
import socket
import sys

libc = ctypes.CDLL(None, use_errno=True)
auid, other = int(sys.argv[1]), int(sys.argv[2])
work, home, suid_bin = sys.argv[3], sys.argv[4], sys.argv[5].encode()
AT_FDCWD = -100


def try_(f, *a, **kw):
    """A call that may fail: failed calls are audited too."""
    try:
        f(*a, **kw)
    except OSError:
        pass


with open("/proc/self/loginuid", "w") as fh:
    fh.write(str(auid))

# --- root (uid 0) under the user's login UID ---------------------------------------------
# In another user's home (32-power-abuse; chmod, rename and unlink meet earlier rules first).
notes = os.path.join(home, "notes")
os.stat(notes)
fd = os.open(notes, os.O_WRONLY | os.O_APPEND)
os.close(fd)
os.chmod(notes, 0o640)
os.rename(notes, notes + ".old")
os.unlink(notes + ".old")
# Identity and locale files opened for writing, nothing written (pci 10.2.5.c, stig watches).
for p in ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/hosts", "/etc/issue"):
    os.close(os.open(p, os.O_WRONLY | os.O_APPEND))
# A file created and removed in a watched directory (stig MAC-policy, dir=/etc/selinux/).
p = "/etc/selinux/tracer-rules-test-%d" % os.getpid()
with open(p, "w") as fh:
    fh.write("# tracer rules test\n")
os.unlink(p)
# The audit trail read (pci 10.2.3, dir=/var/log/audit/ perm=r).
os.close(os.open("/var/log/audit", os.O_RDONLY | os.O_DIRECTORY))

# --- the user -----------------------------------------------------------------------------
child = os.fork()
if child == 0:
    os.setgroups([])
    os.setresgid(auid, auid, auid)
    os.setresuid(auid, auid, auid)
    mine = os.path.join(work, "mine")
    with open(mine, "w") as fh:
        fh.write("x")
    # Permission and owner changes (stig perm_mod).
    os.chmod(mine, 0o600)
    fd = os.open(mine, os.O_RDONLY)
    os.fchmod(fd, 0o640)
    libc.fchmodat(AT_FDCWD, mine.encode(), 0o644, 0)
    os.chown(mine, auid, auid)
    os.fchown(fd, auid, auid)
    os.lchown(mine, auid, auid)
    libc.fchownat(AT_FDCWD, mine.encode(), auid, auid, 0)
    # Extended attributes (perm_mod; a file system without user xattrs fails them, audited alike).
    try_(os.setxattr, mine, "user.tracer", b"1")
    try_(os.setxattr, mine, "user.tracer", b"2", 0, follow_symlinks=False)
    try_(os.setxattr, fd, "user.tracer", b"3")
    try_(os.removexattr, mine, "user.tracer")
    try_(os.removexattr, mine, "user.tracer", follow_symlinks=False)
    try_(os.removexattr, fd, "user.tracer")
    os.close(fd)
    # Failed opens and truncates (stig access: EACCES, EPERM; pci accounts for /etc/shadow w).
    try_(os.open, "/etc/shadow", os.O_RDONLY)
    try_(os.open, "/etc/shadow", os.O_WRONLY)
    try_(os.open, "/etc/tracer-rules-nope", os.O_WRONLY | os.O_CREAT)
    try_(os.truncate, os.path.join(work, "roots"), 0)
    libc.open_by_handle_at(AT_FDCWD, None, 0)
    # Deletes and renames (stig delete).
    os.rename(mine, mine + "2")
    libc.renameat(AT_FDCWD, (mine + "2").encode(), AT_FDCWD, mine.encode())
    os.unlink(mine)
    open(mine, "w").close()
    libc.unlinkat(AT_FDCWD, mine.encode(), 0)
    # A failed mount (stig export).
    os.mkdir(os.path.join(work, "m"))
    libc.mount(b"none", os.path.join(work, "m").encode(), b"tmpfs", 0, None)
    # Clock changes, refused (pci/stig time-change); adjtimex reading only succeeds.
    ts = (ctypes.c_long * 2)(0, 0)
    libc.clock_settime(0, ts)
    libc.settimeofday(ts, None)
    timex = ctypes.create_string_buffer(256)
    libc.adjtimex(timex)
    # Host and domain names, refused (stig system-locale).
    libc.sethostname(b"x", 1)
    libc.setdomainname(b"x", 1)
    # Module loading and unloading, refused (43-module-load).
    libc.syscall(175, None, 0, b"")  # init_module
    libc.syscall(313, 0, b"", 0)  # finit_module
    libc.syscall(176, b"tracer_no_such_module", 0)  # delete_module
    # ptrace of an own child: traceme, peek, poke (42-injection: b64 ptrace is "tracing").
    word = ctypes.c_long(42)
    traced = os.fork()
    if traced == 0:
        libc.ptrace(0, 0, None, None)
        os.kill(os.getpid(), signal.SIGSTOP)
        os._exit(0)
    os.waitpid(traced, os.WUNTRACED)
    libc.ptrace.restype = ctypes.c_long
    value = libc.ptrace(2, traced, ctypes.addressof(word), None)
    libc.ptrace(5, traced, ctypes.addressof(word), ctypes.c_void_p(value))
    libc.ptrace(7, traced, None, None)
    os.waitpid(traced, 0)
    # Connects and an accept (71-networking).
    refused = socket.socket()
    try_(refused.connect, ("127.0.0.1", 9))
    refused.close()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    cli = socket.socket()
    cli.connect(srv.getsockname())
    conn = libc.accept(srv.fileno(), None, None)
    os.close(conn)
    cli.close()
    srv.close()
    # A setuid-root program run by the user (pci 10.2.5.b: uid != euid, euid 0).
    prog = os.fork()
    if prog == 0:
        os.execv(suid_bin, [suid_bin])
    os.waitpid(prog, 0)
    os._exit(0)
_, status = os.waitpid(child, 0)
sys.exit(os.waitstatus_to_exitcode(status))

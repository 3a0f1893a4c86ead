//! Record assembly in the per-CPU scratch area, then one `bpf_ringbuf_output` of the real
//! length. Destination offsets are masked so the verifier can bound every write.

use core::ptr::{read_volatile, write_volatile};

use aya_ebpf::helpers::generated::{
    bpf_get_smp_processor_id, bpf_ktime_get_boot_ns, bpf_probe_read_kernel, bpf_probe_read_kernel_str,
    bpf_probe_read_user, bpf_probe_read_user_str, bpf_ringbuf_output,
};
use tracer_common::{
    config::{AGGREGATE, LEAN_RECORDS},
    event::*,
    rules::RuleBits,
    syscount::STAT_LOST,
};

use aya_ebpf::bindings::{BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP};

use crate::{
    agg,
    kernel::{
        Current, Kptr, conf, current_comm, load, load_path, load_ptr, loginuid, mnt_ns, off, read, read_path, volatile,
    },
    maps::{EVENTS, EXE_GEN, EXE_SENT, HOST_ROOT, RULE_EVAL, SCRATCH, Scratch, stat_inc},
    path::walk,
};

/// Variable data starts below this offset; each piece is at most 64 KiB.
const OFF_MASK: u32 = 0xFFFF;
const SIZE_MASK: u32 = 0x1FFFF;

/// Credentials the record does not carry: audit's unknown value, flagged.
#[inline(always)]
fn creds_unknown(h: &mut Header) {
    h.flags |= F_CRED_UNKNOWN;
    // Volatile stores: adjacent stores of one value become a byte-loop `memset` call in BPF.
    for id in [&mut h.euid, &mut h.egid, &mut h.suid, &mut h.sgid, &mut h.fsuid, &mut h.fsgid] {
        // SAFETY: a reference to a u32 field of the header.
        unsafe { write_volatile(id, u32::MAX) };
    }
}

/// `EXE_GEN`'s value (0 if unreadable: then nothing remembered matches for long).
#[inline(always)]
fn exe_gen() -> u32 {
    // SAFETY: EXE_GEN's only entry, a u32; other CPUs change it only by atomic adds.
    EXE_GEN.get_ptr(0).map(|g| unsafe { read_volatile(g) }).unwrap_or(0)
}

/// `report` (`AGGREGATE`): a record holds only what its report entry is made of, so every
/// repeat of an entry hashes alike: no open flags, mode or dirfd, no connect fd, no exec cwd
/// (the report reads none of them).
#[inline(always)]
pub(crate) fn entry_only() -> bool {
    conf!(enabled) & AGGREGATE != 0
}

pub(crate) struct Rec {
    s: *mut Scratch,
    base: *mut u8,
    path: *mut u8,
    /// Who the record is about (`fill`), for the header fields `finish` writes.
    task: Kptr,
    pid_tgid: u64,
    uid_gid: u64,
}

impl Rec {
    #[inline(always)]
    pub(crate) fn new<B>() -> Option<Self> {
        const { assert!(size_of::<B>().is_multiple_of(8), "a record body is whole words") };
        let rec = Self::resume()?;
        // The body starts as zeros: its padding and the fields a probe leaves unset would
        // otherwise hold this CPU's earlier records, and `report` hashes them (`agg`): one
        // entry would cross to user space once per leftover.
        for i in 0..size_of::<B>() / 8 {
            // SAFETY: the body B is reserved right after the 8-aligned header, inside the record area; i
            // counts its words.
            unsafe { write_volatile((rec.base.add(HEADER_SIZE) as *mut u64).add(i), 0) };
        }
        rec.set_off((HEADER_SIZE + size_of::<B>()) as u32);
        Some(rec)
    }

    /// The record being built on this CPU, as left by the caller (for bpf_loop callbacks).
    #[inline(always)]
    pub(crate) fn resume() -> Option<Self> {
        // SAFETY: a helper without arguments.
        let cpu = unsafe { bpf_get_smp_processor_id() };
        let s = SCRATCH.get_ptr_mut(cpu)?;
        // SAFETY: s is this CPU's SCRATCH entry (get_ptr_mut checked the index); only addresses are taken.
        let base = unsafe { (*s).rec.as_mut_ptr() };
        // SAFETY: as above.
        let path = unsafe { (*s).path.as_mut_ptr() };
        Some(Self { s, base, path, task: core::ptr::null(), pid_tgid: 0, uid_gid: 0 })
    }

    /// Record length so far.
    #[inline(always)]
    pub(crate) fn off(&self) -> u32 {
        // SAFETY: self.s is this CPU's SCRATCH entry, valid for the program's run; a u32 read.
        unsafe { read_volatile(&(*self.s).off) }
    }

    #[inline(always)]
    fn set_off(&self, v: u32) {
        // SAFETY: as in off(): a u32 write to this CPU's SCRATCH entry.
        unsafe { write_volatile(&mut (*self.s).off, v) }
    }

    #[inline(always)]
    fn advance(&self, n: u32) {
        self.set_off(self.off() + n)
    }

    #[inline(always)]
    fn dst(&self) -> *mut u8 {
        // SAFETY: the offset is masked below 64 KiB, inside the REC_CAP-byte record area.
        unsafe { self.base.add((self.off() & OFF_MASK) as usize) }
    }

    #[inline(always)]
    pub(crate) fn header(&mut self) -> &mut Header {
        // SAFETY: the record area starts with the header (REC_CAP > HEADER_SIZE), 8-aligned in the map value;
        // Header is integers only.
        unsafe { &mut *(self.base as *mut Header) }
    }

    #[inline(always)]
    pub(crate) fn body<B>(&mut self) -> &mut B {
        // SAFETY: B is a record body (integers only) that new::<B>() reserved right after the header, inside
        // the record area.
        unsafe { &mut *(self.base.add(HEADER_SIZE) as *mut B) }
    }

    #[inline(always)]
    fn room(&mut self) -> bool {
        if self.off() > OFF_MASK {
            self.header().flags |= F_DATA_TRUNCATED;
            return false;
        }
        true
    }

    /// A NUL-terminated string (at most PATH_MAX) copied by `read` (a bpf_probe_read_*_str
    /// helper); keeps the NUL in the record when `keep_nul`. Returns the bytes kept.
    #[inline(always)]
    fn push_str(&mut self, read: impl FnOnce(*mut u8) -> i64, keep_nul: bool) -> u32 {
        if !self.room() {
            return 0;
        }
        let n = read(self.dst());
        let len = if keep_nul { n } else { n - 1 };
        if len <= 0 {
            return 0;
        }
        self.advance(len as u32);
        len as u32
    }

    /// A NUL-terminated user string (at most PATH_MAX); returns its length without the NUL.
    #[inline(always)]
    pub(crate) fn push_user_str(&mut self, src: u64) -> u16 {
        // SAFETY: push_str passes dst = self.dst() after room() checked that PATH_MAX bytes fit; the source
        // is user memory the helper checks.
        let read = |dst: *mut u8| unsafe { bpf_probe_read_user_str(dst.cast(), PATH_MAX as u32, src as *const _) };
        self.push_str(read, false) as u16
    }

    /// A NUL-terminated kernel string (at most PATH_MAX); returns its length without the NUL.
    #[inline(always)]
    pub(crate) fn push_kernel_str(&mut self, src: Kptr) -> u16 {
        // SAFETY: as in push_user_str, for kernel memory.
        let read = |dst: *mut u8| unsafe { bpf_probe_read_kernel_str(dst.cast(), PATH_MAX as u32, src.cast()) };
        self.push_str(read, false) as u16
    }

    /// The first byte of the data pushed at record offset `at` (0 if none).
    #[inline(always)]
    pub(crate) fn byte_at(&self, at: u32) -> u8 {
        // SAFETY: the offset is masked below 64 KiB, inside the record area.
        unsafe { *self.base.add((at & OFF_MASK) as usize) }
    }

    /// `len` bytes of user memory (argv blobs, sockaddr paths).
    #[inline(always)]
    pub(crate) fn push_user(&mut self, src: u64, len: u32) -> u32 {
        if !self.room() {
            return 0;
        }
        // Through memory, so the compiler cannot drop the mask as redundant where it knows a
        // smaller bound: it may then hand the helper a copy spilled before its bounds check,
        // which an older verifier (6.1) sees as unbounded.
        let len = volatile(&len) & OFF_MASK;
        let dst = self.dst();
        // SAFETY: room() checked the space and len is masked to 64 KiB: dst..dst+len stays inside the record
        // area; the helper checks the user source.
        if unsafe { bpf_probe_read_user(dst.cast(), len, src as *const _) } < 0 {
            return 0;
        }
        self.advance(len);
        len
    }

    /// One NUL-terminated user string including its NUL (argv element); returns bytes used.
    #[inline(always)]
    pub(crate) fn push_user_arg(&mut self, src: u64) -> u32 {
        // SAFETY: as in push_user_str.
        let read = |dst: *mut u8| unsafe { bpf_probe_read_user_str(dst.cast(), PATH_MAX as u32, src as *const _) };
        self.push_str(read, true)
    }

    /// The host path of (mnt, dentry); sets `F_PATH_TRUNCATED` when the walk was cut.
    #[inline(always)]
    pub(crate) fn push_walk(&mut self, mnt: Kptr, dentry: Kptr) -> Result<u16, i64> {
        if !self.room() {
            return Ok(0);
        }
        let w = walk(self.path, mnt, dentry)?;
        if w.truncated {
            self.header().flags |= F_PATH_TRUNCATED;
        }
        let len = (PATH_MAX as u32 - w.start) & (PATH_MAX as u32 - 1);
        let len = if len == 0 { PATH_MAX as u32 - 1 } else { len };
        let dst = self.dst();
        // SAFETY: the start is masked below PATH_MAX, inside the 2 * PATH_MAX path area.
        let src = unsafe { self.path.add((w.start & (PATH_MAX as u32 - 1)) as usize) };
        // SAFETY: both ranges are masked to PATH_MAX bytes inside their scratch areas (room() checked the
        // record's).
        if unsafe { bpf_probe_read_kernel(dst.cast(), len & (PATH_MAX as u32 - 1), src.cast()) } < 0 {
            return Err(-1);
        }
        self.advance(len);
        Ok(len as u16)
    }

    /// The syscall's first four arguments, for audit's a0..a3.
    #[inline(always)]
    pub(crate) fn set_args(&mut self, args: [u64; 4]) {
        let h = self.header();
        h.args = args;
        h.flags |= F_ARGS_PRESENT;
    }

    /// Fills what decides a report entry (kind, result, login UID, the exe and root strings);
    /// `submit` has `finish` write the rest only for a record it sends: a report's repeated
    /// open is counted in `AGG` without the time, name and ids it would not use.
    #[inline(always)]
    pub(crate) fn fill(&mut self, kind: EventKind, cur: &Current, syscall: u32, ret: i64, send_exe: bool) {
        let task = cur.task;
        (self.task, self.pid_tgid, self.uid_gid) = (task, cur.pid_tgid, cur.uid_gid);
        let h = self.header();
        h.kind = kind as u32;
        h.flags = 0;
        h.ret = ret;
        h.syscall = syscall;
        h.exe_len = 0;
        h.root_len = 0;
        h._pad = 0;
        // One store each: an array assignment becomes a byte-loop `memset` call in BPF.
        for i in 0..4 {
            // SAFETY: i < 4, inside h.args.
            unsafe { write_volatile(h.args.as_mut_ptr().add(i), 0) };
        }
        self.fill_login(task);
        let lean = conf!(enabled) & LEAN_RECORDS != 0;
        let send_exe = !lean && (send_exe || !self.exe_known((cur.pid_tgid >> 32) as u32));
        if send_exe && let Ok(len) = self.push_exe(task) {
            let h = self.header();
            h.exe_len = len;
            h.flags |= F_EXE_PRESENT;
        }
        self.fill_root(task);
    }

    /// Whether user space has `tgid`'s exe (`EXE_SENT`). Remembered per CPU while no process
    /// has exited since (`EXE_GEN`): a hash lookup per record otherwise.
    #[inline(always)]
    fn exe_known(&mut self, tgid: u32) -> bool {
        let gen_now = exe_gen();
        // SAFETY: self.s is this CPU's SCRATCH entry (as in off()); u32 reads.
        if tgid != 0 && unsafe { volatile(&(*self.s).exe_tgid) == tgid && volatile(&(*self.s).exe_gen) == gen_now } {
            return true;
        }
        let known = EXE_SENT.get_ptr(tgid).is_some();
        if known {
            self.remember_exe(tgid, gen_now);
        }
        known
    }

    #[inline(always)]
    fn remember_exe(&mut self, tgid: u32, gen_then: u32) {
        // SAFETY: as in exe_known; u32 writes.
        unsafe {
            write_volatile(&mut (*self.s).exe_tgid, tgid);
            write_volatile(&mut (*self.s).exe_gen, gen_then);
        }
    }

    /// The header's time, ids, name and process fields, for a record about to be sent.
    #[inline(always)]
    fn finish(&mut self) {
        let (task, pid_tgid, uid_gid) = (self.task, self.pid_tgid, self.uid_gid);
        let h = self.header();
        // SAFETY: a helper without arguments.
        h.time_ns = unsafe { bpf_ktime_get_boot_ns() };
        h.tgid = (pid_tgid >> 32) as u32;
        h.tid = pid_tgid as u32;
        h.uid = uid_gid as u32;
        h.gid = (uid_gid >> 32) as u32;
        // On failure the helper zero-fills the name itself.
        current_comm(&mut h.comm);
        if conf!(enabled) & LEAN_RECORDS != 0 {
            h.flags |= F_PPID_UNKNOWN | F_MNTNS_UNKNOWN;
            h.ppid = 0;
            h.mntns = 0;
            creds_unknown(h);
        } else {
            self.fill_process(task);
        }
    }

    /// ppid, credentials, mount namespace.
    #[inline(always)]
    fn fill_process(&mut self, task: Kptr) {
        let h = self.header();
        match load_ptr(task, off!(task_real_parent)).and_then(|p| load::<u32>(p, off!(task_tgid))) {
            Ok(ppid) => h.ppid = ppid,
            Err(_) => {
                h.ppid = 0;
                h.flags |= F_PPID_UNKNOWN;
            }
        }
        match load_ptr(task, off!(task_cred)) {
            Ok(cred) => {
                let id = |off: u32| load::<u32>(cred, off).unwrap_or(u32::MAX);
                h.euid = id(off!(cred_euid));
                h.egid = id(off!(cred_egid));
                h.suid = id(off!(cred_suid));
                h.sgid = id(off!(cred_sgid));
                h.fsuid = id(off!(cred_fsuid));
                h.fsgid = id(off!(cred_fsgid));
            }
            Err(_) => creds_unknown(h),
        }
        match mnt_ns(task).and_then(|ns| load::<u32>(ns, off!(mnt_ns_inum))) {
            Ok(inum) => h.mntns = inum,
            Err(_) => {
                h.mntns = 0;
                h.flags |= F_MNTNS_UNKNOWN;
            }
        }
    }

    /// loginuid and session id.
    #[inline(always)]
    fn fill_login(&mut self, task: Kptr) {
        let h = self.header();
        let ids = (loginuid(task), load::<u32>(task, off!(task_sessionid)));
        match ids {
            (Ok(auid), Ok(ses)) => {
                h.auid = auid;
                h.ses = ses;
            }
            _ => {
                h.auid = AUID_UNSET;
                h.ses = AUID_UNSET;
                h.flags |= F_AUID_UNKNOWN;
            }
        }
    }

    /// The process root: nothing for the host root, its host path when chrooted.
    #[inline(always)]
    fn fill_root(&mut self, task: Kptr) {
        // Chrooted means the root's host path is not "/". Comparing with the namespace's
        // root mount would call every process chrooted on systems whose init did
        // switch_root (the real root is mounted over the initramfs).
        let before = self.off();
        let root = load_ptr(task, off!(task_fs)).and_then(|fs| load_path(fs, off!(fs_root)));
        let known = HOST_ROOT.get_ptr_mut(0);
        if let (Ok((mnt, dentry)), Some(k)) = (root, known)
            // SAFETY: k is HOST_ROOT's only entry (index 0, checked by get_ptr_mut).
            && unsafe { (*k)[0] == mnt as u64 && (*k)[1] == dentry as u64 }
        {
            return;
        }
        // The walk gets the pair read again by the helper, as numbers: typed pointers stored
        // in its bpf_loop context made the verifier check the walk once per pointer type
        // (twice the verification time, 45 ms more to attach).
        let root = load_ptr(task, off!(task_fs)).and_then(|fs| read_path(fs, off!(fs_root)));
        match root.and_then(|(mnt, dentry)| self.push_walk(mnt, dentry).map(|len| (mnt, dentry, len))) {
            Ok((_, _, len)) if len > 1 => {
                let h = self.header();
                h.flags |= F_CHROOTED;
                h.root_len = len;
            }
            Ok((mnt, dentry, _)) => {
                self.set_off(before);
                if let Some(k) = known {
                    // SAFETY: as above: HOST_ROOT's entry 0; a racing CPU can only write another valid pair.
                    unsafe { *k = [mnt as u64, dentry as u64] };
                }
            }
            Err(_) => {
                self.set_off(before);
                self.header().flags |= F_ROOT_UNKNOWN;
            }
        }
    }

    #[inline(always)]
    fn push_exe(&mut self, task: Kptr) -> Result<u16, i64> {
        let mm = load_ptr(task, off!(task_mm))?;
        let file = load_ptr(mm, off!(mm_exe_file))?;
        // Read by the helper, not `load`: see fill_root.
        let (mnt, dentry) = read_path(file, off!(file_f_path))?;
        self.push_walk(mnt, dentry)
    }

    /// Host path of the current working directory.
    #[inline(always)]
    pub(crate) fn push_cwd(&mut self, task: Kptr) -> Result<u16, i64> {
        let fs = load_ptr(task, off!(task_fs))?;
        // Read by the helper, not `load`: see fill_root.
        let (mnt, dentry) = read_path(fs, off!(fs_pwd))?;
        self.push_walk(mnt, dentry)
    }

    /// Host path of the file open on descriptor `fd` of the current task.
    #[inline(always)]
    pub(crate) fn push_fd_path(&mut self, task: Kptr, fd: i32) -> Result<u16, i64> {
        let files = load_ptr(task, off!(task_files))?;
        let fdt = load_ptr(files, off!(files_fdt))?;
        let max: u32 = load(fdt, off!(fdt_max_fds))?;
        if fd < 0 || fd as u32 >= max {
            return Err(-1);
        }
        // `struct file **`: the verifier types it as a number, so the slot is read by the helper.
        let array = load_ptr(fdt, off!(fdt_fd))?;
        let file: u64 = read(array, (fd as u32) * 8)?;
        if file == 0 {
            return Err(-1);
        }
        let (mnt, dentry) = read_path(file as Kptr, off!(file_f_path))?;
        self.push_walk(mnt, dentry)
    }

    /// Appends the candidate rules (`RULE_EVAL.cand`) as the `F_RULES` trailer: the last
    /// thing pushed before `submit`.
    #[inline(always)]
    pub(crate) fn push_rules(&mut self) {
        let Some(e) = RULE_EVAL.get_ptr(0) else {
            return;
        };
        if self.off() > OFF_MASK {
            // No room even for the trailer: drop the strings' tail rather than the decision.
            self.set_off(OFF_MASK);
            self.header().flags |= F_DATA_TRUNCATED;
        }
        let dst = self.dst();
        // SAFETY: e is this CPU's RULE_EVAL entry; dst is masked below 64 KiB inside the REC_CAP-byte record
        // area, which has room for 32 more bytes; RuleBits is plain integers (written unaligned).
        unsafe { core::ptr::write_unaligned(dst as *mut RuleBits, (*e).cand) };
        self.advance(RULES_TRAILER as u32);
        self.header().flags |= F_RULES;
    }

    /// Copies the record into the ring buffer; a full buffer is counted, never silent.
    #[inline(always)]
    pub(crate) fn submit(mut self) -> bool {
        let size = self.off() & SIZE_MASK;
        let h = self.header();
        h.size = size;
        if entry_only() && agg::counted(h, size) {
            return true;
        }
        self.finish();
        let h = self.header();
        let exe_sent = h.flags & F_EXE_PRESENT != 0;
        let tgid = h.tgid;
        let ring = core::ptr::addr_of!(EVENTS) as *mut core::ffi::c_void;
        let wakeup = conf!(wakeup_bytes);
        // Wake the reader when this record makes the pending bytes cross the batch size, not
        // for every record past it: each wakeup is an irq_work self-IPI (an APIC write, a VM
        // exit under a hypervisor), which took a quarter of a traced open's kernel time while
        // the reader lagged. The reader drains until the ring is empty, so the next crossing
        // comes after it; its 20 ms drain timer covers a crossing it missed.
        // Counted per CPU (the loader divides the batch by the CPUs): asking the ring for its
        // pending bytes reads the consumer position the reader writes, a cache line from
        // another core on every record (8 % of a traced open's BPF time).
        let flags = if wakeup == 0 {
            BPF_RB_FORCE_WAKEUP
        } else {
            // SAFETY: self.s is this CPU's SCRATCH entry (as in off()); u32 reads and writes.
            let unsent = unsafe { read_volatile(&(*self.s).unsent) } + size;
            let (flags, left) = if unsent >= wakeup { (BPF_RB_FORCE_WAKEUP, 0) } else { (BPF_RB_NO_WAKEUP, unsent) };
            // SAFETY: as above.
            unsafe { write_volatile(&mut (*self.s).unsent, left) };
            flags
        };
        // SAFETY: ring is the EVENTS map; base..base+size is inside this CPU's record area (size masked by
        // SIZE_MASK < REC_CAP).
        let ret = unsafe { bpf_ringbuf_output(ring, self.base.cast(), u64::from(size), u64::from(flags)) };
        if ret < 0 {
            stat_inc(STAT_LOST);
            return false;
        }
        if exe_sent {
            // The generation before the insert: an exit meanwhile makes the memory stale.
            let gen_then = exe_gen();
            let _ = EXE_SENT.insert(tgid, 1, 0);
            self.remember_exe(tgid, gen_then);
        }
        true
    }
}

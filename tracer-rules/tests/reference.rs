//! compile + candidates (the kernel side's reference) + decide against a plain evaluator of
//! the parsed rules over the full facts of a call, on generated rule sets and calls: the
//! kernel's audit filter as written in kernel/auditsc.c (audit_filter_syscall, then
//! audit_filter_inodes under rule priorities), without tables or bitmaps.

use libc as _;
use thiserror as _;
use tracer_common as _;

use tracer_rules::{
    Arch, CallFacts, Facts, Ids, Name, Rule,
    model::{Action, Cond, Op, Syscalls, Var},
    syscalls,
};

/// xorshift64*: deterministic cases, reproducible from the seed in a failure message.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const CALLS: &[&str] = &[
    "open",
    "openat",
    "openat2",
    "unlink",
    "rename",
    "renameat2",
    "chmod",
    "execve",
    "ptrace",
    "getxattr",
    "truncate",
];
const CALLS32: &[&str] = &["socketcall", "chown32", "open", "unlink", "execve", "fork"];
const FIELDS: &[&str] = &[
    "-F auid>=1000",
    "-F auid!=unset",
    "-F auid=1001",
    "-F uid=0",
    "-F euid=0",
    "-F exit=-EACCES",
    "-F exit=-EPERM",
    "-F success=1",
    "-F success=0",
    "-F success>0",
    "-F success<=0",
    "-F a0=0x5",
    "-F a1&03",
    "-F a2&0100",
    "-F a0&=3",
    "-F perm=wa",
    "-F perm=r",
    "-F perm=x",
    "-F path=/etc/shadow",
    "-F dir=/home",
    "-C uid!=euid",
    "-C auid!=obj_uid",
    "-C obj_gid=egid",
    "-F obj_uid=0",
    "-F obj_gid!=42",
    "-F pid!=1",
    "-F ppid>100",
    "-F loginuid_set=1",
    "-F sessionid<5",
];
const PATHS: &[&str] = &["/etc/shadow", "/home/bob/x", "/home", "/homework", "/tmp/x"];
const IDS: &[u32] = &[0, 1000, 1001, u32::MAX];

fn rule_line(r: &mut Rng) -> String {
    if r.chance(12) {
        let p = r.pick(&["/etc/shadow", "/home"]);
        let perm = r.pick(&["", " -p wa", " -p r", " -p x", " -p rwxa"]);
        return format!("-w {p}{perm} -k w{}", r.below(9));
    }
    let mut s = format!("-a {},exit", if r.chance(30) { "never" } else { "always" });
    let arch = *r.pick(&["", " -F arch=b64", " -F arch=b32", " -F arch!=b64"]);
    s.push_str(arch);
    let table = if arch.contains("b32") { CALLS32 } else { CALLS };
    match r.below(4) {
        0 => {}
        1 => s.push_str(" -S all"),
        _ => {
            let n = 1 + r.below(3);
            let names: Vec<&str> =
                (0..n).map(|_| *r.pick(table)).filter(|n| *n != "fork" || arch.contains("b32")).collect();
            if !names.is_empty() {
                s.push_str(&format!(" -S {}", names.join(",")));
            }
        }
    }
    let mut has_watch = false;
    for _ in 0..r.below(4) {
        let f = *r.pick(FIELDS);
        let watch = f.contains("path=") || f.contains("dir=");
        if watch && has_watch {
            continue;
        }
        has_watch |= watch;
        s.push(' ');
        s.push_str(f);
    }
    // auditctl takes a key only after a syscall, watch, perm or exe.
    let keyable =
        s.contains(" -S ") || [" -F path=", " -F dir=", " -F perm=", " -F exe="].iter().any(|f| s.contains(f));
    for _ in 0..if keyable { r.below(3) } else { 0 } {
        s.push_str(&format!(" -F key=k{}", r.below(9)));
    }
    s
}

/// The reference: which rule's keys the event gets, from the parsed rules and full facts.
struct Call<'a> {
    f: CallFacts,
    names: &'a [Name<'a>],
}

fn var(c: &Call<'_>, v: Var) -> u32 {
    let ids = &c.f.ids;
    let low = |x: u64| x as u32;
    match v {
        Var::Auid => ids.auid,
        Var::Uid => ids.uid,
        Var::Euid => ids.euid,
        Var::Suid => ids.suid,
        Var::Fsuid => ids.fsuid,
        Var::Gid => ids.gid,
        Var::Egid => ids.egid,
        Var::Sgid => ids.sgid,
        Var::Fsgid => ids.fsgid,
        Var::Pid => c.f.pid,
        Var::Ppid => c.f.ppid,
        Var::SessionId => c.f.sessionid,
        Var::LoginuidSet => u32::from(ids.auid != u32::MAX),
        Var::Exit => low(c.f.ret as u64),
        // kernel/auditsc.c: return_valid is AUDITSC_SUCCESS (1) or AUDITSC_FAILURE (2).
        Var::Success => {
            if (-4095..=-1).contains(&c.f.ret) {
                2
            } else {
                1
            }
        }
        Var::A0 => low(c.f.args[0]),
        Var::A1 => low(c.f.args[1]),
        Var::A2 => low(c.f.args[2]),
        Var::A3 => low(c.f.args[3]),
        Var::ObjUid | Var::ObjGid => unreachable!(),
    }
}

fn acc(flags: u64) -> u32 {
    [4, 2, 6, 6][(flags & 3) as usize]
}

/// audit_match_perm, from the kernel's tables for the calls generated here.
fn perm_ok(c: &Call<'_>, mask: u32) -> bool {
    let arch = c.f.arch();
    let name = syscalls::name(arch, c.f.nr).unwrap_or("");
    let class = match name {
        "open" => acc(c.f.args[1]),
        "openat" => acc(c.f.args[2]),
        "openat2" => acc(c.f.open_how_flags),
        "execve" => 1,
        "socketcall" if arch == Arch::B32 && c.f.args[0] == 2 => 2,
        "unlink" | "rename" | "renameat2" | "truncate" => 2,
        "chmod" | "chown32" => 8,
        "getxattr" => 4,
        _ => 0,
    };
    class & mask != 0
}

fn owner(n: &Name<'_>, gid: bool) -> u32 {
    let (u, g) = n.owner.unwrap_or((0, 0));
    if gid { g } else { u }
}

fn cond(c: &Call<'_>, k: &Cond, name: Option<&Name<'_>>) -> bool {
    match k {
        Cond::Cmp { var: v @ (Var::ObjUid | Var::ObjGid), op, value } => {
            let gid = *v == Var::ObjGid;
            name.map_or_else(
                || c.names.iter().any(|n| op.holds(owner(n, gid), *value)),
                |n| op.holds(owner(n, gid), *value),
            )
        }
        Cond::Cmp { var: Var::Success, op, value } => op.holds(var(c, Var::Success), if *value == 1 { 1 } else { 2 }),
        Cond::Cmp { var: v, op, value } => op.holds(var(c, *v), *value),
        Cond::Path(p) => name.is_some_and(|n| n.path == p.as_bytes()),
        Cond::Dir(d) => {
            let d = d.trim_end_matches('/').as_bytes();
            c.names.iter().any(|n| n.path == d || (n.path.starts_with(d) && n.path.get(d.len()) == Some(&b'/')))
        }
        Cond::Perm(m) => perm_ok(c, *m),
        Cond::Exe { .. } | Cond::FsType { .. } => unreachable!("not generated"),
        // No labelling LSM here: no task has a label.
        Cond::Lsm { .. } => false,
        Cond::Compare { left, op, right } if right.is_obj() => {
            let t = var(c, *left);
            c.names.iter().any(|n| op.holds(t, owner(n, *right == Var::ObjGid)))
        }
        Cond::Compare { left, op, right } => op.holds(var(c, *left), var(c, *right)),
    }
}

fn applies(r: &Rule, c: &Call<'_>) -> bool {
    let arch = c.f.arch();
    let arch_ok = match r.arch {
        None => true,
        Some((op, a)) => (a == arch) == (op == Op::Eq),
    };
    arch_ok
        && match &r.syscalls {
            Syscalls::All => true,
            Syscalls::Some(list) => list.contains(&c.f.nr),
        }
}

fn reference(rules: &[Rule], c: &Call<'_>) -> Option<Vec<String>> {
    let holds = |r: &Rule, name| applies(r, c) && r.conds.iter().all(|k| cond(c, k, name));
    let is_watch = |r: &Rule| r.conds.iter().any(|k| matches!(k, Cond::Path(_)));
    // audit_filter_syscall: the exit list, first match; its priority is its place in order.
    let exit = rules.iter().position(|r| !is_watch(r) && holds(r, None));
    // audit_filter_inodes: per name, the watches of higher priority (earlier) than that match.
    let before = exit.unwrap_or(rules.len());
    let inode = c.names.iter().find_map(|n| (0..before).find(|&i| is_watch(&rules[i]) && holds(&rules[i], Some(n))));
    inode.or(exit).map(|i| &rules[i]).filter(|r| r.action == Action::Always).map(|r| r.keys.clone())
}

#[test]
fn compiled_decisions_equal_the_reference_evaluator() {
    let dir = std::env::temp_dir().join(format!("tracer-rules-ref-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut events, mut dropped) = (0, 0);
    for seed in 1..=400u64 {
        let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let text: String = (0..1 + r.below(12)).map(|_| rule_line(&mut r) + "\n").collect();
        let path = dir.join(format!("{seed}.rules"));
        std::fs::write(&path, &text).unwrap();
        let set =
            tracer_rules::load(std::slice::from_ref(&path)).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
        let compiled = tracer_rules::compile(&set).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        for _ in 0..300 {
            let compat = r.chance(25);
            let arch = if compat { Arch::B32 } else { Arch::B64 };
            let name = if compat { *r.pick(CALLS32) } else { *r.pick(CALLS) };
            let ids = Ids {
                auid: *r.pick(IDS),
                uid: *r.pick(IDS),
                euid: *r.pick(IDS),
                suid: *r.pick(IDS),
                fsuid: *r.pick(IDS),
                gid: *r.pick(&[0, 42]),
                egid: *r.pick(&[0, 42]),
                sgid: 0,
                fsgid: 0,
            };
            let f = CallFacts {
                compat,
                nr: syscalls::number(arch, name).unwrap(),
                ret: *r.pick(&[0, 3, -13, -1, -4095, -4096]),
                ids,
                pid: *r.pick(&[1, 500]),
                ppid: *r.pick(&[1, 500]),
                sessionid: *r.pick(&[1, 7, u32::MAX]),
                args: [*r.pick(&[0, 2, 3, 5]), *r.pick(&[0, 1, 2, 0o1001]), *r.pick(&[0, 1, 0o100, 0o102]), 0],
                open_how_flags: *r.pick(&[0, 1, 2]),
                exe: None,
            };
            let owners = [None, Some((0, 0)), Some((1001, 42)), Some((1000, 1000))];
            let names: Vec<Name<'_>> =
                (0..r.below(3)).map(|_| Name { path: r.pick(PATHS).as_bytes(), owner: *r.pick(&owners) }).collect();
            let call = Call { f, names: &names };
            let want = reference(&set.rules, &call);
            let cand = compiled.candidates(&f);
            let facts = Facts { arch, nr: f.nr, ret: f.ret, ids, names: &names };
            let got = compiled.decide(&cand, &facts).map(|i| compiled.keys(i).to_vec());
            assert_eq!(got, want, "seed {seed}: {name} ({arch:?}) {f:?} names {names:?}\nrules:\n{text}");
            if got.is_some() { events += 1 } else { dropped += 1 }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    // The cases must exercise both outcomes.
    assert!(events > 5_000 && dropped > 5_000, "{events} events, {dropped} dropped");
}

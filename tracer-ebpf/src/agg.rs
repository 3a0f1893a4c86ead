//! `tracer report`: a record whose report entry was seen before is counted in `AGG` instead
//! of sent (`tracer_common::agg`). The key is a hash of the record after its header, taken
//! in the scratch area just before the ring-buffer copy, so it is exactly the bytes user
//! space receives with the entry's first record and hashes again.

use core::{
    ffi::c_void,
    intrinsics::{AtomicOrdering, atomic_xadd},
};

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::generated::{bpf_get_smp_processor_id, bpf_loop},
};
use tracer_common::{
    agg::{AggKey, HASH_SEED, mix},
    event::{F_AGG, HEADER_SIZE, Header},
    syscount::STAT_AGG_FULL,
};

use crate::maps::{AGG, REC_CAP, SCRATCH, stat_inc};

/// Word offsets stay 8-aligned and below 128 KiB (inside `REC_CAP`).
const WORD_MASK: u32 = 0x1_FFF8;
const EEXIST: i32 = 17;

#[repr(C)]
struct Hashing {
    h: u64,
    /// Bytes to hash, from the end of the header.
    len: u32,
    _pad: u32,
}

/// Words hashed per callback: a bpf_loop call (an indirect call, the scratch lookup) cost
/// more than the hashing of one word.
const BLOCK: u32 = 8;

/// Words `BLOCK * i ..` of the record, in order, up to its end.
#[inline(never)]
extern "C" fn block(i: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the &mut Hashing that counted() gave it, alive for the whole loop.
    let st = unsafe { &mut *(ctx as *mut Hashing) };
    // SAFETY: a helper without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let Some(s) = SCRATCH.get_ptr(cpu) else {
        return 1;
    };
    let first = (i as u32).wrapping_mul(BLOCK);
    for j in 0..BLOCK {
        let w = first.wrapping_add(j);
        if w.wrapping_mul(8) >= st.len {
            return 1;
        }
        let at = (HEADER_SIZE as u32 + w * 8) & WORD_MASK;
        if at as usize + 8 > REC_CAP {
            return 1;
        }
        // SAFETY: s is this CPU's SCRATCH entry; at + 8 <= REC_CAP and at is 8-aligned inside the 8-aligned
        // record area, so the u64 read stays inside it.
        let mut word = unsafe { core::ptr::read((*s).rec.as_ptr().add(at as usize) as *const u64) };
        let rest = st.len - w * 8;
        if rest < 8 {
            // Bytes past the record are left-overs of earlier ones: zero, as user space pads.
            word &= (1u64 << ((rest & 7) * 8)) - 1;
        }
        st.h = mix(st.h, word);
    }
    0
}

/// True when the record's entry was already counted here (nothing to send); false when it
/// must be sent: its first occurrence (`F_AGG` set) or a full map (sent unaggregated).
#[inline(always)]
pub(crate) fn counted(h: &mut Header, size: u32) -> bool {
    let len = size.saturating_sub(HEADER_SIZE as u32);
    let mut st = Hashing { h: mix(HASH_SEED, u64::from(len)), len, _pad: 0 };
    // SAFETY: block is the callback bpf_loop expects and ctx is our live &mut Hashing; bpf_loop calls it
    // synchronously.
    unsafe {
        bpf_loop(len.div_ceil(8 * BLOCK), block as *mut c_void, (&mut st as *mut Hashing).cast(), 0);
    }
    let key = AggKey { auid: h.auid, kind: h.kind, failed: u32::from(h.ret < 0), _pad: 0, hash: st.h };
    let bump = |key: &AggKey| match AGG.get_ptr_mut(key) {
        Some(p) => {
            // SAFETY: p is the entry's value in the map, valid and 8-aligned while the program runs; other
            // CPUs update it only through atomic adds too (BPF's atomic add; the old value is unused).
            unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(p, 1) };
            true
        }
        None => false,
    };
    if bump(&key) {
        return true;
    }
    match AGG.insert(key, 1, u64::from(BPF_NOEXIST)) {
        Ok(()) => {
            h.flags |= F_AGG;
            false
        }
        // Another CPU inserted it meanwhile.
        Err(e) if e == -EEXIST => bump(&key),
        Err(_) => {
            stat_inc(STAT_AGG_FULL);
            false
        }
    }
}

//! The shared memory of a ring, seen through the offsets of `offload_params`.
//!
//! Both sides use this view: the ring (user side) and the emulated backend
//! (kernel side). Indices are free-running `u32`s; a slot is `index & mask`.
//! Every published index is a store-release and every index of the other
//! side is read with a load-acquire, as the uapi protocol says.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::raw::Mmap;
use crate::sys::{offload_cqe, offload_params, offload_sqe};

/// Pointers into a mapped ring, checked against its size.
///
/// Each view holds a reference to the mapping, so a view handed to the
/// emulated worker thread keeps the memory mapped for as long as that
/// thread may touch it.
#[derive(Debug, Clone)]
pub(crate) struct Queues {
    _map: Arc<Mmap>,
    sq_head: *const AtomicU32,
    sq_tail: *const AtomicU32,
    sq_flags: *const AtomicU32,
    sqes: *mut offload_sqe,
    cq_head: *const AtomicU32,
    cq_tail: *const AtomicU32,
    cqes: *mut offload_cqe,
    pub(crate) sq_entries: u32,
    pub(crate) cq_entries: u32,
}

// SAFETY: the pointers point into `map`, which is owned; all shared words are
// accessed atomically and slots are owned by one side at a time by protocol.
unsafe impl Send for Queues {}
// SAFETY: as for Send. The crate shares a view between the submission and
// the completion side of a ring (and its emulated worker): the words are
// atomics, and a slot is written only by the side that owns it by the
// queue protocol (SQ slots between the SQ head and tail by the submitter,
// CQ slots between the CQ head and tail by the poster), which the crate's
// types enforce (one `SubmissionQueue`, one `CompletionQueue` per ring).
unsafe impl Sync for Queues {}

fn field(map: &Mmap, off: u32, size: usize, align: usize, what: &'static str) -> Result<*mut u8> {
    let off = off as usize;
    let end = off.checked_add(size);
    if end.map_or(true, |e| e > map.len()) || off % align != 0 {
        return Err(Error::invalid(
            "offload_setup",
            format!("kernel returned a bad {what} offset {off} for a {} byte ring", map.len()),
        ));
    }
    // SAFETY: `off + size <= map.len()`, so the pointer stays in the mapping.
    Ok(unsafe { map.as_ptr().add(off) })
}

impl Queues {
    /// Checks every offset of `p` against the mapping and returns the view.
    pub(crate) fn new(map: Mmap, p: &offload_params) -> Result<Queues> {
        let word = |off, what| field(&map, off, 4, 4, what).map(|p| p as *const AtomicU32);
        let sq_head = word(p.sq_head_off, "sq head")?;
        let sq_tail = word(p.sq_tail_off, "sq tail")?;
        let sq_flags = word(p.sq_flags_off, "sq flags")?;
        let sq_mask = word(p.sq_mask_off, "sq mask")?;
        let sq_ent = word(p.sq_entries_off, "sq entries")?;
        let cq_head = word(p.cq_head_off, "cq head")?;
        let cq_tail = word(p.cq_tail_off, "cq tail")?;
        let cq_mask = word(p.cq_mask_off, "cq mask")?;
        let cq_ent = word(p.cq_entries_off, "cq entries")?;
        // SAFETY: the words were just checked to be inside the mapping and aligned.
        let (sqm, sqn, cqm, cqn) = unsafe {
            (
                (*sq_mask).load(Ordering::Relaxed),
                (*sq_ent).load(Ordering::Relaxed),
                (*cq_mask).load(Ordering::Relaxed),
                (*cq_ent).load(Ordering::Relaxed),
            )
        };
        let sane = |n: u32, m: u32, want: u32| n == want && n.is_power_of_two() && m == n - 1;
        if !sane(sqn, sqm, p.sq_entries) || !sane(cqn, cqm, p.cq_entries) {
            return Err(Error::invalid("offload_setup", "ring sizes in the mapping disagree with offload_params"));
        }
        let sqes = field(&map, p.sqes_off, sqn as usize * 64, 8, "sqes")?.cast();
        let cqes = field(&map, p.cqes_off, cqn as usize * 16, 8, "cqes")?.cast();
        Ok(Queues { _map: Arc::new(map), sq_head, sq_tail, sq_flags, sqes, cq_head, cq_tail, cqes, sq_entries: sqn, cq_entries: cqn })
    }

    fn word(&self, p: *const AtomicU32) -> &AtomicU32 {
        // SAFETY: checked in `new`; the mapping lives as long as `self`.
        unsafe { &*p }
    }

    pub(crate) fn sq_head(&self) -> &AtomicU32 {
        self.word(self.sq_head)
    }
    pub(crate) fn sq_tail(&self) -> &AtomicU32 {
        self.word(self.sq_tail)
    }
    pub(crate) fn sq_flags(&self) -> &AtomicU32 {
        self.word(self.sq_flags)
    }
    pub(crate) fn cq_head(&self) -> &AtomicU32 {
        self.word(self.cq_head)
    }
    pub(crate) fn cq_tail(&self) -> &AtomicU32 {
        self.word(self.cq_tail)
    }

    /// Writes the SQE of free-running index `idx`.
    pub(crate) fn write_sqe(&self, idx: u32, sqe: &offload_sqe) {
        let slot = (idx & (self.sq_entries - 1)) as usize;
        // SAFETY: slot < sq_entries, checked to lie in the mapping; the slot
        // is free (the caller checked against the SQ head), so the kernel
        // does not read it concurrently. Volatile: the memory is shared.
        unsafe { self.sqes.add(slot).write_volatile(*sqe) }
    }

    /// Reads the SQE of free-running index `idx` (a copy, as the kernel makes).
    pub(crate) fn read_sqe(&self, idx: u32) -> offload_sqe {
        let slot = (idx & (self.sq_entries - 1)) as usize;
        // SAFETY: slot < sq_entries, in the mapping; a torn read of plain
        // integers is harmless and the copy is what we validate.
        unsafe { self.sqes.add(slot).read_volatile() }
    }

    pub(crate) fn write_cqe(&self, idx: u32, cqe: &offload_cqe) {
        let slot = (idx & (self.cq_entries - 1)) as usize;
        // SAFETY: slot < cq_entries, in the mapping.
        unsafe { self.cqes.add(slot).write_volatile(*cqe) }
    }

    pub(crate) fn read_cqe(&self, idx: u32) -> offload_cqe {
        let slot = (idx & (self.cq_entries - 1)) as usize;
        // SAFETY: slot < cq_entries, in the mapping.
        unsafe { self.cqes.add(slot).read_volatile() }
    }
}

/// Layout of an emulated ring: one page-aligned region with the kernel
/// series' field order (indices, then the SQE array, then the CQE array).
pub(crate) fn emulated_params(sq_entries: u32, cq_entries: u32, flags: u32) -> offload_params {
    // Head and tail of each queue get their own cache line, as in io_uring.
    let sqes_off = 256u32;
    let cqes_off = sqes_off + sq_entries * 64;
    let size = cqes_off as u64 + cq_entries as u64 * 16;
    offload_params {
        size: std::mem::size_of::<offload_params>() as u32,
        flags,
        sq_entries,
        cq_entries,
        features: crate::sys::OFFLOAD_FEAT_SQE_LINK
            | crate::sys::OFFLOAD_FEAT_SQE_SKIP_SUCCESS
            | crate::sys::OFFLOAD_FEAT_WORKER
            | crate::sys::OFFLOAD_FEAT_GETEVENTS
            | crate::sys::OFFLOAD_FEAT_SQE_ASYNC,
        ring_size: size,
        sq_head_off: 0,
        sq_tail_off: 64,
        sq_mask_off: 8,
        sq_entries_off: 12,
        sq_flags_off: 16,
        sqes_off,
        cq_head_off: 128,
        cq_tail_off: 192,
        cq_mask_off: 136,
        cq_entries_off: 140,
        cqes_off,
        ..Default::default()
    }
}

/// Writes the mask and size words of a fresh emulated ring.
pub(crate) fn init_emulated(map: &Mmap, p: &offload_params) {
    let put = |off: u32, v: u32| {
        // SAFETY: the offsets of `emulated_params` lie in a mapping of
        // `ring_size` bytes, 4-byte aligned; nobody else uses it yet.
        unsafe { map.as_ptr().add(off as usize).cast::<u32>().write(v) }
    };
    put(p.sq_mask_off, p.sq_entries - 1);
    put(p.sq_entries_off, p.sq_entries);
    put(p.cq_mask_off, p.cq_entries - 1);
    put(p.cq_entries_off, p.cq_entries);
}

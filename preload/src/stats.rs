//! Counters printed at exit with `OFFLOAD_PRELOAD_STATS=1`.

use std::sync::atomic::{AtomicU64, Ordering};

pub struct Stats {
    /// Intercepted calls that the shim handled (not counting its own).
    pub calls: AtomicU64,
    /// Socket writes deferred (copied and answered at once).
    pub deferred: AtomicU64,
    /// Bytes deferred.
    pub deferred_bytes: AtomicU64,
    /// Submissions of a batch (deferred writes, backlog, the wait, read-ahead).
    pub flushes: AtomicU64,
    /// `offload_enter()` calls.
    pub enters: AtomicU64,
    /// Direct system calls made by the shim (pass-through and its own).
    pub direct: AtomicU64,
    /// Entries run through a ring.
    pub entries: AtomicU64,
    /// Short or refused deferred writes whose rest the shim kept and sent later.
    pub short_repairs: AtomicU64,
    /// Writes refused with EAGAIN because of a backlog on the fd.
    pub eagain: AtomicU64,
    /// Deferred-write errors reported by a later call.
    pub late_errors: AtomicU64,
    /// Sockets read ahead after a wait.
    pub readahead: AtomicU64,
    /// Application reads served from read-ahead buffers.
    pub buffered_reads: AtomicU64,
    /// Readiness events synthesized for buffered data.
    pub synthesized: AtomicU64,
}

pub static STATS: Stats = Stats {
    calls: AtomicU64::new(0),
    deferred: AtomicU64::new(0),
    deferred_bytes: AtomicU64::new(0),
    flushes: AtomicU64::new(0),
    enters: AtomicU64::new(0),
    direct: AtomicU64::new(0),
    entries: AtomicU64::new(0),
    short_repairs: AtomicU64::new(0),
    eagain: AtomicU64::new(0),
    late_errors: AtomicU64::new(0),
    readahead: AtomicU64::new(0),
    buffered_reads: AtomicU64::new(0),
    synthesized: AtomicU64::new(0),
};

#[inline]
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[inline]
pub fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// One line, `key=value` pairs, for people and for the tests' parsers.
pub fn line(mode: &str) -> String {
    let s = &STATS;
    let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
    format!(
        "stats pid={} mode={} calls={} deferred={} deferred_bytes={} flushes={} syscalls={} enters={} direct={} \
         entries={} short_repairs={} eagain={} late_errors={} readahead={} buffered_reads={} synthesized={}",
        crate::sys::raw6(libc::SYS_getpid, [0; 6]),
        mode,
        g(&s.calls),
        g(&s.deferred),
        g(&s.deferred_bytes),
        g(&s.flushes),
        g(&s.enters) + g(&s.direct),
        g(&s.enters),
        g(&s.direct),
        g(&s.entries),
        g(&s.short_repairs),
        g(&s.eagain),
        g(&s.late_errors),
        g(&s.readahead),
        g(&s.buffered_reads),
        g(&s.synthesized),
    )
}

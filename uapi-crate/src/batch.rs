//! The safe scoped batch API.
//!
//! [`Ring::batch`] hands the closure a [`Batch`] that records entries whose
//! buffers are borrowed for `'env`, a lifetime that outlives the whole
//! `batch` call. Nothing reaches the kernel while the closure runs (so a
//! panicking closure leaves nothing behind); afterwards `batch` submits the
//! entries and does not return, on success or on error, until every entry
//! that the kernel took has completed and every entry it did not take has
//! been taken back out of the SQ. Borrowed buffers therefore cannot be
//! released while the kernel may still use them.
//!
//! Whatever the entries did is in the [`BatchResults`], on failure too
//! ([`BatchError`]): the fds they created, and the fds of `close` entries
//! that did not close them. Nothing is leaked.

use std::fmt;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, Ordering};

use crate::entry::res_to_result;
use crate::error::{Error, ErrorKind, Result};
use crate::op::{FdRole, Op};
use crate::ring::{Ring, BATCH, RESERVED};
use crate::split::enter_error;
use crate::sys::*;

/// Identifies an entry of a batch in its [`BatchResults`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub usize);

/// A just-recorded entry: set LINK or read its id.
#[derive(Debug)]
pub struct OpRef<'a> {
    sqe: &'a mut offload_sqe,
    id: OpId,
}

impl OpRef<'_> {
    /// `OFFLOAD_SQE_LINK`: run the next entry only if this one succeeds;
    /// if it fails, the rest of its chain completes with `ECANCELED`. A
    /// chain always ends with the batch's last entry.
    pub fn link(self) -> Self {
        self.sqe.flags |= OFFLOAD_SQE_LINK;
        self
    }

    /// The entry's id, to look its result up.
    pub fn id(&self) -> OpId {
        self.id
    }
}

/// The entries of one [`Ring::batch`] call, with buffers borrowed for `'env`.
#[derive(Debug)]
pub struct Batch<'env> {
    sqes: Vec<offload_sqe>,
    roles: Vec<FdRole>,
    /// The builders: the entries point into them (addresses, headers).
    ops: Vec<Box<dyn Op<'env> + 'env>>,
    // Invariant in 'env: a batch must not accept buffers that live shorter.
    _env: PhantomData<*mut &'env ()>,
}

impl<'env> Batch<'env> {
    fn new() -> Self {
        Batch { sqes: Vec::new(), roles: Vec::new(), ops: Vec::new(), _env: PhantomData }
    }

    fn add(&mut self, nr: libc::c_long, args: [u64; 6], role: FdRole) -> OpRef<'_> {
        let id = OpId(self.sqes.len());
        self.sqes.push(offload_sqe { nr: nr as u32, flags: 0, user_data: 0, args });
        self.roles.push(role);
        let last = self.sqes.len() - 1;
        OpRef { sqe: &mut self.sqes[last], id }
    }

    /// Entries recorded so far.
    pub fn len(&self) -> usize {
        self.sqes.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.sqes.is_empty()
    }

    /// Records the operation `op` (a builder of [`crate::op`]), whose
    /// borrows last for `'env`.
    ///
    /// The batch keeps the builder until [`Ring::batch`] returns: the
    /// entry may point into it. Fds the call creates (`socket`,
    /// `accept4`, `openat`, ...) are owned by the [`BatchResults`]; the fd
    /// of a [`Close`](crate::op::Close) comes back there if it was not
    /// closed, and that of a [`Dup3`](crate::op::Dup3) always.
    ///
    /// ```
    /// use syscall_offload::op::{Fstat, Lseek, Whence};
    /// use syscall_offload::{Backend, Ring};
    /// let mut ring = Ring::builder(8).backend(Backend::Emulated).build()?;
    /// let file = std::fs::File::open("/proc/self/exe")?;
    /// // SAFETY: all zeroes is a valid `struct stat`.
    /// let mut st: libc::stat = unsafe { std::mem::zeroed() };
    /// let ((end, _), res) = ring.batch(|b| {
    ///     (b.push(Lseek::new(&file, 0, Whence::End)).id(), b.push(Fstat::new(&file, &mut st)).id())
    /// })?;
    /// assert_eq!(res.get(end)? as i64, st.st_size);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push<O: Op<'env>>(&mut self, op: O) -> OpRef<'_> {
        let mut op: Box<dyn Op<'env> + 'env> = Box::new(op);
        // Computed on the boxed builder: what the entry points into stays put.
        let sqe = op.entry().0;
        let role = op.fd_role();
        self.ops.push(op);
        self.add(sqe.nr as libc::c_long, sqe.args, role)
    }

    /// Any syscall with raw arguments: the escape hatch.
    ///
    /// # Safety
    ///
    /// Every pointer in `args` must be valid, for the access the syscall
    /// makes, until [`Ring::batch`] returns; every fd must stay open that
    /// long. A call that creates fds leaves them to the caller (the result
    /// is a raw number, not owned by [`BatchResults`]).
    pub unsafe fn syscall(&mut self, nr: u32, args: [u64; 6]) -> OpRef<'_> {
        self.add(nr as libc::c_long, args, FdRole::None)
    }
}

/// The results of one batch, in the order the entries were recorded.
///
/// Owns the fds that `socket`, `accept4` and `openat` entries created, and
/// those that `close` entries were given and did not close, until
/// [`take_fd`](BatchResults::take_fd) hands them out; the rest are closed
/// on drop.
#[derive(Debug)]
pub struct BatchResults {
    /// `None`: the entry did not run (the batch failed first).
    res: Vec<Option<i64>>,
    fds: Vec<Option<OwnedFd>>,
}

/// Whether `fd` is an open file descriptor number (`fcntl(fd, F_GETFD)`).
fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the fd flags; any number is fine.
    let r = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    r != -1 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EBADF)
}

/// Whether a `close(raw)` entry that completed with `res` (`None`: it never
/// ran) released the fd. `reused` says whether an entry of the same batch
/// got the number back for a new fd.
fn close_released(res: Option<i64>, raw: RawFd, reused: bool) -> bool {
    let Some(res) = res else {
        return false;
    };
    let errno = match res {
        r if r >= 0 => return true,
        r => r.checked_neg().and_then(|e| i32::try_from(e).ok()).unwrap_or(libc::EIO),
    };
    match errno {
        // A failed chain: the entry did not run.
        libc::ECANCELED => false,
        // close() releases the fd before it reports an interruption or a
        // flush error; EBADF: it was not open.
        libc::EBADF | libc::EINTR | libc::EIO | libc::ENOSPC | libc::EDQUOT => true,
        // Refused before it ran: the allowlist or table (EOPNOTSUPP), flags
        // (EINVAL), seccomp (EPERM, or any errno a filter chose); or a flush
        // error of an unusual file system, after the fd was released. The
        // fd table tells which, unless another thread took the number in
        // the meantime, which a close that failed that way makes unlikely.
        _ => reused || !fd_is_open(raw),
    }
}

/// The fd an entry leaves to its results, given its result `res` (`None`:
/// it did not run) and the fds the entries of its submission `created`.
pub(crate) fn settle(role: FdRole, res: Option<i64>, created: &[i64]) -> Option<OwnedFd> {
    match role {
        // SAFETY: the syscall just created this fd for us; nobody else
        // owns its number.
        FdRole::New => res.filter(|&r| r >= 0).map(|r| unsafe { OwnedFd::from_raw_fd(r as RawFd) }),
        FdRole::Close(fd) => {
            let raw = fd.as_raw_fd();
            if close_released(res, raw, created.contains(&(raw as i64))) {
                // The number is closed (or someone else's now).
                std::mem::forget(fd);
                None
            } else {
                Some(fd)
            }
        }
        // dup3 leaves the number ours, naming the old or the new file.
        FdRole::Replace(fd) => Some(fd),
        FdRole::None => None,
    }
}

impl BatchResults {
    fn new(res: Vec<Option<i64>>, roles: Vec<FdRole>) -> BatchResults {
        let created: Vec<i64> =
            res.iter().zip(&roles).filter_map(|(r, k)| matches!(k, FdRole::New).then_some((*r)?)).collect();
        let fds = roles.into_iter().zip(&res).map(|(role, &r)| settle(role, r, &created)).collect();
        BatchResults { res, fds }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.res.len()
    }

    /// Whether the batch was empty.
    pub fn is_empty(&self) -> bool {
        self.res.is_empty()
    }

    /// Whether entry `id` ran (always, unless the batch failed first).
    pub fn ran(&self, id: OpId) -> bool {
        self.raw(id).is_some()
    }

    /// How many entries ran.
    pub fn ran_count(&self) -> usize {
        self.res.iter().filter(|r| r.is_some()).count()
    }

    /// The raw result (`-errno` on failure) of entry `id`; `None` if it did
    /// not run or is not in this batch.
    pub fn raw(&self, id: OpId) -> Option<i64> {
        self.res.get(id.0).copied().flatten()
    }

    /// Entry `id`'s result: the syscall's return value, or its error
    /// (`ECANCELED` for an entry of a failed link chain, or one that did
    /// not run because the batch failed first). `EINVAL` for an id that is
    /// not in this batch.
    pub fn get(&self, id: OpId) -> std::io::Result<u64> {
        match self.res.get(id.0) {
            None => Err(std::io::Error::from_raw_os_error(libc::EINVAL)),
            Some(r) => res_to_result(r.unwrap_or(-(libc::ECANCELED as i64))),
        }
    }

    /// All results, in order (as [`get`](BatchResults::get) gives them).
    pub fn iter(&self) -> impl Iterator<Item = std::io::Result<u64>> + '_ {
        (0..self.res.len()).map(|i| self.get(OpId(i)))
    }

    /// Takes the fd that entry `id` holds: the one a `socket`, `accept4` or
    /// `openat` entry created, or the one a `close` entry was given and did
    /// not close (it was refused, cancelled, or did not run). Otherwise the
    /// entry's error, or `EBADF` if it holds no fd (or it was taken already).
    pub fn take_fd(&mut self, id: OpId) -> std::io::Result<OwnedFd> {
        if let Some(fd) = self.fds.get_mut(id.0).and_then(Option::take) {
            return Ok(fd);
        }
        self.get(id)?;
        Err(std::io::Error::from_raw_os_error(libc::EBADF))
    }
}

/// A [`Ring::batch`] that failed: the error, the closure's value, and the
/// results of the entries that ran before the failure. What those created
/// (and the fds of `close` entries that did not close them) is owned by
/// the results, so dropping the error closes it: nothing leaks.
///
/// Converts into [`Error`] and [`std::io::Error`], so `?` works.
pub struct BatchError<T> {
    error: Error,
    value: T,
    results: BatchResults,
}

impl<T> BatchError<T> {
    /// What failed.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// [`Error::kind`] of the error.
    pub fn kind(&self) -> ErrorKind {
        self.error.kind()
    }

    /// [`Error::errno`] of the error.
    pub fn errno(&self) -> i32 {
        self.error.errno()
    }

    /// What the batch's closure returned.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The results: entries that ran have theirs, the others are
    /// `ECANCELED` ([`BatchResults::ran`] tells them apart).
    pub fn results(&self) -> &BatchResults {
        &self.results
    }

    /// The results, to take fds from.
    pub fn results_mut(&mut self) -> &mut BatchResults {
        &mut self.results
    }

    /// The error, the closure's value and the results.
    pub fn into_parts(self) -> (Error, T, BatchResults) {
        (self.error, self.value, self.results)
    }
}

impl<T> fmt::Debug for BatchError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchError").field("error", &self.error).field("results", &self.results).finish_non_exhaustive()
    }
}

impl<T> fmt::Display for BatchError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} of {} batch entries ran)", self.error, self.results.ran_count(), self.results.len())
    }
}

impl<T> std::error::Error for BatchError<T> {}

impl<T> From<BatchError<T>> for Error {
    fn from(e: BatchError<T>) -> Error {
        e.error
    }
}

impl<T> From<BatchError<T>> for std::io::Error {
    fn from(e: BatchError<T>) -> std::io::Error {
        e.error.into()
    }
}

impl Ring {
    /// Runs a batch of entries whose buffers are borrowed, safely.
    ///
    /// The closure records entries on a [`Batch`]; then they are submitted
    /// (in as many `offload_enter` calls as the queue sizes need) and
    /// `batch` returns when every one has completed, with the closure's
    /// value and the [`BatchResults`]. Entries queued with
    /// [`push`](Ring::push) before are submitted first; their completions
    /// wait in [`completions`](Ring::completions).
    ///
    /// A signal or a full CQ makes `offload_enter` consume fewer entries
    /// (or none, `EINTR`/`EBUSY`): `batch` enters again for the rest, never
    /// running an entry twice. When the kernel refuses `offload_enter`
    /// with `EPERM` (a traced task), the entries run as direct calls (see
    /// [`Ring::fallback`]).
    ///
    /// Errors ([`BatchError`], with the results of what ran):
    /// [`ErrorKind::Forked`] after `fork()`, `InvalidInput` when entries
    /// pushed before the batch left a link chain open, and
    /// `offload_enter`'s errno if it fails otherwise. On error no entry of
    /// the batch is left in the SQ or running.
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use std::os::unix::net::UnixStream;
    /// use syscall_offload::{Backend, Ring};
    /// use syscall_offload::op;
    ///
    /// let mut ring = Ring::builder(8).backend(Backend::Emulated).build()?;
    /// let (rx, tx) = UnixStream::pair()?;
    /// let msg = b"hello";
    /// let mut out = [0u8; 5];
    /// let ((w, r), res) = ring.batch(|b| {
    ///     let w = b.push(op::Write::new(tx.as_fd(), msg)).link().id();
    ///     let r = b.push(op::Read::new(rx.as_fd(), &mut out)).id();
    ///     (w, r)
    /// })?;
    /// assert_eq!(res.get(w)?, 5);
    /// assert_eq!(res.get(r)?, 5);
    /// assert_eq!(&out, b"hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn batch<'env, T>(
        &mut self,
        f: impl FnOnce(&mut Batch<'env>) -> T,
    ) -> std::result::Result<(T, BatchResults), BatchError<T>> {
        let mut b = Batch::new();
        let value = f(&mut b);
        let mut results: Vec<Option<i64>> = vec![None; b.sqes.len()];
        let out = self.check_batch().and_then(|()| self.run_batch(&mut b, &mut results));
        let results = BatchResults::new(results, std::mem::take(&mut b.roles));
        // `b` (the msghdrs and addresses the entries pointed to) goes only now.
        drop(b);
        match out {
            Ok(()) => Ok((value, results)),
            Err(error) => Err(BatchError { error, value, results }),
        }
    }

    fn check_batch(&self) -> Result<()> {
        self.check_fork("batch")?;
        if self.sq.open_chain {
            return Err(Error::invalid(
                "batch",
                "an entry pushed before the batch carries OFFLOAD_SQE_LINK: its chain would swallow the batch",
            ));
        }
        Ok(())
    }

    /// Submits the batch and fills `results`; they are meaningful on error
    /// too (what ran before the failure).
    fn run_batch(&mut self, b: &mut Batch<'_>, results: &mut [Option<i64>]) -> Result<()> {
        let n = b.sqes.len();
        if n == 0 {
            return Ok(());
        }
        if let Some(last) = b.sqes.last_mut() {
            last.flags &= !OFFLOAD_SQE_LINK;
        }
        let worker = self.is_worker();
        // The batch's entries take the SQ indices from `start` on, in order.
        let start = self.sq.tail;
        let mut next = 0usize;
        let mut got = 0usize;
        loop {
            while next < n && self.sq_space() > 0 {
                let mut sqe = b.sqes[next];
                sqe.user_data = RESERVED | BATCH | next as u64;
                if let Err(e) = self.push_sqe(&sqe) {
                    self.abandon(start, next, got, b, e.errno());
                    return Err(e);
                }
                next += 1;
            }
            self.publish();
            if got == n {
                self.sq.open_chain = false;
                return Ok(());
            }
            let pending = self.sq_len();
            let r = if worker {
                // Any offload_enter wakes a sleeping worker; this one also
                // waits for a completion (of the batch or not: the loop
                // goes on until every batch entry has one).
                fence(Ordering::SeqCst);
                let mut flags = OFFLOAD_ENTER_GETEVENTS;
                if self.sh.q.sq_flags().load(Ordering::Relaxed) & OFFLOAD_SQ_NEED_WAKEUP != 0 {
                    flags |= OFFLOAD_ENTER_SQ_WAKEUP;
                }
                self.enter_raw(0, 1, flags)
            } else {
                self.enter_raw(pending, 0, 0)
            };
            let before = got;
            self.drain(|idx, res| {
                if let Some(slot) = results.get_mut(idx as usize) {
                    if slot.is_none() {
                        *slot = Some(res);
                        got += 1;
                    }
                }
            });
            let err = match r {
                Ok(0) if !worker && pending > 0 && got == before => Some(libc::EAGAIN),
                Ok(_) | Err(libc::EINTR) | Err(libc::EBUSY) => None,
                Err(e) => Some(e),
            };
            if let Some(e) = err {
                self.abandon(start, next, got, b, e);
                return Err(enter_error("offload_enter (batch)", e));
            }
        }
    }

    /// Takes the batch's unconsumed entries back out of the SQ after a
    /// failed `offload_enter` (`errno`).
    ///
    /// Inline rings run nothing outside `offload_enter`, so moving the tail
    /// back is race-free, and every batch entry they consumed has
    /// completed: the `pushed - got` entries at the end of the SQ are the
    /// batch's unconsumed ones (entries pushed before the batch come first
    /// and stay).
    ///
    /// A worker ring whose worker is gone (`EOWNERDEAD`,
    /// `OFFLOAD_SQ_WORKER_GONE`) takes no more entries: when every batch
    /// entry it took has completed, nothing can touch the borrowed buffers
    /// any more and the rest is taken back. Otherwise a worker may be
    /// reading the SQ, or running taken entries with borrowed buffers, at
    /// any time: there is no sound way to return, so the process aborts
    /// (worker rings retry `EINTR` and `EBUSY` until then, so this takes an
    /// `offload_enter` that fails for good, e.g. `EBADF` after the ring fd
    /// was closed behind the crate's back).
    fn abandon(&mut self, start: u32, pushed: usize, got: usize, b: &Batch<'_>, errno: i32) {
        if self.is_worker() {
            let head = self.sh.q.sq_head().load(Ordering::Acquire);
            // Batch entries the worker took: none while the head is still
            // on entries pushed before the batch.
            let taken = (head.wrapping_sub(start) as i32).max(0) as usize;
            let taken = taken.min(pushed);
            let gone = self.sq_flags().contains(SqFlags::WORKER_GONE) || errno == libc::EOWNERDEAD;
            if !(gone && got >= taken) && got < pushed {
                eprintln!("syscall-offload: offload_enter failed with batch entries in flight; aborting");
                std::process::abort();
            }
        }
        let unconsumed = (pushed.saturating_sub(got) as u32).min(self.sq_len());
        self.sq.tail = self.sq.tail.wrapping_sub(unconsumed);
        self.publish();
        // The kernel's chain state follows the last entry it consumed
        // (inline: every consumed batch entry has posted its CQE).
        self.sq.open_chain = got > 0 && b.sqes.get(got - 1).is_some_and(|s| s.flags & OFFLOAD_SQE_LINK != 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op;
    use crate::ring::{Backend, Builder};

    fn emulated(entries: u32, script: &[Option<i32>]) -> Ring {
        let mut ring = Builder::new(entries).backend(Backend::Emulated).build().unwrap();
        ring.script_enter(script);
        ring
    }

    fn dev_null() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn a_batch_that_fails_midway_keeps_what_ran_and_owns_its_fds() {
        // The SQ holds 4: the second offload_enter fails.
        let mut ring = emulated(4, &[None, Some(libc::EIO)]);
        let err = ring
            .batch(|b| {
                let open = b.push(op::Openat::new(None, c"/dev/null", op::OFlags::from_bits_retain(libc::O_RDONLY), 0)).id();
                let sock = b.push(op::Socket::new(libc::AF_UNIX, libc::SOCK_STREAM, op::SockFlags::empty(), 0)).id();
                b.push(op::Getpid::new());
                b.push(op::Getpid::new());
                let later = b.push(op::Openat::new(None, c"/dev/null", op::OFlags::from_bits_retain(libc::O_RDONLY), 0)).id();
                b.push(op::Getpid::new());
                (open, sock, later)
            })
            .unwrap_err();
        assert_eq!((err.kind(), err.errno()), (ErrorKind::Os, libc::EIO));
        assert!(err.to_string().contains("4 of 6 batch entries ran"), "{err}");
        let (_, (open, sock, later), mut res) = err.into_parts();
        assert!(res.ran(OpId(3)) && !res.ran(later) && !res.ran(OpId(5)));
        assert_eq!(res.raw(later), None);
        assert_eq!(res.get(later).unwrap_err().raw_os_error(), Some(libc::ECANCELED));
        let (a, s) = (res.take_fd(open).unwrap(), res.take_fd(sock).unwrap());
        assert!(fd_is_open(a.as_raw_fd()) && fd_is_open(s.as_raw_fd()));
        assert_eq!(res.take_fd(later).unwrap_err().raw_os_error(), Some(libc::ECANCELED));
        // Nothing of the batch is left queued; the ring goes on.
        assert_eq!(ring.sq_len(), 0);
        let (id, res) = ring.batch(|b| b.push(op::Getpid::new()).id()).unwrap();
        assert_eq!(res.get(id).unwrap(), u64::from(std::process::id()));
    }

    #[test]
    fn a_close_that_did_not_run_because_the_batch_failed_comes_back() {
        let mut ring = emulated(4, &[Some(libc::EIO)]);
        let fd = dev_null();
        let raw = fd.as_raw_fd();
        let mut err = ring.batch(|b| b.push(op::Close::new(fd)).id()).unwrap_err();
        let id = *err.value();
        assert_eq!(err.results_mut().take_fd(id).unwrap().as_raw_fd(), raw);
        let io: std::io::Error = err.into();
        assert_eq!(io.get_ref().and_then(|e| e.downcast_ref::<Error>()).map(Error::errno), Some(libc::EIO));
    }

    #[test]
    fn a_batch_refused_before_it_runs_returns_its_close_fds() {
        let mut ring = emulated(4, &[]);
        ring.sq.open_chain = true;
        let fd = dev_null();
        let mut err = ring.batch(|b| b.push(op::Close::new(fd)).id()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let id = *err.value();
        assert!(fd_is_open(err.results_mut().take_fd(id).unwrap().as_raw_fd()));
    }

    #[test]
    fn close_results_say_whether_the_fd_was_released() {
        let e = |errno: i32| Some(-(errno as i64));
        let open = dev_null();
        let raw = open.as_raw_fd();
        // Did not run: the fd is still ours.
        assert!(!close_released(None, raw, false));
        assert!(!close_released(e(libc::ECANCELED), raw, false));
        // Ran: released, even when close() reports an error.
        for r in [Some(0), e(libc::EINTR), e(libc::EIO), e(libc::ENOSPC), e(libc::EDQUOT), e(libc::EBADF)] {
            assert!(close_released(r, raw, false), "{r:?}");
        }
        // Refused (allowlist, flags, seccomp): the fd table tells.
        for errno in [libc::EOPNOTSUPP, libc::EINVAL, libc::EPERM, libc::EACCES] {
            assert!(!close_released(e(errno), raw, false), "{errno}");
            assert!(close_released(e(errno), raw, true), "{errno}: the batch reused the number");
        }
    }
}

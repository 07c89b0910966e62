//! What the shim knows about the process's file descriptors, shared by all
//! threads under one lock: deferred bytes, backlogs, read-ahead buffers and
//! the mirror of the application's epoll interest.

use std::collections::HashMap;

use crate::sys::SpinLock;

/// Read-ahead buffer size per socket.
pub const RBUF: usize = 16 * 1024;
/// Free buffers kept for reuse.
const POOL_MAX: usize = 256;

#[derive(Default)]
pub struct Fd {
    /// An accepted TCP socket: its writes may be deferred and its data read ahead.
    pub tcp: bool,
    pub nonblock: bool,
    /// Thread (tid) whose batch holds this fd's pending bytes or backlog; 0: none.
    pub owner: i32,
    /// Deferred bytes not yet submitted, and the send flags they share.
    pub pending: Vec<u8>,
    pub pflags: i32,
    /// The fd's bytes are in a batch being run right now.
    pub inflight: bool,
    /// Unsent rest of a short deferred write: `backlog[boff..]`.
    pub backlog: Vec<u8>,
    pub boff: usize,
    pub bflags: i32,
    /// A deferred write's error, for the next call on the fd.
    pub err: i32,
    /// shutdown(how) asked for while a backlog existed.
    pub shut_after: Option<i32>,
    /// Read-ahead data `rbuf[rstart..]`, then EOF or an error.
    pub rbuf: Vec<u8>,
    pub rstart: usize,
    pub reof: bool,
    pub rerr: i32,
    /// A read-ahead of this fd is being run right now.
    pub ra_busy: bool,
    /// Epoll instances where the application registered this fd.
    pub epfds: Vec<i32>,
    /// The shim refused a write with EAGAIN while the socket itself had
    /// room: the next wait owes the application an EPOLLOUT (an
    /// edge-triggered loop would otherwise wait for an edge that the kernel
    /// never sends).
    pub owe_out: bool,
}

impl Fd {
    pub fn has_write_state(&self) -> bool {
        !self.pending.is_empty() || self.inflight || self.backlog.len() > self.boff
    }
    pub fn buffered(&self) -> usize {
        self.rbuf.len() - self.rstart
    }
    pub fn has_read_state(&self) -> bool {
        self.buffered() > 0 || self.reof || self.rerr != 0
    }
}

#[derive(Clone, Copy)]
pub struct Interest {
    pub events: u32,
    pub data: u64,
    /// EPOLLONESHOT fired: nothing is reported until EPOLL_CTL_MOD.
    pub disabled: bool,
}

#[derive(Default)]
pub struct Table {
    pub fds: Vec<Fd>,
    /// epfd -> fd -> the application's registration.
    pub ep: HashMap<i32, HashMap<i32, Interest>>,
    /// Fds with read-ahead state (data, EOF or error).
    pub buffered: Vec<i32>,
    /// Fds with `owe_out` set.
    pub owed: Vec<i32>,
    pool: Vec<Vec<u8>>,
}

pub static TABLE: SpinLock<Option<Table>> = SpinLock::new(None);

impl Table {
    pub fn fd(&mut self, fd: i32) -> Option<&mut Fd> {
        if fd < 0 {
            return None;
        }
        self.fds.get_mut(fd as usize)
    }

    pub fn fd_mut(&mut self, fd: i32) -> &mut Fd {
        let i = fd as usize;
        if self.fds.len() <= i {
            self.fds.resize_with((i + 1).next_power_of_two().max(64), Fd::default);
        }
        &mut self.fds[i]
    }

    /// A buffer from the pool (no allocation after warm-up).
    pub fn buf(&mut self) -> Vec<u8> {
        self.pool.pop().unwrap_or_default()
    }

    pub fn give(&mut self, mut b: Vec<u8>) {
        if b.capacity() > 0 && b.capacity() <= 256 * 1024 && self.pool.len() < POOL_MAX {
            b.clear();
            self.pool.push(b);
        }
    }

    pub fn unbuffer(&mut self, fd: i32) {
        self.buffered.retain(|&x| x != fd);
    }

    /// Forgets everything about `fd` (closed, or replaced by dup2).
    /// Returns its old state for the caller to settle.
    pub fn forget(&mut self, fd: i32) -> Fd {
        if fd < 0 || fd as usize >= self.fds.len() {
            return Fd::default();
        }
        let old = std::mem::take(&mut self.fds[fd as usize]);
        for e in &old.epfds {
            if let Some(m) = self.ep.get_mut(e) {
                m.remove(&fd);
            }
        }
        // fd may itself be an epoll instance.
        if let Some(m) = self.ep.remove(&fd) {
            for f in m.keys() {
                if let Some(x) = self.fd(*f) {
                    x.epfds.retain(|&e| e != fd);
                }
            }
        }
        if old.has_read_state() {
            self.unbuffer(fd);
        }
        old
    }

    /// The state a fork child starts from: the epoll mirror and what each
    /// fd is stay; pending bytes, backlogs and read-ahead data are the
    /// parent's to send and serve, never the child's.
    pub fn reset_for_child(&mut self) {
        for f in &mut self.fds {
            f.owner = 0;
            f.pending = Vec::new();
            f.inflight = false;
            f.backlog = Vec::new();
            f.boff = 0;
            f.err = 0;
            f.shut_after = None;
            f.rbuf = Vec::new();
            f.rstart = 0;
            f.reof = false;
            f.rerr = 0;
            f.ra_busy = false;
            f.owe_out = false;
            // The child's own writes to the parent's sockets are not deferred.
            f.tcp = false;
        }
        self.buffered.clear();
        self.owed.clear();
    }

    /// A write to `fd` was refused because of the shim's backlog.
    pub fn owe(&mut self, fd: i32) {
        let f = self.fd_mut(fd);
        if !f.owe_out {
            f.owe_out = true;
            self.owed.push(fd);
        }
    }
}

// A file closed inside the closure would leave the entry with a number
// that the next open reuses: the batch borrows its fds for longer.
use std::os::fd::AsFd;
use syscall_offload::op;

fn main() {
    let mut ring = syscall_offload::Ring::new(4).unwrap();
    let _ = ring.batch(|b| {
        let null = std::fs::File::create("/dev/null").unwrap();
        b.push(op::Write::new(null.as_fd(), b"lost"));
    });
}

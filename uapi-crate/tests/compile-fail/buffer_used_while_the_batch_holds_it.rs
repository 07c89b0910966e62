// The kernel writes the buffer when the batch runs, after the closure:
// the closure cannot touch it once an entry holds it.
use std::os::fd::AsFd;
use syscall_offload::op;

fn main() {
    let mut ring = syscall_offload::Ring::new(4).unwrap();
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let mut buf = [1u8; 8];
    let _ = ring.batch(|b| {
        b.push(op::Read::new(zero.as_fd(), &mut buf));
        buf[0] = 2;
    });
}

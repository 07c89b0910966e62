// A buffer that dies inside the closure would dangle while the kernel
// writes into it: the batch borrows its buffers for longer.
use std::os::fd::AsFd;
use syscall_offload::op;

fn main() {
    let mut ring = syscall_offload::Ring::new(4).unwrap();
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let _ = ring.batch(|b| {
        let mut buf = [0u8; 8];
        b.push(op::Read::new(zero.as_fd(), &mut buf));
    });
}

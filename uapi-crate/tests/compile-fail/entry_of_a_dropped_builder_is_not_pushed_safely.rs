// The entry of a builder is plain numbers, but pushing it is unsafe: the
// kernel follows its pointers later. Safe code cannot push it.
use syscall_offload::op::{self, Op};

fn main() {
    let mut ring = syscall_offload::Ring::new(4).unwrap();
    let mut buf = vec![0u8; 8];
    let entry = op::Read::new(&std::io::stdin(), &mut buf[..]).entry();
    ring.push(&entry).unwrap();
}

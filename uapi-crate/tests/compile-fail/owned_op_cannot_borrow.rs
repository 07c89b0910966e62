// An owned operation may run long after push_owned returns (a worker ring):
// it cannot borrow its buffer or its fd; only 'static builders are owned.
use syscall_offload::op;

fn main() {
    let mut ring = syscall_offload::Ring::new(4).unwrap();
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let mut buf = [0u8; 8];
    let _ = ring.push_owned(op::Read::new(&zero, &mut buf[..]));
}

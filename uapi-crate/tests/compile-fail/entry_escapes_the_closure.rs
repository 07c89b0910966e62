// An entry handle (to set LINK on) borrows the batch: it cannot leave the
// closure either.
use syscall_offload::op;

fn main() {
    let mut ring = syscall_offload::Ring::new(4).unwrap();
    let _ = ring.batch(|b| b.push(op::Getpid::new()));
}

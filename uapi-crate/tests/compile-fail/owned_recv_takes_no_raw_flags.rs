// Regression: OwnedOp::recv (now op::Recvfrom) took raw flags, and MSG_TRUNC made the kernel
// report bytes it never copied, which the Vec then exposed. It takes
// RecvFlags, which has no TRUNC.
use std::os::fd::OwnedFd;
use std::sync::Arc;

fn main() {
    let fd: Arc<OwnedFd> = Arc::new(std::fs::File::open("/dev/null").unwrap().into());
    let _ = syscall_offload::op::Recvfrom::new(fd.clone(), Vec::with_capacity(64), libc::MSG_TRUNC);
    let _ = syscall_offload::op::Recvfrom::new(fd, Vec::with_capacity(64), syscall_offload::RecvFlags::TRUNC);
}

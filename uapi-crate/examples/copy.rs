//! Batched file copy: `cargo run --example copy -- SRC DST`.
//!
//! Each round queues up to 16 positional reads of 64 KiB, then the matching
//! writes, as two batches: 32 syscalls for two `offload_enter` calls.

use std::os::fd::AsFd;

use syscall_offload::op;
use syscall_offload::Ring;

const CHUNK: usize = 64 * 1024;
const DEPTH: usize = 16;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(src), Some(dst)) = (args.next(), args.next()) else {
        eprintln!("usage: copy SRC DST");
        std::process::exit(2);
    };
    let src = std::fs::File::open(src)?;
    let dst = std::fs::File::create(dst)?;
    let len = src.metadata()?.len();
    let mut ring = Ring::new(DEPTH as u32)?;
    eprintln!("copying {len} bytes on the {:?} backend", ring.backend());

    let mut bufs = vec![vec![0u8; CHUNK]; DEPTH];
    let mut off = 0u64;
    while off < len {
        let (_, reads) = ring.batch(|b| {
            for (i, buf) in bufs.iter_mut().enumerate() {
                b.push(op::Pread::new(src.as_fd(), buf, off + (i * CHUNK) as u64));
            }
        })?;
        let lens: Vec<usize> = reads.iter().map(|r| r.map(|n| n as usize)).collect::<Result<_, _>>()?;
        let (_, writes) = ring.batch(|b| {
            for (i, (buf, &n)) in bufs.iter().zip(&lens).enumerate() {
                if n > 0 {
                    b.push(op::Pwrite::new(dst.as_fd(), &buf[..n], off + (i * CHUNK) as u64));
                }
            }
        })?;
        for w in writes.iter() {
            w?; // short writes to a regular file only happen on ENOSPC, reported as such next round
        }
        let done: usize = lens.iter().sum();
        if done == 0 {
            break; // the file shrank under us
        }
        off += done as u64;
    }
    let (_, r) = ring.batch(|b| {
        b.push(op::Fsync::new(dst.as_fd()));
    })?;
    for x in r.iter() {
        x?;
    }
    Ok(())
}

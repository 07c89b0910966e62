//! Loopback echo server: `cargo run --example echo [-- ADDR]`.
//!
//! Every connection is served by batches: one `recv` per round, then one
//! `send` of what came in. Without an address it listens on an ephemeral
//! port of 127.0.0.1, talks to itself with a few messages and exits.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;

use syscall_offload::op;
use syscall_offload::Ring;

fn serve(ring: &mut Ring, conn: TcpStream) -> Result<(), Box<dyn std::error::Error>> {
    let mut buf = vec![0u8; 4096];
    loop {
        let (id, res) = ring.batch(|b| b.push(op::Recvfrom::new(conn.as_fd(), &mut buf, op::RecvFlags::empty())).id())?;
        let n = res.get(id)? as usize;
        if n == 0 {
            return Ok(());
        }
        let (id, res) = ring.batch(|b| b.push(op::Sendto::new(conn.as_fd(), &buf[..n], op::MsgFlags::from_bits_retain(libc::MSG_NOSIGNAL))).id())?;
        res.get(id)?;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1);
    let listener = TcpListener::bind(addr.as_deref().unwrap_or("127.0.0.1:0"))?;
    let local = listener.local_addr()?;
    let mut ring = Ring::new(8)?;
    eprintln!("echo on {local}, {:?} backend", ring.backend());
    if addr.is_some() {
        for conn in listener.incoming() {
            serve(&mut ring, conn?)?;
        }
        return Ok(());
    }
    // Self-test: a client thread sends a few lines and checks the echo.
    let client = std::thread::spawn(move || -> std::io::Result<()> {
        let mut s = TcpStream::connect(local)?;
        for msg in ["hello", "offload", "ring"] {
            s.write_all(msg.as_bytes())?;
            let mut back = vec![0u8; msg.len()];
            s.read_exact(&mut back)?;
            assert_eq!(back, msg.as_bytes());
            println!("echoed {msg}");
        }
        Ok(())
    });
    let (conn, _) = listener.accept()?;
    serve(&mut ring, conn)?;
    client.join().map_err(|_| "client thread panicked")??;
    Ok(())
}

//! Rust interface to Linux syscall offload rings (work in progress).
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![allow(dead_code)]

mod error;
pub mod raw;
mod sys;

pub use error::{Error, ErrorKind, Result};
pub use sys::{EnterFlags, Features, RegisterOp, SetupFlags, SqFlags, SqeFlags};

//! placeholder
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod batch;
mod emulated;
mod entry;
mod error;
mod owned;
mod queue;
pub mod raw;
mod ring;
mod sys;
mod table;

pub use batch::{Batch, BatchResults, OpId, OpRef};
pub use entry::{Completion, Entry};
pub use error::{Error, ErrorKind, Result};
pub use owned::{OwnedCompletion, OwnedOp, Ticket};
pub use ring::{Backend, Builder, Completions, Probe, Ring};
pub use sys::{EnterFlags, Features, RegisterOp, SetupFlags, SqFlags, SqeFlags};

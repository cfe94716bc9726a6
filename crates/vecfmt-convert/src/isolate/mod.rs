//! HDF5 read and written in worker processes.
//!
//! HDF5 files are parsed and written by the HDF5 C library, which has a history of
//! memory-safety bugs on malformed files (vecfmt's hostile-input suite found one: a flipped
//! bit in a datatype message made a conversion abort) and crashes when a write fails (a full
//! disk: HDF5 2.2 frees a bad pointer in its variable-length conversion, or dereferences a
//! NULL dataset in `H5Fflush`). So the library runs in a child process, a *worker*, and the
//! two sides exchange the frames of [`frame`] over pipes:
//!
//! - **Input** ([`READ_SUBCOMMAND`]): the worker opens the source and writes its header and
//!   blocks to its stdout; the parent turns them back into a
//!   [`MatrixSource`](vecfmt::stream::MatrixSource) ([`ChildSource`]).
//! - **Output** ([`WRITE_SUBCOMMAND`]): the parent sends the header and row blocks to the
//!   worker's stdin ([`ChildSink`]); the worker writes them with [`vecfmt_hdf5::Hdf5Sink`]
//!   into a private staging directory next to the output, and answers on its stdout. The
//!   parent renames the finished file into place itself, and removes the staging directory,
//!   whatever the worker left in it, on every other path.
//!
//! If the library crashes, the worker dies, and the parent reports a clean error naming the
//! file (and, for output, what the file system says about the cause: a full disk, a
//! file-size limit); no partial output is left behind. An error the worker meets crosses
//! the pipe with its message, the operating-system error under it and the host's hint. The
//! reader's notes cross too, to the caller's [`Progress`](crate::Progress); the writer's go
//! to the stderr it shares with the parent (it answers only at its `K` and `E` frames, so a
//! note of its own could fill the pipe the parent is not reading).
//!
//! [`process`] starts workers and reads the signs of a crash; [`serve`] is the worker side.

pub(crate) mod frame;
pub(crate) mod process;
mod serve;
mod sink;
mod source;

pub use serve::{serve_read, serve_write, CRASH_FOR_TESTS, READ_SUBCOMMAND, WRITER_CRASH_FOR_TESTS, WRITE_SUBCOMMAND};
pub use sink::ChildSink;
pub use source::ChildSource;

//! # vecfmt-convert
//!
//! Conversion between `.vfm` and the foreign formats (HDF5 and `.h5ad`, `.npy`/`.npz`,
//! Parquet, Matrix Market) as one streaming pipeline:
//!
//! - the format registry: [`Format`], from a path's extension or from a name, and the output
//!   layouts of each format;
//! - [`ConvertOptions`], every knob of a conversion (dtype, lossy casts, codec, memory
//!   budget, layout, Parquet column names, HDF5 dataset, dense size limit, worker program,
//!   progress);
//! - [`open_source`] and [`create_sink`], the sources and sinks of each format, and
//!   [`convert`], which joins them: the input is read ahead on a thread of its own, triplet
//!   inputs are summed out of core, and the output appears only when complete;
//! - [`Progress`], where a conversion reports how far it is, and its notes.
//!
//! ```
//! use vecfmt_convert::{convert, ConvertOptions, Format};
//! let dir = tempfile::tempdir()?;
//! let (vfm, mtx) = (dir.path().join("m.vfm"), dir.path().join("m.mtx"));
//! let mut w = vecfmt::MatrixWriter::create(&vfm, vecfmt::WriterOptions::new(vecfmt::DType::I32, 4))?;
//! w.push_row(1, &[0u32, 3], &[5i32, -2])?;
//! w.finish()?;
//! let s = convert(&vfm, &mtx, &ConvertOptions::new().memory(64 << 20))?;
//! assert_eq!((s.from, s.to, s.nnz), (Format::Vfm, Format::Mtx, 2));
//! assert!(std::fs::read_to_string(&mtx)?.starts_with("%%MatrixMarket matrix coordinate integer general"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## HDF5 in a worker process
//!
//! The HDF5 C library crashes on some malformed files, and when a write fails (a full disk).
//! So HDF5 is never parsed or written in the caller's process: [`ChildSource`] and
//! [`ChildSink`] run a *worker* process and exchange blocks with it over pipes. A crash is
//! then an error naming the file ([`Error::ReaderDied`], [`Error::WriterDied`], with the
//! signal and, for output, the likely cause), and no partial output is left; an error the
//! worker meets arrives as [`Error::Worker`], with its message, the operating-system error
//! under it, and a hint from the worker's host; the reading worker's notes arrive at the
//! options' [`Progress`].
//!
//! The worker is a program that calls [`serve_read`] when run with [`READ_SUBCOMMAND`] and
//! [`serve_write`] when run with [`WRITE_SUBCOMMAND`] (its request comes on stdin, so the
//! subcommand takes no arguments). The program is, in order:
//!
//! 1. the [`Worker`] set in the options ([`ConvertOptions::worker`]);
//! 2. the program named by the environment variable `VECFMT_HDF5_WORKER` ([`WORKER_ENV`]),
//!    for example the `vecfmt` binary;
//! 3. the current executable: the `vecfmt` CLI serves both subcommands itself.
//!
//! A host binary of its own (a Python package's helper, a Rust program that converts HDF5)
//! dispatches the two subcommands first thing in `main`:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     match std::env::args().nth(1).as_deref() {
//!         Some(vecfmt_convert::READ_SUBCOMMAND) => return vecfmt_convert::serve_read(|_| None),
//!         Some(vecfmt_convert::WRITE_SUBCOMMAND) => return vecfmt_convert::serve_write(|_| None),
//!         _ => {}
//!     }
//!     // ... the program itself, which may convert HDF5 files:
//!     let opts = vecfmt_convert::ConvertOptions::new();
//!     match vecfmt_convert::convert("in.h5".as_ref(), "out.vfm".as_ref(), &opts) {
//!         Ok(_) => std::process::ExitCode::SUCCESS,
//!         Err(e) => {
//!             eprintln!("{e}");
//!             std::process::ExitCode::FAILURE
//!         }
//!     }
//! }
//! ```
//!
//! ## Errors
//!
//! One [`Error`] enum: the core's and the format crates' errors as [`Error::Core`] (a
//! format crate's typed error inside `vecfmt::Error::Format`), and this crate's own: an
//! unknown format, extension or layout, and what happened to a worker. No message names a
//! command-line flag; the CLI adds those hints.

mod error;
mod format;
mod isolate;
mod options;
mod pipeline;

pub use error::{Ended, Error, Result, Role, WriteFailure};
pub use format::Format;
pub use isolate::{
    serve_read, serve_write, ChildSink, ChildSource, CRASH_FOR_TESTS, READ_SUBCOMMAND, WRITER_CRASH_FOR_TESTS,
    WRITE_SUBCOMMAND,
};
pub use options::{ConvertOptions, Progress, StderrNotes, Worker, WORKER_ENV};
pub use pipeline::{convert, create_sink, open_source, ConvertSummary};

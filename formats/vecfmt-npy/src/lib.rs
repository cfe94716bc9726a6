//! # vecfmt-npy
//!
//! numpy `.npy` (dense 2-D arrays) and scipy.sparse `.npz` (`save_npz`) as vecfmt
//! [`MatrixSource`](vecfmt::stream::MatrixSource)s and
//! [`MatrixSink`](vecfmt::stream::MatrixSink)s, so `vecfmt convert` can bring them in and
//! write them out with bounded memory.
//!
//! - [`NpySource`] reads a dense `.npy` through a memory map, a block of rows at a time,
//!   dropping zeros; [`NpySink`] writes one, refusing past a size limit unless forced.
//! - [`NpzSource`] streams the csr, csc and coo layouts of `scipy.sparse.save_npz`;
//!   [`NpzSink`] writes csr that `scipy.sparse.load_npz` loads.
//!
//! The README lists exactly which layouts and dtypes are read and written.
//!
//! ```
//! use vecfmt::stream::{pump, MatrixHeader, MatrixSink, VfmSink, VfmSource};
//! use vecfmt::{Codec, DType, Matrix};
//! use vecfmt_npy::{NpySource, ReadOptions};
//!
//! let dir = tempfile::tempdir()?;
//! // A 2 × 3 float64 array as numpy saves it: np.save("a.npy", [[0, 1.5, 0], [0, 0, 0]]).
//! let mut npy = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
//! let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
//! npy.extend_from_slice(format!("{dict:<117}\n").as_bytes());
//! for x in [0.0f64, 1.5, 0.0, 0.0, 0.0, 0.0] {
//!     npy.extend_from_slice(&x.to_le_bytes());
//! }
//! std::fs::write(dir.path().join("a.npy"), &npy)?;
//!
//! let mut source = NpySource::open(dir.path().join("a.npy"), &ReadOptions::default())?;
//! let out = dir.path().join("a.vfm");
//! use vecfmt::stream::MatrixSource;
//! let sink = VfmSink::create(&out, source.header(), Codec::Zstd)?;
//! pump(&mut source, Box::new(sink), 64 << 20)?;
//!
//! let m = Matrix::open(&out)?;
//! assert_eq!((m.shape(), m.dtype(), m.nnz()), ((2, 3), DType::F64, 1));
//! assert_eq!(m.get(0, 1)?.to_f64(), 1.5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;

use vecfmt::DType;

mod dtype;
mod error;
pub mod header;
mod npy;
mod npz;
mod output;

pub use dtype::{DtypeError, Kind, NpyDtype};
pub use error::{Error, Result, MAX_MEMBERS};
pub use header::{HeaderError, NpyHeader};
pub use npy::{NpySink, NpySource};
pub use npz::{NpzLayout, NpzSink, NpzSource};

/// Where notes go (widened dtypes, summed duplicates, dropped labels). Notes are not errors.
pub type Notify = Arc<dyn Fn(&str) + Send + Sync>;

/// A [`Notify`] that prints `vecfmt: note: ...` on stderr.
pub fn stderr_notes() -> Notify {
    Arc::new(|m: &str| eprintln!("vecfmt: note: {m}"))
}

/// How sources read.
#[derive(Clone)]
pub struct ReadOptions {
    /// Bytes of input per block (about); the memory a source holds is a small multiple.
    pub block_bytes: usize,
    /// Where float16 values go (f32 or f64); `None` refuses float16.
    pub half_as: Option<DType>,
    /// Where notes go.
    pub notify: Notify,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            block_bytes: 8 << 20,
            half_as: None,
            notify: stderr_notes(),
        }
    }
}

impl ReadOptions {
    /// Options that fit a memory budget: blocks of a sixteenth of it, between 64 KiB and
    /// 8 MiB. Larger blocks gain nothing (the work per entry is the same) and cost: the sink
    /// waits longer for the first block, and buffers that large are mapped and unmapped
    /// by the allocator for each block (M1 `.npz` → Parquet took 10% more CPU with 64 MiB
    /// blocks).
    pub fn for_budget(memory: u64) -> Self {
        ReadOptions {
            block_bytes: (memory / 16).clamp(64 << 10, 8 << 20) as usize,
            ..Default::default()
        }
    }
}

impl std::fmt::Debug for ReadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOptions")
            .field("block_bytes", &self.block_bytes)
            .field("half_as", &self.half_as)
            .finish_non_exhaustive()
    }
}

/// Default limit on the size of a dense `.npy` output: 8 GiB.
pub const DENSE_LIMIT: u64 = 8 << 30;

/// How sinks write.
#[derive(Clone)]
pub struct WriteOptions {
    /// `.npy`: refuse a dense output larger than this many bytes, unless `force`.
    pub dense_limit: u64,
    /// `.npy`: write past `dense_limit`.
    pub force: bool,
    /// `.npz`: deflate the members (as `save_npz(compressed=True)`, the default).
    pub compressed: bool,
    /// `.npz`: deflate level 0-9; 4 by default. numpy deflates at 6; zlib-rs at 4 takes 37%
    /// less time and, on M1, still gives a smaller file than numpy's (29.6 MB against
    /// 29.8 MB; level 6: 28.3 MB, level 3: 30.5 MB).
    pub level: u32,
    /// `.npz`: load as `csr_array` instead of `csr_matrix` (writes the `_is_array` member).
    pub sparse_array: bool,
    /// `.npz`: where spill files go while writing; the output's directory when `None`.
    pub spill_dir: Option<std::path::PathBuf>,
    /// Where notes go.
    pub notify: Notify,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            dense_limit: DENSE_LIMIT,
            force: false,
            compressed: true,
            level: 4,
            sparse_array: false,
            spill_dir: None,
            notify: stderr_notes(),
        }
    }
}

impl std::fmt::Debug for WriteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteOptions")
            .field("dense_limit", &self.dense_limit)
            .field("force", &self.force)
            .field("compressed", &self.compressed)
            .field("level", &self.level)
            .field("sparse_array", &self.sparse_array)
            .field("spill_dir", &self.spill_dir)
            .finish_non_exhaustive()
    }
}

/// Bytes as people read them: `8.0 GiB`.
fn human(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

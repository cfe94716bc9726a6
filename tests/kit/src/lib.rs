//! # vecfmt-testkit
//!
//! The round-trip kit every converter's tests run (STYLE.md: "Every converter runs the same
//! round-trip kit"), so that no test file redefines its own dump, compare or bit-equality
//! helpers:
//!
//! - [`bits`], [`Bits`], [`Exact`]: values compared by bit pattern, so NaN equals itself and
//!   -0.0 differs from 0.0; [`widen`] for formats that keep only f64 and i64;
//! - [`dump()`]: a `.vfm` file as plain data (dtype, shape, sorted entries);
//! - [`drain()`]: any [`MatrixSource`] read to the end, every block checked against the stream
//!   contract ([`contract`]: rows in order, sorted unique columns, indices within the shape,
//!   consistent lengths and dtype);
//! - [`sample`]: deterministic matrices of every dtype, with the values formats get wrong
//!   (extremes, subnormals, -0.0, NaN payloads);
//! - [`roundtrip_blocks`] and [`roundtrip_vfm`]: the drivers: write through a converter's
//!   sink, read back through its source, and compare bit for bit;
//! - [`vfm`]: an editor of `.vfm` bytes at their documented offsets, shared by the bad-file
//!   suite and the fuzzers of `vecfmt-hostile`;
//! - [`under_reader`]: the protocol of the tests that truncate or rewrite a file while a child
//!   process reads it.
//!
//! ```
//! use vecfmt::stream::{VfmSink, VfmSource};
//! use vecfmt::{Codec, DType};
//! use vecfmt_testkit::{roundtrip_blocks, sample};
//!
//! // .vfm is a converter like any other: its sink and source round-trip every dtype.
//! let dir = vecfmt_testkit::tempdir();
//! for dtype in DType::ALL {
//!     let path = dir.path().join(format!("{dtype}.vfm"));
//!     let (header, blocks) = sample::extremes(dtype, 40, 300, 7);
//!     let back = roundtrip_blocks(
//!         &header,
//!         &blocks,
//!         |h| VfmSink::create(&path, h, Codec::Zstd),
//!         || VfmSource::open(&path),
//!         &path.display().to_string(),
//!     );
//!     assert_eq!(back.header.n_rows, 40);
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::Path;
use std::sync::{Arc, Mutex};

use vecfmt::stream::{pump, Block, MatrixHeader, MatrixSink, MatrixSource, PumpSummary, RowBlock, VfmSink, VfmSource};
use vecfmt::{Codec, DType, Matrix, Scalar};

pub mod contract;
pub mod sample;
pub mod under_reader;
pub mod vfm;

// ---------------------------------------------------------------------------------------------
// Values by bits.

/// A value's bit pattern, zero-extended to 64 bits.
pub trait Bits: Copy {
    fn bits(self) -> u64;
}

impl Bits for f32 {
    fn bits(self) -> u64 {
        self.to_bits() as u64
    }
}
impl Bits for f64 {
    fn bits(self) -> u64 {
        self.to_bits()
    }
}
impl Bits for i32 {
    fn bits(self) -> u64 {
        self as u32 as u64
    }
}
impl Bits for i64 {
    fn bits(self) -> u64 {
        self as u64
    }
}
impl Bits for u32 {
    fn bits(self) -> u64 {
        self as u64
    }
}
impl Bits for u64 {
    fn bits(self) -> u64 {
        self
    }
}
impl Bits for Scalar {
    fn bits(self) -> u64 {
        match self {
            Scalar::F32(v) => v.bits(),
            Scalar::F64(v) => v.bits(),
            Scalar::I32(v) => v.bits(),
            Scalar::I64(v) => v.bits(),
            Scalar::U32(v) => v.bits(),
            Scalar::U64(v) => v.bits(),
        }
    }
}

/// The bit pattern of a value in its own dtype (see [`Bits`]).
pub fn bits(s: Scalar) -> u64 {
    s.bits()
}

/// The bits of a value as f64: how the Python fixtures' expectations record floats.
pub fn f64_bits(s: Scalar) -> u64 {
    s.to_f64().to_bits()
}

/// The dtype of a value.
pub fn dtype_of(s: Scalar) -> DType {
    match s {
        Scalar::F32(_) => DType::F32,
        Scalar::F64(_) => DType::F64,
        Scalar::I32(_) => DType::I32,
        Scalar::I64(_) => DType::I64,
        Scalar::U32(_) => DType::U32,
        Scalar::U64(_) => DType::U64,
    }
}

/// Whether two values have the same dtype and the same bits.
pub fn same_bits(a: Scalar, b: Scalar) -> bool {
    dtype_of(a) == dtype_of(b) && a.bits() == b.bits()
}

/// A value compared by dtype and bits: `Exact(NaN) == Exact(NaN)`, `Exact(-0.0) != Exact(0.0)`.
#[derive(Clone, Copy)]
pub struct Exact(pub Scalar);

impl PartialEq for Exact {
    fn eq(&self, other: &Exact) -> bool {
        same_bits(self.0, other.0)
    }
}
impl Eq for Exact {}

impl std::fmt::Debug for Exact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}({:#x})", self.0, self.0.bits())
    }
}

/// A value in the widest type of its kind: floats as f64, signed and 32-bit unsigned integers
/// as i64, u64 as itself. What a format with only real and integer fields (Matrix Market)
/// gives back, exactly.
pub fn widen(s: Scalar) -> Scalar {
    match s {
        Scalar::F32(v) => Scalar::F64(v as f64),
        Scalar::I32(v) => Scalar::I64(v as i64),
        Scalar::U32(v) => Scalar::I64(v as i64),
        other => other,
    }
}

/// The value an expectation file writes as text, in the dtype it is read as.
pub fn parse_value(dtype: DType, s: &str) -> Scalar {
    let bad = |e: &dyn Display| -> ! { panic!("{s:?} is not a {dtype} value: {e}") };
    match dtype {
        DType::F32 => Scalar::F32(s.parse::<f64>().unwrap_or_else(|e| bad(&e)) as f32),
        DType::F64 => Scalar::F64(s.parse().unwrap_or_else(|e| bad(&e))),
        DType::I32 => Scalar::I32(s.parse().unwrap_or_else(|e| bad(&e))),
        DType::I64 => Scalar::I64(s.parse().unwrap_or_else(|e| bad(&e))),
        DType::U32 => Scalar::U32(s.parse().unwrap_or_else(|e| bad(&e))),
        DType::U64 => Scalar::U64(s.parse().unwrap_or_else(|e| bad(&e))),
    }
}

/// One stored entry: row, column, value.
pub type Entry = (u64, u64, Scalar);

/// Asserts that two entry lists are equal, positions and values bit for bit, naming the
/// first difference.
pub fn assert_same_entries(got: &[Entry], want: &[Entry], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: number of entries");
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0, g.1, Exact(g.2)), (w.0, w.1, Exact(w.2)), "{what}");
    }
}

// ---------------------------------------------------------------------------------------------
// Dumps.

/// A matrix as plain data: its dtype, its shape and every stored entry in row order, values
/// compared by bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    pub dtype: DType,
    pub shape: (u64, u64),
    pub entries: Vec<(u64, u64, Exact)>,
}

impl Dump {
    /// The entries as `(row, col, value)`.
    pub fn scalars(&self) -> Vec<Entry> {
        self.entries.iter().map(|&(r, c, v)| (r, c, v.0)).collect()
    }
    /// The entries with every value [`widen`]ed.
    pub fn widened(&self) -> Vec<(u64, u64, Exact)> {
        self.entries
            .iter()
            .map(|&(r, c, v)| (r, c, Exact(widen(v.0))))
            .collect()
    }
}

/// Every entry of an open matrix, through `iter_rows`.
pub fn dump_matrix(m: &Matrix) -> Dump {
    let mut entries = Vec::new();
    for row in m.iter_rows() {
        let row = row.unwrap_or_else(|e| panic!("{}: {e}", m.path().display()));
        entries.extend(row.iter().map(|(c, v)| (row.id(), c, Exact(v))));
    }
    Dump {
        dtype: m.dtype(),
        shape: m.shape(),
        entries,
    }
}

/// A `.vfm` file as plain data. Panics if it does not open or read.
pub fn dump(path: impl AsRef<Path>) -> Dump {
    let path = path.as_ref();
    let m = Matrix::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    dump_matrix(&m)
}

// ---------------------------------------------------------------------------------------------
// Draining sources.

/// Everything a source gave.
#[derive(Debug, Clone)]
pub struct Drained {
    pub header: MatrixHeader,
    /// Every entry, sorted by (row, col); duplicate triplets summed (see `duplicates`).
    pub entries: Vec<Entry>,
    /// How many blocks the source yielded.
    pub blocks: usize,
    /// Whether it yielded row blocks (true for a source that yielded nothing).
    pub rows_mode: bool,
    /// Rows listed in row blocks with no entries.
    pub empty_rows: usize,
    /// Triplets whose position an earlier triplet had.
    pub duplicates: usize,
}

impl Drained {
    /// The entries by position.
    pub fn map(&self) -> BTreeMap<(u64, u64), Scalar> {
        self.entries.iter().map(|&(r, c, v)| ((r, c), v)).collect()
    }
}

fn add(a: Scalar, b: Scalar) -> Scalar {
    match (a, b) {
        (Scalar::F32(a), Scalar::F32(b)) => Scalar::F32(a + b),
        (Scalar::F64(a), Scalar::F64(b)) => Scalar::F64(a + b),
        (Scalar::I32(a), Scalar::I32(b)) => Scalar::I32(a.wrapping_add(b)),
        (Scalar::I64(a), Scalar::I64(b)) => Scalar::I64(a.wrapping_add(b)),
        (Scalar::U32(a), Scalar::U32(b)) => Scalar::U32(a.wrapping_add(b)),
        (Scalar::U64(a), Scalar::U64(b)) => Scalar::U64(a.wrapping_add(b)),
        (a, b) => panic!("one source gave values of two dtypes: {a:?} and {b:?}"),
    }
}

/// Reads a source to the end. The header and every block are checked against the stream
/// contract ([`contract::Contract`]), and a violation panics. Duplicate triplets are summed
/// (wrapping, for integers) and counted. Errors from the source are returned.
pub fn drain(src: &mut dyn MatrixSource) -> vecfmt::Result<Drained> {
    let header = src.header().clone();
    let mut contract = contract::Contract::new(&header);
    let mut map: BTreeMap<(u64, u64), Scalar> = BTreeMap::new();
    let (mut blocks, mut empty_rows, mut duplicates) = (0, 0, 0);
    while let Some(b) = src.next_block()? {
        blocks += 1;
        contract.check(&b);
        match b {
            Block::Rows(b) => {
                for (k, &r) in b.rows.iter().enumerate() {
                    let (s, e) = (b.indptr[k] as usize, b.indptr[k + 1] as usize);
                    if s == e {
                        empty_rows += 1;
                    }
                    for j in s..e {
                        map.insert((r, b.indices[j]), b.values.as_values().get(j));
                    }
                }
            }
            Block::Triplets(t) => {
                for j in 0..t.rows.len() {
                    let v = t.values.as_values().get(j);
                    match map.entry((t.rows[j], t.cols[j])) {
                        std::collections::btree_map::Entry::Occupied(mut o) => {
                            duplicates += 1;
                            let sum = add(*o.get(), v);
                            o.insert(sum);
                        }
                        std::collections::btree_map::Entry::Vacant(e) => {
                            e.insert(v);
                        }
                    }
                }
            }
        }
    }
    Ok(Drained {
        header,
        entries: map.into_iter().map(|((r, c), v)| (r, c, v)).collect(),
        blocks,
        rows_mode: contract.rows_mode(),
        empty_rows,
        duplicates,
    })
}

/// [`drain`], for a source that promises canonical output: it also panics if a row block
/// lists an empty row or a position comes twice.
pub fn drain_strict(src: &mut dyn MatrixSource) -> vecfmt::Result<Drained> {
    let d = drain(src)?;
    assert_eq!(d.empty_rows, 0, "row blocks carry no empty rows");
    assert_eq!(d.duplicates, 0, "no position comes twice");
    Ok(d)
}

// ---------------------------------------------------------------------------------------------
// Moving matrices.

/// Every entry of row blocks, in order.
pub fn entries_of(blocks: &[RowBlock]) -> Vec<Entry> {
    let mut out = Vec::new();
    for b in blocks {
        for (k, &r) in b.rows.iter().enumerate() {
            for i in b.indptr[k] as usize..b.indptr[k + 1] as usize {
                out.push((r, b.indices[i], b.values.as_values().get(i)));
            }
        }
    }
    out
}

/// Writes row blocks into a sink and finishes it.
pub fn write_blocks<S: MatrixSink + 'static>(sink: S, blocks: &[RowBlock]) -> vecfmt::Result<()> {
    let mut sink = Box::new(sink);
    for b in blocks {
        sink.write_rows(b)?;
    }
    sink.finish()
}

/// Pumps a `.vfm` file into the sink `create` makes for its header.
pub fn export<S, E>(vfm: &Path, create: impl FnOnce(&MatrixHeader) -> Result<S, E>) -> vecfmt::Result<PumpSummary>
where
    S: MatrixSink + 'static,
    E: Into<vecfmt::Error>,
{
    let mut src = VfmSource::open(vfm)?;
    let sink = create(src.header()).map_err(Into::into)?;
    pump(&mut src, Box::new(sink), 1 << 30)
}

/// Pumps a source into a new zstd `.vfm` file at `out`, within 64 MiB.
pub fn import(src: &mut dyn MatrixSource, out: &Path) -> vecfmt::Result<PumpSummary> {
    let sink = VfmSink::create(out, src.header(), Codec::Zstd)?;
    pump(src, Box::new(sink), 64 << 20)
}

/// The round trip from row blocks: writes `blocks` through the sink `create` makes, reads
/// the output back through the source `open` makes, and asserts that it gives the header's
/// dtype and shape and the blocks' entries, bit for bit. Returns what the source gave, for
/// the caller's own checks (labels, metadata, block counts). `what` names the case in
/// failure messages; any error panics with it.
pub fn roundtrip_blocks<S, E1, R, E2>(
    header: &MatrixHeader,
    blocks: &[RowBlock],
    create: impl FnOnce(&MatrixHeader) -> Result<S, E1>,
    open: impl FnOnce() -> Result<R, E2>,
    what: &str,
) -> Drained
where
    S: MatrixSink + 'static,
    E1: Display,
    R: MatrixSource,
    E2: Display,
{
    let sink = create(header).unwrap_or_else(|e| panic!("{what}: create: {e}"));
    write_blocks(sink, blocks).unwrap_or_else(|e| panic!("{what}: write: {e}"));
    let mut src = open().unwrap_or_else(|e| panic!("{what}: open: {e}"));
    let got = drain(&mut src).unwrap_or_else(|e| panic!("{what}: read: {e}"));
    let h = &got.header;
    assert_eq!(
        (h.dtype, h.n_rows, h.n_cols),
        (header.dtype, header.n_rows, header.n_cols),
        "{what}: dtype and shape"
    );
    assert_same_entries(&got.entries, &entries_of(blocks), what);
    got
}

/// The round trip from a `.vfm` file: `.vfm` → the sink `create` makes → the source `open`
/// makes → a new `.vfm` at `back`. Returns the dump of `back`; callers compare it with
/// [`dump`] of the original (equal for a lossless format, [`Dump::widened`] for one that
/// widens). `open` is called once per block size in `block_sizes` (a source's block size is
/// its own option), and every read must give the same dump.
pub fn roundtrip_vfm<S, E1, R, E2>(
    vfm: &Path,
    back: &Path,
    create: impl FnOnce(&MatrixHeader) -> Result<S, E1>,
    open: impl Fn(usize) -> Result<R, E2>,
    block_sizes: &[usize],
    what: &str,
) -> Dump
where
    S: MatrixSink + 'static,
    E1: Into<vecfmt::Error>,
    R: MatrixSource,
    E2: Display,
{
    export(vfm, create).unwrap_or_else(|e| panic!("{what}: export: {e}"));
    let mut first: Option<Dump> = None;
    for &block in block_sizes {
        let mut src = open(block).unwrap_or_else(|e| panic!("{what}: open (block {block}): {e}"));
        import(&mut src, back).unwrap_or_else(|e| panic!("{what}: import (block {block}): {e}"));
        let d = dump(back);
        std::fs::remove_file(back).unwrap_or_else(|e| panic!("{what}: {e}"));
        match &first {
            None => first = Some(d),
            Some(f) => assert_eq!(&d, f, "{what}: block {block} reads differently"),
        }
    }
    first.unwrap_or_else(|| panic!("{what}: no block sizes"))
}

// ---------------------------------------------------------------------------------------------
// Small things every test needs.

/// A temporary directory, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// What the converters' `notify` options take: a callback for notes.
pub type Notify = Arc<dyn Fn(&str) + Send + Sync>;

/// A notifier for a converter's `notify` option that drops every note.
pub fn silent() -> Notify {
    Arc::new(|_: &str| {})
}

/// A notifier that keeps every note, and the notes it keeps.
pub fn notes() -> (Notify, Arc<Mutex<Vec<String>>>) {
    let notes = Arc::new(Mutex::new(Vec::new()));
    let n = notes.clone();
    (Arc::new(move |m: &str| n.lock().unwrap().push(m.to_string())), notes)
}

/// The names of the files in `dir` other than those in `keep`, sorted: what a failed write
/// left behind.
pub fn others(dir: &Path, keep: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    v.sort();
    v
}

//! The bad-file suite: damaged and hostile `.vfm` files must give an error (from `open`, or
//! from `verify` and the reads that touch the damage), never a panic, an abort, a huge
//! allocation, or silently different data.
//!
//! - every truncation of a small valid file (one per codec);
//! - every bit flip of the meta pages' used bytes, the catalog, every chunk, the labels, the
//!   metadata and the padding, and one bit in every 61st unused superblock byte (padding and
//!   unused bytes must change nothing);
//! - a registry of named malformed files, each built from a valid one by editing fields at
//!   their documented offsets and recomputing checksums, each with the error it must give
//!   (after arrow-rs `tests/arrow_reader/bad_data.rs`): a builder without an expectation, or
//!   an expectation without a builder, fails the suite;
//! - hostile sizes (2^60 chunks, a 2^62-byte chunk, 2^60 labels) that must fail fast without
//!   allocating.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

use rayon::iter::ParallelIterator;
use serde_json::json;
use vecfmt::{Codec, DType, Error, Matrix, MatrixWriter, OpenOptions, WriterOptions};
use vecfmt_testkit::vfm::{align8, entry, meta, Vfm, COL_LABELS, FREE_EXTENTS, METADATA, ROW_LABELS};

// ---------------------------------------------------------------------------------------------
// Guards: the largest single allocation, and panics turned into messages.

/// The system allocator, recording the largest single allocation of the test binary.
struct PeakAlloc;

static LARGEST_ALLOC: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` unchanged; the only addition is an atomic update.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: PeakAlloc = PeakAlloc;

/// Every test here handles files of kilobytes; no single allocation may come near this.
const ALLOC_LIMIT: usize = 64 << 20;

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `f`, turning a panic into `Err(message with location)`, without printing it.
fn no_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                LAST_PANIC.with(|p| *p.borrow_mut() = info.to_string());
            } else {
                default(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    r.map_err(|_| format!("PANIC: {}", LAST_PANIC.with(|p| p.borrow().clone())))
}

// ---------------------------------------------------------------------------------------------
// The valid base files.

const N_ROWS: u64 = 40;
const N_COLS: u64 = 40;

/// Rows of the base matrix: dense runs, an empty row, and rows far apart so that one chunk
/// takes the sparse row layout.
const ROWS: &[(u64, &[u64])] = &[
    (0, &[1, 5, 9, 20, 39]),
    (1, &[0, 2, 3, 4]),
    (2, &[]),
    (3, &[7, 8, 30, 31, 32, 33]),
    (30, &[10, 11]),
    (39, &[0, 19, 38]),
];

/// The dtype of each codec's base file (different ones, for variety).
fn base_dtype(codec: Codec) -> DType {
    match codec {
        Codec::Raw => DType::F64,
        Codec::Lz4 => DType::I32,
        Codec::Zstd => DType::F32,
    }
}

fn write_base(path: &Path, codec: Codec) {
    let dtype = base_dtype(codec);
    let opts = WriterOptions::new(dtype, N_COLS)
        .n_rows(N_ROWS)
        .codec(codec)
        // Chunk 0: rows 0..4 (dense, row 2 empty); chunk 1: rows 30 and 39 (sparse).
        .chunk_bytes(if dtype.size() == 8 { 210 } else { 150 })
        .threads(1);
    let mut w = MatrixWriter::create(path, opts).expect("create");
    for &(r, cols) in ROWS {
        let k = cols.len();
        match dtype {
            DType::F64 => {
                let v: Vec<f64> = (0..k).map(|i| r as f64 + i as f64 / 8.0 - 2.0).collect();
                w.push_row(r, cols, &v)
            }
            DType::I32 => {
                let v: Vec<i32> = (0..k).map(|i| (r as i32 - 20) * 1000 + i as i32).collect();
                w.push_row(r, cols, &v)
            }
            DType::F32 => {
                let v: Vec<f32> = (0..k).map(|i| r as f32 * 0.5 - i as f32).collect();
                w.push_row(r, cols, &v)
            }
            _ => unreachable!(),
        }
        .expect("push");
    }
    w.set_row_labels((0..N_ROWS).map(|i| format!("row-{i}")));
    w.set_col_labels((0..N_COLS).map(|j| format!("col-{j}")));
    w.set_metadata(json!({"name": "bad-files base", "codec": codec.name()}))
        .expect("metadata");
    w.finish().expect("finish");
}

/// The bytes of each codec's base file, written once per test binary.
fn base(codec: Codec) -> &'static [u8] {
    static BASES: OnceLock<[Vec<u8>; 3]> = OnceLock::new();
    let all = BASES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        [Codec::Raw, Codec::Lz4, Codec::Zstd].map(|c| {
            let p = dir.path().join(format!("base-{c}.vfm"));
            write_base(&p, c);
            std::fs::read(&p).expect("read")
        })
    });
    &all[codec as usize]
}

// ---------------------------------------------------------------------------------------------
// The editor of `.vfm` bytes at the documented offsets lives in the test kit, shared with the
// fuzzers of `vecfmt-hostile`.

/// The base file of a codec, to edit.
fn base_vfm(codec: Codec) -> Vfm {
    Vfm::new(base(codec).to_vec())
}

// ---------------------------------------------------------------------------------------------
// Reading a file completely, and judging the outcome.

/// Everything a matrix holds, as plain data.
#[derive(Debug, PartialEq)]
struct Dump {
    shape: (u64, u64),
    dtype: DType,
    nnz: u64,
    index_width: u8,
    rows: Vec<(u64, Vec<u64>, Vec<u8>)>,
    row_labels: Option<Vec<String>>,
    col_labels: Option<Vec<String>>,
    metadata: Option<serde_json::Value>,
}

/// Reads everything through every read path; the first error is returned. Bounded, for
/// crafted files that declare huge shapes.
fn read_all(m: &Matrix) -> Result<Dump, Error> {
    const LIMIT: u64 = 10_000;
    let mut rows = Vec::new();
    for i in 0..m.n_rows().min(LIMIT) {
        let r = m.row(i)?;
        if !r.is_empty() {
            rows.push((i, r.indices().iter().collect(), r.values().as_bytes().to_vec()));
        }
        for (c, v) in r.iter().take(4) {
            assert_eq!(m.get(i, c)?, v);
        }
        let _ = m.chunk_of(i);
    }
    let mut iterated = Vec::new();
    for r in m.iter_rows().take(LIMIT as usize) {
        let r = r?;
        iterated.push((
            r.id(),
            r.indices().iter().collect::<Vec<_>>(),
            r.values().as_bytes().to_vec(),
        ));
    }
    if m.n_rows() <= LIMIT {
        assert_eq!(iterated, rows, "iter_rows disagrees with row()");
    }
    let chunks: Vec<_> = m.par_chunks().collect();
    for c in chunks {
        c?.rows().for_each(drop);
    }
    let labels = |l: Option<vecfmt::Labels<'_>>, axis: &str| -> Result<Option<Vec<String>>, Error> {
        let Some(l) = l else { return Ok(None) };
        let mut v = Vec::new();
        for i in 0..l.len().min(LIMIT) {
            let s = l.get(i).map_err(|e| Error::Corrupt {
                path: m.path().into(),
                what: "labels (test)",
                offset: e.offset,
                detail: e.detail,
            })?;
            let found = if axis == "row" { m.row_id(s) } else { m.col_id(s) };
            if found.ok() != Some(i) {
                return Err(Error::Corrupt {
                    path: m.path().into(),
                    what: "labels (test)",
                    offset: 0,
                    detail: format!("{axis} label {i} not found by lookup"),
                });
            }
            v.push(s.to_string());
        }
        Ok(Some(v))
    };
    Ok(Dump {
        shape: m.shape(),
        dtype: m.dtype(),
        nnz: m.nnz(),
        index_width: m.index_width(),
        rows,
        row_labels: labels(m.row_labels(), "row")?,
        col_labels: labels(m.col_labels(), "col")?,
        metadata: m.metadata().cloned(),
    })
}

fn original(codec: Codec) -> &'static Dump {
    static DUMPS: OnceLock<[Dump; 3]> = OnceLock::new();
    let all = DUMPS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        [Codec::Raw, Codec::Lz4, Codec::Zstd].map(|c| {
            let p = dir.path().join("base.vfm");
            std::fs::write(&p, base(c)).expect("write");
            let m = Matrix::open(&p).expect("open base");
            assert!(m.verify().is_clean());
            read_all(&m).expect("read base")
        })
    });
    &all[codec as usize]
}

/// What a damaged file gave.
#[derive(Debug)]
enum Outcome {
    /// `Matrix::open` refused it.
    OpenErr(Error),
    /// It opened, and `verify` reported problems.
    Damaged(Vec<Error>),
    /// It opened, verified clean, and reads back exactly the original.
    Same,
}

/// Opens `path`, reads everything, verifies. Returns `Err` for every unacceptable result:
/// a panic, a clean verify with different contents, or a clean verify with a failing read.
fn assess(path: &Path, original: &Dump, opts: &OpenOptions) -> Result<Outcome, String> {
    no_panic(|| {
        let m = match opts.open(path) {
            Err(e) => return Ok(Outcome::OpenErr(e)),
            Ok(m) => m,
        };
        // Read first: raw chunks are checked on first use, not at open.
        let contents = read_all(&m);
        let report = m.verify();
        if !report.is_clean() {
            return Ok(Outcome::Damaged(report.problems));
        }
        match contents {
            Ok(d) if d == *original => Ok(Outcome::Same),
            Ok(d) => Err(format!("verify is clean but the contents changed: {d:?}")),
            Err(e) => Err(format!("verify is clean but a read failed: {e}")),
        }
    })
    .and_then(|r| r)
}

// ---------------------------------------------------------------------------------------------
// Truncations.

fn truncations(codec: Codec) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.vfm");
    let full = base(codec);
    std::fs::write(&path, full).expect("write");
    let f = std::fs::OpenOptions::new().write(true).open(&path).expect("open");
    let mut failures = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    // Shrinking in place, longest first: every length from len - 1 down to 0.
    for len in (0..full.len() as u64).rev() {
        f.set_len(len).expect("truncate");
        match assess(&path, original(codec), &OpenOptions::new()) {
            Ok(Outcome::OpenErr(e)) => {
                *counts.entry(kind(&e)).or_default() += 1;
                if !e.to_string().contains(&path.display().to_string()) {
                    failures.push(format!("len {len}: the error does not name the file: {e}"));
                }
            }
            Ok(Outcome::Damaged(_)) => *counts.entry("verify").or_default() += 1,
            // The whole file is one commit: no truncation can keep it readable.
            Ok(Outcome::Same) => failures.push(format!("len {len}: truncated file reads as the original")),
            Err(e) => failures.push(format!("len {len}: {e}")),
        }
    }
    eprintln!("{codec}: {} truncation lengths: {counts:?}", full.len());
    assert!(
        failures.is_empty(),
        "{} of {} truncations failed:\n{}",
        failures.len(),
        full.len(),
        failures[..failures.len().min(30)].join("\n")
    );
}

fn kind(e: &Error) -> &'static str {
    match e {
        Error::NotVfm { .. } => "NotVfm",
        Error::UnsupportedVersion { .. } => "UnsupportedVersion",
        Error::NoValidCommit { .. } => "NoValidCommit",
        Error::Corrupt { .. } => "Corrupt",
        Error::CorruptChunk { .. } => "CorruptChunk",
        Error::Io { .. } => "Io",
        _ => "other",
    }
}

#[test]
fn truncations_raw() {
    truncations(Codec::Raw);
}
#[test]
fn truncations_lz4() {
    truncations(Codec::Lz4);
}
#[test]
fn truncations_zstd() {
    truncations(Codec::Zstd);
}

// ---------------------------------------------------------------------------------------------
// Bit flips.

/// What a byte of the file is, and so what a flip in it must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Region {
    /// Used bytes of the meta page that holds the current commit.
    ActivePage,
    /// Used bytes of the other meta page (never written, or an older commit).
    InactivePage,
    /// Bytes of the superblock past each page's 128 used bytes.
    SuperblockUnused,
    Catalog,
    Chunk(usize),
    /// Row labels, column labels or metadata.
    Section(usize),
    /// Alignment padding between sections.
    Padding,
}

fn regions(v: &Vfm) -> Vec<Region> {
    let mut r = vec![Region::Padding; v.bytes.len()];
    for (i, x) in r.iter_mut().enumerate().take(2 * meta::PAGE) {
        *x = match (i / meta::PAGE, i % meta::PAGE < 128) {
            (0, true) => Region::ActivePage,
            (1, true) => Region::InactivePage,
            _ => Region::SuperblockUnused,
        };
    }
    let mut mark = |range: Range<usize>, what: Region| {
        for x in &mut r[range] {
            assert_eq!(*x, Region::Padding, "regions overlap");
            *x = what;
        }
    };
    mark(v.catalog(), Region::Catalog);
    for c in 0..v.n_chunks() {
        mark(v.chunk(c), Region::Chunk(c));
    }
    for k in [ROW_LABELS, COL_LABELS, METADATA] {
        mark(v.section(k), Region::Section(k));
    }
    r
}

/// Flips bits of the file one at a time (every bit of every used byte; one bit of every 61st
/// unused superblock byte) and checks each outcome against the byte's region.
fn bit_flips(v: &Vfm, codec: Codec, pages_swapped: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.vfm");
    std::fs::write(&path, &v.bytes).expect("write");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open");
    let regions = regions(v);
    let original = original(codec);
    let mut failures = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut flips = 0usize;
    for (at, &region) in regions.iter().enumerate() {
        let bits: &[u8] = match region {
            Region::SuperblockUnused if at % 61 != 0 => &[],
            Region::SuperblockUnused => &[0x10],
            _ => &[1, 2, 4, 8, 16, 32, 64, 128],
        };
        for &bit in bits {
            flips += 1;
            f.write_at(&[v.bytes[at] ^ bit], at as u64).expect("flip");
            let outcome = assess(&path, original, &OpenOptions::new());
            f.write_at(&[v.bytes[at]], at as u64).expect("unflip");
            let case = format!("byte {at} ({region:?}) bit {bit:#04x}");
            let outcome = match outcome {
                Ok(o) => o,
                Err(e) => {
                    failures.push(format!("{case}: {e}"));
                    continue;
                }
            };
            *counts
                .entry(format!(
                    "{region:?} -> {}",
                    match &outcome {
                        Outcome::OpenErr(e) => kind(e),
                        Outcome::Damaged(_) => "verify",
                        Outcome::Same => "same",
                    }
                ))
                .or_default() += 1;
            // With a second valid commit, a flip in either meta page falls back to the other.
            let ok = match (region, &outcome) {
                (Region::ActivePage | Region::InactivePage, Outcome::Same) if pages_swapped => true,
                (Region::ActivePage, Outcome::OpenErr(_)) => !pages_swapped,
                (Region::InactivePage | Region::SuperblockUnused | Region::Padding, Outcome::Same) => true,
                (Region::Catalog | Region::Section(_), Outcome::OpenErr(e)) => {
                    e.to_string().contains(&path.display().to_string())
                }
                (Region::Chunk(c), Outcome::Damaged(problems)) => problems.iter().any(|p| {
                    matches!(p, Error::CorruptChunk { chunk, .. } if *chunk == c)
                        && p.to_string().contains(&format!("chunk {c} "))
                        && p.to_string().contains(&path.display().to_string())
                }),
                _ => false,
            };
            if !ok {
                failures.push(format!("{case}: unexpected {outcome:?}"));
            }
        }
    }
    eprintln!("{codec} (pages swapped: {pages_swapped}): {flips} bit flips: {counts:#?}");
    assert!(
        failures.is_empty(),
        "{} of {flips} bit flips failed:\n{}",
        failures.len(),
        failures[..failures.len().min(30)].join("\n")
    );
}

#[test]
fn bit_flips_raw() {
    bit_flips(&base_vfm(Codec::Raw), Codec::Raw, false);
}
#[test]
fn bit_flips_lz4() {
    bit_flips(&base_vfm(Codec::Lz4), Codec::Lz4, false);
}
#[test]
fn bit_flips_zstd() {
    bit_flips(&base_vfm(Codec::Zstd), Codec::Zstd, false);
}

/// Two valid commits pointing at the same catalog: page B (generation 2) is current, page A
/// the previous commit. Any flip in either page leaves the other to read the same data.
#[test]
fn bit_flips_with_two_commits() {
    let mut v = base_vfm(Codec::Zstd);
    let page_a = v.bytes[..128].to_vec();
    v.bytes[meta::PAGE..meta::PAGE + 128].copy_from_slice(&page_a);
    v.put16(meta::PAGE + meta::SLOT, 1);
    v.put64(meta::PAGE + meta::GENERATION, 2);
    v.fix_meta_page(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("two.vfm");
    std::fs::write(&p, &v.bytes).expect("write");
    let m = Matrix::open(&p).expect("open");
    assert_eq!((m.commit().slot, m.commit().generation), (1, 2));
    assert_eq!(m.previous_commit().expect("page A valid").generation, 1);
    drop(m);
    // Only the meta pages are of interest here; the rest is covered above.
    bit_flips_pages(&v, Codec::Zstd);
}

fn bit_flips_pages(v: &Vfm, codec: Codec) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.vfm");
    std::fs::write(&path, &v.bytes).expect("write");
    let f = std::fs::OpenOptions::new().write(true).open(&path).expect("open");
    let mut failures = Vec::new();
    let mut flips = 0;
    for at in (0..128).chain(meta::PAGE..meta::PAGE + 128) {
        for bit in 0..8 {
            flips += 1;
            f.write_at(&[v.bytes[at] ^ (1 << bit)], at as u64).expect("flip");
            match assess(&path, original(codec), &OpenOptions::new()) {
                Ok(Outcome::Same) => {}
                other => failures.push(format!("byte {at} bit {bit}: {other:?}")),
            }
            f.write_at(&[v.bytes[at]], at as u64).expect("unflip");
        }
    }
    eprintln!("two commits: {flips} meta page bit flips, all read the same data");
    assert!(failures.is_empty(), "{}", failures[..failures.len().min(30)].join("\n"));
}

// ---------------------------------------------------------------------------------------------
// The registry of named malformed files.

/// The error a case must give. `text` must occur in its Display, and so must the file's path.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// `Matrix::open` fails with this variant.
    Open(Kind, &'static str),
    /// `open` succeeds; `verify` reports this problem, and reads touching it fail.
    Verify(Kind, &'static str),
    /// Not damage: the file verifies clean and reads back exactly as the valid one.
    Same,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NotVfm,
    Unsupported,
    NoValidCommit,
    /// `Error::Corrupt` with this `what`.
    Corrupt(&'static str),
    /// `Error::CorruptChunk` of this chunk; the message names "chunk N" and its byte offset.
    Chunk(usize),
}

impl Kind {
    fn matches(self, e: &Error) -> bool {
        match (self, e) {
            (Kind::NotVfm, Error::NotVfm { .. }) => true,
            (Kind::Unsupported, Error::UnsupportedVersion { .. }) => true,
            (Kind::NoValidCommit, Error::NoValidCommit { .. }) => true,
            (Kind::Corrupt(w), Error::Corrupt { what, .. }) => w == *what,
            (Kind::Chunk(c), Error::CorruptChunk { chunk, .. }) => c == *chunk,
            _ => false,
        }
    }
    /// Text every error of this kind must contain besides the path.
    fn required_text(self) -> String {
        match self {
            Kind::Corrupt(_) => "byte offset".into(),
            Kind::Chunk(c) => format!("chunk {c} "),
            _ => String::new(),
        }
    }
}

type Builder = fn() -> Vec<u8>;

fn raw() -> Vfm {
    base_vfm(Codec::Raw)
}
fn lz4() -> Vfm {
    base_vfm(Codec::Lz4)
}
fn zstd() -> Vfm {
    base_vfm(Codec::Zstd)
}

/// Builders: each returns the bytes of one malformed file.
const BUILDERS: &[(&str, Builder)] = &[
    // Not a vfm file at all.
    ("empty-file", Vec::new),
    ("not-vfm-text-file", || b"row,col,value\n0,1,2.5\n".repeat(500)),
    ("not-vfm-short-text-file", || b"hello\n".to_vec()),
    ("bad-magic", || {
        let mut v = raw();
        v.bytes[1] = b'X';
        v.bytes
    }),
    // Truncated.
    ("truncated-to-magic", || raw().bytes[..8].to_vec()),
    ("truncated-superblock", || raw().bytes[..5000].to_vec()),
    ("truncated-data", || {
        let v = raw();
        v.bytes[..v.bytes.len() - 1].to_vec()
    }),
    // Meta page fields (checksum recomputed, so the field checks are what fails).
    ("newer-version", || {
        let mut v = raw();
        v.put16(meta::VERSION, 2);
        v.fix_meta();
        v.bytes
    }),
    ("version-zero", || {
        let mut v = raw();
        v.put16(meta::VERSION, 0);
        v.fix_meta();
        v.bytes
    }),
    ("meta-crc", || {
        let mut v = raw();
        v.put64(meta::N_ROWS, 41);
        v.bytes
    }),
    ("meta-slot", || {
        let mut v = raw();
        v.put16(meta::SLOT, 1);
        v.fix_meta();
        v.bytes
    }),
    ("meta-used-length", || {
        let mut v = raw();
        v.put32(meta::USED, 64);
        v.fix_meta();
        v.bytes
    }),
    ("meta-generation-zero", || {
        let mut v = raw();
        v.set_meta(meta::GENERATION, 0);
        v.bytes
    }),
    ("meta-unknown-dtype", || {
        let mut v = raw();
        v.bytes[meta::DTYPE] = 0;
        v.fix_meta();
        v.bytes
    }),
    ("meta-index-width-3", || {
        let mut v = raw();
        v.bytes[meta::INDEX_WIDTH] = 3;
        v.fix_meta();
        v.bytes
    }),
    ("meta-index-width-too-narrow", || {
        let mut v = raw();
        v.set_meta(meta::N_COLS, (1 << 32) + 1);
        v.bytes
    }),
    ("meta-data-end-past-file", || {
        let mut v = raw();
        let len = v.bytes.len() as u64;
        v.set_meta(meta::DATA_END, len + 1);
        v.bytes
    }),
    ("meta-data-end-in-superblock", || {
        let mut v = raw();
        v.set_meta(meta::DATA_END, 100);
        v.bytes
    }),
    ("catalog-offset-out-of-file", || {
        let mut v = raw();
        v.set_meta(meta::CATALOG_OFFSET, 1 << 62);
        v.bytes
    }),
    ("catalog-offset-overflow", || {
        let mut v = raw();
        v.set_meta(meta::CATALOG_OFFSET, u64::MAX - 7);
        v.bytes
    }),
    ("catalog-offset-misaligned", || {
        let mut v = raw();
        let off = v.meta(meta::CATALOG_OFFSET);
        v.set_meta(meta::CATALOG_OFFSET, off + 4);
        v.set_meta(meta::CATALOG_LENGTH, v.meta(meta::CATALOG_LENGTH) - 4);
        v.bytes
    }),
    ("catalog-in-superblock", || {
        let mut v = raw();
        v.set_meta(meta::CATALOG_OFFSET, 0);
        v.bytes
    }),
    ("catalog-length-short", || {
        let mut v = raw();
        v.set_meta(meta::CATALOG_LENGTH, 100);
        v.bytes
    }),
    // The catalog.
    ("catalog-crc", || {
        let mut v = raw();
        let at = v.entry_at(0) + entry::NNZ;
        v.bytes[at] ^= 1;
        v.bytes
    }),
    ("catalog-magic", || {
        let mut v = raw();
        let at = v.catalog().start;
        v.bytes[at] = b'X';
        v.fix_catalog();
        v.bytes
    }),
    ("catalog-entry-size", || {
        let mut v = raw();
        let at = v.catalog().start + 16;
        v.put32(at, 32);
        v.fix_catalog();
        v.bytes
    }),
    ("catalog-chunk-count-huge", || {
        let mut v = raw();
        let at = v.catalog().start + 8;
        v.put64(at, 1 << 60);
        v.fix_catalog();
        v.bytes
    }),
    ("catalog-chunk-count-overflow", || {
        let mut v = raw();
        let at = v.catalog().start + 8;
        v.put64(at, u64::MAX / 64 + 1);
        v.fix_catalog();
        v.bytes
    }),
    ("catalog-chunk-count-plus-one", || {
        let mut v = raw();
        let at = v.catalog().start + 8;
        let n = v.u64(at);
        v.put64(at, n + 1);
        v.fix_catalog();
        v.bytes
    }),
    ("catalog-nnz-mismatch", || {
        let mut v = raw();
        let nnz = v.meta(meta::NNZ);
        v.set_meta(meta::NNZ, nnz + 1);
        v.bytes
    }),
    ("catalog-nnz-overflow", || {
        let mut v = raw();
        v.set_entry(0, entry::NNZ, u64::MAX);
        v.bytes
    }),
    // Chunk entries.
    ("chunk-rows-empty", || {
        let mut v = raw();
        let start = v.entry(1, entry::ROW_START);
        v.set_entry(1, entry::ROW_END, start);
        v.bytes
    }),
    ("chunk-rows-overlap", || {
        let mut v = raw();
        let start = v.entry(0, entry::ROW_START);
        v.set_entry(1, entry::ROW_START, start);
        v.bytes
    }),
    ("chunk-rows-past-n-rows", || {
        let mut v = raw();
        let last = v.n_chunks() - 1;
        v.set_entry(last, entry::ROW_END, N_ROWS + 1);
        v.bytes
    }),
    ("chunk-unknown-codec", || {
        let mut v = raw();
        v.set_entry_u8(1, entry::CODEC, 7);
        v.bytes
    }),
    ("chunk-unknown-layout", || {
        let mut v = raw();
        v.set_entry_u8(1, entry::LAYOUT, 2);
        v.bytes
    }),
    ("chunk-zero-nnz", || {
        let mut v = raw();
        v.set_entry(1, entry::NNZ, 0);
        v.bytes
    }),
    ("chunk-dense-listed-mismatch", || {
        let mut v = raw();
        let n = v.entry(0, entry::N_LISTED);
        v.set_entry(0, entry::N_LISTED, n + 1);
        v.bytes
    }),
    ("chunk-sparse-listed-zero", || {
        let mut v = raw();
        let c = v.sparse_chunk();
        v.set_entry(c, entry::N_LISTED, 0);
        v.bytes
    }),
    ("chunk-offset-out-of-file", || {
        let mut v = raw();
        let end = v.bytes.len() as u64;
        v.set_entry(1, entry::OFFSET, end.div_ceil(64) * 64);
        v.bytes
    }),
    ("chunk-offset-overflow", || {
        let mut v = raw();
        v.set_entry(1, entry::OFFSET, !63); // u64::MAX rounded down to a multiple of 64
        v.bytes
    }),
    ("chunk-offset-misaligned", || {
        let mut v = raw();
        let off = v.entry(1, entry::OFFSET);
        v.set_entry(1, entry::OFFSET, off + 8);
        v.bytes
    }),
    ("chunk-in-superblock", || {
        let mut v = raw();
        v.set_entry(1, entry::OFFSET, 64);
        v.bytes
    }),
    ("raw-decoded-len-mismatch", || {
        let mut v = raw();
        let n = v.entry(1, entry::DECODED_LEN);
        v.set_entry(1, entry::DECODED_LEN, n + 1);
        v.bytes
    }),
    // Sections.
    ("section-out-of-range", || {
        let mut v = raw();
        let end = v.bytes.len() as u64;
        let len = v.section(ROW_LABELS).len() as u64;
        let at = v.section_at(ROW_LABELS);
        v.put64(at, end.div_ceil(8) * 8);
        v.put64(at + 8, len);
        v.fix_catalog();
        v.bytes
    }),
    ("section-misaligned", || {
        let mut v = raw();
        let r = v.section(METADATA);
        v.set_section(METADATA, r.start as u64 + 1, r.len() as u64 - 1);
        v.bytes
    }),
    ("section-length-overflow", || {
        let mut v = raw();
        let r = v.section(COL_LABELS);
        let at = v.section_at(COL_LABELS);
        v.put64(at, r.start as u64);
        v.put64(at + 8, u64::MAX - 4);
        v.fix_catalog();
        v.bytes
    }),
    ("labels-crc", || {
        let mut v = raw();
        let at = v.section(ROW_LABELS).start + 40;
        v.bytes[at] ^= 4;
        v.bytes
    }),
    ("labels-magic", || {
        let mut v = raw();
        let at = v.section(ROW_LABELS).start;
        v.bytes[at] = b'x';
        v.fix_section(ROW_LABELS);
        v.bytes
    }),
    ("labels-count-huge", || {
        let mut v = raw();
        let at = v.section(ROW_LABELS).start + 8;
        v.put64(at, 1 << 60);
        let slots = v.section(ROW_LABELS).start + 24;
        v.put64(slots, 1 << 61);
        v.fix_section(ROW_LABELS);
        v.bytes
    }),
    ("labels-strings-len-huge", || {
        let mut v = raw();
        let at = v.section(COL_LABELS).start + 16;
        v.put64(at, 1 << 62);
        v.fix_section(COL_LABELS);
        v.bytes
    }),
    ("labels-slots-not-power-of-two", || {
        let mut v = raw();
        let at = v.section(ROW_LABELS).start + 24;
        let n = v.u64(at);
        v.put64(at, n - 1);
        v.fix_section(ROW_LABELS);
        v.bytes
    }),
    ("labels-count-vs-rows", || {
        let mut v = raw();
        v.set_meta(meta::N_ROWS, N_ROWS + 1);
        v.bytes
    }),
    ("col-labels-count-vs-cols", || {
        let mut v = raw();
        v.set_meta(meta::N_COLS, N_COLS - 1);
        v.bytes
    }),
    ("labels-offsets-out-of-range", || {
        let mut v = raw();
        // The end offset of label 3 (= the start of label 4), past the strings.
        let at = v.section(ROW_LABELS).start + 32 + 4 * 8;
        v.put64(at, 1 << 40);
        v.fix_section(ROW_LABELS);
        v.bytes
    }),
    ("labels-offsets-decreasing", || {
        let mut v = raw();
        let at = v.section(ROW_LABELS).start + 32 + 4 * 8;
        v.put64(at, 1);
        v.fix_section(ROW_LABELS);
        v.bytes
    }),
    ("labels-bad-utf8", || {
        let mut v = raw();
        // The strings follow the header and 41 offsets; byte 0 is label 0's first byte.
        let at = v.section(ROW_LABELS).start + 32 + 41 * 8;
        v.bytes[at] = 0xff;
        v.fix_section(ROW_LABELS);
        v.bytes
    }),
    ("labels-hash-table-zeroed", || {
        let mut v = raw();
        let r = v.section(COL_LABELS);
        let slots = 32 + 41 * 8 + align8(v.u64(r.start + 16) as usize);
        v.bytes[r.start + slots..r.end].fill(0);
        v.fix_section(COL_LABELS);
        v.bytes
    }),
    ("labels-hash-table-wrong-ids", || {
        let mut v = raw();
        let r = v.section(COL_LABELS);
        let slots = r.start + 32 + 41 * 8 + align8(v.u64(r.start + 16) as usize);
        // Every nonempty slot points at label 1 (stored as id + 1).
        for at in (slots..r.end).step_by(4) {
            if v.u32(at) != 0 {
                v.put32(at, 2);
            }
        }
        v.fix_section(COL_LABELS);
        v.bytes
    }),
    ("metadata-crc", || {
        let mut v = raw();
        let at = v.section(METADATA).start + 3;
        v.bytes[at] ^= 0x20;
        v.bytes
    }),
    ("metadata-not-json", || {
        let mut v = raw();
        let r = v.section(METADATA);
        v.bytes[r.start + 1] = b'#';
        v.fix_section(METADATA);
        v.bytes
    }),
    ("metadata-not-object", || {
        let mut v = raw();
        let r = v.section(METADATA);
        v.bytes[r.start..r.start + 3].copy_from_slice(b"[1]");
        v.set_section(METADATA, r.start as u64, 3);
        v.bytes
    }),
    ("metadata-deeply-nested", || {
        let mut v = raw();
        let mut md = b"{\"a\":".to_vec();
        md.extend(std::iter::repeat_n(b'[', 100_000));
        let at = v.append(&md, 8);
        v.set_section(METADATA, at, md.len() as u64);
        v.bytes
    }),
    ("free-extents-crc", || {
        let mut v = raw();
        let r = v.section(METADATA);
        let at = v.section_at(FREE_EXTENTS);
        v.put64(at, r.start as u64);
        v.put64(at + 8, r.len() as u64);
        v.put32(at + 16, 0xdead_beef);
        v.fix_catalog();
        v.bytes
    }),
    // Chunks: checksums.
    ("chunk-crc-raw", || {
        let mut v = raw();
        let at = v.chunk(1).start + 5;
        v.bytes[at] ^= 0x40;
        v.bytes
    }),
    ("chunk-crc-lz4", || {
        let mut v = lz4();
        let at = v.chunk(1).start + 5;
        v.bytes[at] ^= 0x40;
        v.bytes
    }),
    ("chunk-crc-zstd", || {
        let mut v = zstd();
        let at = v.chunk(1).end - 1;
        v.bytes[at] ^= 0x40;
        v.bytes
    }),
    // Raw chunks: structure (checksum recomputed).
    ("raw-chunk-offsets-past-nnz", || {
        let mut v = raw();
        let g = v.geometry(0);
        let nnz = v.entry(0, entry::NNZ) as u32;
        let c = v.chunk(0).start;
        // Row 0 claims entries past the end; the indices all increase, so only the offsets
        // are wrong.
        v.put32(c + g.offsets + g.ow, nnz + 100);
        for k in 0..nnz as usize {
            v.put32(c + g.rows_end + 4 * k, k as u32);
        }
        v.fix_chunk(0);
        v.bytes
    }),
    ("raw-chunk-offsets-decreasing", || {
        let mut v = raw();
        let g = v.geometry(0);
        let at = v.chunk(0).start + g.offsets + 2 * g.ow;
        v.put32(at, 1);
        v.fix_chunk(0);
        v.bytes
    }),
    ("raw-chunk-offsets-not-from-zero", || {
        let mut v = raw();
        let g = v.geometry(0);
        let at = v.chunk(0).start + g.offsets;
        v.put32(at, 1);
        v.fix_chunk(0);
        v.bytes
    }),
    ("raw-chunk-column-out-of-range", || {
        let mut v = raw();
        let g = v.geometry(0);
        let at = v.chunk(0).start + g.rows_end + 4 * 4;
        v.put32(at, N_COLS as u32);
        v.fix_chunk(0);
        v.bytes
    }),
    ("raw-chunk-columns-unsorted", || {
        let mut v = raw();
        let g = v.geometry(0);
        let at = v.chunk(0).start + g.rows_end;
        v.put32(at, 6);
        v.fix_chunk(0);
        v.bytes
    }),
    ("raw-chunk-sparse-row-out-of-range", || {
        let mut v = raw();
        let c = v.sparse_chunk();
        let count = (v.entry(c, entry::ROW_END) - v.entry(c, entry::ROW_START)) as u32;
        let at = v.chunk(c).start + 4;
        v.put32(at, count);
        v.fix_chunk(c);
        v.bytes
    }),
    ("raw-chunk-sparse-rows-unsorted", || {
        let mut v = raw();
        let c = v.sparse_chunk();
        let first = v.u32(v.chunk(c).start);
        let at = v.chunk(c).start + 4;
        v.put32(at, first);
        v.fix_chunk(c);
        v.bytes
    }),
    ("raw-chunk-stored-len-short", || {
        let mut v = raw();
        let n = v.entry(1, entry::STORED_LEN);
        let at = v.entry_at(1);
        v.put64(at + entry::STORED_LEN, n - 8);
        v.put64(at + entry::DECODED_LEN, n - 8);
        v.fix_chunk(1);
        v.bytes
    }),
    ("raw-chunk-nnz-huge", || {
        // nnz and the commit's total agree, so the catalog passes; the chunk's size does not.
        let mut v = raw();
        let old = v.entry(1, entry::NNZ);
        v.put64(v.entry_at(1) + entry::NNZ, 1 << 40);
        let total = v.meta(meta::NNZ) - old + (1 << 40);
        v.put64(meta::NNZ, total);
        v.fix_catalog();
        v.bytes
    }),
    ("raw-chunk-nnz-overflow", || {
        let mut v = raw();
        let old = v.entry(1, entry::NNZ);
        v.put64(v.entry_at(1) + entry::NNZ, 1 << 61);
        let total = v.meta(meta::NNZ) - old + (1 << 61);
        v.put64(meta::NNZ, total);
        v.fix_catalog();
        v.bytes
    }),
    // Compressed chunks.
    ("zstd-garbage", || {
        let mut v = zstd();
        let r = v.chunk(1);
        v.bytes[r.start + 4..r.end].fill(0xa5);
        v.fix_chunk(1);
        v.bytes
    }),
    ("lz4-garbage", || {
        let mut v = lz4();
        let r = v.chunk(1);
        v.bytes[r].fill(0xf0);
        v.fix_chunk(1);
        v.bytes
    }),
    ("zstd-decoded-len-huge", || {
        let mut v = zstd();
        v.set_entry(1, entry::DECODED_LEN, 1 << 62);
        v.bytes
    }),
    ("lz4-decoded-len-huge", || {
        let mut v = lz4();
        v.set_entry(0, entry::DECODED_LEN, u64::MAX);
        v.bytes
    }),
    ("zstd-decoded-len-short", || {
        let mut v = zstd();
        let n = v.entry(0, entry::DECODED_LEN);
        v.set_entry(0, entry::DECODED_LEN, n - 1);
        v.bytes
    }),
    ("zstd-decoded-len-long", || {
        let mut v = zstd();
        let n = v.entry(0, entry::DECODED_LEN);
        v.set_entry(0, entry::DECODED_LEN, n + 1);
        v.bytes
    }),
    ("lz4-decoded-len-long", || {
        let mut v = lz4();
        let n = v.entry(0, entry::DECODED_LEN);
        v.set_entry(0, entry::DECODED_LEN, n + 1);
        v.bytes
    }),
    ("lz4-varint-overflow", || {
        let mut v = lz4();
        v.edit_lz4_payload(0, |p, g| {
            p.splice(g.rows_end..g.rows_end + 1, [0xff; 9].into_iter().chain([0x02]));
        });
        v.bytes
    }),
    ("lz4-varint-too-long", || {
        let mut v = lz4();
        v.edit_lz4_payload(0, |p, g| {
            p.splice(g.rows_end..g.rows_end + 1, [0x80; 10].into_iter().chain([0x00]));
        });
        v.bytes
    }),
    ("lz4-column-overflows-width", || {
        let mut v = lz4();
        // A first column of 2^35 in a 4-byte-index matrix.
        v.edit_lz4_payload(0, |p, g| {
            p.splice(g.rows_end..g.rows_end + 1, [0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
        });
        v.bytes
    }),
    ("lz4-repeated-column", || {
        let mut v = lz4();
        v.edit_lz4_payload(0, |p, g| p[g.rows_end + 1] = 0);
        v.bytes
    }),
    ("lz4-column-out-of-range", || {
        let mut v = lz4();
        v.edit_lz4_payload(0, |p, g| p[g.rows_end] = 100);
        v.bytes
    }),
    ("lz4-offsets-past-nnz", || {
        let mut v = lz4();
        v.edit_lz4_payload(0, |p, g| {
            let at = g.offsets + g.ow;
            p[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
        });
        v.bytes
    }),
    ("lz4-offsets-not-from-zero", || {
        let mut v = lz4();
        v.edit_lz4_payload(0, |p, g| p[g.offsets] = 1);
        v.bytes
    }),
    ("lz4-index-stream-ends-early", || {
        let mut v = lz4();
        // Every varint takes 8 bytes (the delta 1, padded with zero continuation bytes), so
        // the index stream runs past the end of the payload.
        v.edit_lz4_payload(0, |p, g| {
            let pattern = [0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
            for (k, b) in p[g.rows_end..].iter_mut().enumerate() {
                *b = pattern[k % 8];
            }
        });
        v.bytes
    }),
    ("lz4-non-canonical-varints", || {
        // Not damage: 2-byte varints of small deltas decode to the same columns.
        let mut v = lz4();
        v.edit_lz4_payload(0, |p, g| {
            // All columns are below 128: one byte per varint, then 4 value planes.
            let nnz = (p.len() - g.rows_end) / 5;
            let mut out = p[..g.rows_end].to_vec();
            for &d in &p[g.rows_end..g.rows_end + nnz] {
                out.extend([d | 0x80, 0x00]);
            }
            out.extend_from_slice(&p[g.rows_end + nnz..]);
            *p = out;
        });
        v.bytes
    }),
    ("lz4-value-planes-long", || {
        let mut v = lz4();
        v.edit_lz4_payload(0, |p, _| p.push(0));
        v.bytes
    }),
    ("lz4-sparse-row-out-of-range", || {
        let mut v = lz4();
        let c = v.sparse_chunk();
        let count = (v.entry(c, entry::ROW_END) - v.entry(c, entry::ROW_START)) as u32;
        v.edit_lz4_payload(c, |p, _| p[4..8].copy_from_slice(&count.to_le_bytes()));
        v.bytes
    }),
];

/// What each case must give.
#[rustfmt::skip]
const EXPECT: &[(&str, Expect)] = &[
    ("empty-file", Expect::Open(Kind::NotVfm, "not a .vfm file")),
    ("not-vfm-text-file", Expect::Open(Kind::NotVfm, "not a .vfm file")),
    ("not-vfm-short-text-file", Expect::Open(Kind::NotVfm, "not a .vfm file")),
    ("bad-magic", Expect::Open(Kind::NotVfm, "not a .vfm file")),
    ("truncated-to-magic", Expect::Open(Kind::Corrupt("file"), "shorter than the 8192-byte superblock")),
    ("truncated-superblock", Expect::Open(Kind::Corrupt("file"), "the file is 5000 bytes")),
    ("truncated-data", Expect::Open(Kind::NoValidCommit, "lies outside the file")),
    ("newer-version", Expect::Open(Kind::Unsupported, "format version 2 is newer")),
    ("version-zero", Expect::Open(Kind::NoValidCommit, "format version 0")),
    ("meta-crc", Expect::Open(Kind::NoValidCommit, "meta page checksum mismatch")),
    ("meta-slot", Expect::Open(Kind::NoValidCommit, "slot number 1")),
    ("meta-used-length", Expect::Open(Kind::NoValidCommit, "meta page length 64")),
    ("meta-generation-zero", Expect::Open(Kind::NoValidCommit, "generation 0")),
    ("meta-unknown-dtype", Expect::Open(Kind::NoValidCommit, "unknown dtype code 0")),
    ("meta-index-width-3", Expect::Open(Kind::NoValidCommit, "index width 3 is not 4 or 8")),
    ("meta-index-width-too-narrow", Expect::Open(Kind::NoValidCommit, "index width 4 cannot hold 4294967297 columns")),
    ("meta-data-end-past-file", Expect::Open(Kind::NoValidCommit, "lies outside the file")),
    ("meta-data-end-in-superblock", Expect::Open(Kind::NoValidCommit, "data end 100")),
    ("catalog-offset-out-of-file", Expect::Open(Kind::NoValidCommit, "does not fit in the data area")),
    ("catalog-offset-overflow", Expect::Open(Kind::NoValidCommit, "does not fit in the data area")),
    ("catalog-offset-misaligned", Expect::Open(Kind::NoValidCommit, "does not fit in the data area")),
    ("catalog-in-superblock", Expect::Open(Kind::NoValidCommit, "does not fit in the data area")),
    ("catalog-length-short", Expect::Open(Kind::NoValidCommit, "does not fit in the data area")),
    ("catalog-crc", Expect::Open(Kind::Corrupt("catalog"), "checksum mismatch")),
    ("catalog-magic", Expect::Open(Kind::Corrupt("catalog"), "catalog magic bytes are wrong")),
    ("catalog-entry-size", Expect::Open(Kind::Corrupt("catalog"), "chunk entry size 32 is not 64")),
    ("catalog-chunk-count-huge", Expect::Open(Kind::Corrupt("catalog"), "declares 1152921504606846976 chunks")),
    ("catalog-chunk-count-overflow", Expect::Open(Kind::Corrupt("catalog"), "declares 288230376151711744 chunks")),
    ("catalog-chunk-count-plus-one", Expect::Open(Kind::Corrupt("catalog"), "declares 3 chunks")),
    ("catalog-nnz-mismatch", Expect::Open(Kind::Corrupt("catalog"), "but the commit says")),
    ("catalog-nnz-overflow", Expect::Open(Kind::Corrupt("catalog"), "total nonzeros overflow")),
    ("chunk-rows-empty", Expect::Open(Kind::Corrupt("catalog"), "chunk 1: row range")),
    ("chunk-rows-overlap", Expect::Open(Kind::Corrupt("catalog"), "chunk 1: row range")),
    ("chunk-rows-past-n-rows", Expect::Open(Kind::Corrupt("catalog"), "exceeds 40 rows")),
    ("chunk-unknown-codec", Expect::Open(Kind::Corrupt("catalog"), "chunk 1: unknown codec code 7")),
    ("chunk-unknown-layout", Expect::Open(Kind::Corrupt("catalog"), "chunk 1: unknown row layout 2")),
    ("chunk-zero-nnz", Expect::Open(Kind::Corrupt("catalog"), "do not fit its layout")),
    ("chunk-dense-listed-mismatch", Expect::Open(Kind::Corrupt("catalog"), "chunk 0: 5 listed rows")),
    ("chunk-sparse-listed-zero", Expect::Open(Kind::Corrupt("catalog"), "0 listed rows")),
    ("chunk-offset-out-of-file", Expect::Open(Kind::Corrupt("catalog"), "chunk 1: bytes")),
    ("chunk-offset-overflow", Expect::Open(Kind::Corrupt("catalog"), "lie outside the data area")),
    ("chunk-offset-misaligned", Expect::Open(Kind::Corrupt("catalog"), "lie outside the data area")),
    ("chunk-in-superblock", Expect::Open(Kind::Corrupt("catalog"), "lie outside the data area")),
    ("raw-decoded-len-mismatch", Expect::Open(Kind::Corrupt("catalog"), "raw chunk with decoded length != stored length")),
    ("section-out-of-range", Expect::Open(Kind::Corrupt("catalog"), "lies outside the data area")),
    ("section-misaligned", Expect::Open(Kind::Corrupt("catalog"), "lies outside the data area")),
    ("section-length-overflow", Expect::Open(Kind::Corrupt("catalog"), "lies outside the data area")),
    ("labels-crc", Expect::Open(Kind::Corrupt("row labels"), "checksum mismatch")),
    ("labels-magic", Expect::Open(Kind::Corrupt("row labels"), "labels magic bytes are wrong")),
    ("labels-count-huge", Expect::Open(Kind::Corrupt("row labels"), "1152921504606846976 labels")),
    ("labels-strings-len-huge", Expect::Open(Kind::Corrupt("column labels"), "do not fit")),
    ("labels-slots-not-power-of-two", Expect::Open(Kind::Corrupt("row labels"), "must be a power of two")),
    ("labels-count-vs-rows", Expect::Open(Kind::Corrupt("row labels"), "40 labels for 41 entries")),
    ("col-labels-count-vs-cols", Expect::Open(Kind::Corrupt("column labels"), "40 labels for 39 entries")),
    ("labels-offsets-out-of-range", Expect::Verify(Kind::Corrupt("row labels"), "label 3 has offsets")),
    ("labels-offsets-decreasing", Expect::Verify(Kind::Corrupt("row labels"), "label 3 has offsets 15..1")),
    ("labels-bad-utf8", Expect::Verify(Kind::Corrupt("row labels"), "label 0 is not valid UTF-8")),
    ("labels-hash-table-zeroed", Expect::Verify(Kind::Corrupt("column labels"), "has no hash slot")),
    ("labels-hash-table-wrong-ids", Expect::Verify(Kind::Corrupt("column labels"), "unreachable from its home slot")),
    ("metadata-crc", Expect::Open(Kind::Corrupt("metadata"), "checksum mismatch")),
    ("metadata-not-json", Expect::Open(Kind::Corrupt("metadata"), "not JSON")),
    ("metadata-not-object", Expect::Open(Kind::Corrupt("metadata"), "not a JSON object")),
    ("metadata-deeply-nested", Expect::Open(Kind::Corrupt("metadata"), "recursion limit")),
    ("free-extents-crc", Expect::Open(Kind::Corrupt("free extents"), "checksum mismatch")),
    ("chunk-crc-raw", Expect::Verify(Kind::Chunk(1), "checksum mismatch")),
    ("chunk-crc-lz4", Expect::Verify(Kind::Chunk(1), "checksum mismatch")),
    ("chunk-crc-zstd", Expect::Verify(Kind::Chunk(1), "checksum mismatch")),
    ("raw-chunk-offsets-past-nnz", Expect::Verify(Kind::Chunk(0), "row offsets pass the 15 nonzeros at listed row 0")),
    ("raw-chunk-offsets-decreasing", Expect::Verify(Kind::Chunk(0), "row offsets decrease")),
    ("raw-chunk-offsets-not-from-zero", Expect::Verify(Kind::Chunk(0), "row offsets run 1..")),
    ("raw-chunk-column-out-of-range", Expect::Verify(Kind::Chunk(0), "column 40 at position 4 is out of order or not below 40")),
    ("raw-chunk-columns-unsorted", Expect::Verify(Kind::Chunk(0), "column 5 at position 1 is out of order")),
    ("raw-chunk-sparse-row-out-of-range", Expect::Verify(Kind::Chunk(1), "listed row 1 has local row number 10")),
    ("raw-chunk-sparse-rows-unsorted", Expect::Verify(Kind::Chunk(1), "listed row 1 has local row number 0, out of order")),
    ("raw-chunk-stored-len-short", Expect::Verify(Kind::Chunk(1), "raw chunk is")),
    ("raw-chunk-nnz-huge", Expect::Verify(Kind::Chunk(1), "raw chunk is")),
    ("raw-chunk-nnz-overflow", Expect::Verify(Kind::Chunk(1), "chunk sizes overflow")),
    ("zstd-garbage", Expect::Verify(Kind::Chunk(1), "zstd:")),
    ("lz4-garbage", Expect::Verify(Kind::Chunk(1), "lz4:")),
    ("zstd-decoded-len-huge", Expect::Verify(Kind::Chunk(1), "decoded length 4611686018427387904 is impossible")),
    ("lz4-decoded-len-huge", Expect::Verify(Kind::Chunk(0), "decoded length 18446744073709551615 is impossible")),
    ("zstd-decoded-len-short", Expect::Verify(Kind::Chunk(0), "decoded length 98 is impossible")),
    ("zstd-decoded-len-long", Expect::Verify(Kind::Chunk(0), "decompressed to")),
    ("lz4-decoded-len-long", Expect::Verify(Kind::Chunk(0), "decompressed to")),
    ("lz4-varint-overflow", Expect::Verify(Kind::Chunk(0), "varint overflows 64 bits")),
    ("lz4-varint-too-long", Expect::Verify(Kind::Chunk(0), "varint overflows 64 bits")),
    ("lz4-column-overflows-width", Expect::Verify(Kind::Chunk(0), "is not below 40")),
    ("lz4-repeated-column", Expect::Verify(Kind::Chunk(0), "repeated column index")),
    ("lz4-column-out-of-range", Expect::Verify(Kind::Chunk(0), "not below 40")),
    ("lz4-offsets-past-nnz", Expect::Verify(Kind::Chunk(0), "row offsets decrease at listed row 1")),
    ("lz4-offsets-not-from-zero", Expect::Verify(Kind::Chunk(0), "row offsets run 1..15, expected 0..15")),
    ("lz4-index-stream-ends-early", Expect::Verify(Kind::Chunk(0), "index stream ends early")),
    ("lz4-non-canonical-varints", Expect::Same),
    ("lz4-value-planes-long", Expect::Verify(Kind::Chunk(0), "value planes are")),
    ("lz4-sparse-row-out-of-range", Expect::Verify(Kind::Chunk(1), "local row number")),
];

fn expectation(name: &str) -> Option<Expect> {
    EXPECT.iter().find(|(n, _)| *n == name).map(|&(_, e)| e)
}

/// Every builder has an expectation and every expectation a builder; names are unique.
#[test]
fn registry_is_complete() {
    let mut missing = Vec::new();
    for (name, _) in BUILDERS {
        if expectation(name).is_none() {
            missing.push(format!("builder {name:?} has no expectation in EXPECT"));
        }
    }
    for (name, _) in EXPECT {
        if !BUILDERS.iter().any(|(n, _)| n == name) {
            missing.push(format!("expectation {name:?} has no builder in BUILDERS"));
        }
    }
    for list in [
        BUILDERS.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        EXPECT.iter().map(|(n, _)| *n).collect(),
    ] {
        let mut sorted = list.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != list.len() {
            missing.push("duplicate case names".into());
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// Checks one case; `Err` describes how it failed.
fn check_case(dir: &Path, name: &str, build: Builder, expect: Expect) -> Result<(), String> {
    let path: PathBuf = dir.join(format!("{name}.vfm"));
    let bytes = no_panic(build).map_err(|e| format!("builder: {e}"))?;
    std::fs::write(&path, &bytes).map_err(|e| e.to_string())?;
    let shown = path.display().to_string();
    let fits = |kind: Kind, text: &str, e: &Error| {
        let s = e.to_string();
        kind.matches(e) && s.contains(text) && s.contains(&shown) && s.contains(&kind.required_text())
    };
    let start = Instant::now();
    let result = no_panic(|| -> Result<(), String> {
        let opened = Matrix::open(&path);
        match (expect, opened) {
            (Expect::Open(kind, text), Err(e)) if fits(kind, text, &e) => Ok(()),
            (Expect::Open(..), Err(e)) => Err(format!("open failed differently: {e:?}\n  {e}")),
            (Expect::Open(..), Ok(_)) => Err("open succeeded".into()),
            (Expect::Same, Ok(m)) => match (read_all(&m), m.verify()) {
                (Ok(d), r) if r.is_clean() && d == *original(Codec::Lz4) => Ok(()),
                (d, r) => Err(format!("not the same: {d:?} {:?}", r.problems)),
            },
            (_, Err(e)) => Err(format!("open failed: {e}")),
            (Expect::Verify(kind, text), Ok(m)) => {
                let read = read_all(&m);
                let report = m.verify();
                if !report.problems.iter().any(|p| fits(kind, text, p)) {
                    return Err(format!("verify: {:#?}", report.problems));
                }
                if let Some(p) = report.problems.iter().find(|p| !p.to_string().contains(&shown)) {
                    return Err(format!("a problem does not name the file: {p}"));
                }
                // Reads that touch the damage fail rather than return it.
                match (read, kind) {
                    (Err(_), _) => Ok(()),
                    (Ok(_), Kind::Chunk(c)) => Err(format!("chunk {c} is damaged but reads succeeded")),
                    (Ok(_), _) => Err("the damage is not seen by reads".into()),
                }
            }
        }
    })
    .and_then(|r| r);
    let took = start.elapsed();
    if took > Duration::from_secs(2) {
        return Err(format!("took {took:?}"));
    }
    result
}

#[test]
fn registry_cases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    for &(name, build) in BUILDERS {
        let Some(expect) = expectation(name) else {
            failures.push(format!("{name}: no expectation"));
            continue;
        };
        if let Err(e) = check_case(dir.path(), name, build, expect) {
            failures.push(format!("{name}: {e}"));
        }
    }
    eprintln!("{} registry cases", BUILDERS.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        BUILDERS.len(),
        failures.join("\n")
    );
}

/// The base files are what the cases assume: 2–3 chunks, dense and sparse layouts, labels on
/// both axes, metadata, no free extents.
#[test]
fn base_files_have_the_assumed_shape() {
    for codec in [Codec::Raw, Codec::Lz4, Codec::Zstd] {
        let v = base_vfm(codec);
        assert!((2..=3).contains(&v.n_chunks()), "{codec}: {} chunks", v.n_chunks());
        assert!(!v.is_sparse(0), "{codec}: chunk 0 is dense");
        assert!(v.is_sparse(v.sparse_chunk()));
        assert_eq!(v.sparse_chunk(), 1, "{codec}: chunk 1 is sparse");
        assert_eq!(v.entry(0, entry::N_LISTED), v.entry(0, entry::ROW_END));
        for k in [ROW_LABELS, COL_LABELS, METADATA] {
            assert!(!v.section(k).is_empty());
        }
        assert!(v.section(FREE_EXTENTS).is_empty());
        assert_eq!(v.catalog().end, v.bytes.len(), "{codec}: the catalog ends the file");
        assert_eq!(v.meta(meta::DATA_END), v.bytes.len() as u64);
        assert!(regions(&v).contains(&Region::Padding), "{codec}: some padding");
        // Page B was never written.
        assert!(v.bytes[meta::PAGE..2 * meta::PAGE].iter().all(|&b| b == 0));
        assert_eq!(v.bytes[meta::DTYPE], base_dtype(codec) as u8);
        assert_eq!(v.index_width(), 4);
        assert_eq!(v.u16(meta::VERSION), 1);
        // Chunk 0 holds rows 0..4, row 2 empty but listed; chunk 1 rows 30 and 39.
        assert_eq!(v.entry(0, entry::ROW_END), 4);
        assert_eq!(v.entry(0, entry::N_LISTED), 4);
        assert_eq!(v.entry(1, entry::ROW_START), 30);
        assert_eq!(v.entry(1, entry::N_LISTED), 2);
        eprintln!("{codec}: {} bytes, {} chunks", v.bytes.len(), v.n_chunks());
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile sizes: fail fast, allocate nothing large.

#[test]
fn hostile_sizes_fail_fast_without_allocating() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in [
        "catalog-chunk-count-huge",
        "catalog-chunk-count-overflow",
        "zstd-decoded-len-huge",
        "lz4-decoded-len-huge",
        "labels-count-huge",
        "labels-strings-len-huge",
        "raw-chunk-nnz-huge",
        "section-length-overflow",
        "metadata-deeply-nested",
    ] {
        let build = BUILDERS.iter().find(|(n, _)| *n == name).expect("builder").1;
        let expect = expectation(name).expect("expectation");
        let start = Instant::now();
        check_case(dir.path(), name, build, expect).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{name}: {:?}",
            start.elapsed()
        );
    }
    let largest = LARGEST_ALLOC.load(Ordering::Relaxed);
    assert!(largest < ALLOC_LIMIT, "an allocation of {largest} bytes");
}

/// A chunk within the format's limits but above the reader's `max_chunk_bytes` is refused
/// before it is decompressed.
#[test]
fn max_chunk_bytes_is_enforced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("z.vfm");
    std::fs::write(&path, base(Codec::Zstd)).expect("write");
    let m = OpenOptions::new().max_chunk_bytes(16).open(&path).expect("open");
    let report = m.verify();
    assert!(
        report.problems.iter().any(|p| matches!(p, Error::CorruptChunk { .. })
            && p.to_string().contains("exceeds the limit of 16 bytes")),
        "{:?}",
        report.problems
    );
    assert!(m.row(0).is_err());
    // With the default limit the same file is fine.
    assert!(Matrix::open(&path).expect("open").verify().is_clean());
}

/// The allocation guard itself works: the suite would notice a large allocation.
#[test]
fn allocation_guard_sees_allocations() {
    let v = vec![0u8; 1 << 20];
    assert!(LARGEST_ALLOC.load(Ordering::Relaxed) >= 1 << 20);
    drop(v);
}

//! The bodies of the cargo-fuzz targets in `fuzz/fuzz_targets/`, one function of `&[u8]`
//! each. A body returns normally for every input a reader handles correctly (a clean error
//! or a consistent result) and panics on a bug: a panic inside a reader, an error that does
//! not name its file, a result that breaks the format's invariants.
//!
//! | target | what it drives |
//! |---|---|
//! | `vfm_meta` | meta page and catalog parsers (FORMAT.md §2, §3), labels sections (§5) |
//! | `vfm_chunk` | chunk decode for every codec (§4), checked afterwards |
//! | `vfm_scan` | `Matrix::open`, a full scan, random rows, labels and `verify` |
//! | `npy_header` | the `.npy` header parser and `NpySource` |
//! | `npz_member` | the `.npz` archive and member reader (`NpzSource`) |
//! | `parquet_import` | `ParquetSource` |
//! | `mtx_parse` | `MtxSource` |
//! | `accumulate` | add/commit/reopen/finish sequences on the `Accumulator` against a model |

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use vecfmt::consts::{CATALOG_HEADER_SIZE, CATALOG_MAGIC, CHUNK_ENTRY_SIZE, META_PAGE_SIZE, SUPERBLOCK_SIZE};
use vecfmt::{Accumulator, AccumulatorOptions, Catalog, ChunkData, ChunkEntry, Codec, Commit, DType, Matrix};

use crate::read::{self, names_file};
use crate::scratch;
use vecfmt_testkit::vfm;

/// A target's body.
pub type Body = fn(&[u8]);

/// Every target: its name (the file `fuzz/fuzz_targets/<name>.rs` and the corpus directory
/// `fuzz/corpus/<name>/`) and its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("vfm_meta", vfm_meta),
    ("vfm_chunk", vfm_chunk),
    ("vfm_scan", vfm_scan),
    ("npy_header", npy_header),
    ("npz_member", npz_member),
    ("parquet_import", parquet_import),
    ("mtx_parse", mtx_parse),
    ("accumulate", accumulate),
];

/// The body of target `name`.
pub fn target(name: &str) -> Option<Body> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Largest decoded chunk the targets accept: under the fuzzers' RSS limit.
const MAX_CHUNK: u64 = 64 << 20;

/// Bytes consumed from the front; zeros once they run out.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
    fn u8(&mut self) -> u8 {
        self.take(1).first().copied().unwrap_or(0)
    }
    fn u16(&mut self) -> u16 {
        let mut b = [0u8; 2];
        let t = self.take(2);
        b[..t.len()].copy_from_slice(t);
        u16::from_le_bytes(b)
    }
    fn u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        let t = self.take(4);
        b[..t.len()].copy_from_slice(t);
        u32::from_le_bytes(b)
    }
    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let t = self.take(8);
        b[..t.len()].copy_from_slice(t);
        u64::from_le_bytes(b)
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn expect_named(r: vecfmt::Result<read::Content>, path: &Path) {
    if let Err(e) = r {
        assert!(names_file(&e, path), "the error does not name the file: {e}");
    }
}

// ---------------------------------------------------------------------------------------
// vfm_meta

/// Meta pages, catalog and labels sections of a file image, parsed as they are and again
/// with every checksum recomputed (so that mutations reach the checks behind the CRCs).
pub fn vfm_meta(data: &[u8]) {
    meta_once(data);
    meta_once(&vfm::fix_checksums(data));
}

fn meta_once(img: &[u8]) {
    let len = img.len() as u64;
    for base in [0u64, META_PAGE_SIZE] {
        let Some(page) = img.get(base as usize..(base + META_PAGE_SIZE).min(len) as usize) else {
            continue;
        };
        let Ok(c) = vecfmt::layout::parse_page(page, base, len) else {
            continue;
        };
        assert!(
            SUPERBLOCK_SIZE <= c.data_end && c.data_end <= len,
            "accepted data_end {} of {len}",
            c.data_end
        );
        let cat_end = c.catalog_offset + c.catalog_length;
        assert!(
            c.catalog_offset >= SUPERBLOCK_SIZE && cat_end <= c.data_end,
            "accepted catalog {c:?}"
        );
        let bytes = &img[c.catalog_offset as usize..cat_end as usize];
        let Ok(cat) = Catalog::parse(bytes, c.catalog_offset, &c) else {
            continue;
        };
        check_catalog(&cat, &c);
        for (s, n) in [(&cat.row_labels, c.n_rows), (&cat.col_labels, c.n_cols)] {
            if s.is_present() {
                labels_once(&img[s.offset as usize..(s.offset + s.length) as usize], s.offset, n);
            }
        }
    }
}

fn check_catalog(cat: &Catalog, c: &Commit) {
    let mut nnz = 0u64;
    let mut prev_end = 0u64;
    for (i, e) in cat.chunks.iter().enumerate() {
        assert!(
            e.row_start < e.row_end && e.row_end <= c.n_rows,
            "chunk {i}: rows {e:?}"
        );
        assert!(i == 0 || e.row_start >= prev_end, "chunk {i} overlaps");
        prev_end = e.row_end;
        assert!(e.nnz >= 1 && e.n_listed >= 1 && e.n_listed <= e.row_end - e.row_start);
        assert!(e.offset >= SUPERBLOCK_SIZE && e.offset + e.stored_len <= c.data_end);
        nnz += e.nnz;
    }
    assert_eq!(nnz, c.nnz, "chunk nonzeros do not add up to the commit's");
    for s in [&cat.row_labels, &cat.col_labels, &cat.metadata, &cat.free_extents] {
        if s.is_present() {
            assert!(s.offset >= SUPERBLOCK_SIZE && s.offset + s.length <= c.data_end);
        }
    }
}

fn labels_once(bytes: &[u8], base: u64, _n: u64) {
    let Ok(l) = vecfmt::fuzzing::parse_labels(bytes, base) else {
        return;
    };
    let n = l.len().min(512);
    let mut some = Vec::new();
    for i in 0..n {
        if let Ok(s) = l.get(i) {
            if some.len() < 8 {
                some.push(s.to_string());
            }
        }
    }
    some.push("no such label".into());
    for s in &some {
        if let Some(id) = l.lookup(s) {
            assert_eq!(
                l.get(id).ok(),
                Some(s.as_str()),
                "lookup({s:?}) gave id {id} of another label"
            );
        }
    }
    if l.len() <= 1 << 16 {
        let _ = vecfmt::fuzzing::check_labels(&l);
    }
}

// ---------------------------------------------------------------------------------------
// vfm_chunk

/// One chunk: a dtype, an index width, `n_cols`, a 64-byte catalog entry (FORMAT.md §3.2),
/// then the chunk's bytes. A mode in the flags says whether the bytes are the stored bytes
/// as they are (mode 0), a payload for the target to compress with lz4 (1) or zstd (2), or
/// a raw chunk (3); modes 1 and 2 let the fuzzer shape the decoded payload directly.
pub fn vfm_chunk(data: &[u8]) {
    let mut r = Bytes(data);
    let dtype = DType::from_code(1 + r.u8() % 6).expect("codes 1..=6 exist");
    let flags = r.u8();
    let iw: u8 = if flags & 1 == 0 { 4 } else { 8 };
    let mode = (flags >> 1) & 3;
    let mut n_cols = match (flags >> 3) & 3 {
        0 => r.u8() as u64 + 1,
        1 => r.u16() as u64 + 1,
        2 => r.u32() as u64 + 1,
        _ => r.u64(),
    };
    if iw == 4 {
        n_cols = n_cols.min(1 << 32);
    }
    let n_rows = match (flags >> 5) & 3 {
        0 => r.u8() as u64 + 1,
        1 => r.u16() as u64 + 1,
        2 => r.u32() as u64 + 1,
        _ => r.u64(),
    };
    let mut entry = [0u8; CHUNK_ENTRY_SIZE as usize];
    let e = r.take(CHUNK_ENTRY_SIZE as usize);
    entry[..e.len()].copy_from_slice(e);
    let rest = r.0;
    let stored = match mode {
        1 => {
            entry[56] = Codec::Lz4.code();
            entry[40..48].copy_from_slice(&(rest.len() as u64).to_le_bytes());
            lz4_flex::block::compress(rest)
        }
        2 => {
            entry[56] = Codec::Zstd.code();
            entry[40..48].copy_from_slice(&(rest.len() as u64).to_le_bytes());
            zstd::bulk::compress(rest, 1).expect("zstd compresses any input")
        }
        3 => {
            entry[56] = Codec::Raw.code();
            entry[40..48].copy_from_slice(&(rest.len() as u64).to_le_bytes());
            rest.to_vec()
        }
        _ => rest.to_vec(),
    };
    // A one-chunk catalog around the entry, with the chunk at the start of the data area.
    entry[24..32].copy_from_slice(&SUPERBLOCK_SIZE.to_le_bytes());
    entry[32..40].copy_from_slice(&(stored.len() as u64).to_le_bytes());
    let nnz = u64::from_le_bytes(entry[16..24].try_into().expect("8 bytes"));
    let mut cat = Vec::with_capacity(CATALOG_HEADER_SIZE as usize + entry.len());
    cat.extend_from_slice(&CATALOG_MAGIC);
    cat.extend_from_slice(&1u64.to_le_bytes());
    cat.extend_from_slice(&(CHUNK_ENTRY_SIZE as u32).to_le_bytes());
    cat.resize(CATALOG_HEADER_SIZE as usize, 0);
    cat.extend_from_slice(&entry);
    let catalog_offset = (SUPERBLOCK_SIZE + stored.len() as u64).div_ceil(64) * 64;
    let commit = Commit {
        slot: 0,
        generation: 1,
        dtype,
        index_width: iw,
        n_rows,
        n_cols,
        nnz,
        catalog_offset,
        catalog_length: cat.len() as u64,
        catalog_crc: 0,
        data_end: catalog_offset + cat.len() as u64,
        commit_time_ns: 0,
    };
    let Ok(parsed) = Catalog::parse(&cat, catalog_offset, &commit) else {
        return;
    };
    let e = parsed.chunks[0];
    match vecfmt::fuzzing::decode_chunk(&stored, &e, iw as usize, dtype, n_cols, MAX_CHUNK) {
        Err(_) => {}
        Ok(d) => {
            if e.codec != Codec::Raw {
                assert!(
                    e.decoded_len <= MAX_CHUNK,
                    "a {}-byte chunk passed the limit",
                    e.decoded_len
                );
            }
            check_chunk(&d, &e, n_cols, dtype);
        }
    }
}

/// Everything a decoded chunk must satisfy (FORMAT.md §4.1, §4.4).
pub fn check_chunk(d: &ChunkData, e: &ChunkEntry, n_cols: u64, dtype: DType) {
    assert_eq!((d.row_start, d.row_end), (e.row_start, e.row_end));
    let row_count = e.row_end - e.row_start;
    let off = d.offsets.as_indices();
    let n = off.len();
    assert!(
        n >= 1 && (n - 1) as u64 == e.n_listed,
        "{n} offsets for {} listed rows",
        e.n_listed
    );
    assert_eq!(off.get(0), 0, "offsets start at {}", off.get(0));
    for k in 0..n - 1 {
        assert!(off.get(k) <= off.get(k + 1), "indptr decreases at {k}");
    }
    let nnz = off.get(n - 1);
    assert_eq!(nnz, e.nnz, "indptr ends at {nnz}, the entry says {}", e.nnz);
    assert_eq!(d.indices.len() as u64, nnz, "indices");
    assert_eq!(d.values.len() as u64, nnz, "values");
    assert_eq!(d.values.dtype(), dtype);
    match &d.rows {
        None => assert_eq!(e.n_listed, row_count, "a dense row section lists every row"),
        Some(ids) => {
            let ids = ids.as_indices();
            assert_eq!(ids.len() as u64, e.n_listed);
            for k in 0..ids.len() {
                assert!(ids.get(k) < row_count, "listed row {} of {row_count}", ids.get(k));
                assert!(k == 0 || ids.get(k) > ids.get(k - 1), "listed rows out of order");
            }
        }
    }
    let idx = d.indices.as_indices();
    for k in 0..n - 1 {
        for j in off.get(k) as usize..off.get(k + 1) as usize {
            let c = idx.get(j);
            assert!(c < n_cols, "column {c} of {n_cols}");
            assert!(
                j == off.get(k) as usize || c > idx.get(j - 1),
                "columns out of order in a row"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// vfm_scan

/// A file image opened with [`Matrix`], as it is and with its checksums recomputed: every
/// row in order, random rows, labels, then `verify`. A clean `verify` with a failed scan is
/// a bug, and so is an error that does not name the file.
pub fn vfm_scan(data: &[u8]) {
    let fixed = vfm::fix_checksums(data);
    for (name, img) in [("scan.vfm", data), ("scan_fixed.vfm", &fixed[..])] {
        let p = scratch::write(name, img);
        scan_once(&p);
    }
}

fn scan_once(p: &Path) {
    let m = match vecfmt::OpenOptions::new()
        .cache_bytes(1 << 20)
        .max_chunk_bytes(MAX_CHUNK)
        .open(p)
    {
        Ok(m) => m,
        Err(e) => {
            assert!(names_file(&e, p), "open error does not name the file: {e}");
            return;
        }
    };
    let scan = read::read_vfm(p, false);
    if let Err(e) = &scan {
        assert!(names_file(e, p), "scan error does not name the file: {e}");
    }
    let report = m.verify();
    for e in &report.problems {
        assert!(names_file(e, p), "verify problem does not name the file: {e}");
    }
    if report.is_clean() {
        if let Err(e) = &scan {
            panic!("verify is clean but the scan failed: {e}");
        }
    }
    // Random access: the first row of each chunk, the last row, and a row past the end.
    let mut probes: Vec<u64> = m.chunks().iter().take(64).map(|c| c.row_start).collect();
    probes.push(m.n_rows().saturating_sub(1));
    probes.push(m.n_rows());
    for i in probes {
        match m.row(i) {
            Ok(row) => {
                let idx = row.indices();
                for k in 0..idx.len() {
                    assert!(idx.get(k) < m.n_cols() && (k == 0 || idx.get(k) > idx.get(k - 1)));
                }
                assert_eq!(idx.len(), row.values().len());
                let _ = m.get(i, m.n_cols().saturating_sub(1));
            }
            Err(vecfmt::Error::RowOutOfRange { .. }) => assert!(i >= m.n_rows()),
            Err(e) => assert!(names_file(&e, p), "row error does not name the file: {e}"),
        }
    }
    for i in [0, 1, m.n_rows().saturating_sub(1)] {
        let _ = m.row_label(i);
    }
    for j in [0, m.n_cols().saturating_sub(1)] {
        let _ = m.col_label(j);
    }
    let _ = m.row_id("a");
    let _ = m.col_id("a");
}

// ---------------------------------------------------------------------------------------
// npy_header, npz_member, parquet_import, mtx_parse

/// The `.npy` header parser on the bytes, then the whole file through `NpySource`.
pub fn npy_header(data: &[u8]) {
    if let Ok(h) = vecfmt_npy::header::read_header(&mut &data[..]) {
        assert!(h.data_offset >= 10, "data offset {}", h.data_offset);
        let _ = (h.n_elements(), h.data_len(), h.shape_str());
    }
    let p = scratch::write("fuzz.npy", data);
    expect_named(read::read_npy(&p, false), &p);
}

/// Separates the members of a structured `npz_member` input.
pub const NPZ_DELIMITER: &[u8] = b"\xffNPZ";

/// A `.npz` archive through `NpzSource`. An input starting with `PK` is the archive itself;
/// any other is a first byte of flags and then the members' bytes separated by
/// [`NPZ_DELIMITER`], which the target zips (stored or deflated) under the names of a csr,
/// csc or coo file: that lets the fuzzer work on the member `.npy` headers and arrays.
pub fn npz_member(data: &[u8]) {
    let archive = if data.starts_with(b"PK") {
        data.to_vec()
    } else {
        let Some((&flags, rest)) = data.split_first() else {
            return;
        };
        match build_npz(flags, rest) {
            Some(a) => a,
            None => return,
        }
    };
    let p = scratch::write("fuzz.npz", &archive);
    expect_named(read::read_npz(&p, false), &p);
}

/// The member names of a structured `npz_member` input, by the layout bits of its flags.
pub fn npz_member_names(flags: u8) -> &'static [&'static str] {
    match flags % 4 {
        0 => &["format.npy", "shape.npy", "data.npy", "indices.npy", "indptr.npy"],
        1 => &[
            "format.npy",
            "shape.npy",
            "data.npy",
            "indices.npy",
            "indptr.npy",
            "_is_array.npy",
        ],
        2 => &["format.npy", "shape.npy", "data.npy", "row.npy", "col.npy"],
        _ => &["format.npy", "shape.npy", "data.npy", "coords.npy"],
    }
}

fn build_npz(flags: u8, rest: &[u8]) -> Option<Vec<u8>> {
    let names = npz_member_names(flags);
    let method = if flags & 4 != 0 {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    let mut parts = split(rest, NPZ_DELIMITER);
    for name in names {
        let body = parts.next().unwrap_or(&[]);
        w.start_file(*name, opts).ok()?;
        w.write_all(body).ok()?;
    }
    Some(w.finish().ok()?.into_inner())
}

fn split<'a>(mut s: &'a [u8], d: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match s.windows(d.len()).position(|w| w == d) {
            Some(i) => {
                let (a, b) = (&s[..i], &s[i + d.len()..]);
                s = b;
                Some(a)
            }
            None => {
                done = true;
                Some(s)
            }
        }
    })
}

/// The panic hook of the `parquet_import` fuzz target. vecfmt-parquet runs the parquet
/// crate's decoders under `catch_unwind` and turns their panics on malformed files into
/// errors; libFuzzer's default hook would abort on those caught panics. This hook lets them
/// unwind into the guard and prints each distinct location once (they are upstream bugs,
/// worth reporting); a panic anywhere else still reaches libfuzzer-sys, which aborts.
pub fn parquet_panic_hook() {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map_or("?".into(), |l| format!("{}:{}", l.file(), l.line()));
        let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
        if seen.get_or_insert_with(HashSet::new).insert(at.clone()) {
            eprintln!("vecfmt-fuzz: panic at {at}: {info}");
        }
    }));
}

/// A Parquet file through `ParquetSource`.
pub fn parquet_import(data: &[u8]) {
    let p = scratch::write("fuzz.parquet", data);
    expect_named(read::read_parquet(&p, false), &p);
}

/// A Matrix Market file through `MtxSource`.
pub fn mtx_parse(data: &[u8]) {
    let p = scratch::write("fuzz.mtx", data);
    expect_named(read::read_mtx(&p, false), &p);
}

// ---------------------------------------------------------------------------------------
// accumulate

/// Model of an integer-valued matrix: the nonzero sums.
type Model = BTreeMap<(u64, u64), i64>;

/// A sequence of accumulator operations decoded from the bytes, run against an in-memory
/// model. The first bytes choose the dtype (i64, f64 or f32, all holding small whole
/// numbers, so sums are exact), the codec, and whether the shape is fixed. Then each op:
/// one add, a batch of pseudo-random adds (enough to overflow the small memory budget and
/// make the cache evict and reload chunks), a commit, a reopen (uncommitted adds are lost),
/// or a finish (the file is read back and compared with the model, then reopened). At the
/// end the accumulator finishes and the file must equal the model exactly.
pub fn accumulate(data: &[u8]) {
    let mut r = Bytes(data);
    let cfg = r.u8();
    let dtype = [DType::I64, DType::F64, DType::F32, DType::I32][(cfg % 4) as usize];
    let codec = [Codec::Lz4, Codec::Zstd, Codec::Raw][((cfg >> 2) % 3) as usize];
    let fixed = if cfg & 0x40 != 0 {
        Some((1 + r.u8() as u64 * 8, 1 + r.u16() as u64 % 4096))
    } else {
        None
    };
    let (id_rows, id_cols) = fixed.unwrap_or((2048, 65536));
    let mut opts = AccumulatorOptions::new(dtype)
        .memory(1 << 20)
        .chunk_bytes(1024)
        .codec(codec)
        .overwrite(true);
    if let Some((nr, nc)) = fixed {
        opts = opts.n_rows(nr).n_cols(nc);
    }
    let path = scratch::dir().join("accumulate.vfm");
    let mut acc = Some(Accumulator::create(&path, opts.clone()).expect("create"));
    let mut model = Model::new();
    let mut committed = Model::new();
    // The shape the ids added so far imply (ids are kept even when sums cancel).
    let mut shape = (0u64, 0u64);
    let mut committed_shape = (0u64, 0u64);
    let add = |acc: &Accumulator, model: &mut Model, shape: &mut (u64, u64), row: u64, col: u64, v: i64| {
        if dtype.is_float() {
            acc.add(row, col, v as f64).expect("add");
        } else {
            acc.add_int(row, col, v).expect("add_int");
        }
        let e = model.entry((row, col)).or_insert(0);
        *e += v;
        if *e == 0 {
            model.remove(&(row, col));
        }
        *shape = (shape.0.max(row + 1), shape.1.max(col + 1));
    };
    let trace = std::env::var_os("VECFMT_FUZZ_TRACE").is_some();
    if trace {
        eprintln!("accumulate: {dtype} {codec} fixed shape {fixed:?}");
    }
    let mut ops = 0;
    while !r.is_empty() && ops < 48 {
        ops += 1;
        let a = acc.as_ref().expect("open");
        let op = r.u8() % 8;
        if trace {
            eprintln!(
                "op {ops}: {}",
                ["add", "add", "add", "batch", "batch", "commit", "reopen", "finish"][op as usize]
            );
        }
        match op {
            0..=2 => {
                let (row, col) = (r.u16() as u64 % id_rows, r.u32() as u64 % id_cols);
                let v = r.u8() as i8 as i64;
                if trace {
                    eprintln!("  add({row}, {col}, {v})");
                }
                add(a, &mut model, &mut shape, row, col, v);
            }
            3 | 4 => {
                let n = r.u16() as usize % 6000;
                let mut x = (r.u32() as u64) << 1 | 1;
                let spread = 1 + r.u8() as u64 % 4;
                if trace {
                    eprintln!("  {n} adds from seed {x}, rows below {}", (id_rows / spread).max(1));
                }
                for _ in 0..n {
                    // xorshift64: cheap, deterministic ids and values from the seed.
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let row = (x >> 8) % (id_rows / spread).max(1);
                    let col = (x >> 24) % id_cols;
                    let v = (x % 7) as i64 - 3;
                    add(a, &mut model, &mut shape, row, col, v);
                }
            }
            5 => {
                a.commit().expect("commit");
                committed = model.clone();
                committed_shape = shape;
            }
            6 => {
                drop(acc.take());
                acc = Some(Accumulator::open(&path, opts.clone()).expect("reopen"));
                model = committed.clone();
                shape = committed_shape;
            }
            _ => {
                acc.take().expect("open").finish().expect("finish");
                committed = model.clone();
                committed_shape = shape;
                compare(&path, dtype, &model, fixed.unwrap_or(shape));
                acc = Some(Accumulator::open(&path, opts.clone()).expect("reopen after finish"));
            }
        }
    }
    acc.take().expect("open").finish().expect("final finish");
    compare(&path, dtype, &model, fixed.unwrap_or(shape));
}

fn compare(path: &Path, dtype: DType, model: &Model, shape: (u64, u64)) {
    let m = Matrix::open(path).expect("the finished file opens");
    assert_eq!(m.dtype(), dtype);
    assert_eq!(m.shape(), shape, "shape");
    assert!(m.verify().is_clean(), "the finished file verifies");
    let mut got = Model::new();
    for row in m.iter_rows() {
        let row = row.expect("rows read");
        for (c, v) in row.iter() {
            let x = v.to_f64();
            if x != 0.0 {
                got.insert((row.id(), c), x as i64);
            }
        }
    }
    if &got != model {
        let diff: Vec<_> = model
            .iter()
            .filter(|(k, v)| got.get(k) != Some(v))
            .take(5)
            .chain(got.iter().filter(|(k, v)| model.get(k) != Some(v)).take(5))
            .collect();
        panic!(
            "the file differs from the model ({} vs {} entries); first differences: {diff:?}",
            got.len(),
            model.len()
        );
    }
}

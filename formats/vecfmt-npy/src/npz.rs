//! scipy.sparse `.npz` files (`scipy.sparse.save_npz` / `load_npz`).
//!
//! ### Specification
//! `save_npz` writes a zip archive (`np.savez`, or `np.savez_compressed` for deflate) of
//! `.npy` members: `format` (a 0-d bytes array such as `b'csr'`), `shape` (two integers),
//! `data`, and the index arrays of the layout: `indices` + `indptr` for csr and csc, `row` +
//! `col` (or one `(2, nnz)` `coords` array, in newer scipy) for coo. A sparse *array* (as
//! opposed to a matrix) adds `_is_array` (a 0-d `True`).
//!
//! [`NpzSource`] streams the members straight from the archive: each member is read by its
//! own decoder from its own file handle, so csr rows come out a block at a time with memory
//! bounded by the block size, whatever the file's size.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use vecfmt::stream::{Block, MatrixHeader, MatrixSink, MatrixSource, RowBlock, TripletBlock};
use vecfmt::{DType, Element, Error, Result, ValueVec};
use zip::CompressionMethod;

use crate::dtype::{Decoder, Kind, NpyDtype};
use crate::header::{encode_header, encode_header_descr, read_header, read_raw_header, shape_str, NpyHeader};
use crate::output::{dir_of, io_err, TempOutput};
use crate::{foreign, Notify, ReadOptions, WriteOptions};

const FORMAT: &str = "npz";
/// More members than this is not a scipy file (save_npz writes at most six).
const MAX_MEMBERS: usize = 64;
/// Largest `format`, `shape` or `_is_array` member we read.
const MAX_SMALL_MEMBER: u64 = 4096;
/// Blocks of at least this many entries read their indices and values on two threads.
const PARALLEL_MEMBERS_FROM: u64 = 1 << 16;
/// Deflate cannot expand data by more than this (a 258-byte match in about two bits).
const MAX_DEFLATE_RATIO: u64 = 1032;

/// The member count the archive's end record declares (the zip64 record's, when the
/// archive has one), read before the zip library sizes anything by it. `None` when no end
/// record is found: the zip library then says what is wrong.
fn declared_members(file: &File, len: u64) -> std::io::Result<Option<u64>> {
    use std::os::unix::fs::FileExt;
    // The end record is 22 bytes plus a comment of at most 65,535; a zip64 locator (20) and
    // record (56) come before it.
    let tail_len = len.min(22 + 65_535);
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact_at(&mut tail, len - tail_len)?;
    let Some(at) = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == *b"PK\x05\x06")
    else {
        return Ok(None);
    };
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]) as u64;
    let count = u16_at(&tail, at + 10).max(u16_at(&tail, at + 8));
    if count != 0xffff {
        return Ok(Some(count));
    }
    // Zip64: the locator just before the end record points at the zip64 record.
    let eocd = len - tail_len + at as u64;
    if eocd < 20 {
        return Ok(Some(count));
    }
    let mut loc = [0u8; 20];
    file.read_exact_at(&mut loc, eocd - 20)?;
    if loc[..4] != *b"PK\x06\x07" {
        return Ok(Some(count));
    }
    let rec = u64::from_le_bytes(loc[8..16].try_into().expect("8 bytes"));
    let mut z64 = [0u8; 56];
    if rec.checked_add(56).is_none_or(|e| e > len)
        || file.read_exact_at(&mut z64, rec).is_err()
        || z64[..4] != *b"PK\x06\x06"
    {
        return Ok(Some(count));
    }
    let n = |i: usize| u64::from_le_bytes(z64[i..i + 8].try_into().expect("8 bytes"));
    Ok(Some(n(24).max(n(32))))
}

/// The sparse layouts `save_npz` writes that vecfmt reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpzLayout {
    Csr,
    Csc,
    Coo,
}

impl NpzLayout {
    /// scipy's name: `csr`, `csc`, `coo`.
    pub fn name(self) -> &'static str {
        match self {
            NpzLayout::Csr => "csr",
            NpzLayout::Csc => "csc",
            NpzLayout::Coo => "coo",
        }
    }
}

/// Where one member's bytes are in the archive.
#[derive(Debug, Clone)]
struct Member {
    name: String,
    data_start: u64,
    compressed_size: u64,
    size: u64,
    crc32: u32,
    deflated: bool,
}

/// A member's uncompressed bytes as a stream, checked against its declared size and CRC.
struct MemberReader {
    inner: Box<dyn Read + Send>,
    name: String,
    /// Uncompressed bytes not yet read.
    left: u64,
    crc: crc32fast::Hasher,
    expected_crc: u32,
    /// Whether this reader reads the member to its end (and can check the CRC).
    whole: bool,
}

impl MemberReader {
    fn open(path: &Path, m: &Member) -> Result<Self> {
        let mut f = File::open(path).map_err(io_err(path, "open"))?;
        f.seek(SeekFrom::Start(m.data_start)).map_err(io_err(path, "seek"))?;
        let raw = BufReader::with_capacity(256 << 10, f.take(m.compressed_size));
        let inner: Box<dyn Read + Send> = if m.deflated {
            Box::new(flate2::bufread::DeflateDecoder::new(raw))
        } else {
            Box::new(raw)
        };
        Ok(MemberReader {
            inner,
            name: m.name.clone(),
            left: m.size,
            crc: crc32fast::Hasher::new(),
            expected_crc: m.crc32,
            whole: true,
        })
    }

    /// Reads exactly `buf.len()` bytes; a short member is an error naming it.
    fn fill(&mut self, path: &Path, buf: &mut [u8]) -> Result<()> {
        self.read_exact(buf).map_err(|e| {
            let detail = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                format!("member {} is truncated or corrupt (it ends early)", self.name)
            } else {
                format!("member {} is corrupt: {e}", self.name)
            };
            foreign(path, FORMAT, detail)
        })
    }

    /// Skips `n` bytes.
    fn skip(&mut self, path: &Path, mut n: u64) -> Result<()> {
        let mut buf = vec![0u8; (64 << 10).min(n as usize)];
        while n > 0 {
            let k = n.min(buf.len() as u64) as usize;
            self.fill(path, &mut buf[..k])?;
            n -= k as u64;
        }
        Ok(())
    }

    /// At the end of the member: checks that nothing is left and that the CRC matches.
    fn check_end(&mut self, path: &Path) -> Result<()> {
        if !self.whole {
            return Ok(());
        }
        if self.left != 0 {
            return Err(foreign(
                path,
                FORMAT,
                format!("member {} has {} bytes after its array", self.name, self.left),
            ));
        }
        let crc = std::mem::take(&mut self.crc).finalize();
        if crc != self.expected_crc {
            return Err(foreign(
                path,
                FORMAT,
                format!(
                    "member {} is corrupt: CRC-32 {crc:08x}, the archive says {:08x}",
                    self.name, self.expected_crc
                ),
            ));
        }
        self.whole = false;
        Ok(())
    }
}

impl Read for MemberReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Never more than the declared size: a member cannot inflate past what it claims.
        let cap = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if cap == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..cap])?;
        self.crc.update(&buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

/// A numeric member: its `.npy` header and a stream positioned at its data.
struct Array {
    header: NpyHeader,
    reader: MemberReader,
    /// Elements not yet read.
    left: u64,
    buf: Vec<u8>,
}

impl Array {
    fn open(path: &Path, m: &Member) -> Result<Self> {
        let mut reader = MemberReader::open(path, m)?;
        let header = read_header(&mut reader).map_err(|d| foreign(path, FORMAT, format!("member {}: {d}", m.name)))?;
        let n = header.n_elements().unwrap_or(u64::MAX);
        let need = header.data_len().and_then(|l| l.checked_add(header.data_offset));
        if need != Some(m.size) {
            return Err(foreign(
                path,
                FORMAT,
                format!(
                    "member {}: shape {} of {} needs {} bytes, the member holds {} (truncated or corrupt)",
                    m.name,
                    header.shape_str(),
                    header.dtype.name(),
                    need.map_or("too many".into(), |n| n.to_string()),
                    m.size
                ),
            ));
        }
        Ok(Array {
            header,
            reader,
            left: n,
            buf: Vec::new(),
        })
    }

    /// The raw bytes of the next `n` elements.
    fn next_bytes(&mut self, path: &Path, n: u64) -> Result<&[u8]> {
        debug_assert!(n <= self.left);
        let len = (n as usize) * self.header.dtype.size();
        // Grow the buffer as the data arrives rather than to the size the header claims.
        self.buf.clear();
        while self.buf.len() < len {
            let at = self.buf.len();
            self.buf.resize(at + (len - at).min(1 << 20), 0);
            self.reader.fill(path, &mut self.buf[at..])?;
        }
        self.left -= n;
        if self.left == 0 {
            self.reader.check_end(path)?;
        }
        Ok(&self.buf)
    }

    /// The next `n` elements as indices (integers; negatives are refused).
    fn next_indices(&mut self, path: &Path, n: u64, out: &mut Vec<u64>) -> Result<()> {
        let dtype = self.header.dtype;
        let name = self.reader.name.clone();
        let bytes = self.next_bytes(path, n)?;
        dtype
            .decode_indices(bytes, out)
            .map_err(|v| foreign(path, FORMAT, format!("member {name}: negative index {v}")))
    }

    /// The next `n` elements as values.
    fn next_values(&mut self, path: &Path, n: u64, decoder: &dyn Decoder, out: &mut ValueVec) -> Result<()> {
        let bytes = self.next_bytes(path, n)?;
        decoder.push_all(bytes, out);
        Ok(())
    }
}

/// The members of an archive, found by name.
struct Archive {
    members: Vec<Member>,
}

impl Archive {
    fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(io_err(path, "open"))?;
        let file_len = file.metadata().map_err(io_err(path, "stat"))?.len();
        if let Some(n) = declared_members(&file, file_len).map_err(io_err(path, "read"))? {
            if n > MAX_MEMBERS as u64 {
                return Err(foreign(
                    path,
                    FORMAT,
                    format!("the archive declares {n} members; a scipy .npz has at most 6 (limit {MAX_MEMBERS})"),
                ));
            }
        }
        let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| {
            foreign(
                path,
                FORMAT,
                format!("not a readable .npz (zip) archive, or a truncated one: {e}"),
            )
        })?;
        if zip.len() > MAX_MEMBERS {
            return Err(foreign(
                path,
                FORMAT,
                format!(
                    "the archive has {} members; a scipy .npz has at most 6 (limit {MAX_MEMBERS})",
                    zip.len()
                ),
            ));
        }
        let mut members = Vec::new();
        for i in 0..zip.len() {
            let f = zip
                .by_index_raw(i)
                .map_err(|e| foreign(path, FORMAT, format!("zip member {i} is unreadable: {e}")))?;
            let name = f.name().map(|n| n.into_owned()).unwrap_or_default();
            if f.is_dir() {
                continue;
            }
            if f.encrypted() {
                return Err(foreign(path, FORMAT, format!("member {name} is encrypted")));
            }
            let deflated = match f.compression() {
                CompressionMethod::Stored => false,
                CompressionMethod::Deflated => true,
                other => {
                    return Err(foreign(
                        path,
                        FORMAT,
                        format!(
                        "member {name} uses zip compression {other:?}; numpy writes only stored or deflated members"
                    ),
                    ))
                }
            };
            let data_start = f
                .data_start()
                .ok_or_else(|| foreign(path, FORMAT, format!("member {name}: no local header")))?;
            if data_start
                .checked_add(f.compressed_size())
                .is_none_or(|end| end > file_len)
            {
                return Err(foreign(
                    path,
                    FORMAT,
                    format!("member {name} runs past the end of the file (truncated)"),
                ));
            }
            // What a member claims to hold must be possible from the bytes it occupies: a
            // member's reader is sized by this claim.
            let possible = if deflated {
                f.compressed_size().saturating_mul(MAX_DEFLATE_RATIO).saturating_add(64)
            } else {
                f.compressed_size()
            };
            if f.size() > possible || (!deflated && f.size() != f.compressed_size()) {
                return Err(foreign(
                    path,
                    FORMAT,
                    format!(
                        "member {name} claims {} bytes from {} {} bytes: the archive is corrupt",
                        f.size(),
                        f.compressed_size(),
                        if deflated { "deflated" } else { "stored" }
                    ),
                ));
            }
            members.push(Member {
                name,
                data_start,
                compressed_size: f.compressed_size(),
                size: f.size(),
                crc32: f.crc32(),
                deflated,
            });
        }
        Ok(Archive { members })
    }

    fn get(&self, key: &str) -> Option<&Member> {
        let file = format!("{key}.npy");
        self.members.iter().find(|m| m.name == file)
    }

    fn require(&self, path: &Path, key: &str, layout: &str) -> Result<&Member> {
        self.get(key).ok_or_else(|| {
            foreign(
                path,
                FORMAT,
                format!(
                    "a {layout} .npz needs a member {key}.npy; the archive has: {}",
                    self.members
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    /// The whole (small) data of a member, with its raw header.
    fn small(&self, path: &Path, m: &Member) -> Result<(crate::header::RawHeader, Vec<u8>)> {
        if m.size > MAX_SMALL_MEMBER {
            return Err(foreign(
                path,
                FORMAT,
                format!("member {} is {} bytes; expected a few", m.name, m.size),
            ));
        }
        let mut r = MemberReader::open(path, m)?;
        let h = read_raw_header(&mut r).map_err(|d| foreign(path, FORMAT, format!("member {}: {d}", m.name)))?;
        let mut rest = vec![0u8; r.left as usize];
        r.fill(path, &mut rest)?;
        r.check_end(path)?;
        Ok((h, rest))
    }
}

/// Reads the `format` member: a 0-d bytes (`|S3`) or str (`<U3`) array.
fn read_format(path: &Path, a: &Archive) -> Result<String> {
    let m = a.get("format").ok_or_else(|| {
        foreign(
            path,
            FORMAT,
            format!(
                "no member format.npy: not a scipy.sparse .npz (save_npz writes it); the archive has: {}",
                a.members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    let (h, bytes) = a.small(path, m)?;
    let bad = || {
        foreign(
            path,
            FORMAT,
            format!(
                "member format.npy holds dtype '{}', shape {}; expected a 0-d bytes string such as b'csr'",
                h.descr,
                shape_str(&h.shape)
            ),
        )
    };
    if !h.shape.is_empty() {
        return Err(bad());
    }
    let d = h.descr.trim_start_matches(['|', '<', '>', '=']);
    let text = if d.starts_with('S') {
        String::from_utf8_lossy(&bytes).trim_end_matches('\0').to_string()
    } else if d.starts_with('U') {
        let big = h.descr.starts_with('>');
        let chars: Option<String> = bytes
            .chunks_exact(4)
            .map(|c| {
                let a: [u8; 4] = c.try_into().expect("chunks of 4");
                char::from_u32(if big {
                    u32::from_be_bytes(a)
                } else {
                    u32::from_le_bytes(a)
                })
            })
            .collect();
        chars.ok_or_else(bad)?.trim_end_matches('\0').to_string()
    } else {
        return Err(bad());
    };
    Ok(text)
}

/// Reads the `shape` member: two non-negative integers.
fn read_shape(path: &Path, a: &Archive) -> Result<(u64, u64)> {
    let m = a.require(path, "shape", "scipy.sparse")?;
    let (h, bytes) = a.small(path, m)?;
    let bad = |why: &str| foreign(path, FORMAT, format!("member shape.npy: {why}"));
    let dtype = NpyDtype::parse(&h.descr).map_err(|e| bad(&e))?;
    if !dtype.is_integer() || h.shape != [2] {
        return Err(bad(&format!(
            "expected two integers, found dtype '{}' with shape {}",
            h.descr,
            shape_str(&h.shape)
        )));
    }
    let mut v = Vec::new();
    dtype
        .decode_indices(&bytes, &mut v)
        .map_err(|x| bad(&format!("negative dimension {x}")))?;
    if v.len() != 2 {
        return Err(bad("expected two integers"));
    }
    Ok((v[0], v[1]))
}

/// A run of csr rows or csc columns as read from the file.
struct Lines {
    /// The first row (csr) or column (csc).
    first: u64,
    /// Offsets of each line into `idx` and `values`, from 0.
    ptr: Vec<u64>,
    /// Column (csr) or row (csc) indices.
    idx: Vec<u64>,
    values: ValueVec,
}

/// Counts of repaired rows, for the note at the end.
#[derive(Debug, Default)]
struct Repairs {
    unsorted_rows: u64,
    duplicates: u64,
}

enum Walk {
    /// csr or csc: `indptr` over the major axis, `indices` on the minor.
    Compressed {
        indptr: Array,
        indices: Array,
        /// indptr entries read ahead, not yet used.
        ptrs: std::collections::VecDeque<u64>,
        /// The indptr value at the start of the next major line.
        at: u64,
        next_major: u64,
        n_major: u64,
    },
    /// coo: row and col arrays, read in step.
    Coo { row: Array, col: Array, left: u64 },
}

/// A scipy.sparse `.npz` read block by block: csr gives row blocks (unsorted or duplicate
/// column indices within a row are sorted and summed, with a note), csc and coo give triplet
/// blocks.
pub struct NpzSource {
    path: PathBuf,
    header: MatrixHeader,
    layout: NpzLayout,
    walk: Walk,
    data: Array,
    decoder: Box<dyn Decoder>,
    nnz: u64,
    block_entries: u64,
    repairs: Repairs,
    notify: Notify,
    total: u64,
    done: bool,
}

impl std::fmt::Debug for NpzSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpzSource")
            .field("path", &self.path)
            .field("header", &self.header)
            .field("layout", &self.layout)
            .field("nnz", &self.nnz)
            .finish_non_exhaustive()
    }
}

fn one_d(path: &Path, a: &Array, key: &str) -> Result<u64> {
    match a.header.shape[..] {
        [n] => Ok(n),
        _ => Err(foreign(
            path,
            FORMAT,
            format!(
                "member {key}.npy has shape {}; expected a 1-D array",
                a.header.shape_str()
            ),
        )),
    }
}

fn integer(path: &Path, a: &Array, key: &str) -> Result<()> {
    if a.header.dtype.is_integer() {
        Ok(())
    } else {
        Err(foreign(
            path,
            FORMAT,
            format!(
                "member {key}.npy holds {}; indices must be integers",
                a.header.dtype.name()
            ),
        ))
    }
}

impl NpzSource {
    /// Opens a `.npz` written by `scipy.sparse.save_npz` and checks its members' shapes.
    pub fn open(path: impl AsRef<Path>, opts: &ReadOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let p = path.as_path();
        let archive = Archive::open(p)?;
        let format = read_format(p, &archive)?;
        let layout = match format.as_str() {
            "csr" => NpzLayout::Csr,
            "csc" => NpzLayout::Csc,
            "coo" => NpzLayout::Coo,
            other => {
                return Err(foreign(
                    p,
                    FORMAT,
                    format!("unsupported scipy.sparse format {other:?}; vecfmt reads csr, csc and coo (convert with .tocsr() first)"),
                ))
            }
        };
        let (n_rows, n_cols) = read_shape(p, &archive)?;
        let name = layout.name();
        let data = Array::open(p, archive.require(p, "data", name)?)?;
        let nnz = one_d(p, &data, "data")?;
        let mismatch = |d: String| foreign(p, FORMAT, format!("shape mismatch: {d}"));
        let walk = match layout {
            NpzLayout::Csr | NpzLayout::Csc => {
                let indptr = Array::open(p, archive.require(p, "indptr", name)?)?;
                let indices = Array::open(p, archive.require(p, "indices", name)?)?;
                integer(p, &indptr, "indptr")?;
                integer(p, &indices, "indices")?;
                let (n_major, axis) = if layout == NpzLayout::Csr {
                    (n_rows, "rows")
                } else {
                    (n_cols, "columns")
                };
                let n_ptr = one_d(p, &indptr, "indptr")?;
                if Some(n_ptr) != n_major.checked_add(1) {
                    return Err(mismatch(format!(
                        "shape is ({n_rows}, {n_cols}), so indptr needs {n_major} + 1 entries (one per {axis} plus one), but it has {n_ptr}"
                    )));
                }
                let n_idx = one_d(p, &indices, "indices")?;
                if n_idx != nnz {
                    return Err(mismatch(format!("indices has {n_idx} entries but data has {nnz}")));
                }
                Walk::Compressed {
                    indptr,
                    indices,
                    ptrs: Default::default(),
                    at: 0,
                    next_major: 0,
                    n_major,
                }
            }
            NpzLayout::Coo => {
                let (row, col) = if let Some(coords) = archive.get("coords") {
                    let c = Array::open(p, coords)?;
                    integer(p, &c, "coords")?;
                    if c.header.shape != [2, nnz] || c.header.fortran_order {
                        return Err(mismatch(format!(
                            "coords has shape {}{}; expected (2, {nnz}) in C order",
                            c.header.shape_str(),
                            if c.header.fortran_order {
                                " in Fortran order"
                            } else {
                                ""
                            }
                        )));
                    }
                    let mut row = Array::open(p, coords)?;
                    let mut col = Array::open(p, coords)?;
                    row.reader.whole = false;
                    row.left = nnz;
                    col.left = nnz;
                    col.reader.skip(p, nnz * c.header.dtype.size() as u64)?;
                    (row, col)
                } else {
                    let row = Array::open(p, archive.require(p, "row", name)?)?;
                    let col = Array::open(p, archive.require(p, "col", name)?)?;
                    (row, col)
                };
                integer(p, &row, "row")?;
                integer(p, &col, "col")?;
                if row.header.shape.len() == 1 {
                    for (a, key) in [(&row, "row"), (&col, "col")] {
                        let n = one_d(p, a, key)?;
                        if n != nnz {
                            return Err(mismatch(format!("{key} has {n} entries but data has {nnz}")));
                        }
                    }
                }
                Walk::Coo { row, col, left: nnz }
            }
        };
        let (dtype, widened) = data
            .header
            .dtype
            .target(opts.half_as)
            .map_err(|e| foreign(p, FORMAT, format!("member data.npy: {e}")))?;
        if widened {
            (opts.notify)(&format!(
                "{}: {} values are widened to {dtype} (vecfmt's nearest dtype)",
                p.display(),
                data.header.dtype.name()
            ));
        }
        let decoder = data
            .header
            .dtype
            .decoder(dtype)
            .expect("target() gave a dtype the decoder knows");
        let per_entry = 16 + data.header.dtype.size() as u64 + dtype.size() as u64;
        let total = archive.members.iter().map(|m| m.compressed_size).sum();
        Ok(NpzSource {
            header: MatrixHeader::new(dtype, n_rows, n_cols),
            path,
            layout,
            walk,
            data,
            decoder,
            nnz,
            block_entries: (opts.block_bytes as u64 / per_entry).max(1),
            repairs: Repairs::default(),
            notify: opts.notify.clone(),
            total,
            done: false,
        })
    }

    /// The scipy layout of the file.
    pub fn layout(&self) -> NpzLayout {
        self.layout
    }

    /// Stored entries, as the file declares them (before duplicates are summed).
    pub fn nnz(&self) -> u64 {
        self.nnz
    }

    fn bad(&self, d: String) -> Error {
        foreign(&self.path, FORMAT, d)
    }

    /// The next lines (rows of csr, columns of csc), or `None` at the end.
    fn next_lines(&mut self) -> Result<Option<Lines>> {
        let path = self.path.clone();
        let p = path.as_path();
        let nnz = self.nnz;
        let budget = self.block_entries;
        let Walk::Compressed {
            indptr,
            indices,
            ptrs,
            at,
            next_major,
            n_major,
            ..
        } = &mut self.walk
        else {
            unreachable!("called for csr and csc only")
        };
        if *next_major == 0 && ptrs.is_empty() && indptr.left == *n_major + 1 {
            let mut first = Vec::new();
            indptr.next_indices(p, 1, &mut first)?;
            if first[0] != 0 {
                return Err(foreign(p, FORMAT, format!("indptr[0] is {}, not 0", first[0])));
            }
        }
        if *next_major >= *n_major {
            if *at != nnz {
                return Err(foreign(
                    p,
                    FORMAT,
                    format!("shape mismatch: indptr ends at {} but data holds {nnz} entries", *at),
                ));
            }
            return Ok(None);
        }
        let first = *next_major;
        let mut line_ptr = vec![0u64];
        let start = *at;
        loop {
            if ptrs.is_empty() {
                let n = indptr.left.min(64 << 10);
                let mut v = Vec::with_capacity(n as usize);
                indptr.next_indices(p, n, &mut v)?;
                ptrs.extend(v);
            }
            let Some(&end) = ptrs.front() else { break };
            if end < *at || end > nnz {
                return Err(foreign(
                    p,
                    FORMAT,
                    if end < *at {
                        format!(
                            "indptr is not monotone: indptr[{}] = {end} follows {}",
                            *next_major + 1,
                            *at
                        )
                    } else {
                        format!("indptr[{}] = {end} is past the {nnz} stored entries", *next_major + 1)
                    },
                ));
            }
            if line_ptr.len() > 1 && end - start > budget {
                break;
            }
            ptrs.pop_front();
            line_ptr.push(end - start);
            *at = end;
            *next_major += 1;
            if *next_major >= *n_major || end - start >= budget {
                break;
            }
        }
        if *next_major >= *n_major && *at != nnz {
            return Err(foreign(
                p,
                FORMAT,
                format!("shape mismatch: indptr ends at {} but data holds {nnz} entries", *at),
            ));
        }
        let n = *at - start;
        // Capacities from indptr are claims (bounded by the block size); past that, the
        // vectors grow with the data read.
        let cap = n.min(budget) as usize;
        let mut idx = Vec::with_capacity(cap);
        let mut values = ValueVec::with_capacity(self.header.dtype, cap);
        let (data, decoder) = (&mut self.data, self.decoder.as_ref());
        if n >= PARALLEL_MEMBERS_FROM {
            // The indices and the values are separate deflate streams: inflated side by side.
            std::thread::scope(|s| {
                let vals = std::thread::Builder::new()
                    .name("vecfmt-npz".into())
                    .spawn_scoped(s, || data.next_values(p, n, decoder, &mut values))
                    .map_err(io_err(p, "start a reading thread"))?;
                let idx_read = indices.next_indices(p, n, &mut idx);
                let vals_read = vals.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                idx_read.and(vals_read)
            })?;
        } else {
            indices.next_indices(p, n, &mut idx)?;
            data.next_values(p, n, decoder, &mut values)?;
        }
        Ok(Some(Lines {
            first,
            ptr: line_ptr,
            idx,
            values,
        }))
    }

    fn csr_block(&mut self) -> Result<Option<RowBlock>> {
        let Some(Lines {
            first,
            ptr,
            idx,
            values,
        }) = self.next_lines()?
        else {
            return Ok(None);
        };
        let n_cols = self.header.n_cols;
        if let Some((k, &c)) = idx.iter().enumerate().find(|(_, &c)| c >= n_cols) {
            let row = first + ptr.partition_point(|&q| q <= k as u64) as u64 - 1;
            return Err(self.bad(format!(
                "column index {c} in row {row} is out of range: shape has {n_cols} columns"
            )));
        }
        let mut block = RowBlock::new(self.header.dtype);
        if ptr
            .windows(2)
            .all(|w| idx[w[0] as usize..w[1] as usize].windows(2).all(|c| c[0] < c[1]))
        {
            // Every row sorted (as scipy keeps them): the indices and values are the block's.
            block.rows.reserve(ptr.len() - 1);
            block.indptr.reserve(ptr.len() - 1);
            for k in 0..ptr.len() - 1 {
                if ptr[k] < ptr[k + 1] {
                    block.rows.push(first + k as u64);
                    block.indptr.push(ptr[k + 1]);
                }
            }
            block.indices = idx;
            block.values = values;
            return Ok(Some(block));
        }
        let repairs = &mut self.repairs;
        vecfmt::with_value_vec!(&values, v => assemble(first, &ptr, &idx, v, &mut block, repairs)).map_err(
            |(row, col)| {
                self.bad(format!(
                    "row {row}: duplicate entries of column {col} sum past the range of {}",
                    self.header.dtype
                ))
            },
        )?;
        Ok(Some(block))
    }

    fn csc_block(&mut self) -> Result<Option<TripletBlock>> {
        let Some(Lines {
            first,
            ptr,
            idx,
            values,
        }) = self.next_lines()?
        else {
            return Ok(None);
        };
        let n_rows = self.header.n_rows;
        if let Some((k, &r)) = idx.iter().enumerate().find(|(_, &r)| r >= n_rows) {
            let col = first + ptr.partition_point(|&q| q <= k as u64) as u64 - 1;
            return Err(self.bad(format!(
                "row index {r} in column {col} is out of range: shape has {n_rows} rows"
            )));
        }
        let mut cols = Vec::with_capacity(idx.len());
        for k in 0..ptr.len() - 1 {
            cols.resize(ptr[k + 1] as usize, first + k as u64);
        }
        Ok(Some(TripletBlock {
            rows: idx,
            cols,
            values,
        }))
    }

    fn coo_block(&mut self) -> Result<Option<TripletBlock>> {
        let path = self.path.clone();
        let p = path.as_path();
        let (n_rows, n_cols) = (self.header.n_rows, self.header.n_cols);
        let Walk::Coo { row, col, left } = &mut self.walk else {
            unreachable!("called for coo only")
        };
        if *left == 0 {
            return Ok(None);
        }
        let n = (*left).min(self.block_entries);
        *left -= n;
        let (mut rows, mut cols) = (Vec::with_capacity(n as usize), Vec::with_capacity(n as usize));
        row.next_indices(p, n, &mut rows)?;
        col.next_indices(p, n, &mut cols)?;
        let mut values = ValueVec::with_capacity(self.header.dtype, n as usize);
        self.data.next_values(p, n, self.decoder.as_ref(), &mut values)?;
        for (&r, &c) in rows.iter().zip(&cols) {
            if r >= n_rows || c >= n_cols {
                return Err(self.bad(format!(
                    "entry ({r}, {c}) is out of range: shape is ({n_rows}, {n_cols})"
                )));
            }
        }
        Ok(Some(TripletBlock { rows, cols, values }))
    }
}

/// Builds the row block of csr lines: rows with entries only, each sorted with duplicates
/// summed. `Err((row, col))` when an integer sum overflows.
fn assemble<T: Element>(
    first: u64,
    ptr: &[u64],
    idx: &[u64],
    v: &[T],
    block: &mut RowBlock,
    repairs: &mut Repairs,
) -> std::result::Result<(), (u64, u64)> {
    let mut out: Vec<T> = Vec::with_capacity(v.len());
    block.indices.reserve(idx.len());
    for k in 0..ptr.len() - 1 {
        let (lo, hi) = (ptr[k] as usize, ptr[k + 1] as usize);
        if lo == hi {
            continue;
        }
        let row = first + k as u64;
        let cols = &idx[lo..hi];
        if cols.windows(2).all(|w| w[0] < w[1]) {
            block.indices.extend_from_slice(cols);
            out.extend_from_slice(&v[lo..hi]);
        } else {
            sort_and_sum(cols, &v[lo..hi], &mut block.indices, &mut out, repairs).map_err(|c| (row, c))?;
        }
        block.rows.push(row);
        block.indptr.push(block.indices.len() as u64);
    }
    block.values = T::into_vec(out);
    Ok(())
}

/// Sorts one row's entries by column and sums duplicates. `Err(col)` on integer overflow.
fn sort_and_sum<T: Element>(
    cols: &[u64],
    vals: &[T],
    out_cols: &mut Vec<u64>,
    out_vals: &mut Vec<T>,
    repairs: &mut Repairs,
) -> std::result::Result<(), u64> {
    let mut order: Vec<usize> = (0..cols.len()).collect();
    // Stable, so duplicates are summed in file order, as scipy's sum_duplicates does.
    order.sort_by_key(|&k| cols[k]);
    repairs.unsorted_rows += 1;
    let start = out_cols.len();
    for k in order {
        let (c, v) = (cols[k], vals[k]);
        if out_cols.len() > start && out_cols.last() == Some(&c) {
            let last = out_vals.last_mut().expect("same length as out_cols");
            *last = last.checked_add(v).ok_or(c)?;
            repairs.duplicates += 1;
        } else {
            out_cols.push(c);
            out_vals.push(v);
        }
    }
    Ok(())
}

impl MatrixSource for NpzSource {
    fn header(&self) -> &MatrixHeader {
        &self.header
    }

    fn next_block(&mut self) -> Result<Option<Block>> {
        if self.done {
            return Ok(None);
        }
        let block = match self.layout {
            NpzLayout::Csr => self.csr_block()?.map(Block::Rows),
            NpzLayout::Csc => self.csc_block()?.map(Block::Triplets),
            NpzLayout::Coo => self.coo_block()?.map(Block::Triplets),
        };
        if block.is_none() {
            self.done = true;
            let r = &self.repairs;
            if r.unsorted_rows > 0 {
                (self.notify)(&format!(
                    "{}: {} rows had unsorted or duplicate column indices; they were sorted and {} duplicate entries summed",
                    self.path.display(),
                    r.unsorted_rows,
                    r.duplicates
                ));
            }
        }
        Ok(block)
    }

    fn total_bytes(&self) -> Option<u64> {
        Some(self.total)
    }

    fn bytes_read(&self) -> u64 {
        // Progress by entries of data, scaled to the archive's size.
        let done = self.nnz - self.data.left;
        if self.nnz == 0 {
            0
        } else {
            (self.total as f64 * done as f64 / self.nnz as f64) as u64
        }
    }
}

// ---------------------------------------------------------------------------------------
// Writing

/// A spill file: raw little-endian bytes, written once and read back once.
#[derive(Debug)]
struct Spill {
    out: BufWriter<File>,
    len: u64,
}

impl Spill {
    fn new(dir: &Path, path: &Path) -> Result<Self> {
        let f = tempfile::tempfile_in(dir).map_err(io_err(path, "create spill file"))?;
        Ok(Spill {
            out: BufWriter::with_capacity(1 << 20, f),
            len: 0,
        })
    }
    fn write(&mut self, path: &Path, b: &[u8]) -> Result<()> {
        self.len += b.len() as u64;
        self.out.write_all(b).map_err(io_err(path, "write spill file"))
    }
    fn into_reader(self, path: &Path) -> Result<BufReader<File>> {
        let mut f = self
            .out
            .into_inner()
            .map_err(|e| io_err(path, "write spill file")(e.into_error()))?;
        f.seek(SeekFrom::Start(0)).map_err(io_err(path, "seek spill file"))?;
        Ok(BufReader::with_capacity(1 << 20, f))
    }
}

/// Writes scipy csr `.npz` that `scipy.sparse.load_npz` loads: `csr_matrix` by default, or
/// `csr_array` with [`WriteOptions::sparse_array`]. Indices and indptr are int32 while nnz
/// and the column count stay below 2^31, int64 otherwise.
///
/// Rows are spilled to three temporary files as they arrive (indptr, indices, data); `finish`
/// deflates the members (two threads) into single-member archives and copies them into the
/// output, so memory stays at a few buffers whatever the matrix's size. Labels are dropped
/// (a note says so): `.npz` has no place for them.
#[derive(Debug)]
pub struct NpzSink {
    path: PathBuf,
    spill_dir: PathBuf,
    out: TempOutput,
    dtype: DType,
    n_rows: u64,
    n_cols: u64,
    nnz: u64,
    next_row: u64,
    indptr: Spill,
    indices: Spill,
    data: Spill,
    compressed: bool,
    level: u32,
    sparse_array: bool,
}

impl NpzSink {
    /// Creates the sink; nothing appears at `path` until `finish`.
    pub fn create(path: impl AsRef<Path>, header: &MatrixHeader, opts: &WriteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let spill_dir = opts.spill_dir.clone().unwrap_or_else(|| dir_of(&path));
        if header.row_labels.is_some() || header.col_labels.is_some() {
            (opts.notify)(&format!(
                "{}: .npz has no labels; the matrix's labels are not written",
                path.display()
            ));
        }
        let out = TempOutput::create(&path)?;
        let mut sink = NpzSink {
            indptr: Spill::new(&spill_dir, &path)?,
            indices: Spill::new(&spill_dir, &path)?,
            data: Spill::new(&spill_dir, &path)?,
            spill_dir,
            out,
            dtype: header.dtype,
            n_rows: header.n_rows,
            n_cols: header.n_cols,
            nnz: 0,
            next_row: 0,
            compressed: opts.compressed,
            level: opts.level.min(9),
            sparse_array: opts.sparse_array,
            path,
        };
        sink.indptr.write(&sink.path, &0u64.to_le_bytes())?;
        Ok(sink)
    }

    /// indptr entries for rows `next_row..upto`, all ending at the current nnz.
    fn close_rows(&mut self, upto: u64) -> Result<()> {
        let b = self.nnz.to_le_bytes();
        while self.next_row < upto {
            self.indptr.write(&self.path, &b)?;
            self.next_row += 1;
        }
        Ok(())
    }

    fn int64(&self) -> bool {
        self.nnz > i32::MAX as u64 || self.n_cols > i32::MAX as u64
    }
}

impl MatrixSink for NpzSink {
    fn write_rows(&mut self, b: &RowBlock) -> Result<()> {
        let vals = b.values.as_values();
        if vals.dtype() != self.dtype {
            return Err(Error::DTypeMismatch {
                actual: self.dtype,
                requested: vals.dtype(),
            });
        }
        b.check_lengths()?;
        let size = self.dtype.size();
        let bytes = vals.as_bytes();
        let mut buf = Vec::new();
        for (k, &r) in b.rows.iter().enumerate() {
            if r >= self.n_rows {
                return Err(Error::RowOutOfRange {
                    row: r,
                    n_rows: self.n_rows,
                });
            }
            if r < self.next_row {
                return Err(Error::RowOrder {
                    row: r,
                    previous: self.next_row - 1,
                });
            }
            self.close_rows(r)?;
            let (lo, hi) = (b.indptr[k] as usize, b.indptr[k + 1] as usize);
            if lo > hi || hi > b.indices.len() {
                return Err(Error::BadIndex {
                    what: "indptr entry (not monotone)",
                    value: b.indptr[k + 1].to_string(),
                });
            }
            buf.clear();
            let mut prev = None;
            for &c in &b.indices[lo..hi] {
                if c >= self.n_cols {
                    return Err(Error::ColOutOfRange {
                        row: r,
                        col: c,
                        n_cols: self.n_cols,
                    });
                }
                if let Some(p) = prev {
                    if c <= p {
                        return Err(Error::UnsortedIndices {
                            row: r,
                            previous: p,
                            col: c,
                        });
                    }
                }
                prev = Some(c);
                buf.extend_from_slice(&c.to_le_bytes());
            }
            self.indices.write(&self.path, &buf)?;
            self.data.write(&self.path, &bytes[lo * size..hi * size])?;
            self.nnz += (hi - lo) as u64;
            self.close_rows(r + 1)?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.close_rows(self.n_rows)?;
        let int64 = self.int64();
        let index = NpyDtype::new(Kind::Int, if int64 { 8 } else { 4 }, false);
        let nnz = self.nnz;
        let n_ptr = self.n_rows + 1;
        let NpzSink {
            path,
            spill_dir,
            mut out,
            dtype,
            n_rows,
            n_cols,
            indptr,
            indices,
            data,
            compressed,
            level,
            sparse_array,
            ..
        } = *self;
        let p = path.as_path();
        // Each big member becomes a single-member archive of its own, on its own thread, then
        // all are copied (still compressed) into the output in scipy's member order.
        let members = [
            ("indices", index, nnz, indices, true),
            ("indptr", index, n_ptr, indptr, true),
            ("data", NpyDtype::of(dtype), nnz, data, false),
        ];
        let parts: Vec<Result<File>> = std::thread::scope(|s| {
            let handles: Vec<_> = members
                .into_iter()
                .map(|(name, npy, n, spill, is_index)| {
                    let spill_dir = &spill_dir;
                    s.spawn(move || -> Result<File> {
                        let reader = spill.into_reader(p)?;
                        let header = encode_header(&npy, &[n]);
                        let member_len = header.len() as u64 + n * npy.size() as u64;
                        // Index spills hold u64; int32 output narrows them.
                        let narrow = is_index && npy.size() == 4;
                        let spill_len = if is_index { n * 8 } else { n * npy.size() as u64 };
                        let m = MemberSpec {
                            name,
                            header: &header,
                            member_len,
                            spill_len,
                            narrow,
                            compressed,
                            level,
                        };
                        single_member(p, spill_dir, &m, reader)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(foreign(p, FORMAT, "a compression thread panicked")))
                })
                .collect()
        });
        let mut zip = zip::ZipWriter::new(&mut out.out);
        let zerr = |e: zip::result::ZipError| foreign(p, FORMAT, format!("writing the archive: {e}"));
        let small = |zip: &mut zip::ZipWriter<&mut BufWriter<File>>, name: &str, bytes: Vec<u8>| -> Result<()> {
            zip.start_file(
                format!("{name}.npy"),
                member_options(compressed, level, bytes.len() as u64),
            )
            .map_err(zerr)?;
            zip.write_all(&bytes).map_err(io_err(p, "write"))
        };
        let mut parts = parts.into_iter();
        let mut copy = |zip: &mut zip::ZipWriter<&mut BufWriter<File>>| -> Result<()> {
            let f = parts.next().expect("three parts")?;
            let mut a = zip::ZipArchive::new(BufReader::new(f)).map_err(zerr)?;
            let m = a.by_index_raw(0).map_err(zerr)?;
            zip.raw_copy_file(m).map_err(zerr)
        };
        copy(&mut zip)?;
        copy(&mut zip)?;
        let mut format = encode_header_descr("|S3", &[]);
        format.extend_from_slice(b"csr");
        small(&mut zip, "format", format)?;
        let mut shape = encode_header(&NpyDtype::new(Kind::Int, 8, false), &[2]);
        shape.extend_from_slice(&(n_rows as i64).to_le_bytes());
        shape.extend_from_slice(&(n_cols as i64).to_le_bytes());
        small(&mut zip, "shape", shape)?;
        copy(&mut zip)?;
        if sparse_array {
            let mut t = encode_header_descr("|b1", &[]);
            t.push(1);
            small(&mut zip, "_is_array", t)?;
        }
        zip.finish().map_err(zerr)?;
        out.persist()
    }
}

fn member_options(compressed: bool, level: u32, size: u64) -> zip::write::SimpleFileOptions {
    let o = zip::write::SimpleFileOptions::default()
        .large_file(size >= 0xF000_0000)
        .unix_permissions(0o644);
    if compressed {
        o.compression_method(CompressionMethod::Deflated)
            .compression_level(Some(level as i64))
    } else {
        o.compression_method(CompressionMethod::Stored)
    }
}

/// One member of the output, as [`single_member`] writes it.
struct MemberSpec<'a> {
    name: &'a str,
    header: &'a [u8],
    member_len: u64,
    spill_len: u64,
    /// Spilled u64 indices are written as int32.
    narrow: bool,
    compressed: bool,
    level: u32,
}

/// Writes a temporary archive holding one `.npy` member: the header, then the spill's bytes.
fn single_member(path: &Path, dir: &Path, m: &MemberSpec<'_>, mut spill: BufReader<File>) -> Result<File> {
    let f = tempfile::tempfile_in(dir).map_err(io_err(path, "create spill file"))?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let zerr = |e: zip::result::ZipError| foreign(path, FORMAT, format!("writing the archive: {e}"));
    {
        let mut zip = zip::ZipWriter::new(&mut w);
        zip.start_file(
            format!("{}.npy", m.name),
            member_options(m.compressed, m.level, m.member_len),
        )
        .map_err(zerr)?;
        zip.write_all(m.header).map_err(io_err(path, "write"))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut narrow = Vec::with_capacity(1 << 19);
        let mut left = m.spill_len;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            spill
                .read_exact(&mut buf[..n])
                .map_err(io_err(path, "read spill file"))?;
            left -= n as u64;
            if m.narrow {
                narrow.clear();
                for c in buf[..n].chunks_exact(8) {
                    let v = u64::from_le_bytes(c.try_into().expect("8 bytes"));
                    // The sink chose int32 because every value fits.
                    narrow.extend_from_slice(&(v as i32).to_le_bytes());
                }
                zip.write_all(&narrow).map_err(io_err(path, "write"))?;
            } else {
                zip.write_all(&buf[..n]).map_err(io_err(path, "write"))?;
            }
        }
        zip.finish().map_err(zerr)?;
    }
    let mut f = w.into_inner().map_err(|e| io_err(path, "write")(e.into_error()))?;
    f.seek(SeekFrom::Start(0)).map_err(io_err(path, "seek"))?;
    Ok(f)
}

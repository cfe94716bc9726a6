//! [`NpzSink`]: rows out as a scipy csr `.npz`, spilled to temporary files as they arrive
//! and deflated member by member (on threads of their own) when the sink finishes.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use vecfmt::stream::{MatrixHeader, MatrixSink, RowBlock};
use vecfmt::{DType, Result};
use zip::CompressionMethod;

use crate::dtype::{Kind, NpyDtype};
use crate::header::{encode_header, encode_header_descr};
use crate::output::{io_err, TempOutput};
use crate::{Error, WriteOptions};

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
        let spill_dir = opts.spill_dir.clone().unwrap_or_else(|| vecfmt::publish::dir_of(&path));
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
            return Err(vecfmt::Error::DTypeMismatch {
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
                return Err(vecfmt::Error::RowOutOfRange {
                    row: r,
                    n_rows: self.n_rows,
                });
            }
            if r < self.next_row {
                return Err(vecfmt::Error::RowOrder {
                    row: r,
                    previous: self.next_row - 1,
                });
            }
            self.close_rows(r)?;
            let (lo, hi) = (b.indptr[k] as usize, b.indptr[k + 1] as usize);
            if lo > hi || hi > b.indices.len() {
                return Err(vecfmt::Error::BadIndex {
                    what: "indptr entry (not monotone)",
                    value: b.indptr[k + 1].to_string(),
                });
            }
            buf.clear();
            let mut prev = None;
            for &c in &b.indices[lo..hi] {
                if c >= self.n_cols {
                    return Err(vecfmt::Error::ColOutOfRange {
                        row: r,
                        col: c,
                        n_cols: self.n_cols,
                    });
                }
                if let Some(p) = prev {
                    if c <= p {
                        return Err(vecfmt::Error::UnsortedIndices {
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
                        .unwrap_or_else(|_| Err(Error::ThreadPanicked { path: p.to_path_buf() }.into()))
                })
                .collect()
        });
        let mut zip = zip::ZipWriter::new(&mut out.out);
        let zerr = |e| zip_err(p, e);
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
    let zerr = |e| zip_err(path, e);
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

/// The zip library's failure writing the archive (or a member's part of it).
fn zip_err(path: &Path, source: zip::result::ZipError) -> vecfmt::Error {
    Error::Zip {
        path: path.to_path_buf(),
        source,
    }
    .into()
}

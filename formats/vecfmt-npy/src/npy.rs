//! Dense 2-D `.npy` arrays: [`NpySource`] reads through a memory map, [`NpySink`] writes.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, UncheckedAdvice};
use vecfmt::guard::GuardedMap;
use vecfmt::stream::{Block, MatrixHeader, MatrixSink, MatrixSource, RowBlock, TripletBlock};
use vecfmt::{Result, ValueVec};

use crate::dtype::{Decoder, NpyDtype};
use crate::header::{encode_header, read_header, NpyHeader};
use crate::output::{io_err, TempOutput};
use crate::{Error, ReadOptions, WriteOptions};
const PAGE: u64 = 4096;

/// Reads exactly `buf.len()` bytes at `offset`.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(not(unix))]
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = file;
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(buf)
    }
}

/// How the rows of the array are walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// C order: rows are contiguous; blocks of whole rows.
    Rows,
    /// Fortran order: a block of rows is one segment per column, gathered into C order.
    RowStripes,
    /// Fortran order too wide for stripes: blocks of whole columns, yielded as triplets.
    Columns,
}

/// A dense 2-D `.npy` file read a block of rows at a time through a memory map. Entries whose
/// bits are all zero are dropped (`-0.0` and NaN are kept, so values round-trip exactly).
///
/// C-order arrays stream row blocks. Fortran-order arrays stream row stripes (one segment
/// per column, transposed in memory) when a stripe fits the block size; an array too wide
/// for that is read column by column and yields triplets.
pub struct NpySource {
    path: PathBuf,
    header: MatrixHeader,
    npy: NpyHeader,
    map: GuardedMap,
    decoder: Box<dyn Decoder>,
    walk: Walk,
    /// Rows per block (row walks) or columns per block (column walk).
    per_block: u64,
    next: u64,
    read: u64,
    /// The file, for the positioned reads of row stripes.
    file: File,
    /// A block of rows gathered into C order (row stripes).
    scratch: Vec<u8>,
    /// One column's segment of a row stripe.
    segment: Vec<u8>,
}

impl std::fmt::Debug for NpySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpySource")
            .field("path", &self.path)
            .field("npy", &self.npy)
            .field("walk", &self.walk)
            .field("per_block", &self.per_block)
            .finish_non_exhaustive()
    }
}

impl NpySource {
    /// Opens a `.npy` file and checks its header against its length.
    pub fn open(path: impl AsRef<Path>, opts: &ReadOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(io_err(&path, "open"))?;
        let file_len = file.metadata().map_err(io_err(&path, "stat"))?.len();
        // SAFETY: the map is read-only and we never write through it. The file is someone
        // else's (numpy's), so we hold no lock on it: if another process truncates it while
        // we read, the guard absorbs the SIGBUS and every block read after it is an error
        // (FORMAT.md §7). Every offset we read is checked against the length the file had at
        // open (below), so an unchanged file is never read past its end.
        let map = GuardedMap::new(unsafe { Mmap::map(&file) }.map_err(io_err(&path, "map"))?);
        let npy = read_header(&mut &map[..]);
        map.check(&path)?;
        let npy = npy.map_err(|problem| Error::Header {
            path: path.clone(),
            member: None,
            problem,
        })?;
        if npy.shape.len() != 2 {
            return Err(Error::NotTwoD {
                path,
                shape: npy.shape_str(),
                dims: npy.shape.len(),
            }
            .into());
        }
        let (dtype, widened) = npy.dtype.target(opts.half_as).map_err(|problem| Error::Dtype {
            path: path.clone(),
            member: None,
            problem,
        })?;
        let decoder = npy
            .dtype
            .decoder(dtype)
            .expect("target() gave a dtype the decoder knows");
        let data_len = npy.data_len().ok_or_else(|| Error::ShapeOverflow {
            path: path.clone(),
            shape: npy.shape_str(),
        })?;
        let have = file_len.saturating_sub(npy.data_offset);
        if have < data_len {
            return Err(Error::Truncated {
                path,
                shape: npy.shape_str(),
                dtype: npy.dtype.name(),
                needed: data_len,
                have,
            }
            .into());
        }
        if usize::try_from(npy.data_offset + data_len).is_err() {
            return Err(Error::AddressSpace {
                path,
                what: "the array",
            }
            .into());
        }
        if widened {
            (opts.notify)(&format!(
                "{}: {} values are widened to {dtype} (vecfmt's nearest dtype)",
                path.display(),
                npy.dtype.name()
            ));
        }
        let (n_rows, n_cols) = (npy.shape[0], npy.shape[1]);
        let size = npy.dtype.size() as u64;
        let block = opts.block_bytes.max(1) as u64;
        // Saturating: with no rows the shape's other dimension is unchecked by the data length.
        let row_bytes = n_cols.saturating_mul(size).max(1);
        let rows_per_block = (block / row_bytes).max(1);
        let (walk, per_block) = if !npy.fortran_order || n_rows <= 1 || n_cols <= 1 {
            (Walk::Rows, rows_per_block)
        } else {
            // A stripe of rows touches one segment per column; each costs at least a page
            // of the map. Stripes are used while that stays within a few blocks' worth.
            let segment = (rows_per_block * size).div_ceil(PAGE) * PAGE + PAGE;
            let touched = n_cols.saturating_mul(segment).min(data_len + PAGE);
            if touched <= 4 * block.max(PAGE * 64) {
                (Walk::RowStripes, rows_per_block)
            } else {
                (Walk::Columns, (block / (n_rows * size).max(1)).max(1))
            }
        };
        let _ = map.mmap().advise(memmap2::Advice::Sequential);
        Ok(NpySource {
            header: MatrixHeader::new(dtype, n_rows, n_cols),
            path,
            npy,
            map,
            decoder,
            walk,
            per_block,
            next: 0,
            read: 0,
            file,
            scratch: Vec::new(),
            segment: Vec::new(),
        })
    }

    /// The parsed `.npy` header.
    pub fn npy_header(&self) -> &NpyHeader {
        &self.npy
    }

    fn n_rows(&self) -> u64 {
        self.npy.shape[0]
    }
    fn n_cols(&self) -> u64 {
        self.npy.shape[1]
    }

    /// Lets the kernel drop pages of the map we are done with, so that resident memory stays
    /// near the block size however large the file.
    fn release(&self, start: u64, len: u64) {
        // SAFETY: the map is a read-only shared file mapping: MADV_DONTNEED only drops the
        // page-table entries, and a later access faults the same file contents back in. No
        // reference into the released range outlives this call (blocks copy their values).
        let _ = unsafe {
            self.map
                .mmap()
                .unchecked_advise_range(UncheckedAdvice::DontNeed, start as usize, len as usize)
        };
    }

    fn row_block(&mut self) -> Result<RowBlock> {
        let (n_rows, n_cols, size) = (self.n_rows(), self.n_cols(), self.npy.dtype.size() as u64);
        let r0 = self.next;
        let r1 = (r0 + self.per_block).min(n_rows);
        let row_bytes = (n_cols * size) as usize;
        let mut block = RowBlock::new(self.header.dtype);
        let base = self.npy.data_offset;
        let (span_start, span_len);
        let dense: &[u8] = match self.walk {
            Walk::Rows => {
                span_start = base + r0 * n_cols * size;
                span_len = (r1 - r0) * n_cols * size;
                &self.map[span_start as usize..(span_start + span_len) as usize]
            }
            _ => {
                // Fortran order: column j holds rows r0..r1 at j*n_rows + r0. The segments
                // are read with pread, not through the map: touching one small segment per
                // column through a map would make the kernel map the pages around each one
                // too (fault-around), and resident memory would grow far past the block.
                let rows = (r1 - r0) as usize;
                let s = size as usize;
                self.scratch.clear();
                self.scratch.resize(rows * row_bytes, 0);
                self.segment.resize(rows * s, 0);
                for j in 0..n_cols {
                    let off = base + (j * n_rows + r0) * size;
                    read_at(&self.file, &mut self.segment, off).map_err(io_err(&self.path, "read"))?;
                    for (k, e) in self.segment.chunks_exact(s).enumerate() {
                        let at = k * row_bytes + j as usize * s;
                        self.scratch[at..at + s].copy_from_slice(e);
                    }
                }
                span_start = base;
                span_len = 0;
                &self.scratch
            }
        };
        for (k, row) in dense
            .chunks_exact(row_bytes.max(1))
            .enumerate()
            .take((r1 - r0) as usize)
        {
            let before = block.indices.len();
            if row_bytes > 0 {
                self.decoder.push_nonzero(row, 0, &mut block.indices, &mut block.values);
            }
            if block.indices.len() > before {
                block.rows.push(r0 + k as u64);
                block.indptr.push(block.indices.len() as u64);
            }
        }
        if span_len > 0 {
            self.release(span_start, span_len);
        }
        self.read += (r1 - r0) * n_cols * size;
        self.next = r1;
        Ok(block)
    }

    fn column_block(&mut self) -> TripletBlock {
        let (n_rows, n_cols, size) = (self.n_rows(), self.n_cols(), self.npy.dtype.size() as u64);
        let c0 = self.next;
        let c1 = (c0 + self.per_block).min(n_cols);
        let mut t = TripletBlock {
            rows: Vec::new(),
            cols: Vec::new(),
            values: ValueVec::new(self.header.dtype),
        };
        let start = self.npy.data_offset + c0 * n_rows * size;
        for j in c0..c1 {
            let off = (self.npy.data_offset + j * n_rows * size) as usize;
            let col = &self.map[off..off + (n_rows * size) as usize];
            let before = t.rows.len();
            self.decoder.push_nonzero(col, 0, &mut t.rows, &mut t.values);
            t.cols.resize(t.cols.len() + t.rows.len() - before, j);
        }
        let len = (c1 - c0) * n_rows * size;
        self.release(start, len);
        self.read += len;
        self.next = c1;
        t
    }
}

impl MatrixSource for NpySource {
    fn header(&self) -> &MatrixHeader {
        &self.header
    }
    fn next_block(&mut self) -> Result<Option<Block>> {
        let block = match self.walk {
            Walk::Columns if self.next < self.n_cols() => Some(Block::Triplets(self.column_block())),
            Walk::Rows | Walk::RowStripes if self.next < self.n_rows() && self.n_cols() > 0 => {
                Some(Block::Rows(self.row_block()?))
            }
            _ => None,
        };
        // A truncation under the map turned what we read into zeros: an error, not a block.
        self.map.check(&self.path)?;
        Ok(block)
    }
    fn total_bytes(&self) -> Option<u64> {
        self.npy.data_len()
    }
    fn bytes_read(&self) -> u64 {
        self.read
    }
}

/// Writes a dense C-order `.npy` of the matrix's dtype. Absent entries are zeros. Labels and
/// metadata are dropped (a note says so). The output appears only at `finish`.
#[derive(Debug)]
pub struct NpySink {
    out: TempOutput,
    n_rows: u64,
    n_cols: u64,
    size: usize,
    next_row: u64,
    row: Vec<u8>,
}

impl NpySink {
    /// Creates the sink; refuses when the dense array would exceed `opts.dense_limit` bytes
    /// unless `opts.force`.
    pub fn create(path: impl AsRef<Path>, header: &MatrixHeader, opts: &WriteOptions) -> Result<Self> {
        let path = path.as_ref();
        let npy = NpyDtype::of(header.dtype);
        let size = header.dtype.size();
        let bytes = header
            .n_rows
            .checked_mul(header.n_cols)
            .and_then(|n| n.checked_mul(size as u64));
        match bytes {
            Some(b) if b <= opts.dense_limit || opts.force => {}
            _ => {
                return Err(Error::DenseTooLarge {
                    path: path.to_path_buf(),
                    n_rows: header.n_rows,
                    n_cols: header.n_cols,
                    dtype: npy.name(),
                    bytes,
                    limit: opts.dense_limit,
                }
                .into())
            }
        }
        let row_bytes = usize::try_from(header.n_cols * size as u64).map_err(|_| Error::AddressSpace {
            path: path.to_path_buf(),
            what: "a row",
        })?;
        if header.row_labels.is_some() || header.col_labels.is_some() {
            (opts.notify)(&format!(
                "{}: .npy has no labels; the matrix's labels are not written",
                path.display()
            ));
        }
        let mut out = TempOutput::create(path)?;
        out.write_all(&encode_header(&npy, &[header.n_rows, header.n_cols]))?;
        Ok(NpySink {
            out,
            n_rows: header.n_rows,
            n_cols: header.n_cols,
            size,
            next_row: 0,
            row: vec![0; row_bytes],
        })
    }

    fn zero_rows(&mut self, upto: u64) -> Result<()> {
        if self.next_row >= upto {
            return Ok(());
        }
        let mut left = (upto - self.next_row) * self.n_cols * self.size as u64;
        let zeros = [0u8; 64 << 10];
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            self.out.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        self.next_row = upto;
        Ok(())
    }
}

impl MatrixSink for NpySink {
    fn write_rows(&mut self, b: &RowBlock) -> Result<()> {
        let vals = b.values.as_values();
        let bytes = vals.as_bytes();
        let s = self.size;
        b.check_lengths()?;
        if vals.dtype().size() != s {
            return Err(vecfmt::Error::LengthMismatch {
                what: "row block values",
                detail: format!("{}-byte values, {s}-byte elements in the file", vals.dtype().size()),
            });
        }
        for (k, &r) in b.rows.iter().enumerate() {
            if r < self.next_row || r >= self.n_rows {
                return Err(if r >= self.n_rows {
                    vecfmt::Error::RowOutOfRange {
                        row: r,
                        n_rows: self.n_rows,
                    }
                } else {
                    vecfmt::Error::RowOrder {
                        row: r,
                        previous: self.next_row.saturating_sub(1),
                    }
                });
            }
            self.zero_rows(r)?;
            self.row.fill(0);
            let (lo, hi) = (b.indptr[k] as usize, b.indptr[k + 1] as usize);
            if lo > hi || hi > b.indices.len() {
                return Err(vecfmt::Error::BadIndex {
                    what: "indptr entry (not monotone)",
                    value: b.indptr[k + 1].to_string(),
                });
            }
            for e in lo..hi {
                let c = b.indices[e];
                if c >= self.n_cols {
                    return Err(vecfmt::Error::ColOutOfRange {
                        row: r,
                        col: c,
                        n_cols: self.n_cols,
                    });
                }
                let at = c as usize * s;
                self.row[at..at + s].copy_from_slice(&bytes[e * s..(e + 1) * s]);
            }
            self.out.write_all(&self.row)?;
            self.next_row = r + 1;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.zero_rows(self.n_rows)?;
        self.out.persist()
    }
}

//! [`NpzSource`]: a scipy.sparse `.npz` read block by block, its members streamed side by
//! side: csr as row blocks, csc and coo as triplet blocks.

use std::path::{Path, PathBuf};

use vecfmt::stream::{Block, MatrixHeader, MatrixSource, RowBlock, TripletBlock};
use vecfmt::{Element, Result, ValueVec};

use super::archive::{read_format, read_shape, Archive, Array};
use super::{NpzLayout, PARALLEL_MEMBERS_FROM};
use crate::dtype::Decoder;
use crate::output::io_err;
use crate::{Error, Notify, ReadOptions};

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
        _ => Err(Error::NotOneD {
            path: path.to_path_buf(),
            member: format!("{key}.npy"),
            shape: a.header.shape_str(),
        }
        .into()),
    }
}

fn integer(path: &Path, a: &Array, key: &str) -> Result<()> {
    if a.header.dtype.is_integer() {
        Ok(())
    } else {
        Err(Error::NotIntegers {
            path: path.to_path_buf(),
            member: format!("{key}.npy"),
            dtype: a.header.dtype.name(),
        }
        .into())
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
                return Err(Error::UnsupportedFormat {
                    path: p.to_path_buf(),
                    format: other.to_string(),
                }
                .into())
            }
        };
        let (n_rows, n_cols) = read_shape(p, &archive)?;
        let name = layout.name();
        let data = Array::open(p, archive.require(p, "data", name)?)?;
        let nnz = one_d(p, &data, "data")?;
        let entries = |member, found| -> vecfmt::Error {
            Error::EntryCount {
                path: p.to_path_buf(),
                member,
                found,
                nnz,
            }
            .into()
        };
        let walk = match layout {
            NpzLayout::Csr | NpzLayout::Csc => {
                let indptr = Array::open(p, archive.require(p, "indptr", name)?)?;
                let indices = Array::open(p, archive.require(p, "indices", name)?)?;
                integer(p, &indptr, "indptr")?;
                integer(p, &indices, "indices")?;
                let by_row = layout == NpzLayout::Csr;
                let n_major = if by_row { n_rows } else { n_cols };
                let n_ptr = one_d(p, &indptr, "indptr")?;
                if Some(n_ptr) != n_major.checked_add(1) {
                    return Err(Error::IndptrLength {
                        path: p.to_path_buf(),
                        n_rows,
                        n_cols,
                        n_major,
                        by_row,
                        found: n_ptr,
                    }
                    .into());
                }
                let n_idx = one_d(p, &indices, "indices")?;
                if n_idx != nnz {
                    return Err(entries("indices", n_idx));
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
                        return Err(Error::CoordsShape {
                            path: p.to_path_buf(),
                            shape: c.header.shape_str(),
                            fortran: c.header.fortran_order,
                            nnz,
                        }
                        .into());
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
                            return Err(entries(key, n));
                        }
                    }
                }
                Walk::Coo { row, col, left: nnz }
            }
        };
        let (dtype, widened) = data.header.dtype.target(opts.half_as).map_err(|problem| Error::Dtype {
            path: p.to_path_buf(),
            member: Some("data.npy".to_string()),
            problem,
        })?;
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
                return Err(Error::IndptrStart {
                    path: p.to_path_buf(),
                    first: first[0],
                }
                .into());
            }
        }
        if *next_major >= *n_major {
            if *at != nnz {
                return Err(Error::IndptrEnd {
                    path: p.to_path_buf(),
                    end: *at,
                    nnz,
                }
                .into());
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
                let (path, index) = (p.to_path_buf(), *next_major + 1);
                return Err(if end < *at {
                    Error::IndptrNotMonotone {
                        path,
                        index,
                        value: end,
                        previous: *at,
                    }
                } else {
                    Error::IndptrPastEnd {
                        path,
                        index,
                        value: end,
                        nnz,
                    }
                }
                .into());
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
            return Err(Error::IndptrEnd {
                path: p.to_path_buf(),
                end: *at,
                nnz,
            }
            .into());
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
            return Err(Error::ColOutOfRange {
                path: self.path.clone(),
                row,
                col: c,
                n_cols,
            }
            .into());
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
            |(row, col)| Error::DuplicateOverflow {
                path: self.path.clone(),
                row,
                col,
                dtype: self.header.dtype,
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
            return Err(Error::RowOutOfRange {
                path: self.path.clone(),
                row: r,
                col,
                n_rows,
            }
            .into());
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
                return Err(Error::EntryOutOfRange {
                    path: self.path.clone(),
                    row: r,
                    col: c,
                    n_rows,
                    n_cols,
                }
                .into());
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

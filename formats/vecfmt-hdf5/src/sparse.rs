//! CSR and CSC groups: `data`, `indices`, `indptr` datasets, as scipy.sparse arrays are
//! stored by h5py users, anndata (`encoding-type` `csr_matrix`/`csc_matrix`), h5sparse
//! (`h5sparse_format`) and 10x Genomics (`shape` dataset, features × barcodes, CSC).
//!
//! Reading streams: `indptr` a window at a time, then `data` and `indices` for as many
//! rows (CSR) or columns (CSC) as fit one block. CSR gives row blocks; CSC gives triplets.
//! Writing appends to chunked, resizable datasets; CSC output goes through a spool file
//! and is transposed in column ranges that fit the memory budget.

use std::ops::Range;
use std::path::{Path, PathBuf};

use hdf5::{Dataset, Group};
use vecfmt::stream::{Block, MatrixHeader, MatrixSource, RowBlock, TripletBlock};
use vecfmt::{DType, Element, Result, Values};

use crate::chunks::ChunkAppender;
use crate::find::CandidateKind;
use crate::raw::{self, TypeClass};
use crate::values::{self, IndexError};
use crate::{read_err, value_dtype, Error, Notify, ReadOptions};

/// `indptr` entries read at a time.
const PTR_WINDOW: usize = 1 << 16;

/// Checks that every filter of a dataset is compiled into this build.
pub(crate) fn check_filters(path: &Path, name: &str, ds: &Dataset) -> Result<()> {
    for f in raw::filters(ds) {
        if !f.available {
            return Err(Error::FilterUnavailable {
                path: path.to_path_buf(),
                object: name.to_string(),
                filter: f.id,
                filter_name: raw::filter_name(f.id),
                stored_name: f.name,
            }
            .into());
        }
    }
    Ok(())
}

/// Opens a 1-D dataset of a sparse group.
fn member(path: &Path, group: &Group, gpath: &str, name: &str) -> Result<Dataset> {
    let object = format!("{gpath}/{name}");
    let ds = group.dataset(name).map_err(read_err(path, &object))?;
    if ds.ndim() != 1 {
        return Err(Error::NotOneDimensional {
            path: path.to_path_buf(),
            object,
            shape: ds.shape(),
        }
        .into());
    }
    check_filters(path, &object, &ds)?;
    Ok(ds)
}

fn ints_of(v: Vec<i64>) -> Option<(u64, u64)> {
    match v.as_slice() {
        &[a, b] if a >= 0 && b >= 0 => Some((a as u64, b as u64)),
        _ => None,
    }
}

/// The shape a sparse group declares: anndata `shape`, h5sparse `h5sparse_shape`, or a 10x
/// `shape` dataset.
fn declared_shape(path: &Path, group: &Group, gpath: &str) -> Result<Option<(u64, u64)>> {
    for attr in ["shape", "h5sparse_shape"] {
        if group.attr(attr).is_ok() {
            let v = raw::attr_ints(group, attr).and_then(ints_of);
            return v.map(Some).ok_or_else(|| {
                Error::BadShapeAttribute {
                    path: path.to_path_buf(),
                    object: gpath.to_string(),
                    attribute: attr.to_string(),
                }
                .into()
            });
        }
    }
    if raw::is_dataset(group, "shape") {
        let object = format!("{gpath}/shape");
        let ds = group.dataset("shape").map_err(read_err(path, &object))?;
        let v = match raw::dataset_type(&ds) {
            TypeClass::Int(_) | TypeClass::Uint(_) => ds.read_raw::<i64>().ok(),
            _ => None,
        };
        return v.and_then(ints_of).map(Some).ok_or_else(|| {
            Error::BadShapeDataset {
                path: path.to_path_buf(),
                object,
            }
            .into()
        });
    }
    Ok(None)
}

/// Reads a CSR or CSC group block by block.
pub(crate) struct SparseSource {
    path: PathBuf,
    gpath: String,
    csc: bool,
    header: MatrixHeader,
    data: Dataset,
    indices: Dataset,
    indptr: Dataset,
    idx_class: TypeClass,
    ptr_class: TypeClass,
    n_major: u64,
    n_minor: u64,
    nnz: u64,
    /// The next major (row for CSR, column for CSC) to emit.
    next: u64,
    /// `indptr[ptr_start..ptr_start + ptr.len()]`.
    ptr: Vec<u64>,
    ptr_start: u64,
    /// Entries per block.
    block_entries: usize,
    read: u64,
    total: u64,
    unsorted_rows: u64,
    duplicates: u64,
    notify: Notify,
}

impl std::fmt::Debug for SparseSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SparseSource")
            .field("path", &self.path)
            .field("group", &self.gpath)
            .field("csc", &self.csc)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl SparseSource {
    /// Opens the sparse group at `gpath`.
    pub(crate) fn open(
        path: &Path,
        group: &Group,
        gpath: &str,
        kind: CandidateKind,
        opts: &ReadOptions,
    ) -> Result<Self> {
        let csc = kind == CandidateKind::Csc;
        let data = member(path, group, gpath, "data")?;
        let indices = member(path, group, gpath, "indices")?;
        let indptr = member(path, group, gpath, "indptr")?;
        let class = raw::dataset_type(&data);
        let (dtype, widened) = value_dtype(class).ok_or_else(|| Error::UnsupportedDtype {
            path: path.to_path_buf(),
            object: format!("{gpath}/data"),
            stored: crate::find::unsupported_dtype(class),
        })?;
        if widened {
            (opts.notify)(&format!("{gpath}/data is {}; read as {dtype}", class.describe()));
        }
        let idx_class = raw::dataset_type(&indices);
        let ptr_class = raw::dataset_type(&indptr);
        for (name, c) in [("indices", idx_class), ("indptr", ptr_class)] {
            if !matches!(c, TypeClass::Int(_) | TypeClass::Uint(_)) {
                return Err(Error::NotIntegers {
                    path: path.to_path_buf(),
                    object: format!("{gpath}/{name}"),
                    stored: c.describe(),
                }
                .into());
            }
        }
        let nnz = data.size() as u64;
        if indices.size() as u64 != nnz {
            return Err(Error::DataIndicesLength {
                path: path.to_path_buf(),
                object: gpath.to_string(),
                data: nnz,
                indices: indices.size() as u64,
            }
            .into());
        }
        if indptr.size() == 0 {
            return Err(Error::EmptyIndptr {
                path: path.to_path_buf(),
                object: format!("{gpath}/indptr"),
                axis: if csc { "column" } else { "row" },
            }
            .into());
        }
        let n_major = indptr.size() as u64 - 1;
        // At least a chunk of data and of indices, so each chunk is decompressed at most
        // twice (HDF5 caches no chunk larger than its 1 MiB cache).
        let block_entries = (opts.block_bytes / (8 + dtype.size() + 8))
            .max(chunk_len(&data))
            .max(chunk_len(&indices))
            .max(1);
        let mut src = SparseSource {
            path: path.to_path_buf(),
            gpath: gpath.to_string(),
            csc,
            header: MatrixHeader::new(dtype, 0, 0),
            data,
            indices,
            indptr,
            idx_class,
            ptr_class,
            n_major,
            n_minor: 0,
            nnz,
            next: 0,
            ptr: Vec::new(),
            ptr_start: 0,
            block_entries,
            read: 0,
            total: 0,
            unsorted_rows: 0,
            duplicates: 0,
            notify: opts.notify.clone(),
        };
        // indptr must start at 0 and end at nnz.
        let first = src.read_ptr(0..1)?[0];
        let last = src.read_ptr(n_major as usize..n_major as usize + 1)?[0];
        if first != 0 || last != nnz {
            return Err(Error::IndptrEnds {
                path: path.to_path_buf(),
                object: format!("{gpath}/indptr"),
                first,
                last,
                nnz,
            }
            .into());
        }
        let (n_rows, n_cols) = match declared_shape(path, group, gpath)? {
            Some((r, c)) => {
                let major = if csc { c } else { r };
                if major != n_major {
                    return Err(Error::IndptrShape {
                        path: path.to_path_buf(),
                        object: gpath.to_string(),
                        n_rows: r,
                        n_cols: c,
                        majors: n_major,
                        axis: if csc { "column" } else { "row" },
                    }
                    .into());
                }
                (r, c)
            }
            None => {
                let minor = src.scan_minor()?;
                (opts.notify)(&format!(
                    "{gpath} declares no shape; taking {} {} from indptr and {minor} {} from the largest index",
                    n_major,
                    if csc { "columns" } else { "rows" },
                    if csc { "rows" } else { "columns" }
                ));
                if csc {
                    (minor, n_major)
                } else {
                    (n_major, minor)
                }
            }
        };
        src.n_minor = if csc { n_rows } else { n_cols };
        src.header = MatrixHeader::new(dtype, n_rows, n_cols);
        // For the progress bar only; saturating, since the sizes come from the file.
        src.total = n_major
            .saturating_add(1)
            .saturating_mul(ptr_class_size(ptr_class))
            .saturating_add(nnz.saturating_mul(dtype.size() as u64 + ptr_class_size(idx_class)));
        Ok(src)
    }

    /// Sets the labels (checked by the caller against the shape).
    pub(crate) fn set_labels(&mut self, rows: Option<Vec<String>>, cols: Option<Vec<String>>) {
        self.header.row_labels = rows.map(Into::into);
        self.header.col_labels = cols.map(Into::into);
    }

    pub(crate) fn header_mut(&mut self) -> &mut MatrixHeader {
        &mut self.header
    }

    fn index_err(&self, what: &str, range: &Range<usize>, e: IndexError) -> vecfmt::Error {
        let path = self.path.clone();
        let object = format!("{}/{what}", self.gpath);
        match e {
            IndexError::Hdf5(source) => Error::ReadElements {
                path,
                object,
                start: range.start as u64,
                end: range.end as u64,
                source,
            },
            IndexError::Negative { at, value } => Error::NegativeIndex {
                path,
                object,
                position: (range.start + at) as u64,
                value,
            },
            IndexError::NotInteger(c) => Error::NotIntegers {
                path,
                object,
                stored: c.describe(),
            },
        }
        .into()
    }

    fn read_ptr(&self, r: Range<usize>) -> Result<Vec<u64>> {
        values::read_index_1d(&self.indptr, r.clone(), self.ptr_class).map_err(|e| self.index_err("indptr", &r, e))
    }

    fn read_indices(&self, r: Range<usize>) -> Result<Vec<u64>> {
        values::read_index_1d(&self.indices, r.clone(), self.idx_class).map_err(|e| self.index_err("indices", &r, e))
    }

    /// One pass over `indices` for the largest, when no shape is declared.
    fn scan_minor(&self) -> Result<u64> {
        let mut max = None;
        let mut s = 0usize;
        while (s as u64) < self.nnz {
            let e = (s + self.block_entries).min(self.nnz as usize);
            let v = self.read_indices(s..e)?;
            max = max.max(v.iter().copied().max());
            s = e;
        }
        Ok(max.map_or(0, |m| m + 1))
    }

    /// Makes `self.ptr` hold `indptr[self.next..]` with at least two entries.
    fn fill_ptr(&mut self) -> Result<()> {
        let have = (self.ptr_start + self.ptr.len() as u64).saturating_sub(self.next);
        if have >= 2 {
            return Ok(());
        }
        let s = self.next as usize;
        let e = (s + PTR_WINDOW).min(self.n_major as usize) + 1;
        let v = self.read_ptr(s..e)?;
        for k in 1..v.len() {
            if v[k] < v[k - 1] {
                return Err(Error::IndptrNotMonotone {
                    path: self.path.clone(),
                    object: format!("{}/indptr", self.gpath),
                    at: (s + k) as u64,
                    value: v[k],
                    previous: v[k - 1],
                }
                .into());
            }
        }
        self.read += (e - s) as u64 * ptr_class_size(self.ptr_class);
        self.ptr = v;
        self.ptr_start = s as u64;
        Ok(())
    }

    fn block(&mut self) -> Result<Option<Block>> {
        if self.next >= self.n_major {
            self.finish_notes();
            return Ok(None);
        }
        self.fill_ptr()?;
        let off = (self.next - self.ptr_start) as usize;
        let p = &self.ptr[off..];
        // As many majors as fit the block, at least one.
        let base = p[0];
        let mut k = 1;
        while k + 1 < p.len() && (p[k + 1] - base) as usize <= self.block_entries {
            k += 1;
        }
        let ends: Vec<u64> = p[..=k].iter().map(|&x| x - base).collect();
        let majors = self.next..self.next + k as u64;
        let range = base as usize..p[k] as usize;
        self.next = majors.end;
        let indices = self.read_indices(range.clone())?;
        let vals =
            values::read_1d(&self.data, range.clone(), self.header.dtype).map_err(|source| Error::ReadElements {
                path: self.path.clone(),
                object: format!("{}/data", self.gpath),
                start: range.start as u64,
                end: range.end as u64,
                source,
            })?;
        self.read += (range.len() * (self.header.dtype.size() + ptr_class_size(self.idx_class) as usize)) as u64;
        if let Some(pos) = indices.iter().position(|&i| i >= self.n_minor) {
            let m = majors.start + ends.partition_point(|&e| e <= pos as u64) as u64 - 1;
            let (major_axis, minor_axis) = if self.csc { ("column", "row") } else { ("row", "column") };
            return Err(Error::IndexOutOfRange {
                path: self.path.clone(),
                object: format!("{}/indices", self.gpath),
                position: (range.start + pos) as u64,
                index: indices[pos],
                minor_axis,
                major_axis,
                major: m,
                len: self.n_minor,
            }
            .into());
        }
        if self.csc {
            let mut cols = Vec::with_capacity(indices.len());
            for (j, w) in majors.clone().zip(ends.windows(2)) {
                cols.extend(std::iter::repeat_n(j, (w[1] - w[0]) as usize));
            }
            return Ok(Some(Block::Triplets(TripletBlock {
                rows: indices,
                cols,
                values: vals,
            })));
        }
        let block = vecfmt::with_value_vec!(vals, v => self.rows_block(majors, &ends, indices, v))?;
        Ok(Some(Block::Rows(block)))
    }

    /// Builds a row block, sorting rows whose indices are unsorted and summing duplicates.
    fn rows_block<T: Element>(
        &mut self,
        majors: Range<u64>,
        ends: &[u64],
        indices: Vec<u64>,
        vals: Vec<T>,
    ) -> Result<RowBlock> {
        let clean = majors
            .clone()
            .zip(ends.windows(2))
            .all(|(_, w)| indices[w[0] as usize..w[1] as usize].windows(2).all(|p| p[0] < p[1]));
        let mut block = RowBlock::new(T::DTYPE);
        if clean {
            block.indices = indices;
            block.values = T::into_vec(vals);
            block.indptr.clear();
            block.indptr.push(0);
            for (r, w) in majors.zip(ends.windows(2)) {
                if w[1] > w[0] {
                    block.rows.push(r);
                    block.indptr.push(w[1]);
                }
            }
            return Ok(block);
        }
        let mut out_idx = Vec::with_capacity(indices.len());
        let mut out_val: Vec<T> = Vec::with_capacity(vals.len());
        let mut pairs: Vec<(u64, T)> = Vec::new();
        for (r, w) in majors.zip(ends.windows(2)) {
            let (s, e) = (w[0] as usize, w[1] as usize);
            if s == e {
                continue;
            }
            let idx = &indices[s..e];
            if idx.windows(2).all(|p| p[0] < p[1]) {
                out_idx.extend_from_slice(idx);
                out_val.extend_from_slice(&vals[s..e]);
            } else {
                self.unsorted_rows += 1;
                pairs.clear();
                pairs.extend(idx.iter().copied().zip(vals[s..e].iter().copied()));
                pairs.sort_by_key(|p| p.0);
                for &(c, x) in &pairs {
                    if out_idx.len() > block.indptr.last().copied().unwrap_or(0) as usize && out_idx.last() == Some(&c)
                    {
                        self.duplicates += 1;
                        let last = out_val.last_mut().expect("an entry was pushed with the index");
                        *last = last.checked_add(x).ok_or(vecfmt::Error::Overflow { row: r, col: c })?;
                    } else {
                        out_idx.push(c);
                        out_val.push(x);
                    }
                }
            }
            block.rows.push(r);
            block.indptr.push(out_idx.len() as u64);
        }
        block.indices = out_idx;
        block.values = T::into_vec(out_val);
        Ok(block)
    }

    fn finish_notes(&mut self) {
        if self.unsorted_rows > 0 {
            (self.notify)(&format!(
                "{}: {} rows had unsorted column indices and were sorted; {} duplicate entries were summed",
                self.gpath, self.unsorted_rows, self.duplicates
            ));
            self.unsorted_rows = 0;
        }
    }
}

/// Elements per chunk of a chunked 1-D dataset; 0 when contiguous.
fn chunk_len(ds: &Dataset) -> usize {
    ds.chunk().and_then(|c| c.first().copied()).unwrap_or(0)
}

fn ptr_class_size(c: TypeClass) -> u64 {
    match c {
        TypeClass::Int(n) | TypeClass::Uint(n) => n as u64,
        _ => 8,
    }
}

impl crate::source::Source for SparseSource {
    fn header_mut(&mut self) -> &mut MatrixHeader {
        &mut self.header
    }
}

impl MatrixSource for SparseSource {
    fn header(&self) -> &MatrixHeader {
        &self.header
    }
    fn next_block(&mut self) -> Result<Option<Block>> {
        self.block()
    }
    fn total_bytes(&self) -> Option<u64> {
        Some(self.total)
    }
    fn bytes_read(&self) -> u64 {
        self.read
    }
}

/// Entries per chunk of `data` and `indices` in files we write.
const ENTRY_CHUNK: usize = 1 << 17;
/// Entries per chunk of `indptr`.
const PTR_CHUNK: usize = 1 << 16;

/// Appends the compressed axis of a CSR or CSC group: `data`, `indices` and `indptr`
/// datasets, chunked, resizable, shuffle + deflate. Chunks are filtered on rayon's threads
/// and stored with direct chunk writes ([`ChunkAppender`]).
pub(crate) struct CompressedWriter {
    group: Group,
    data: ChunkAppender,
    indices: ChunkAppender,
    indptr: ChunkAppender,
    idx_i32: bool,
    dtype: DType,
    /// indptr entries not yet appended.
    buf_ptr: Vec<i64>,
    /// Bytes of converted indices, reused.
    scratch: Vec<u8>,
    /// Entries pushed so far.
    nnz: u64,
    /// Majors accounted for in indptr (indptr has `majors + 1` entries, counting pending).
    majors: u64,
    n_major: u64,
}

impl std::fmt::Debug for CompressedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompressedWriter")
            .field("nnz", &self.nnz)
            .field("majors", &self.majors)
            .finish_non_exhaustive()
    }
}

impl CompressedWriter {
    /// Creates the group's datasets. Indices are int32 when every index fits, as scipy
    /// would store them; indptr is int64 (scipy narrows it on load when it fits).
    pub(crate) fn create(
        out: &Path,
        group: Group,
        dtype: DType,
        n_major: u64,
        n_minor: u64,
        deflate: u8,
    ) -> Result<Self> {
        let idx_i32 = n_minor <= i32::MAX as u64 + 1;
        let gname = group.name();
        let err = |member: &str| {
            let object = format!("{gname}/{member}");
            move |source| Error::Write {
                path: out.to_path_buf(),
                action: "create",
                object,
                source,
            }
        };
        let idx_dtype = if idx_i32 { DType::I32 } else { DType::I64 };
        let data = values::create_1d(&group, "data", dtype, ENTRY_CHUNK, deflate).map_err(err("data"))?;
        let indices = values::create_1d(&group, "indices", idx_dtype, ENTRY_CHUNK, deflate).map_err(err("indices"))?;
        let indptr = values::create_1d(&group, "indptr", DType::I64, PTR_CHUNK, deflate).map_err(err("indptr"))?;
        let shuffle = deflate > 0;
        Ok(CompressedWriter {
            group,
            data: ChunkAppender::new(data, dtype.size(), ENTRY_CHUNK, shuffle, deflate),
            indices: ChunkAppender::new(indices, idx_dtype.size(), ENTRY_CHUNK, shuffle, deflate),
            indptr: ChunkAppender::new(indptr, 8, PTR_CHUNK, shuffle, deflate),
            idx_i32,
            dtype,
            buf_ptr: vec![0],
            scratch: Vec::new(),
            nnz: 0,
            majors: 0,
            n_major,
        })
    }

    /// Appends major `m` (after every major pushed so far) with its minor indices and values.
    pub(crate) fn push(&mut self, out: &Path, m: u64, idx: &[u64], vals: Values<'_>) -> Result<()> {
        // Majors are rows for CSR output (pushed as the source gives them); CSC output
        // pushes its columns in order itself.
        if m >= self.n_major {
            return Err(vecfmt::Error::RowOutOfRange {
                row: m,
                n_rows: self.n_major,
            });
        }
        if m < self.majors {
            return Err(vecfmt::Error::RowOrder {
                row: m,
                previous: self.majors - 1,
            });
        }
        if vals.dtype() != self.dtype {
            return Err(vecfmt::Error::DTypeMismatch {
                actual: self.dtype,
                requested: vals.dtype(),
            });
        }
        if vals.len() != idx.len() {
            return Err(vecfmt::Error::LengthMismatch {
                what: "row",
                detail: format!("{} values for {} indices", vals.len(), idx.len()),
            });
        }
        while self.majors < m {
            self.buf_ptr.push(self.nnz as i64);
            self.majors += 1;
        }
        self.scratch.clear();
        if self.idx_i32 {
            // The writer chose int32 because every index below n_minor fits.
            for &c in idx {
                self.scratch.extend_from_slice(&(c as i32).to_ne_bytes());
            }
        } else {
            for &c in idx {
                self.scratch.extend_from_slice(&(c as i64).to_ne_bytes());
            }
        }
        let group = &self.group;
        self.indices
            .extend(&self.scratch)
            .map_err(|e| write_failed(group, out, "indices", e))?;
        self.data
            .extend(vals.as_bytes())
            .map_err(|e| write_failed(group, out, "data", e))?;
        self.nnz += idx.len() as u64;
        self.buf_ptr.push(self.nnz as i64);
        self.majors += 1;
        if self.buf_ptr.len() >= PTR_CHUNK {
            self.flush_ptr(out)?;
        }
        Ok(())
    }

    fn flush_ptr(&mut self, out: &Path) -> Result<()> {
        let group = &self.group;
        self.indptr
            .extend(bytemuck::cast_slice(&self.buf_ptr))
            .map_err(|e| write_failed(group, out, "indptr", e))?;
        self.buf_ptr.clear();
        Ok(())
    }

    /// Completes indptr for the majors never pushed and writes everything pending.
    pub(crate) fn finish(mut self, out: &Path) -> Result<Group> {
        while self.majors < self.n_major {
            self.buf_ptr.push(self.nnz as i64);
            self.majors += 1;
            if self.buf_ptr.len() >= PTR_CHUNK {
                self.flush_ptr(out)?;
            }
        }
        self.flush_ptr(out)?;
        let group = &self.group;
        self.data.finish().map_err(|e| write_failed(group, out, "data", e))?;
        self.indices
            .finish()
            .map_err(|e| write_failed(group, out, "indices", e))?;
        self.indptr
            .finish()
            .map_err(|e| write_failed(group, out, "indptr", e))?;
        Ok(self.group)
    }
}

/// The error of a failed write of `member` of `group` in the output `out` (the object's
/// name is made only when it is needed).
fn write_failed(group: &Group, out: &Path, member: &str, source: hdf5::Error) -> vecfmt::Error {
    Error::Write {
        path: out.to_path_buf(),
        action: "write",
        object: format!("{}/{member}", group.name()),
        source,
    }
    .into()
}

//! The reader: [`Matrix::open`] maps a `.vfm` file and serves rows.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use memmap2::Mmap;
use rayon::prelude::*;

use crate::cache::ChunkCache;
use crate::chunk::{self, ChunkData, CsrView};
use crate::consts::*;
use crate::dtype::{DType, Indices, Scalar, Values};
use crate::error::{io_err, Axis, Error, Malformed, Result};
use crate::guard::GuardedMap;
use crate::labels::Labels;
use crate::layout::{self, Catalog, ChunkEntry, Codec, Commit, PageProblem, SectionRef};

/// How to open a matrix.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    cache_bytes: usize,
    max_chunk_bytes: u64,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            cache_bytes: DEFAULT_CACHE_BYTES,
            max_chunk_bytes: DEFAULT_MAX_CHUNK_BYTES,
        }
    }
}

impl OpenOptions {
    /// Default options: a 256 MiB decoded-chunk cache, chunks up to 4 GiB decoded.
    pub fn new() -> Self {
        Self::default()
    }
    /// Byte budget of the decoded-chunk cache (compressed codecs only).
    pub fn cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }
    /// Largest decoded chunk to accept; a chunk that claims more is an error, found before
    /// any allocation.
    pub fn max_chunk_bytes(mut self, bytes: u64) -> Self {
        self.max_chunk_bytes = bytes;
        self
    }
    /// Opens a matrix with these options.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Matrix> {
        Matrix::open_with(path.as_ref(), self.clone())
    }
}

// Per-chunk check state of raw chunks, which are served in place: checked once, on first use.
const UNCHECKED: u8 = 0;
const GOOD: u8 = 1;
const BAD: u8 = 2;

/// A `.vfm` matrix opened for reading.
///
/// The reader sees the commit that was current when it opened; it holds a shared lock
/// (`flock`) for its whole life, and vecfmt's writers take an exclusive lock before they
/// change a file in place, so they cannot change it under a reader (FORMAT.md §7).
///
/// A process that ignores the lock and truncates or rewrites the file while it is mapped
/// does not crash the reader: the map is guarded ([`crate::guard`]), and reads return an
/// error saying that the file was changed or truncated while being read (so do all later
/// calls). A row borrowed from a raw chunk before the truncation may read zeros; the next
/// call on the matrix, or the end of an iteration, returns the error.
#[derive(Debug)]
pub struct Matrix {
    path: PathBuf,
    map: GuardedMap,
    // Holds the shared lock; closing the file releases it.
    file: File,
    /// The file's length and modification time at open.
    stamp: Stamp,
    commit: Commit,
    other: Result<Commit, PageProblem>,
    catalog: Catalog,
    metadata: Option<serde_json::Value>,
    // Row → chunk acceleration: buckets[b] is the first chunk that can hold a row of bucket b.
    buckets: Vec<u32>,
    shift: u32,
    checked: Vec<AtomicU8>,
    cache: ChunkCache,
    opts: OpenOptions,
}

/// What tells that a file's contents changed: its length and modification time (`fstat`).
/// Not the change time, which renames and `chmod` also move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime: (i64, i64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
        }
    }
}

/// What [`Matrix::parse`] finds: the current commit, the other page, the catalog, the
/// metadata.
type Parsed = (Commit, Result<Commit, PageProblem>, Catalog, Option<serde_json::Value>);

/// A chunk as the reader holds it: in place in the map, or decoded and shared.
#[derive(Debug, Clone)]
pub enum ChunkRef<'a> {
    /// A raw chunk, viewed in place.
    Mapped(CsrView<'a>),
    /// A compressed chunk, decoded.
    Decoded(Arc<ChunkData>),
}

impl ChunkRef<'_> {
    /// The CSR view of the chunk.
    pub fn view(&self) -> CsrView<'_> {
        match self {
            ChunkRef::Mapped(v) => *v,
            ChunkRef::Decoded(d) => d.view(),
        }
    }
    /// The listed rows of the chunk as `(row id, row)`, in order.
    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> + '_ {
        let v = self.view();
        (0..v.n_listed()).map(move |k| Row::from_view(&v, k))
    }
}

/// One row: its column indices and values. Borrowed from the map for raw chunks, or
/// sharing a decoded chunk for compressed ones.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    id: u64,
    indices: Indices<'a>,
    values: Values<'a>,
    // Keeps a decoded chunk alive for `indices` and `values`.
    _keep: Option<Arc<ChunkData>>,
}

impl<'a> Row<'a> {
    fn from_view(v: &CsrView<'a>, k: usize) -> Row<'a> {
        let r = v.range(k);
        Row {
            id: v.row_id(k),
            indices: v.indices.slice(r.clone()),
            values: v.values.slice(r),
            _keep: None,
        }
    }

    fn from_shared(data: Arc<ChunkData>, k: usize) -> Row<'static> {
        let v = data.view();
        let r = v.range(k);
        let (id, indices, values) = (v.row_id(k), v.indices.slice(r.clone()), v.values.slice(r));
        // SAFETY: `indices` and `values` borrow the heap buffers of `data`, which is kept
        // alive in `_keep` for as long as the row exists and is never mutated (it is behind
        // an Arc with no interior mutability). Moving the Arc does not move the buffers.
        let (indices, values) = unsafe {
            (
                std::mem::transmute::<Indices<'_>, Indices<'static>>(indices),
                std::mem::transmute::<Values<'_>, Values<'static>>(values),
            )
        };
        Row {
            id,
            indices,
            values,
            _keep: Some(data),
        }
    }

    fn empty(id: u64, dtype: DType, iw: u8) -> Row<'static> {
        Row {
            id,
            indices: if iw == 4 { Indices::U32(&[]) } else { Indices::U64(&[]) },
            // Typed empty slices: an empty `&[u8]` is only 1-aligned, so casting it fails.
            values: match dtype {
                DType::F32 => Values::F32(&[]),
                DType::F64 => Values::F64(&[]),
                DType::I32 => Values::I32(&[]),
                DType::I64 => Values::I64(&[]),
                DType::U32 => Values::U32(&[]),
                DType::U64 => Values::U64(&[]),
            },
            _keep: None,
        }
    }

    /// The row's id.
    pub fn id(&self) -> u64 {
        self.id
    }
    /// Column indices, strictly increasing.
    pub fn indices(&self) -> Indices<'_> {
        self.indices
    }
    /// Values, one per index.
    pub fn values(&self) -> Values<'_> {
        self.values
    }
    /// Number of stored entries.
    pub fn len(&self) -> usize {
        self.indices.len()
    }
    /// Whether the row has no entries.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
    /// The value at column `col`, if stored.
    pub fn get(&self, col: u64) -> Option<Scalar> {
        self.indices.binary_search(col).ok().map(|k| self.values.get(k))
    }
    /// `(column, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (u64, Scalar)> + '_ {
        (0..self.len()).map(move |k| (self.indices.get(k), self.values.get(k)))
    }
}

impl Matrix {
    /// Opens a `.vfm` file with default options.
    ///
    /// Checks the superblock, the catalog, the labels and the metadata against the file
    /// length and their checksums. Chunks are checked on first use, and all at once by
    /// [`Matrix::verify`].
    pub fn open(path: impl AsRef<Path>) -> Result<Matrix> {
        Matrix::open_with(path.as_ref(), OpenOptions::default())
    }

    fn open_with(path: &Path, opts: OpenOptions) -> Result<Matrix> {
        let file = File::open(path).map_err(io_err(path, "open"))?;
        match file.try_lock_shared() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked { path: path.into() }),
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(path, "lock")(e)),
        }
        let meta = file.metadata().map_err(io_err(path, "stat"))?;
        let (len, stamp) = (meta.len(), Stamp::of(&meta));
        if len < SUPERBLOCK_SIZE {
            let mut head = [0u8; 8];
            let n = std::io::Read::read(&mut &file, &mut head).unwrap_or(0);
            if n < 8 || head != MAGIC {
                return Err(Error::NotVfm { path: path.into() });
            }
            return Err(Error::Corrupt {
                path: path.into(),
                what: "file",
                offset: len,
                detail: format!(
                    "the file is {len} bytes, shorter than the {SUPERBLOCK_SIZE}-byte superblock (truncated?)"
                ),
            });
        }
        // SAFETY: the bytes of a file map change if the file does. We hold a shared flock
        // for the life of the map; vecfmt writers take an exclusive flock before changing a
        // file in place, never shrink a file, and write new files under a temporary name. A
        // process that ignores the lock can still change or truncate the file: the guard
        // turns the SIGBUS of a truncation into zero pages and an error (FORMAT.md §7), every
        // offset read from the map is checked against its length, and slices of changed
        // bytes are clamped, so changed contents give wrong values or errors, never UB.
        let map = GuardedMap::new(unsafe { Mmap::map(&file) }.map_err(io_err(path, "mmap"))?);
        let parsed = Self::parse(path, &map);
        // Zeros from a truncation make the parse fail: say why.
        map.check(path)?;
        let (commit, other, catalog, metadata) = parsed?;
        let (buckets, shift) = build_buckets(&catalog.chunks, commit.n_rows);
        let checked = catalog.chunks.iter().map(|_| AtomicU8::new(UNCHECKED)).collect();
        Ok(Matrix {
            path: path.into(),
            map,
            file,
            stamp,
            commit,
            other,
            catalog,
            metadata,
            buckets,
            shift,
            checked,
            cache: ChunkCache::new(opts.cache_bytes),
            opts,
        })
    }

    /// Parses and checks the superblock, the catalog, the labels and the metadata.
    fn parse(path: &Path, map: &[u8]) -> Result<Parsed> {
        let len = map.len() as u64;
        let corrupt = |what: &'static str, m: Malformed| Error::Corrupt {
            path: path.into(),
            what,
            offset: m.offset,
            detail: m.detail,
        };
        let pages = [
            layout::parse_page(&map[..META_PAGE_SIZE as usize], 0, len),
            layout::parse_page(
                &map[META_PAGE_SIZE as usize..SUPERBLOCK_SIZE as usize],
                META_PAGE_SIZE,
                len,
            ),
        ];
        let [a, b] = pages;
        let (commit, other) = match (a, b) {
            (Ok(a), Ok(b)) => {
                if a.generation >= b.generation {
                    (a, Ok(b))
                } else {
                    (b, Ok(a))
                }
            }
            (Ok(a), b) => (a, b),
            (a, Ok(b)) => (b, a),
            (a, b) => {
                for p in [&a, &b] {
                    if let Err(PageProblem::NewerVersion(v)) = p {
                        return Err(Error::UnsupportedVersion {
                            path: path.into(),
                            found: *v,
                            supported: FORMAT_VERSION,
                        });
                    }
                }
                if a == Err(PageProblem::BadMagic) && map[0..8] != MAGIC {
                    return Err(Error::NotVfm { path: path.into() });
                }
                let describe = |p: &Result<Commit, PageProblem>| match p {
                    Err(PageProblem::Invalid(m)) => format!("{} (byte {})", m.detail, m.offset),
                    Err(PageProblem::BadMagic) => "never written".to_string(),
                    _ => "unreadable".to_string(),
                };
                return Err(Error::NoValidCommit {
                    path: path.into(),
                    detail: format!("page A: {}; page B: {}", describe(&a), describe(&b)),
                });
            }
        };
        let cat_range = commit.catalog_offset as usize..(commit.catalog_offset + commit.catalog_length) as usize;
        let cat_bytes = &map[cat_range];
        SectionRef {
            offset: commit.catalog_offset,
            length: commit.catalog_length,
            crc: commit.catalog_crc,
        }
        .check(cat_bytes)
        .map_err(|m| corrupt("catalog", m))?;
        let catalog = Catalog::parse(cat_bytes, commit.catalog_offset, &commit).map_err(|m| corrupt("catalog", m))?;
        let section = |s: &SectionRef, what: &'static str| -> Result<Option<&[u8]>> {
            if !s.is_present() {
                return Ok(None);
            }
            let bytes = &map[s.offset as usize..(s.offset + s.length) as usize];
            s.check(bytes).map_err(|m| corrupt(what, m))?;
            Ok(Some(bytes))
        };
        for (s, what, n) in [
            (&catalog.row_labels, "row labels", commit.n_rows),
            (&catalog.col_labels, "column labels", commit.n_cols),
        ] {
            if let Some(bytes) = section(s, what)? {
                let l = Labels::parse(bytes, s.offset).map_err(|m| corrupt(what, m))?;
                if l.len() != n {
                    return Err(corrupt(
                        what,
                        Malformed::new(s.offset + 8, format!("{} labels for {n} entries", l.len())),
                    ));
                }
            }
        }
        let metadata = match section(&catalog.metadata, "metadata")? {
            None => None,
            Some(bytes) => Some(parse_metadata(bytes, catalog.metadata.offset).map_err(|m| corrupt("metadata", m))?),
        };
        if catalog.free_extents.is_present() {
            section(&catalog.free_extents, "free extents")?;
        }
        Ok((commit, other, catalog, metadata))
    }

    /// An error if the file was truncated under the map; every read checks it.
    #[inline]
    fn intact(&self) -> Result<()> {
        self.map.check(&self.path)
    }

    /// An error if the file was truncated under the map, or written since it was opened (its
    /// length or modification time differ: one `fstat`). Checked at the end of an
    /// iteration, by `verify`, and to explain a chunk that fails its checks.
    pub fn check_unchanged(&self) -> Result<()> {
        self.intact()?;
        match self.file.metadata() {
            Ok(m) if Stamp::of(&m) == self.stamp => Ok(()),
            Ok(_) => Err(crate::guard::truncated(&self.path)),
            Err(e) => Err(io_err(&self.path, "stat")(e)),
        }
    }

    /// A chunk error, or the file-changed error when that is its cause.
    fn chunk_failure(&self, e: Error) -> Error {
        match self.check_unchanged() {
            Err(changed) => changed,
            Ok(()) => e,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// `(rows, columns)`.
    pub fn shape(&self) -> (u64, u64) {
        (self.commit.n_rows, self.commit.n_cols)
    }
    /// Number of rows.
    pub fn n_rows(&self) -> u64 {
        self.commit.n_rows
    }
    /// Number of columns.
    pub fn n_cols(&self) -> u64 {
        self.commit.n_cols
    }
    /// Number of stored entries.
    pub fn nnz(&self) -> u64 {
        self.commit.nnz
    }
    /// The value dtype.
    pub fn dtype(&self) -> DType {
        self.commit.dtype
    }
    /// Width of stored column indices: 4 or 8 bytes.
    pub fn index_width(&self) -> u8 {
        self.commit.index_width
    }
    /// The commit this reader sees.
    pub fn commit(&self) -> &Commit {
        &self.commit
    }
    /// The other meta page: the previous commit, or why it is not valid.
    pub fn previous_commit(&self) -> std::result::Result<&Commit, &PageProblem> {
        self.other.as_ref()
    }
    /// The chunk entries, in row order.
    pub fn chunks(&self) -> &[ChunkEntry] {
        &self.catalog.chunks
    }
    /// The catalog (chunk entries and section references).
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }
    /// User metadata (a JSON object), if any.
    pub fn metadata(&self) -> Option<&serde_json::Value> {
        self.metadata.as_ref()
    }
    /// Size of the file in bytes.
    pub fn bytes_on_disk(&self) -> u64 {
        self.map.len() as u64
    }
    /// Bytes of the same matrix as plain CSR (scipy's layout: indptr, indices, data), with
    /// 32-bit indptr when nnz allows it, as scipy does.
    pub fn raw_csr_bytes(&self) -> u64 {
        let ow = if self.nnz() < i32::MAX as u64 { 4 } else { 8 };
        // Saturating: a matrix of 2^64 - 1 rows is valid, its CSR size is not representable.
        (self.n_rows().saturating_add(1).saturating_mul(ow)).saturating_add(
            self.nnz()
                .saturating_mul(self.index_width() as u64 + self.dtype().size() as u64),
        )
    }
    /// Bytes the decoded-chunk cache holds now.
    pub fn cache_bytes(&self) -> usize {
        self.cache.bytes()
    }

    fn labels(&self, axis: Axis) -> Option<Labels<'_>> {
        let s = match axis {
            Axis::Row => &self.catalog.row_labels,
            Axis::Col => &self.catalog.col_labels,
        };
        if !s.is_present() {
            return None;
        }
        // Checked at open; it fails only if the file changed under the map (then every
        // call that can return an error says so).
        Labels::parse(&self.map[s.offset as usize..(s.offset + s.length) as usize], s.offset).ok()
    }
    /// Row labels, if the file has them.
    pub fn row_labels(&self) -> Option<Labels<'_>> {
        self.labels(Axis::Row)
    }
    /// Column labels, if the file has them.
    pub fn col_labels(&self) -> Option<Labels<'_>> {
        self.labels(Axis::Col)
    }
    /// The label of row `i`, if the file has row labels.
    pub fn row_label(&self, i: u64) -> Result<Option<&str>> {
        self.label(Axis::Row, i)
    }
    /// The label of column `j`, if the file has column labels.
    pub fn col_label(&self, j: u64) -> Result<Option<&str>> {
        self.label(Axis::Col, j)
    }
    fn label(&self, axis: Axis, i: u64) -> Result<Option<&str>> {
        self.intact()?;
        let r = match self.labels(axis) {
            None => Ok(None),
            Some(l) => l.get(i).map(Some).map_err(|m| self.corrupt("labels", m)),
        };
        self.intact()?;
        r
    }
    /// The id of the row labelled `label`.
    pub fn row_id(&self, label: &str) -> Result<u64> {
        self.id_of(Axis::Row, label)
    }
    /// The id of the column labelled `label`.
    pub fn col_id(&self, label: &str) -> Result<u64> {
        self.id_of(Axis::Col, label)
    }
    fn id_of(&self, axis: Axis, label: &str) -> Result<u64> {
        self.intact()?;
        let found = self
            .labels(axis)
            .ok_or(Error::NoLabels { axis })
            .map(|l| l.lookup(label));
        self.intact()?;
        found?.ok_or_else(|| Error::LabelNotFound {
            axis,
            label: label.to_string(),
        })
    }

    fn corrupt(&self, what: &'static str, m: Malformed) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            what,
            offset: m.offset,
            detail: m.detail,
        }
    }

    fn chunk_error(&self, c: usize, detail: String) -> Error {
        let e = &self.catalog.chunks[c];
        Error::CorruptChunk {
            path: self.path.clone(),
            chunk: c,
            row_start: e.row_start,
            row_end: e.row_end,
            offset: e.offset,
            detail,
        }
    }

    /// The chunk that holds row `row`, if any (rows outside every chunk are empty). O(1)
    /// for evenly spread chunks: one bucket probe, then a search within the bucket.
    pub fn chunk_of(&self, row: u64) -> Option<usize> {
        let chunks = &self.catalog.chunks;
        let b = (row >> self.shift) as usize;
        let lo = *self.buckets.get(b)? as usize;
        let hi = (*self.buckets.get(b + 1)? as usize + 1).min(chunks.len());
        let within = &chunks[lo..hi];
        let k = lo + within.partition_point(|c| c.row_end <= row);
        (k < chunks.len() && chunks[k].row_start <= row && row < chunks[k].row_end).then_some(k)
    }

    /// Lets the OS drop the pages of chunk `c` from this process's memory (they are read
    /// from the file again if needed). A sequential scan calls this behind itself, so that a
    /// scan of a file larger than RAM keeps its resident size small.
    pub fn release_chunk_pages(&self, c: usize) {
        let Some(e) = self.catalog.chunks.get(c) else { return };
        // The kernel maps up to 64 KiB of cached pages around each faulting page ("fault
        // around"), which belong to the chunks stored next to this one; after copy-on-write
        // updates those are rarely the next rows. Drop them too, or they stay resident.
        const AROUND: u64 = 64 << 10;
        let start = (e.offset / AROUND * AROUND).saturating_sub(AROUND);
        let end = ((e.offset + e.stored_len).div_ceil(AROUND) * AROUND + AROUND).min(self.map.len() as u64);
        if end <= start {
            return;
        }
        // SAFETY: the map is a read-only, shared mapping of a file that no writer changes
        // while we hold the shared lock (FORMAT.md §7). MADV_DONTNEED on such a mapping only
        // drops resident pages; later reads fault them in again from the file with the same
        // contents, so rows and views borrowed from the map stay valid.
        let _ = unsafe {
            self.map.mmap().unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                start as usize,
                (end - start) as usize,
            )
        };
    }

    /// Lets the OS drop every page of the map from this process's memory: the backstop of
    /// sequential scans, for pages that per-chunk releases miss (kernel read-around of a file
    /// whose chunks copy-on-write updates scattered: 470 MB stayed resident while a C1-1GB
    /// build was finished).
    pub fn release_all_pages(&self) {
        // SAFETY: as in `release_chunk_pages`: the pages are read again from the unchanged
        // file if needed, so borrowed rows stay valid.
        let _ = unsafe {
            self.map
                .mmap()
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, 0, self.map.len())
        };
    }

    fn stored(&self, c: usize) -> &[u8] {
        let e = &self.catalog.chunks[c];
        &self.map[e.offset as usize..(e.offset + e.stored_len) as usize]
    }

    fn check_crc(&self, c: usize) -> Result<()> {
        let e = &self.catalog.chunks[c];
        let crc = crc32c::crc32c(self.stored(c));
        self.intact()?;
        if crc != e.crc {
            return Err(self.chunk_failure(self.chunk_error(
                c,
                format!("checksum mismatch: stored {:08x}, computed {crc:08x}", e.crc),
            )));
        }
        Ok(())
    }

    fn decode_chunk(&self, c: usize) -> Result<ChunkData> {
        self.check_crc(c)?;
        let e = &self.catalog.chunks[c];
        let data = chunk::decode(
            self.stored(c),
            e,
            self.commit.index_width as usize,
            self.commit.dtype,
            self.commit.n_cols,
            self.opts.max_chunk_bytes,
        );
        self.intact()?;
        data.map_err(|d| self.chunk_failure(self.chunk_error(c, d)))
    }

    /// Views raw chunk `c` in place after checking its checksum and structure.
    fn check_raw(&self, c: usize) -> Result<CsrView<'_>> {
        self.check_crc(c)?;
        let e = &self.catalog.chunks[c];
        let view = chunk::view_raw(self.stored(c), e, self.commit.index_width as usize, self.commit.dtype)
            .map_err(|d| self.chunk_error(c, d))?;
        let valid = view.validate(self.commit.n_cols);
        self.intact()?;
        valid.map_err(|d| self.chunk_failure(self.chunk_error(c, d)))?;
        Ok(view)
    }

    /// Raw chunk `c` in place; checked on first use only, so that later reads are O(1).
    fn mapped_view(&self, c: usize) -> Result<CsrView<'_>> {
        self.intact()?;
        if self.checked[c].load(Ordering::Acquire) == GOOD {
            let e = &self.catalog.chunks[c];
            return chunk::view_raw(self.stored(c), e, self.commit.index_width as usize, self.commit.dtype)
                .map_err(|d| self.chunk_error(c, d));
        }
        let r = self.check_raw(c);
        let state = if r.is_ok() { GOOD } else { BAD };
        // A chunk found bad stays bad; it is checked again (and fails again) on every use.
        let _ = self.checked[c].compare_exchange(UNCHECKED, state, Ordering::AcqRel, Ordering::Acquire);
        r
    }

    /// Chunk `c`, through the cache for compressed chunks.
    pub fn chunk(&self, c: usize) -> Result<ChunkRef<'_>> {
        self.intact()?;
        if self.catalog.chunks[c].codec == Codec::Raw {
            return self.mapped_view(c).map(ChunkRef::Mapped);
        }
        if let Some(d) = self.cache.get(c) {
            return Ok(ChunkRef::Decoded(d));
        }
        let d = Arc::new(self.decode_chunk(c)?);
        self.cache.insert(c, d.clone());
        Ok(ChunkRef::Decoded(d))
    }

    /// Chunk `c`, decoded without entering the cache: for scans that visit each chunk once.
    pub fn chunk_uncached(&self, c: usize) -> Result<ChunkRef<'_>> {
        self.intact()?;
        if self.catalog.chunks[c].codec == Codec::Raw {
            return self.mapped_view(c).map(ChunkRef::Mapped);
        }
        if let Some(d) = self.cache.get(c) {
            return Ok(ChunkRef::Decoded(d));
        }
        Ok(ChunkRef::Decoded(Arc::new(self.decode_chunk(c)?)))
    }

    /// Row `i`: zero-copy from the map for raw chunks, through the chunk cache otherwise.
    pub fn row(&self, i: u64) -> Result<Row<'_>> {
        if i >= self.commit.n_rows {
            return Err(Error::RowOutOfRange {
                row: i,
                n_rows: self.commit.n_rows,
            });
        }
        let Some(c) = self.chunk_of(i) else {
            self.intact()?;
            return Ok(Row::empty(i, self.commit.dtype, self.commit.index_width));
        };
        match self.chunk(c)? {
            ChunkRef::Mapped(v) => {
                let row = match v.find(i) {
                    Some(k) => Row::from_view(&v, k),
                    None => Row::empty(i, self.commit.dtype, self.commit.index_width),
                };
                self.intact()?;
                Ok(row)
            }
            ChunkRef::Decoded(d) => Ok(match d.view().find(i) {
                Some(k) => Row::from_shared(d, k),
                None => Row::empty(i, self.commit.dtype, self.commit.index_width),
            }),
        }
    }

    /// The row labelled `label`.
    pub fn row_by_label(&self, label: &str) -> Result<Row<'_>> {
        self.row(self.row_id(label)?)
    }

    /// Entry `(i, j)`: the stored value, or the dtype's zero.
    pub fn get(&self, i: u64, j: u64) -> Result<Scalar> {
        if j >= self.commit.n_cols {
            return Err(Error::ColOutOfRange {
                row: i,
                col: j,
                n_cols: self.commit.n_cols,
            });
        }
        Ok(self.row(i)?.get(j).unwrap_or(Scalar::zero(self.commit.dtype)))
    }

    /// Every nonempty row, in order. Compressed chunks are decoded once each, without
    /// filling the cache.
    pub fn iter_rows(&self) -> RowIter<'_> {
        self.iter_range(0..self.commit.n_rows)
    }

    /// The nonempty rows with ids in `range`, in order.
    pub fn iter_range(&self, range: Range<u64>) -> RowIter<'_> {
        let chunks = &self.catalog.chunks;
        let first = chunks.partition_point(|c| c.row_end <= range.start);
        RowIter {
            m: self,
            range,
            next_chunk: first,
            current: None,
            k: 0,
            cut: false,
        }
    }

    /// Chunks in parallel on rayon's pool, each decoded once without filling the cache.
    pub fn par_chunks(&self) -> impl IndexedParallelIterator<Item = Result<ChunkRef<'_>>> + '_ {
        (0..self.catalog.chunks.len())
            .into_par_iter()
            .map(move |c| self.chunk_uncached(c))
    }

    /// Checks every checksum and every chunk's structure. Returns the problems found, one per
    /// bad chunk or section; an empty list means the file is clean.
    pub fn verify(&self) -> VerifyReport {
        let mut problems: Vec<Error> = (0..self.catalog.chunks.len())
            .into_par_iter()
            .filter_map(|c| {
                let r = match self.catalog.chunks[c].codec {
                    Codec::Raw => self.check_raw(c).map(drop),
                    _ => self.decode_chunk(c).map(drop),
                };
                r.err()
            })
            .collect();
        let mut overlaps = Vec::new();
        let mut extents: Vec<(u64, u64, String)> = self
            .catalog
            .chunks
            .iter()
            .enumerate()
            .map(|(i, e)| (e.offset, e.stored_len, format!("chunk {i}")))
            .collect();
        extents.push((self.commit.catalog_offset, self.commit.catalog_length, "catalog".into()));
        for (s, n) in [
            (&self.catalog.row_labels, "row labels"),
            (&self.catalog.col_labels, "column labels"),
            (&self.catalog.metadata, "metadata"),
            (&self.catalog.free_extents, "free extents"),
        ] {
            if s.is_present() {
                extents.push((s.offset, s.length, n.into()));
            }
        }
        extents.sort();
        for w in extents.windows(2) {
            if w[0].0 + w[0].1 > w[1].0 {
                overlaps.push(self.corrupt(
                    "layout",
                    Malformed::new(w[1].0, format!("{} overlaps {}", w[1].2, w[0].2)),
                ));
            }
        }
        problems.extend(overlaps);
        for (axis, what) in [(Axis::Row, "row labels"), (Axis::Col, "column labels")] {
            if let Some(l) = self.labels(axis) {
                if let Err(m) = l.check() {
                    problems.push(self.corrupt(what, m));
                }
            }
        }
        if let Err(e) = self.check_unchanged() {
            // What was read may be zeros or other bytes: the problems are its consequence.
            problems = vec![e];
        }
        VerifyReport {
            chunks: self.catalog.chunks.len(),
            problems,
        }
    }
}

/// What [`Matrix::verify`] found.
#[derive(Debug)]
pub struct VerifyReport {
    /// Chunks checked.
    pub chunks: usize,
    /// One error per bad chunk or section.
    pub problems: Vec<Error>,
}

impl VerifyReport {
    /// Whether nothing was wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Iterator over nonempty rows; see [`Matrix::iter_rows`].
#[derive(Debug)]
pub struct RowIter<'a> {
    m: &'a Matrix,
    range: Range<u64>,
    next_chunk: usize,
    current: Option<ChunkRef<'a>>,
    k: usize,
    /// The file was truncated or changed under the map: the error was returned.
    cut: bool,
}

impl<'a> Iterator for RowIter<'a> {
    type Item = Result<Row<'a>>;
    /// The next row. If the file was truncated or changed under the map since the
    /// iteration began, an error instead (once, at the latest where the iteration would
    /// have ended), and then the end.
    fn next(&mut self) -> Option<Result<Row<'a>>> {
        if self.cut {
            return None;
        }
        let r = self.advance();
        // At the end, one fstat: a file rewritten in place without a truncation the map
        // noticed shows as changed here.
        let check = if r.is_none() {
            self.m.check_unchanged()
        } else {
            self.m.intact()
        };
        if let Err(e) = check {
            self.cut = true;
            self.current = None;
            return Some(Err(e));
        }
        r
    }
}

impl<'a> RowIter<'a> {
    fn advance(&mut self) -> Option<Result<Row<'a>>> {
        loop {
            if let Some(cur) = &self.current {
                let row = match cur {
                    ChunkRef::Mapped(v) => (self.k < v.n_listed()).then(|| Row::from_view(v, self.k)),
                    ChunkRef::Decoded(d) => (self.k < d.view().n_listed()).then(|| Row::from_shared(d.clone(), self.k)),
                };
                self.k += 1;
                match row {
                    Some(r) if r.id() >= self.range.end => {
                        self.current = None;
                        self.next_chunk = usize::MAX;
                        return None;
                    }
                    Some(r) if r.id() < self.range.start || r.is_empty() => continue,
                    Some(r) => return Some(Ok(r)),
                    None => self.current = None,
                }
            }
            let chunks = &self.m.catalog.chunks;
            if self.next_chunk >= chunks.len() || chunks[self.next_chunk].row_start >= self.range.end {
                return None;
            }
            let c = self.next_chunk;
            if c > 0 {
                self.m.release_chunk_pages(c - 1);
                if c.is_multiple_of(16) {
                    self.m.release_all_pages();
                }
            }
            self.next_chunk += 1;
            self.k = 0;
            match self.m.chunk_uncached(c) {
                Ok(cr) => self.current = Some(cr),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// The metadata section: a JSON object (FORMAT.md), or where it goes wrong.
pub(crate) fn parse_metadata(bytes: &[u8], offset: u64) -> std::result::Result<serde_json::Value, Malformed> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Malformed::new(offset, format!("not JSON: {e}")))?;
    if !v.is_object() {
        return Err(Malformed::new(offset, "not a JSON object"));
    }
    Ok(v)
}

fn build_buckets(chunks: &[ChunkEntry], n_rows: u64) -> (Vec<u32>, u32) {
    // At least two buckets, so that the shift stays below 64.
    let nb = chunks.len().next_power_of_two().max(2) as u64;
    let mut shift = 0u32;
    while (n_rows.saturating_sub(1) >> shift) >= nb {
        shift += 1;
    }
    let buckets = (0..=nb)
        .map(|b| {
            let start = if b > (u64::MAX >> shift) { u64::MAX } else { b << shift };
            chunks.partition_point(|c| c.row_end <= start) as u32
        })
        .collect();
    (buckets, shift)
}

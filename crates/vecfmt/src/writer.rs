//! The writer: [`MatrixWriter::create`] streams rows into a new `.vfm` file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::chunk::{self, ChunkBuilder, EncodedChunk};
use crate::consts::*;
use crate::dtype::{DType, Element, IndexLike, Indices, Values};
use crate::error::{io_err, Axis, Error, Result};
use crate::labels;
use crate::layout::{align_up, Catalog, ChunkEntry, Codec, Commit, SectionRef};
use crate::publish::faults;

/// How to write a matrix. Built with [`WriterOptions::new`] and its setters.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    dtype: DType,
    n_cols: u64,
    n_rows: Option<u64>,
    codec: Codec,
    chunk_bytes: Option<usize>,
    zstd_level: i32,
    threads: usize,
}

impl WriterOptions {
    /// A matrix of `n_cols` columns holding `dtype` values; raw codec, row count taken from
    /// the rows pushed unless set.
    pub fn new(dtype: DType, n_cols: u64) -> Self {
        WriterOptions {
            dtype,
            n_cols,
            n_rows: None,
            codec: Codec::Raw,
            chunk_bytes: None,
            zstd_level: crate::consts::DEFAULT_ZSTD_LEVEL,
            threads: crate::ranges::default_threads(),
        }
    }
    /// The number of rows; by default one past the last row pushed (or the number of row
    /// labels, when set).
    pub fn n_rows(mut self, n: u64) -> Self {
        self.n_rows = Some(n);
        self
    }
    /// The chunk codec.
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }
    /// Target raw CSR bytes per chunk. A chunk holds whole rows, so a row larger than the
    /// target gets a chunk of its own. Default: 1 MiB for raw, 24 KiB for compressed codecs.
    pub fn chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = Some(bytes.max(1));
        self
    }
    /// zstd compression level (default [`crate::consts::DEFAULT_ZSTD_LEVEL`], 3).
    pub fn zstd_level(mut self, level: i32) -> Self {
        self.zstd_level = level;
        self
    }
    /// Encoding threads (default: all cores).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }
    /// The value dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// Width of stored column indices for `n_cols` (FORMAT.md §1).
    fn index_width(&self) -> usize {
        if self.n_cols <= 1 << 32 {
            4
        } else {
            8
        }
    }
}

/// What a finished write produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteSummary {
    pub n_rows: u64,
    pub n_cols: u64,
    pub nnz: u64,
    pub chunks: usize,
    pub bytes_on_disk: u64,
}

/// Writes a new `.vfm` file, row by row, in row order.
///
/// Chunks are encoded and compressed in parallel on a rayon pool of the writer's own; this
/// thread appends them in order. At most a few chunks are in flight, so memory stays
/// bounded whatever the matrix size. The file appears at its path only when
/// [`MatrixWriter::finish`] has written, synced and renamed it; dropping the writer
/// unfinished leaves nothing behind.
///
/// ```
/// use vecfmt::{DType, Matrix, MatrixWriter, WriterOptions};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("m.vfm");
/// let mut w = MatrixWriter::create(&path, WriterOptions::new(DType::F32, 10))?;
/// w.push_row(0, &[1u32, 7], &[0.5f32, 2.0])?;
/// w.push_row(3, &[2u32], &[1.0f32])?;
/// w.finish()?;
/// // Every .vfm file starts with these magic bytes.
/// assert_eq!(&std::fs::read(&path)?[..8], b"\x89VFM\r\n\x1a\n");
/// let m = Matrix::open(&path)?;
/// assert_eq!(m.shape(), (4, 10));
/// assert_eq!(m.row(0)?.values().typed::<f32>(), Some(&[0.5f32, 2.0][..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MatrixWriter {
    path: PathBuf,
    tmp: tempfile::NamedTempFile,
    out: BufWriter<File>,
    pos: u64,
    opts: WriterOptions,
    target: usize,
    builder: ChunkBuilder,
    last_row: Option<u64>,
    nnz: u64,
    entries: Vec<ChunkEntry>,
    pool: rayon::ThreadPool,
    tx: mpsc::Sender<(u64, std::io::Result<EncodedChunk>)>,
    rx: mpsc::Receiver<(u64, std::io::Result<EncodedChunk>)>,
    next_seq: u64,
    next_write: u64,
    in_flight: usize,
    max_in_flight: usize,
    ready: BTreeMap<u64, std::io::Result<EncodedChunk>>,
    row_labels: Option<labels::LabelList>,
    col_labels: Option<labels::LabelList>,
    metadata: Option<serde_json::Value>,
}

impl MatrixWriter {
    /// Starts a new matrix at `path`. Nothing appears at `path` until `finish`.
    pub fn create(path: impl AsRef<Path>, opts: WriterOptions) -> Result<MatrixWriter> {
        let path = path.as_ref().to_path_buf();
        let tmp = crate::publish::temp_file_for(&path)?;
        let file = tmp.as_file().try_clone().map_err(io_err(&path, "open"))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        // The superblock is written last; reserve its space now.
        out.write_all(&[0u8; SUPERBLOCK_SIZE as usize])
            .map_err(io_err(&path, "write"))?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(opts.threads)
            .thread_name(|i| format!("vecfmt-encode-{i}"))
            .build()
            .map_err(|e| io_err(&path, "start encoder threads")(std::io::Error::other(e)))?;
        let target = opts.chunk_bytes.unwrap_or(match opts.codec {
            Codec::Raw => DEFAULT_RAW_CHUNK_BYTES,
            _ => DEFAULT_COMPRESSED_CHUNK_BYTES,
        });
        let (tx, rx) = mpsc::channel();
        Ok(MatrixWriter {
            builder: ChunkBuilder::new(opts.index_width(), opts.dtype),
            max_in_flight: 2 * opts.threads + 2,
            path,
            tmp,
            out,
            pos: SUPERBLOCK_SIZE,
            opts,
            target,
            last_row: None,
            nnz: 0,
            entries: Vec::new(),
            pool,
            tx,
            rx,
            next_seq: 0,
            next_write: 0,
            in_flight: 0,
            ready: BTreeMap::new(),
            row_labels: None,
            col_labels: None,
            metadata: None,
        })
    }

    /// Sets the row labels: one unique string per row.
    pub fn set_row_labels<S: Into<String>>(&mut self, labels: impl IntoIterator<Item = S>) -> &mut Self {
        self.row_labels = Some(labels.into_iter().map(Into::<String>::into).collect());
        self
    }
    /// Sets the column labels: one unique string per column.
    pub fn set_col_labels<S: Into<String>>(&mut self, labels: impl IntoIterator<Item = S>) -> &mut Self {
        self.col_labels = Some(labels.into_iter().map(Into::<String>::into).collect());
        self
    }
    /// Sets user metadata, which must be a JSON object.
    pub fn set_metadata(&mut self, metadata: serde_json::Value) -> Result<&mut Self> {
        if !metadata.is_object() {
            let kind = match metadata {
                serde_json::Value::Null => "null",
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Array(_) => "an array",
                serde_json::Value::Object(_) => unreachable!(),
            };
            return Err(Error::BadMetadata { kind });
        }
        self.metadata = Some(metadata);
        Ok(self)
    }

    /// Appends row `row` with strictly increasing column `indices` and their `values`. Rows
    /// must come in increasing order; rows never pushed are empty and cost nothing.
    pub fn push_row<T: Element, I: IndexLike>(&mut self, row: u64, indices: &[I], values: &[T]) -> Result<()> {
        if T::DTYPE != self.opts.dtype {
            return Err(Error::DTypeMismatch {
                actual: self.opts.dtype,
                requested: T::DTYPE,
            });
        }
        if indices.len() != values.len() {
            return Err(Error::LengthMismatch {
                what: "row",
                detail: format!("row {row} has {} indices and {} values", indices.len(), values.len()),
            });
        }
        if let Some(previous) = self.last_row {
            if row <= previous {
                return Err(Error::RowOrder { row, previous });
            }
        }
        if let Some(n) = self.opts.n_rows {
            if row >= n {
                return Err(Error::RowOutOfRange { row, n_rows: n });
            }
        }
        // Check the whole row before changing anything, so that an error leaves the writer
        // as it was.
        let mut prev: Option<u64> = None;
        for &i in indices {
            let col = i.to_u64().ok_or_else(|| Error::BadIndex {
                what: "column index",
                value: i.to_string(),
            })?;
            if col >= self.opts.n_cols {
                return Err(Error::ColOutOfRange {
                    row,
                    col,
                    n_cols: self.opts.n_cols,
                });
            }
            if let Some(p) = prev {
                if col <= p {
                    return Err(Error::UnsortedIndices { row, previous: p, col });
                }
            }
            prev = Some(col);
        }
        self.last_row = Some(row);
        if indices.is_empty() {
            return Ok(());
        }
        let row_bytes = indices.len() * (self.opts.index_width() + self.opts.dtype.size()) + 8;
        if !self.builder.is_empty() && self.builder.raw_bytes() + row_bytes > self.target {
            self.seal()?;
        }
        let b = &mut self.builder;
        b.rows.push(row);
        for &i in indices {
            b.indices.push(i.to_u64().expect("checked above"));
        }
        T::vec_mut(&mut b.values)
            .expect("dtype checked")
            .extend_from_slice(values);
        b.offsets
            .push(b.offsets.last().expect("starts at 0") + indices.len() as u64);
        self.nnz += indices.len() as u64;
        if self.builder.raw_bytes() >= self.target {
            self.seal()?;
        }
        Ok(())
    }

    /// Appends a row given as dynamically typed indices and values (as a reader returns them).
    pub fn push_row_dyn(&mut self, row: u64, indices: Indices<'_>, values: Values<'_>) -> Result<()> {
        match indices {
            Indices::U32(ix) => crate::with_values!(values, v => self.push_row(row, ix, v)),
            Indices::U64(ix) => crate::with_values!(values, v => self.push_row(row, ix, v)),
        }
    }

    /// Appends a block of rows in CSR form: row `first_row + r` holds
    /// `indices[indptr[r]..indptr[r+1]]`, as in scipy's `csr_matrix`.
    pub fn push_csr<T: Element, P: IndexLike, I: IndexLike>(
        &mut self,
        first_row: u64,
        indptr: &[P],
        indices: &[I],
        values: &[T],
    ) -> Result<()> {
        if indices.len() != values.len() {
            return Err(Error::LengthMismatch {
                what: "CSR block",
                detail: format!("{} indices and {} values", indices.len(), values.len()),
            });
        }
        let bad = |p: &P| Error::BadIndex {
            what: "indptr entry",
            value: p.to_string(),
        };
        for (r, w) in indptr.windows(2).enumerate() {
            let a = w[0].to_u64().ok_or_else(|| bad(&w[0]))?;
            let b = w[1].to_u64().ok_or_else(|| bad(&w[1]))?;
            if a > b || b > indices.len() as u64 {
                return Err(Error::LengthMismatch {
                    what: "CSR block",
                    detail: format!(
                        "indptr[{r}..{}] = {a}..{b} is not monotone within {} entries",
                        r + 1,
                        indices.len()
                    ),
                });
            }
            if a < b {
                self.push_row(
                    first_row + r as u64,
                    &indices[a as usize..b as usize],
                    &values[a as usize..b as usize],
                )?;
            }
        }
        Ok(())
    }

    fn seal(&mut self) -> Result<()> {
        let b = std::mem::replace(
            &mut self.builder,
            ChunkBuilder::new(self.opts.index_width(), self.opts.dtype),
        );
        let seq = self.next_seq;
        self.next_seq += 1;
        let (tx, codec, level) = (self.tx.clone(), self.opts.codec, self.opts.zstd_level);
        self.pool.spawn(move || {
            // The receiver outlives every task unless the writer was dropped: then the result
            // is not wanted.
            let _ = tx.send((seq, chunk::encode(&b, codec, level)));
        });
        self.in_flight += 1;
        while self.in_flight >= self.max_in_flight {
            self.receive_one()?;
        }
        self.write_ready()
    }

    fn receive_one(&mut self) -> Result<()> {
        let (seq, r) = self
            .rx
            .recv()
            .map_err(|_| io_err(&self.path, "encode")(std::io::Error::other("an encoder thread died")))?;
        self.in_flight -= 1;
        self.ready.insert(seq, r);
        self.write_ready()
    }

    fn write_ready(&mut self) -> Result<()> {
        while let Some(r) = self.ready.remove(&self.next_write) {
            let enc = r.map_err(io_err(&self.path, "compress"))?;
            let at = self.align(CHUNK_ALIGN)?;
            let mut entry = enc.entry;
            entry.offset = at;
            self.write(&enc.bytes)?;
            self.entries.push(entry);
            self.next_write += 1;
        }
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(io_err(&self.path, "write"))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn align(&mut self, align: u64) -> Result<u64> {
        let at = align_up(self.pos, align);
        let pad = (at - self.pos) as usize;
        self.write(&[0u8; CHUNK_ALIGN as usize][..pad])?;
        Ok(at)
    }

    fn write_section(&mut self, bytes: &[u8]) -> Result<SectionRef> {
        let offset = self.align(SECTION_ALIGN)?;
        self.write(bytes)?;
        Ok(SectionRef {
            offset,
            length: bytes.len() as u64,
            crc: crc32c::crc32c(bytes),
        })
    }

    /// Writes the remaining chunks, the labels, the metadata and the catalog, commits, syncs
    /// and renames the file into place.
    pub fn finish(mut self) -> Result<WriteSummary> {
        if !self.builder.is_empty() {
            self.seal()?;
        }
        while self.in_flight > 0 {
            self.receive_one()?;
        }
        let n_rows = match (self.opts.n_rows, &self.row_labels) {
            (Some(n), _) => n,
            (None, Some(l)) => l.len() as u64,
            (None, None) => self.last_row.map_or(0, |r| r + 1),
        };
        if let Some(last) = self.last_row {
            if last >= n_rows {
                return Err(Error::RowOutOfRange { row: last, n_rows });
            }
        }
        let mut catalog = Catalog::default();
        for (axis, n) in [(Axis::Row, n_rows), (Axis::Col, self.opts.n_cols)] {
            let labels = match axis {
                Axis::Row => self.row_labels.take(),
                Axis::Col => self.col_labels.take(),
            };
            if let Some(l) = labels {
                if l.len() as u64 != n {
                    return Err(Error::LabelCount {
                        axis,
                        expected: n,
                        got: l.len() as u64,
                    });
                }
                let bytes = l.build(axis)?;
                let s = self.write_section(&bytes)?;
                match axis {
                    Axis::Row => catalog.row_labels = s,
                    Axis::Col => catalog.col_labels = s,
                }
            }
        }
        if let Some(m) = self.metadata.take() {
            let bytes = serde_json::to_vec(&m).expect("a JSON value serialises");
            catalog.metadata = self.write_section(&bytes)?;
        }
        catalog.chunks = std::mem::take(&mut self.entries);
        let cat_bytes = catalog.to_bytes();
        let cat = self.write_section(&cat_bytes)?;
        let data_end = self.pos;
        self.out.flush().map_err(io_err(&self.path, "write"))?;
        let commit = Commit {
            slot: 0,
            generation: 1,
            dtype: self.opts.dtype,
            index_width: self.opts.index_width() as u8,
            n_rows,
            n_cols: self.opts.n_cols,
            nnz: self.nnz,
            catalog_offset: cat.offset,
            catalog_length: cat.length,
            catalog_crc: cat.crc,
            data_end,
            commit_time_ns: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        };
        let path = self.path.clone();
        let file = self.out.get_mut();
        // Data first, then the meta page that points at it (FORMAT.md §6).
        faults::check(faults::Step::SyncData, &path)
            .and_then(|()| file.sync_data())
            .map_err(io_err(&path, "sync"))?;
        file.seek(SeekFrom::Start(0)).map_err(io_err(&path, "seek"))?;
        file.write_all(&commit.to_page())
            .map_err(io_err(&path, "write superblock"))?;
        faults::check(faults::Step::SyncAll, &path)
            .and_then(|()| file.sync_all())
            .map_err(io_err(&path, "sync"))?;
        let chunks = catalog.chunks.len();
        let MatrixWriter { tmp, out, .. } = self;
        drop(out);
        // On failure the temporary file is dropped, which deletes it.
        crate::publish::rename_into_place(tmp, &path)?;
        Ok(WriteSummary {
            n_rows,
            n_cols: commit.n_cols,
            nnz: commit.nnz,
            chunks,
            bytes_on_disk: data_end,
        })
    }
}

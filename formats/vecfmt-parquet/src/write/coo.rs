//! The COO layout's writer: flat required columns straight into Parquet's column writers,
//! each row group encoded (its column chunks compressed in parallel) on a thread of its own
//! while the sink gathers the next one.

use std::fs::File;
use std::io::BufWriter;
use std::sync::mpsc;

use parquet::column::writer::{get_column_writer, ColumnCloseResult, ColumnWriter};
use parquet::data_type::ByteArray;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterPropertiesPtr;
use parquet::file::writer::{SerializedFileWriter, SerializedPageWriter, TrackedWrite};
use parquet::schema::types::{ColumnDescPtr, SchemaDescPtr};
use vecfmt::stream::RowBlock;
use vecfmt::{DType, Values};

/// A flat column of one row group, in its Parquet physical type (u32 and u64 are stored
/// bit for bit as INT32 and INT64 with an unsigned logical type, as arrow's writer does).
#[derive(Debug)]
pub(super) enum Column {
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bytes(Vec<ByteArray>),
}

impl Column {
    pub(super) fn for_dtype(dtype: DType) -> Column {
        match dtype {
            DType::I32 | DType::U32 => Column::I32(Vec::new()),
            DType::I64 | DType::U64 => Column::I64(Vec::new()),
            DType::F32 => Column::F32(Vec::new()),
            DType::F64 => Column::F64(Vec::new()),
        }
    }

    /// Appends indices, which the sink has checked against the shape (so they fit the type
    /// [`index_type_for`](super::index_type_for) chose).
    fn extend_indices(&mut self, v: impl Iterator<Item = u64>) {
        match self {
            Column::I32(c) => c.extend(v.map(|x| x as i32)),
            Column::I64(c) => c.extend(v.map(|x| x as i64)),
            _ => unreachable!("index columns are integers"),
        }
    }

    /// Appends `n` copies of an index.
    fn extend_repeated(&mut self, x: u64, n: usize) {
        match self {
            Column::I32(c) => c.resize(c.len() + n, x as i32),
            Column::I64(c) => c.resize(c.len() + n, x as i64),
            _ => unreachable!("index columns are integers"),
        }
    }

    fn extend_values(&mut self, v: Values<'_>) {
        match (self, v) {
            (Column::F32(c), Values::F32(v)) => c.extend_from_slice(v),
            (Column::F64(c), Values::F64(v)) => c.extend_from_slice(v),
            (Column::I32(c), Values::I32(v)) => c.extend_from_slice(v),
            (Column::I64(c), Values::I64(v)) => c.extend_from_slice(v),
            (Column::I32(c), Values::U32(v)) => c.extend(v.iter().map(|&x| x as i32)),
            (Column::I64(c), Values::U64(v)) => c.extend(v.iter().map(|&x| x as i64)),
            _ => unreachable!("the sink checks each block's dtype"),
        }
    }

    fn len(&self) -> usize {
        match self {
            Column::I32(c) => c.len(),
            Column::I64(c) => c.len(),
            Column::F32(c) => c.len(),
            Column::F64(c) => c.len(),
            Column::Bytes(c) => c.len(),
        }
    }

    fn clear(&mut self) {
        match self {
            Column::I32(c) => c.clear(),
            Column::I64(c) => c.clear(),
            Column::F32(c) => c.clear(),
            Column::F64(c) => c.clear(),
            Column::Bytes(c) => c.clear(),
        }
    }

    /// The label of each index, from a table of labels by index.
    fn labels(&self, table: &[ByteArray]) -> Column {
        Column::Bytes(match self {
            Column::I32(c) => c.iter().map(|&k| table[k as usize].clone()).collect(),
            Column::I64(c) => c.iter().map(|&k| table[k as usize].clone()).collect(),
            _ => unreachable!("index columns are integers"),
        })
    }
}

/// The records of one COO row group, column by column.
#[derive(Debug)]
pub(super) struct Group {
    pub(super) rows: Column,
    pub(super) cols: Column,
    pub(super) values: Column,
}

impl Group {
    /// An empty group with the same column types.
    fn empty_like(&self) -> Group {
        let empty = |c: &Column| match c {
            Column::I32(_) => Column::I32(Vec::new()),
            Column::I64(_) => Column::I64(Vec::new()),
            Column::F32(_) => Column::F32(Vec::new()),
            Column::F64(_) => Column::F64(Vec::new()),
            Column::Bytes(_) => Column::Bytes(Vec::new()),
        };
        Group {
            rows: empty(&self.rows),
            cols: empty(&self.cols),
            values: empty(&self.values),
        }
    }
}

type FileWriter = SerializedFileWriter<BufWriter<File>>;

/// The COO layout's writer. The sink gathers a row group's records; a thread of its own
/// encodes and writes each finished group (its column chunks compressed in parallel) while
/// the sink gathers the next one.
#[derive(Debug)]
pub(super) struct CooWriter {
    group: Group,
    /// Finished groups to the encoding thread. A rendezvous: while the thread encodes one
    /// group, at most one more waits here, so memory stays bounded by three groups.
    tx: Option<mpsc::SyncSender<Group>>,
    /// Groups the thread has written, emptied, for reuse.
    spare: mpsc::Receiver<Group>,
    thread: Option<std::thread::JoinHandle<std::result::Result<FileWriter, ParquetError>>>,
}

impl CooWriter {
    pub(super) fn start(encoder: Encoder, group: Group) -> std::io::Result<CooWriter> {
        let (tx, rx) = mpsc::sync_channel(0);
        let (back, spare) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("vecfmt-parquet".into())
            .spawn(move || encoder.run(rx, back))?;
        Ok(CooWriter {
            group,
            tx: Some(tx),
            spare,
            thread: Some(thread),
        })
    }

    /// Rows `k0..k1` of the block, whose entries are `values`.
    pub(super) fn append(&mut self, b: &RowBlock, k0: usize, k1: usize, values: Values<'_>) {
        let (s, e) = (b.indptr[k0] as usize, b.indptr[k1] as usize);
        let g = &mut self.group;
        for k in k0..k1 {
            g.rows
                .extend_repeated(b.rows[k], (b.indptr[k + 1] - b.indptr[k]) as usize);
        }
        g.cols.extend_indices(b.indices[s..e].iter().copied());
        g.values.extend_values(values);
    }

    /// Hands the gathered records to the encoding thread as a row group.
    pub(super) fn flush_group(&mut self) -> std::result::Result<(), ParquetError> {
        if self.group.rows.len() == 0 {
            return Ok(());
        }
        let next = self.spare.try_recv().unwrap_or_else(|_| self.group.empty_like());
        let full = std::mem::replace(&mut self.group, next);
        let sent = self.tx.as_ref().map(|tx| tx.send(full).is_ok());
        if sent != Some(true) {
            // The thread stopped at an error: report that error.
            return Err(self
                .join()
                .err()
                .unwrap_or_else(|| ParquetError::General("the encoding thread stopped".into())));
        }
        Ok(())
    }

    /// Waits for the encoding thread to write every group handed to it.
    fn join(&mut self) -> std::result::Result<FileWriter, ParquetError> {
        drop(self.tx.take());
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(ParquetError::General("the encoding thread panicked".into()))),
            None => Err(ParquetError::General("the encoding thread has already stopped".into())),
        }
    }

    /// Writes the last row group; the file writer, for the footer.
    pub(super) fn finish(mut self) -> std::result::Result<FileWriter, ParquetError> {
        self.flush_group()?;
        self.join()
    }
}

impl Drop for CooWriter {
    fn drop(&mut self) {
        // An unfinished sink: stop the thread before its file goes.
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The encoding thread of [`CooWriter`]: row groups into the file.
#[derive(Debug)]
pub(super) struct Encoder {
    pub(super) file: FileWriter,
    pub(super) descr: SchemaDescPtr,
    pub(super) props: WriterPropertiesPtr,
    /// `props` with the value column dictionary-encoded: for row groups whose values repeat
    /// (see [`few_distinct`]).
    pub(super) value_dict: WriterPropertiesPtr,
    pub(super) row_labels: Option<Vec<ByteArray>>,
    pub(super) col_labels: Option<Vec<ByteArray>>,
    /// Encoded column chunks, one buffer per column, kept from one row group to the next.
    pub(super) bufs: Vec<Vec<u8>>,
}

impl Encoder {
    fn run(
        mut self,
        groups: mpsc::Receiver<Group>,
        spare: mpsc::Sender<Group>,
    ) -> std::result::Result<FileWriter, ParquetError> {
        for mut g in groups {
            self.write_group(&g)?;
            for c in [&mut g.rows, &mut g.cols, &mut g.values] {
                c.clear();
            }
            // The sink may have finished already.
            let _ = spare.send(g);
        }
        Ok(self.file)
    }

    /// One row group, its column chunks encoded and compressed in parallel.
    fn write_group(&mut self, g: &Group) -> std::result::Result<(), ParquetError> {
        let mut extra = Vec::new();
        if let Some(t) = &self.row_labels {
            extra.push(g.rows.labels(t));
        }
        if let Some(t) = &self.col_labels {
            extra.push(g.cols.labels(t));
        }
        let columns: Vec<&Column> = [&g.rows, &g.cols, &g.values].into_iter().chain(&extra).collect();
        self.bufs.resize_with(columns.len(), Vec::new);
        let value_props = if few_distinct(&g.values) {
            &self.value_dict
        } else {
            &self.props
        };
        let jobs: Vec<_> = columns
            .iter()
            .zip(self.bufs.iter_mut())
            .enumerate()
            .map(|(i, (&col, buf))| {
                let props = if i == 2 { value_props } else { &self.props };
                (self.descr.column(i), props.clone(), col, std::mem::take(buf))
            })
            .collect();
        let encoded = std::thread::scope(|s| {
            let mut jobs = jobs.into_iter();
            let first = jobs.next();
            let handles: Vec<_> = jobs
                .map(|(descr, props, col, buf)| {
                    std::thread::Builder::new()
                        .name("vecfmt-parquet".into())
                        .spawn_scoped(s, move || encode_column(descr, props, col, buf))
                        .map_err(|e| ParquetError::General(format!("cannot start an encoding thread: {e}")))
                })
                .collect();
            let mut out = Vec::with_capacity(handles.len() + 1);
            if let Some((descr, props, col, buf)) = first {
                out.push(encode_column(descr, props, col, buf));
            }
            for h in handles {
                out.push(h.and_then(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(ParquetError::General("an encoding thread panicked".into())))
                }));
            }
            out
        });
        let mut group = self.file.next_row_group()?;
        for (k, r) in encoded.into_iter().enumerate() {
            let (buf, close) = r?;
            let bytes = bytes::Bytes::from(buf);
            group.append_column(&bytes, close)?;
            self.bufs[k] = Vec::from(bytes);
        }
        group.close()?;
        Ok(())
    }
}

/// Whether a row group's values repeat enough to dictionary-encode: at most one distinct
/// value in 8 among its first 4,096. Counts do (M1's 10 M values hold 20 distinct numbers:
/// the dictionary pages take 3 MB less than plain and zstd, and less time); measurements and
/// embeddings do not, and there the dictionary would be given up after 1 MB of it, the values
/// hashed until then for nothing.
fn few_distinct(values: &Column) -> bool {
    const PROBE: usize = 4096;
    let mut bits: Vec<u64> = match values {
        Column::I32(v) => v.iter().take(PROBE).map(|&x| x as u32 as u64).collect(),
        Column::I64(v) => v.iter().take(PROBE).map(|&x| x as u64).collect(),
        Column::F32(v) => v.iter().take(PROBE).map(|x| x.to_bits() as u64).collect(),
        Column::F64(v) => v.iter().take(PROBE).map(|x| x.to_bits()).collect(),
        Column::Bytes(_) => return false,
    };
    let n = bits.len();
    bits.sort_unstable();
    bits.dedup();
    bits.len() * 8 <= n
}

/// One column chunk, encoded and compressed into `buf` (emptied first).
fn encode_column(
    descr: ColumnDescPtr,
    props: WriterPropertiesPtr,
    col: &Column,
    mut buf: Vec<u8>,
) -> std::result::Result<(Vec<u8>, ColumnCloseResult), ParquetError> {
    buf.clear();
    let mut sink = TrackedWrite::new(buf);
    let close = {
        let w = get_column_writer(descr, props, Box::new(SerializedPageWriter::new(&mut sink)));
        match (w, col) {
            (ColumnWriter::Int32ColumnWriter(mut w), Column::I32(v)) => {
                w.write_batch(v, None, None)?;
                w.close()?
            }
            (ColumnWriter::Int64ColumnWriter(mut w), Column::I64(v)) => {
                w.write_batch(v, None, None)?;
                w.close()?
            }
            (ColumnWriter::FloatColumnWriter(mut w), Column::F32(v)) => {
                w.write_batch(v, None, None)?;
                w.close()?
            }
            (ColumnWriter::DoubleColumnWriter(mut w), Column::F64(v)) => {
                w.write_batch(v, None, None)?;
                w.close()?
            }
            (ColumnWriter::ByteArrayColumnWriter(mut w), Column::Bytes(v)) => {
                w.write_batch(v, None, None)?;
                w.close()?
            }
            _ => {
                return Err(ParquetError::General(
                    "a column's type does not match the schema".into(),
                ))
            }
        }
    };
    Ok((sink.into_inner()?, close))
}

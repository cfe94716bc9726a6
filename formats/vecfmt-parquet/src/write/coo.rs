//! The COO layout's writer: flat required columns straight into Parquet's column writers,
//! each row group encoded (its column chunks compressed in parallel) on a thread of its own
//! while the sink gathers the next one.

use std::fs::File;
use std::io::BufWriter;
use std::sync::mpsc;

use bytes::Bytes;
use parquet::basic::{Compression, Encoding, EncodingMask, PageType};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::{get_column_writer, ColumnCloseResult, ColumnWriter};
use parquet::data_type::ByteArray;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ColumnChunkMetaData, PageEncodingStats};
use parquet::file::properties::{EnabledStatistics, WriterPropertiesPtr};
use parquet::file::statistics::{Statistics, ValueStatistics};
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
    fn labels(&self, table: &LabelTable) -> Column {
        Column::Bytes(match self {
            Column::I32(c) => c.iter().map(|&k| table.byte_array(k as usize)).collect(),
            Column::I64(c) => c.iter().map(|&k| table.byte_array(k as usize)).collect(),
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
    pub(super) row_labels: Option<LabelTable>,
    pub(super) col_labels: Option<LabelTable>,
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
        let value_props = if few_distinct(&g.values) {
            &self.value_dict
        } else {
            &self.props
        };
        // Label columns: their dictionary pages written directly, unless the codec is one
        // this path does not compress with; then as strings through the column writer.
        let mut jobs: Vec<Job<'_>> = vec![Job::Plain(&g.rows), Job::Plain(&g.cols), Job::Plain(&g.values)];
        let mut strings = Vec::new();
        for (table, index) in [(self.row_labels.as_mut(), &g.rows), (self.col_labels.as_mut(), &g.cols)] {
            if let Some(t) = table {
                let column = self.descr.column(jobs.len());
                if dict_codec(&self.props, &column) {
                    jobs.push(Job::Labels(t, index));
                } else {
                    strings.push(index.labels(t));
                    jobs.push(Job::Strings(strings.len() - 1));
                }
            }
        }
        self.bufs.resize_with(jobs.len(), Vec::new);
        let strings = &strings;
        let jobs: Vec<_> = jobs
            .into_iter()
            .zip(self.bufs.iter_mut())
            .enumerate()
            .map(|(i, (job, buf))| {
                let props = if i == 2 { value_props } else { &self.props };
                (self.descr.column(i), props.clone(), job, std::mem::take(buf))
            })
            .collect();
        let run = move |(descr, props, job, buf): (ColumnDescPtr, WriterPropertiesPtr, Job<'_>, Vec<u8>)| match job {
            Job::Plain(col) => encode_column(descr, props, col, buf),
            Job::Strings(k) => encode_column(descr, props, &strings[k], buf),
            Job::Labels(table, index) => encode_dict_column(descr, &props, table, index, buf)
                .unwrap_or_else(|| Err(ParquetError::General("a label column's codec changed".into()))),
        };
        let encoded = std::thread::scope(|s| {
            let mut jobs = jobs.into_iter();
            let first = jobs.next();
            let handles: Vec<_> = jobs
                .map(|job| {
                    std::thread::Builder::new()
                        .name("vecfmt-parquet".into())
                        .spawn_scoped(s, move || run(job))
                        .map_err(|e| ParquetError::General(format!("cannot start an encoding thread: {e}")))
                })
                .collect();
            let mut out = Vec::with_capacity(handles.len() + 1);
            if let Some(job) = first {
                out.push(run(job));
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

/// One column chunk to encode.
enum Job<'a> {
    /// A column as it is.
    Plain(&'a Column),
    /// Labels as strings (one of the group's string columns), through the column writer.
    Strings(usize),
    /// Labels by index, written with their dictionary.
    Labels(&'a mut LabelTable, &'a Column),
}

/// Whether a label column's codec is one [`encode_dict_column`] compresses with.
fn dict_codec(props: &WriterPropertiesPtr, descr: &ColumnDescPtr) -> bool {
    matches!(
        props.compression(descr.path()),
        Compression::UNCOMPRESSED | Compression::ZSTD(_)
    )
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

/// The labels of one axis, and the scratch that maps a row group's indices to the keys of
/// its dictionary page without hashing a string. About 28 bytes per label beside its text.
#[derive(Debug)]
pub(super) struct LabelTable {
    /// Every label's bytes, one after the other; label `k` is `text[start[k]..start[k + 1]]`.
    text: Bytes,
    start: Vec<u64>,
    /// Each label's place in byte order, so a row group's min/max statistics compare numbers.
    rank: Vec<u32>,
    /// Per label: the row group (its generation number) that last gave it a key, and that
    /// key (side by side: one cache miss per record, not two).
    seen: Vec<[u32; 2]>,
    generation: u32,
}

impl LabelTable {
    pub(super) fn new(labels: &[String]) -> LabelTable {
        let mut text = Vec::with_capacity(labels.iter().map(String::len).sum());
        let mut start = Vec::with_capacity(labels.len() + 1);
        start.push(0);
        for l in labels {
            text.extend_from_slice(l.as_bytes());
            start.push(text.len() as u64);
        }
        let mut order: Vec<u32> = (0..labels.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| labels[a as usize].as_bytes().cmp(labels[b as usize].as_bytes()));
        let mut rank = vec![0; labels.len()];
        for (r, &k) in order.iter().enumerate() {
            rank[k as usize] = r as u32;
        }
        LabelTable {
            text: Bytes::from(text),
            start,
            rank,
            seen: vec![[0, 0]; labels.len()],
            generation: 0,
        }
    }

    fn label(&self, k: usize) -> &[u8] {
        &self.text[self.start[k] as usize..self.start[k + 1] as usize]
    }

    /// Label `k` as a Parquet value (sharing the table's bytes).
    fn byte_array(&self, k: usize) -> ByteArray {
        ByteArray::from(self.text.slice(self.start[k] as usize..self.start[k + 1] as usize))
    }

    /// The dictionary of a row group's label column: the labels its indices use, in order of
    /// first use; and each record's key into it.
    fn dictionary(&mut self, index: &Column) -> (Vec<u32>, Vec<u32>) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Once in 4 billion row groups: forget the old stamps.
            self.seen.fill([0, 0]);
            self.generation = 1;
        }
        let (g, seen) = (self.generation, &mut self.seen);
        let mut dict = Vec::new();
        let mut one = |i: usize| {
            let s = &mut seen[i];
            if s[0] != g {
                *s = [g, dict.len() as u32];
                dict.push(i as u32);
            }
            s[1]
        };
        let keys = match index {
            Column::I32(c) => c.iter().map(|&i| one(i as usize)).collect(),
            Column::I64(c) => c.iter().map(|&i| one(i as usize)).collect(),
            _ => unreachable!("index columns are integers"),
        };
        (dict, keys)
    }
}

/// Keys per data page of a label column.
const DICT_PAGE_VALUES: usize = 1 << 17;

/// A label column chunk written as Parquet writes a dictionary-encoded column, but with the
/// dictionary known in advance: a dictionary page of the labels this row group uses (PLAIN),
/// then data pages of their keys (RLE_DICTIONARY: the bit width, then the RLE/bit-packed
/// hybrid of `parquet-format`'s Encodings.md). No string is hashed or compared per record;
/// the statistics come from the dictionary. `None` when the codec is one this path does not
/// compress with (the caller then uses the column writer).
fn encode_dict_column(
    descr: ColumnDescPtr,
    props: &WriterPropertiesPtr,
    table: &mut LabelTable,
    index: &Column,
    buf: Vec<u8>,
) -> Option<std::result::Result<(Vec<u8>, ColumnCloseResult), ParquetError>> {
    let codec = props.compression(descr.path());
    let level = match codec {
        Compression::UNCOMPRESSED => None,
        Compression::ZSTD(l) => Some(l.compression_level()),
        _ => return None,
    };
    let (dict, keys) = table.dictionary(index);
    Some(write_dict_chunk(descr, props, codec, level, table, &dict, &keys, buf))
}

#[expect(clippy::too_many_arguments, reason = "one column chunk's parts")]
fn write_dict_chunk(
    descr: ColumnDescPtr,
    props: &WriterPropertiesPtr,
    codec: Compression,
    level: Option<i32>,
    labels: &LabelTable,
    dict: &[u32],
    keys: &[u32],
    mut buf: Vec<u8>,
) -> std::result::Result<(Vec<u8>, ColumnCloseResult), ParquetError> {
    let compress = |raw: Vec<u8>| -> std::result::Result<(Bytes, usize), ParquetError> {
        let n = raw.len();
        Ok(match level {
            None => (Bytes::from(raw), n),
            Some(l) => (
                Bytes::from(zstd::bulk::compress(&raw, l).map_err(|e| ParquetError::External(Box::new(e)))?),
                n,
            ),
        })
    };
    buf.clear();
    let mut sink = TrackedWrite::new(buf);
    let (mut compressed, mut uncompressed, mut data_offset, mut dict_offset) = (0u64, 0u64, None, None);
    let mut encoding_stats = Vec::new();
    {
        let mut pages = SerializedPageWriter::new(&mut sink);
        let mut put = |page: CompressedPage| -> std::result::Result<(), ParquetError> {
            let spec = pages.write_page(page)?;
            compressed += spec.compressed_size as u64;
            uncompressed += spec.uncompressed_size as u64;
            match spec.page_type {
                PageType::DICTIONARY_PAGE => dict_offset = Some(spec.offset as i64),
                _ => {
                    data_offset.get_or_insert(spec.offset as i64);
                }
            }
            Ok(())
        };
        // The dictionary page: each label as PLAIN BYTE_ARRAY (4-byte length, bytes).
        let mut plain = Vec::with_capacity(dict.iter().map(|&i| labels.label(i as usize).len() + 4).sum());
        for &i in dict {
            let l = labels.label(i as usize);
            plain.extend_from_slice(&(l.len() as u32).to_le_bytes());
            plain.extend_from_slice(l);
        }
        let (data, n) = compress(plain)?;
        put(CompressedPage::new(
            Page::DictionaryPage {
                buf: data,
                num_values: dict.len() as u32,
                encoding: Encoding::PLAIN,
                is_sorted: false,
            },
            n,
        ))?;
        encoding_stats.push(PageEncodingStats {
            page_type: PageType::DICTIONARY_PAGE,
            encoding: Encoding::PLAIN,
            count: 1,
        });
        let bit_width = (u32::BITS - (dict.len().saturating_sub(1) as u32).leading_zeros()) as u8;
        let mut pages_written = 0;
        for page in keys.chunks(DICT_PAGE_VALUES) {
            let mut raw = vec![bit_width];
            rle_hybrid(page, bit_width, &mut raw);
            let (data, n) = compress(raw)?;
            put(CompressedPage::new(
                Page::DataPage {
                    buf: data,
                    num_values: page.len() as u32,
                    encoding: Encoding::RLE_DICTIONARY,
                    def_level_encoding: Encoding::RLE,
                    rep_level_encoding: Encoding::RLE,
                    statistics: None,
                },
                n,
            ))?;
            pages_written += 1;
        }
        encoding_stats.push(PageEncodingStats {
            page_type: PageType::DATA_PAGE,
            encoding: Encoding::RLE_DICTIONARY,
            count: pages_written,
        });
    }
    let mut builder = ColumnChunkMetaData::builder(descr.clone())
        .set_compression(codec)
        .set_encodings_mask(EncodingMask::new_from_encodings(
            [Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY].iter(),
        ))
        .set_page_encoding_stats(encoding_stats)
        .set_total_compressed_size(compressed as i64)
        .set_total_uncompressed_size(uncompressed as i64)
        .set_num_values(keys.len() as i64)
        .set_data_page_offset(data_offset.unwrap_or(0))
        .set_dictionary_page_offset(dict_offset);
    if props.statistics_enabled(descr.path()) != EnabledStatistics::None {
        // Compared by rank: no string comparison per dictionary entry.
        let by_rank = |i: &&u32| labels.rank[**i as usize];
        let min = dict.iter().min_by_key(by_rank).map(|&i| labels.byte_array(i as usize));
        let max = dict.iter().max_by_key(by_rank).map(|&i| labels.byte_array(i as usize));
        let stats = ValueStatistics::new(min, max, None, Some(0), false)
            .with_backwards_compatible_min_max(descr.sort_order().is_signed());
        builder = builder.set_statistics(Statistics::ByteArray(stats));
    }
    let metadata = builder.build()?;
    let out = sink.into_inner()?;
    let close = ColumnCloseResult {
        bytes_written: out.len() as u64,
        rows_written: keys.len() as u64,
        metadata,
        bloom_filter: None,
        column_index: None,
        offset_index: None,
    };
    Ok((out, close))
}

/// Appends `values` (each below 2^`bit_width`) in the RLE/bit-packed hybrid encoding: runs of
/// 8 or more equal values as RLE runs, the rest bit-packed in groups of 8 (the last group
/// padded with zeros; the page's value count says where it ends).
fn rle_hybrid(values: &[u32], bit_width: u8, out: &mut Vec<u8>) {
    let run_at = |i: usize, cap: usize| {
        let v = values[i];
        values[i..].iter().take(cap).take_while(|&&x| x == v).count()
    };
    let value_bytes = (bit_width as usize).div_ceil(8);
    let mut i = 0;
    while i < values.len() {
        let run = run_at(i, usize::MAX);
        if run >= 8 {
            uleb128((run as u64) << 1, out);
            out.extend_from_slice(&values[i].to_le_bytes()[..value_bytes]);
            i += run;
            continue;
        }
        // Groups of 8 until a run of 8 starts at a group's start, or the end.
        let mut j = i;
        loop {
            j += 8;
            if j >= values.len() || run_at(j, 8) >= 8 {
                break;
            }
        }
        let end = j.min(values.len());
        let groups = (j - i) / 8;
        uleb128(((groups as u64) << 1) | 1, out);
        // Each group of 8 values is `bit_width` bytes, packed least significant bit first;
        // the last group is padded with zeros.
        out.reserve(groups * bit_width as usize);
        let mut group = [0u32; 8];
        for start in (i..i + groups * 8).step_by(8) {
            let have = end.saturating_sub(start).min(8);
            group[..have].copy_from_slice(&values[start..start + have]);
            group[have..].fill(0);
            let (mut acc, mut bits, mut bytes) = (0u64, 0u32, [0u8; 32]);
            let mut n = 0;
            for &v in &group {
                acc |= (v as u64) << bits;
                bits += bit_width as u32;
                if bits >= 32 {
                    bytes[n..n + 4].copy_from_slice(&(acc as u32).to_le_bytes());
                    n += 4;
                    acc >>= 32;
                    bits -= 32;
                }
            }
            while bits > 0 {
                bytes[n] = acc as u8;
                n += 1;
                acc >>= 8;
                bits -= 8;
            }
            out.extend_from_slice(&bytes[..n]);
        }
        i = end;
    }
}

fn uleb128(mut x: u64, out: &mut Vec<u8>) {
    loop {
        let b = (x & 0x7f) as u8;
        x >>= 7;
        if x == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

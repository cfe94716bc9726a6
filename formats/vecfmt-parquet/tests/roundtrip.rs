//! Write with ParquetSink, read with ParquetSource: the same header and bit-identical values,
//! for every dtype and both layouts; row groups follow the source's blocks; bad files fail
//! cleanly.

mod common;

use std::fs;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use common::drain;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use vecfmt::stream::{MatrixHeader, MatrixSink, MatrixSource, RowBlock};
use vecfmt::{DType, Error, ValueVec};
use vecfmt_parquet::{Layout, ParquetSink, ParquetSource, ReadOptions, WriteOptions};
use vecfmt_testkit::{entries_of, write_blocks, Exact};

/// Blocks of a deterministic matrix: rows `0, 3, 6, ...` below `n_rows - 2` (so the last
/// rows are empty), `row % 5 + 1` entries each at columns `row * 7 + 11 * j mod (n_cols - 3)`
/// (the last columns stay empty), values with fractions, negatives and -0.0.
fn blocks(dtype: DType, n_rows: u64, n_cols: u64, rows_per_block: usize) -> Vec<RowBlock> {
    let rows: Vec<u64> = (0..n_rows.saturating_sub(2)).step_by(3).collect();
    rows.chunks(rows_per_block)
        .map(|chunk| {
            let mut b = RowBlock::new(dtype);
            let mut vals = Vec::new();
            for &r in chunk {
                let mut cols: Vec<u64> = (0..(r % 5 + 1)).map(|j| (r * 7 + 11 * j) % (n_cols - 3)).collect();
                cols.sort_unstable();
                cols.dedup();
                for &c in &cols {
                    let k = (r * 31 + c) as i64;
                    vals.push(if k % 13 == 0 { -0.0 } else { (k % 97 - 40) as f64 * 0.5 });
                }
                b.rows.push(r);
                b.indices.extend(&cols);
                b.indptr.push(b.indices.len() as u64);
            }
            b.values = match dtype {
                DType::F32 => ValueVec::F32(vals.iter().map(|&v| v as f32).collect()),
                DType::F64 => ValueVec::F64(vals.iter().map(|&v| v / 3.0).collect()),
                DType::I32 => ValueVec::I32(vals.iter().map(|&v| (v * 2.0) as i32).collect()),
                DType::I64 => ValueVec::I64(vals.iter().map(|&v| (v * 2.0) as i64 * 1_000_000_007).collect()),
                DType::U32 => ValueVec::U32(vals.iter().map(|&v| (v.abs() * 2.0) as u32 + u32::MAX / 2).collect()),
                DType::U64 => ValueVec::U64(vals.iter().map(|&v| (v.abs() * 2.0) as u64 + u64::MAX / 2).collect()),
            };
            b
        })
        .collect()
}

fn write(path: &Path, header: &MatrixHeader, blocks: &[RowBlock], opts: &WriteOptions) {
    write_blocks(ParquetSink::create(path, header, opts).unwrap(), blocks).unwrap();
}

fn labelled(dtype: DType, n_rows: u64, n_cols: u64) -> MatrixHeader {
    let mut h = MatrixHeader::new(dtype, n_rows, n_cols);
    h.row_labels = Some((0..n_rows).map(|r| format!("word{r}")).collect());
    h.col_labels = Some((0..n_cols).map(|c| format!("ctx-{c}-é")).collect());
    h.metadata = Some(serde_json::json!({"corpus": "test", "window": 10}));
    h
}

fn assert_same(path: &Path, header: &MatrixHeader, blocks: &[RowBlock]) {
    let mut src = ParquetSource::open(path, &ReadOptions::default()).unwrap();
    assert_eq!(src.header(), header);
    assert!(src.yields_rows(), "a file vecfmt wrote reads back as rows");
    let (got, _) = drain(&mut src).unwrap();
    let want = entries_of(blocks);
    assert_eq!(got.len(), want.len());
    for (r, c, v) in want {
        let key = (r, c);
        assert_eq!(Exact(got[&key]), Exact(v), "value at {key:?}");
        assert_eq!(got[&key].to_json(), v.to_json(), "value at {key:?}");
    }
}

#[test]
fn coo_round_trips_every_dtype_with_labels_metadata_and_empty_trailing_rows() {
    let dir = tempfile::tempdir().unwrap();
    for dtype in DType::ALL {
        for with_labels in [false, true] {
            let path = dir.path().join(format!("{dtype}-{with_labels}.parquet"));
            let header = if with_labels {
                labelled(dtype, 50, 40)
            } else {
                MatrixHeader::new(dtype, 50, 40)
            };
            let bl = blocks(dtype, 50, 40, 4);
            write(&path, &header, &bl, &WriteOptions::default());
            assert_same(&path, &header, &bl);
        }
    }
}

#[test]
fn list_layout_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    for dtype in [DType::F32, DType::I64, DType::U64] {
        for header in [MatrixHeader::new(dtype, 30, 25), labelled(dtype, 30, 25)] {
            let path = dir.path().join(format!("{dtype}.parquet"));
            let bl = blocks(dtype, 30, 25, 3);
            write(&path, &header, &bl, &WriteOptions::layout(Layout::List));
            assert_same(&path, &header, &bl);
            // One record per non-empty row.
            let reader = SerializedFileReader::new(fs::File::open(&path).unwrap()).unwrap();
            let records = reader.metadata().file_metadata().num_rows() as usize;
            assert_eq!(records, bl.iter().map(|b| b.rows.len()).sum::<usize>());
        }
    }
}

/// Regression: the list layout was read in batches of 65,536 records whatever their width, and
/// a record is a whole row; a co-occurrence matrix (rows from one entry to every column) then
/// took 2 GiB at `--memory 32M`. Now each row group is read in batches of about `batch_size`
/// entries, which the yielded blocks show.
#[test]
fn list_layout_reads_wide_rows_in_batches_of_about_batch_size_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.parquet");
    let (n_rows, n_cols) = (400u64, 1000u64);
    // Row r has 1000 / (r + 1) entries: the first rows are whole, the rest short.
    let mut bl = Vec::new();
    for chunk in (0..n_rows).collect::<Vec<_>>().chunks(5) {
        let mut b = RowBlock::new(DType::F64);
        let mut vals = Vec::new();
        for &r in chunk {
            let step = r + 1;
            let cols: Vec<u64> = (0..n_cols).step_by(step as usize).collect();
            vals.extend(cols.iter().map(|&c| (r * 1000 + c) as f64 + 0.25));
            b.rows.push(r);
            b.indices.extend(&cols);
            b.indptr.push(b.indices.len() as u64);
        }
        b.values = ValueVec::F64(vals);
        bl.push(b);
    }
    let header = labelled(DType::F64, n_rows, n_cols);
    let opts = WriteOptions {
        row_group_entries: 1000,
        ..WriteOptions::layout(Layout::List)
    };
    write(&path, &header, &bl, &opts);
    let groups = SerializedFileReader::new(fs::File::open(&path).unwrap())
        .unwrap()
        .metadata()
        .num_row_groups();
    assert!(groups > 3, "{groups} row groups");
    assert_same(&path, &header, &bl);

    let batch = 100;
    let mut src = ParquetSource::open(
        &path,
        &ReadOptions {
            batch_size: batch,
            ..ReadOptions::default()
        },
    )
    .unwrap();
    let (mut blocks, mut entries) = (0, 0);
    while let Some(b) = src.next_block().unwrap() {
        let vecfmt::stream::Block::Rows(b) = b else {
            panic!("a file vecfmt wrote reads back as rows")
        };
        // A block closes once it holds `batch` entries; past that only by the rows of one
        // batch of records (at most `batch` entries' worth, or one whole row).
        assert!(b.nnz() <= 2 * batch + n_cols as usize, "a block of {} entries", b.nnz());
        blocks += 1;
        entries += b.nnz();
    }
    assert_eq!(entries, bl.iter().map(RowBlock::nnz).sum::<usize>());
    assert!(blocks > 10);
}

#[test]
fn row_groups_close_at_block_boundaries_with_statistics_and_zstd() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.parquet");
    let header = MatrixHeader::new(DType::F32, 3000, 100);
    let bl = blocks(DType::F32, 3000, 100, 10);
    let opts = WriteOptions {
        row_group_entries: 100,
        ..WriteOptions::default()
    };
    write(&path, &header, &bl, &opts);
    let reader = SerializedFileReader::new(fs::File::open(&path).unwrap()).unwrap();
    let md = reader.metadata();
    // Block boundaries, as entry counts from the start.
    let mut boundaries = vec![0i64];
    for b in &bl {
        boundaries.push(boundaries.last().unwrap() + b.nnz() as i64);
    }
    let mut at = 0i64;
    assert!(md.num_row_groups() > 5);
    for g in md.row_groups() {
        at += g.num_rows();
        assert!(
            boundaries.contains(&at),
            "a row group ends inside a block (at record {at})"
        );
        assert!(g.num_rows() >= 100 || at == *boundaries.last().unwrap());
        let row = g.column(0);
        assert_eq!(row.compression(), parquet::basic::Compression::ZSTD(Default::default()));
        let stats = row.statistics().expect("row statistics");
        assert!(stats.min_bytes_opt().is_some() && stats.max_bytes_opt().is_some());
    }
    assert_eq!(at, *boundaries.last().unwrap());
    assert_same(&path, &header, &bl);
}

#[test]
fn repeating_values_are_dictionary_encoded_per_row_group_bit_for_bit() {
    use parquet::basic::Encoding;
    let dir = tempfile::tempdir().unwrap();
    for dtype in [DType::F32, DType::F64, DType::I64, DType::U32] {
        let path = dir.path().join(format!("{dtype}.parquet"));
        let (n_rows, per_row) = (400u64, 25u64);
        let header = MatrixHeader::new(dtype, n_rows, 1000);
        // Two blocks of 5,000 entries: the first repeats 7 numbers (with -0.0, 0.0 and a NaN
        // with a payload among the floats), the second holds distinct numbers.
        let bl: Vec<RowBlock> = (0..2u64)
            .map(|half| {
                let mut b = RowBlock::new(dtype);
                let mut k = Vec::new();
                for r in half * n_rows / 2..(half + 1) * n_rows / 2 {
                    b.rows.push(r);
                    for j in 0..per_row {
                        b.indices.push(j * 37 + r % 7);
                        k.push(if half == 0 { (r + j) % 7 } else { r * per_row + j + 7 });
                    }
                    b.indptr.push(b.indices.len() as u64);
                }
                let f = |k: u64| match k {
                    0 => -0.0,
                    1 => 0.0,
                    2 => f64::from_bits(0x7ff8_0000_0000_0abc),
                    k => k as f64 * 0.25,
                };
                b.values = match dtype {
                    DType::F32 => ValueVec::F32(
                        k.iter()
                            .map(|&k| {
                                if k == 2 {
                                    f32::from_bits(0x7fc0_0abc)
                                } else {
                                    f(k) as f32
                                }
                            })
                            .collect(),
                    ),
                    DType::F64 => ValueVec::F64(k.iter().map(|&k| f(k)).collect()),
                    DType::I64 => ValueVec::I64(k.iter().map(|&k| k as i64 * -1_000_000_007).collect()),
                    _ => ValueVec::U32(k.iter().map(|&k| u32::MAX - k as u32).collect()),
                };
                b
            })
            .collect();
        let opts = WriteOptions {
            row_group_entries: 5000,
            ..WriteOptions::default()
        };
        write(&path, &header, &bl, &opts);
        let reader = SerializedFileReader::new(fs::File::open(&path).unwrap()).unwrap();
        let groups = reader.metadata().row_groups();
        assert_eq!(groups.len(), 2, "{dtype}");
        let dict = |g: usize| groups[g].column(2).encodings().any(|e| e == Encoding::RLE_DICTIONARY);
        assert!(dict(0), "{dtype}: repeating values are dictionary-encoded");
        assert!(!dict(1), "{dtype}: distinct values are not");
        assert!(!groups[0].column(1).encodings().any(|e| e == Encoding::RLE_DICTIONARY));
        assert_same(&path, &header, &bl);
    }
}

#[test]
fn an_unfinished_sink_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.parquet");
    let header = MatrixHeader::new(DType::F64, 10, 10);
    {
        let mut sink = ParquetSink::create(&path, &header, &WriteOptions::default()).unwrap();
        sink.write_rows(&blocks(DType::F64, 10, 10, 2)[0]).unwrap();
        // A row out of range is refused, and the sink is dropped without finish.
        let mut bad = RowBlock::new(DType::F64);
        bad.rows.push(10);
        bad.indices.push(0);
        bad.indptr.push(1);
        bad.values = ValueVec::F64(vec![1.0]);
        assert!(matches!(sink.write_rows(&bad), Err(Error::RowOutOfRange { .. })));
    }
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no output and no temporary file"
    );
}

/// A file that says it is sorted (vecfmt.sorted) but is not: an error, not wrong rows.
#[test]
fn a_false_sort_declaration_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("liar.parquet");
    let schema = Arc::new(Schema::new(vec![
        Field::new("row", DataType::Int64, false),
        Field::new("col", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
    ]));
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(vec![KeyValue::new("vecfmt.sorted".into(), "row,col".to_string())]))
        .build();
    let mut w = ArrowWriter::try_new(fs::File::create(&path).unwrap(), schema.clone(), Some(props)).unwrap();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![0, 2, 1])),
            Arc::new(Int64Array::from(vec![0, 0, 0])),
            Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0])),
        ],
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let mut src = ParquetSource::open(&path, &ReadOptions::default()).unwrap();
    let msg = drain(&mut src).unwrap_err().to_string();
    assert!(
        msg.contains("liar.parquet") && msg.contains("not sorted by row"),
        "{msg}"
    );
}

/// Damaged bytes anywhere in a file give an error naming it, never a panic.
#[test]
fn damaged_files_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.parquet");
    let header = labelled(DType::F32, 200, 50);
    write(
        &good,
        &header,
        &blocks(DType::F32, 200, 50, 7),
        &WriteOptions::default(),
    );
    let bytes = fs::read(&good).unwrap();
    let bad = dir.path().join("bad.parquet");
    let mut failures = 0;
    for cut in [
        0,
        3,
        4,
        8,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 9,
        bytes.len() - 1,
    ] {
        fs::write(&bad, &bytes[..cut]).unwrap();
        let res = ParquetSource::open(&bad, &ReadOptions::default()).and_then(|mut s| drain(&mut s).map(|_| ()));
        let msg = res.expect_err("a truncated file fails").to_string();
        assert!(msg.contains("bad.parquet"), "{msg}");
        failures += 1;
    }
    // Flip bytes through the data pages (before the footer).
    let data_end =
        bytes.len() - 8 - u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap()) as usize;
    for pos in (4..data_end).step_by(97) {
        let mut b = bytes.clone();
        b[pos] ^= 0x5a;
        fs::write(&bad, &b).unwrap();
        let res = ParquetSource::open(&bad, &ReadOptions::default()).and_then(|mut s| drain(&mut s).map(|_| ()));
        if let Err(e) = res {
            assert!(e.to_string().contains("bad.parquet"), "{e}");
            failures += 1;
        }
    }
    assert!(failures > 8);
}

#[test]
fn string_labels_count_against_the_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("words.parquet");
    let schema = Arc::new(Schema::new(vec![
        Field::new("row", DataType::Utf8, false),
        Field::new("col", DataType::Int64, false),
        Field::new("value", DataType::Float64, false),
    ]));
    let mut w = ArrowWriter::try_new(fs::File::create(&path).unwrap(), schema.clone(), None).unwrap();
    let n = 5000;
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(arrow_array::StringArray::from_iter_values(
                (0..n).map(|k| format!("label number {k}")),
            )),
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
            Arc::new(Float64Array::from_iter_values((0..n).map(|k| k as f64))),
        ],
    )
    .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let small = ReadOptions {
        memory: 100_000,
        ..ReadOptions::default()
    };
    let err = ParquetSource::open(&path, &small).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()) && msg.contains("over the budget of 100000 bytes"),
        "{msg}"
    );
    let src = ParquetSource::open(&path, &ReadOptions::default()).unwrap();
    assert_eq!(src.header().row_labels.as_ref().unwrap()[4999], "label number 4999");
    assert!(
        src.yields_rows(),
        "labels in first-appearance order of sorted records give rows"
    );
}

/// Labels too large for one key-value entry are split into parts; every label survives, those
/// of empty rows and columns included, in both layouts.
#[test]
fn labels_beyond_one_metadata_entry_are_split_into_parts() {
    let dir = tempfile::tempdir().unwrap();
    let header = labelled(DType::F64, 30, 25);
    let bl = blocks(DType::F64, 30, 25, 4);
    for layout in [Layout::Coo, Layout::List] {
        let opts = WriteOptions {
            labels_in_metadata_max: 100,
            labels_part_max: 64,
            ..WriteOptions::layout(layout)
        };
        let path = dir.path().join(format!("{layout:?}.parquet"));
        write(&path, &header, &bl, &opts);
        let reader = SerializedFileReader::new(fs::File::open(&path).unwrap()).unwrap();
        let kv = reader.metadata().file_metadata().key_value_metadata().unwrap();
        let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone());
        assert_eq!(get("vecfmt.row_labels"), None);
        let n: usize = get("vecfmt.row_labels.parts").unwrap().parse().unwrap();
        assert!(n > 3, "{n} parts");
        for k in 0..n {
            assert!(get(&format!("vecfmt.row_labels.{k}")).unwrap().len() <= 64);
        }
        assert!(get("vecfmt.col_labels.parts").is_some());
        assert_same(&path, &header, &bl);
    }
    // A part missing: a clear error naming the key.
    let mut kv = vec![KeyValue::new("vecfmt.row_labels.parts".to_string(), "2".to_string())];
    kv.push(KeyValue::new("vecfmt.row_labels.0".to_string(), "[\"a\"]".to_string()));
    let path = dir.path().join("missing_part.parquet");
    {
        let schema = Arc::new(Schema::new(vec![
            Field::new("row", DataType::Int64, false),
            Field::new("col", DataType::Int64, false),
            Field::new("value", DataType::Float64, false),
        ]));
        let props = WriterProperties::builder().set_key_value_metadata(Some(kv)).build();
        let mut w = ArrowWriter::try_new(fs::File::create(&path).unwrap(), schema.clone(), Some(props)).unwrap();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![0i64])),
                Arc::new(Int64Array::from(vec![0i64])),
                Arc::new(Float64Array::from(vec![1.0])),
            ],
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }
    let err = ParquetSource::open(&path, &ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing_part.parquet") && err.contains("vecfmt.row_labels.1 is missing"),
        "{err}"
    );
}

/// Labels too large for the footer: the list layout writes a record for every row so the
/// `label` column keeps every label; COO keeps the labels of rows and columns with entries,
/// and the others read back as their index.
#[test]
fn labels_beyond_the_footer_limit() {
    let dir = tempfile::tempdir().unwrap();
    let header = labelled(DType::F64, 30, 25);
    let bl = blocks(DType::F64, 30, 25, 4);
    let small = |layout| WriteOptions {
        labels_in_metadata_max: 100,
        labels_in_footer_max: 100,
        ..WriteOptions::layout(layout)
    };

    // List layout, row labels only (column labels would not fit anywhere).
    let mut rows_only = header.clone();
    rows_only.col_labels = None;
    let path = dir.path().join("list.parquet");
    write(&path, &rows_only, &bl, &small(Layout::List));
    let reader = SerializedFileReader::new(fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(
        reader.metadata().file_metadata().num_rows(),
        30,
        "a record per row, empty ones too"
    );
    let kv = reader.metadata().file_metadata().key_value_metadata().unwrap();
    assert!(!kv.iter().any(|k| k.key == "vecfmt.row_labels"));
    assert_same(&path, &rows_only, &bl);
    let err = ParquetSink::create(dir.path().join("x.parquet"), &header, &small(Layout::List)).unwrap_err();
    // The library says the COO layout stores them; the CLI's hint names --layout coo.
    assert!(
        err.to_string().contains("the COO layout stores them per record"),
        "{err}"
    );
    assert!(
        matches!(
            err.format_error::<vecfmt_parquet::Error>(),
            Some(vecfmt_parquet::Error::ListColumnLabels { limit: 100, .. })
        ),
        "{err}"
    );
    assert!(!dir.path().join("x.parquet").exists());

    // COO: labels of rows and columns with entries come back; the rest are their index.
    let path = dir.path().join("coo.parquet");
    write(&path, &header, &bl, &small(Layout::Coo));
    let src = ParquetSource::open(&path, &ReadOptions::default()).unwrap();
    let h = src.header();
    assert_eq!((h.n_rows, h.n_cols), (30, 25));
    let row_labels = h.row_labels.as_ref().unwrap();
    let used: Vec<u64> = bl.iter().flat_map(|b| b.rows.clone()).collect();
    for r in 0..30u64 {
        let want = if used.contains(&r) {
            format!("word{r}")
        } else {
            r.to_string()
        };
        assert_eq!(row_labels[r as usize], want);
    }
    assert_eq!(h.col_labels.as_ref().unwrap()[0], "ctx-0-é");
}

/// The round trip every converter runs (the test kit's): the kit's extreme values of every
/// dtype (subnormals, infinities, integer extremes), empty and trailing empty rows, in both
/// layouts, come back with the same dtype, shape and bits, as rows.
#[test]
fn the_kit_round_trip_every_dtype_and_layout() {
    let dir = vecfmt_testkit::tempdir();
    for dtype in DType::ALL {
        let (header, blocks) = vecfmt_testkit::sample::extremes(dtype, 40, 300, 7);
        for layout in [Layout::Coo, Layout::List] {
            let path = dir.path().join(format!("{dtype}-{layout:?}.parquet"));
            let got = vecfmt_testkit::roundtrip_blocks(
                &header,
                &blocks,
                |h| ParquetSink::create(&path, h, &WriteOptions::layout(layout)),
                || ParquetSource::open(&path, &ReadOptions::default()),
                &format!("{dtype} {layout:?}"),
            );
            assert!(
                got.rows_mode,
                "{dtype} {layout:?}: a file vecfmt wrote reads back as rows"
            );
            assert_eq!(got.header, header, "{dtype} {layout:?}");
        }
    }
}

/// Label columns are Arrow dictionaries (pandas categoricals): each row group's column chunk
/// is a dictionary page of the labels it uses and RLE_DICTIONARY data pages, read back by the
/// parquet crate's own decoder record by record; for every codec (zstd and uncompressed
/// take the direct path, others the column writer), dictionaries of 1 to 600 labels, long
/// runs (row labels) and short ones (column labels).
#[test]
fn label_columns_are_dictionaries_decoded_record_by_record() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int32Type;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::{Compression, Encoding};
    let dir = tempfile::tempdir().unwrap();
    for (n_rows, n_cols) in [(1u64, 4u64), (2, 2), (600, 300)] {
        for compression in [
            Compression::ZSTD(Default::default()),
            Compression::UNCOMPRESSED,
            Compression::SNAPPY,
        ] {
            let path = dir.path().join(format!("{n_rows}-{compression:?}.parquet"));
            let header = labelled(DType::F32, n_rows + 2, n_cols + 3);
            let bl = blocks(DType::F32, n_rows + 2, n_cols + 3, 7);
            let opts = WriteOptions {
                compression,
                row_group_entries: 40,
                ..WriteOptions::default()
            };
            write(&path, &header, &bl, &opts);
            let want = entries_of(&bl);
            let file = fs::File::open(&path).unwrap();
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
            let md = builder.metadata().clone();
            for g in md.row_groups() {
                for k in [3, 4] {
                    let c = g.column(k);
                    assert!(c.dictionary_page_offset().is_some(), "{path:?} column {k}");
                    assert!(
                        c.encodings().any(|e| e == Encoding::RLE_DICTIONARY),
                        "{path:?} column {k}"
                    );
                    let s = c.statistics().expect("label statistics");
                    assert!(s.min_bytes_opt().unwrap() <= s.max_bytes_opt().unwrap());
                }
            }
            let mut n = 0;
            for batch in builder.build().unwrap() {
                let batch = batch.unwrap();
                let rows = batch.column(0).as_primitive::<arrow_array::types::Int32Type>();
                let cols = batch.column(1).as_primitive::<arrow_array::types::Int32Type>();
                let rl = batch.column(3).as_dictionary::<Int32Type>();
                let cl = batch.column(4).as_dictionary::<Int32Type>();
                let (rv, cv) = (rl.values().as_string::<i32>(), cl.values().as_string::<i32>());
                for i in 0..batch.num_rows() {
                    let (r, c) = (rows.value(i) as u64, cols.value(i) as u64);
                    assert_eq!(rv.value(rl.keys().value(i) as usize), format!("word{r}"));
                    assert_eq!(cv.value(cl.keys().value(i) as usize), format!("ctx-{c}-é"));
                    n += 1;
                }
            }
            assert_eq!(n, want.len());
            assert_same(&path, &header, &bl);
        }
    }
}

//! `summarize` against counts worked out by hand on small matrices written in the test, and
//! `render_png` checked as an image: size, not blank, the same bytes for the same input, and
//! no file left behind when it fails.

use std::path::{Path, PathBuf};

use vecfmt::{Codec, DType, Matrix, MatrixWriter, WriterOptions};
use vecfmt_plot::{row_bin, summarize, Axis, Error, PlotOptions, Summary};

/// Writes `rows` (row id, column ids) as an f32 matrix of `n_rows × n_cols`, all values 1.
fn write(path: &Path, n_rows: u64, n_cols: u64, rows: &[(u64, Vec<u32>)], codec: Codec) {
    // Small chunks, so that rows span several of them.
    let opts = WriterOptions::new(DType::F32, n_cols)
        .codec(codec)
        .n_rows(n_rows)
        .chunk_bytes(64);
    let mut w = MatrixWriter::create(path, opts).unwrap();
    for (r, cols) in rows {
        w.push_row(*r, cols, &vec![1.0f32; cols.len()]).unwrap();
    }
    w.finish().unwrap();
}

/// A 10 × 10 matrix:
/// row 0: 0 1 2 3 4 5 6 7 (8 nonzeros); row 1: 0; row 2: 0 9; row 5: 3 4 5; rows 3, 4, 6-9
/// empty.
fn tiny(dir: &Path, codec: Codec) -> PathBuf {
    let p = dir.join(format!("tiny-{}.vfm", codec.name()));
    let rows = vec![
        (0, vec![0, 1, 2, 3, 4, 5, 6, 7]),
        (1, vec![0]),
        (2, vec![0, 9]),
        (5, vec![3, 4, 5]),
    ];
    write(&p, 10, 10, &rows, codec);
    p
}

fn summary(path: &Path, opts: PlotOptions) -> Summary {
    summarize(&Matrix::open(path).unwrap(), &opts).unwrap()
}

#[test]
fn counts_of_a_tiny_matrix_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    for codec in [Codec::Raw, Codec::Zstd] {
        let p = tiny(dir.path(), codec);
        // 3 cells per axis: cells of 4 rows (columns), the last of 2.
        let s = summary(&p, PlotOptions::new().bins(3));
        assert_eq!((s.shape, s.nnz, s.nnz_in_view), ((10, 10), 14, 14));
        assert_eq!((s.rows.clone(), s.cols.clone(), s.zoomed), (0..10, 0..10, false));
        let g = &s.grid;
        assert_eq!((g.n_y, g.n_x, g.rows_per_cell, g.cols_per_cell), (3, 3, 4, 4));
        #[rustfmt::skip]
        assert_eq!(g.counts, [
            // cols 0-3, 4-7, 8-9
            4 + 1 + 1, 4, 1, // rows 0-3
            1, 2, 0,         // rows 4-7
            0, 0, 0,         // rows 8-9
        ]);
        assert_eq!(s.col_nnz, [3, 1, 1, 2, 2, 2, 1, 1, 0, 1]);
        // 6 empty rows; 1 nonzero: 1 row (bin 1); 2-3: 2 rows (bin 2); 8: 1 row (bin 4).
        let mut hist = [0u64; vecfmt_plot::ROW_BINS];
        hist[0] = 6;
        hist[row_bin(1)] = 1;
        hist[row_bin(2)] = 2;
        hist[row_bin(8)] = 1;
        assert_eq!(s.row_hist, hist);
        assert_eq!((row_bin(1), row_bin(2), row_bin(3), row_bin(8)), (1, 2, 2, 4));
        // One cell per entry at the full resolution.
        let s = summary(&p, PlotOptions::new());
        assert_eq!((s.grid.n_y, s.grid.n_x, s.grid.rows_per_cell), (10, 10, 1));
        assert_eq!(s.grid.get(0, 7), 1);
        assert_eq!(s.grid.get(5, 5), 1);
        assert_eq!(s.grid.counts.iter().sum::<u64>(), 14);
    }
}

#[test]
fn zoom_counts_only_the_view() {
    let dir = tempfile::tempdir().unwrap();
    let p = tiny(dir.path(), Codec::Lz4);
    // Rows 1-5, columns 3-9: row 1 has none, row 2 has column 9, row 5 has 3, 4, 5.
    let s = summary(&p, PlotOptions::new().rows(1..6).cols(3..10));
    assert_eq!((s.rows.clone(), s.cols.clone(), s.zoomed), (1..6, 3..10, true));
    assert_eq!(s.nnz_in_view, 4);
    assert_eq!(s.nnz, 14);
    assert_eq!(s.col_nnz, [1, 1, 1, 0, 0, 0, 1]);
    assert_eq!((s.row_hist[0], s.row_hist[1], s.row_hist[2]), (3, 1, 1));
    assert_eq!((s.grid.n_y, s.grid.n_x), (5, 7));
    assert_eq!(s.grid.get(1, 6), 1); // row 2, column 9
    assert_eq!(s.grid.get(4, 0), 1); // row 5, column 3
                                     // Open-ended ranges run to the end of the axis.
    let s = summary(&p, PlotOptions::new().rows(5..).cols(..4));
    assert_eq!((s.rows.clone(), s.cols.clone(), s.nnz_in_view), (5..10, 0..4, 1));
}

#[test]
fn bad_zoom_ranges_are_typed_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = tiny(dir.path(), Codec::Raw);
    let m = Matrix::open(&p).unwrap();
    let err = |opts: PlotOptions| summarize(&m, &opts).unwrap_err();
    #[expect(clippy::reversed_empty_ranges, reason = "the reversed range is what is tested")]
    let reversed = PlotOptions::new().rows(10..5);
    match err(reversed) {
        Error::EmptyRange {
            path,
            axis: Axis::Rows,
            start: 10,
            end: 5,
        } => assert_eq!(path, p),
        e => panic!("{e}"),
    }
    let e = err(PlotOptions::new().cols(3..11));
    assert!(
        matches!(
            e,
            Error::RangeOutOfShape {
                axis: Axis::Cols,
                end: 11,
                len: 10,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("tiny-raw.vfm"), "{e}");
    assert!(matches!(err(PlotOptions::new().rows(4..4)), Error::EmptyRange { .. }));
    assert!(matches!(err(PlotOptions::new().rows(11..)), Error::EmptyRange { .. }));
    assert!(matches!(err(PlotOptions::new().bins(0)), Error::BadBins { .. }));
    assert!(matches!(err(PlotOptions::new().bins(1001)), Error::BadBins { .. }));
}

#[test]
fn column_counts_over_the_budget_are_refused_before_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("wide.vfm");
    write(&p, 2, 4_000_000, &[(0, vec![3, 3_999_999])], Codec::Zstd);
    let m = Matrix::open(&p).unwrap();
    let e = summarize(&m, &PlotOptions::new().memory(32 << 20)).unwrap_err();
    assert!(matches!(e, Error::OverBudget { cols: 4_000_000, .. }), "{e}");
    // Zoomed into fewer columns, it fits.
    let s = summarize(&m, &PlotOptions::new().memory(32 << 20).cols(3_000_000..)).unwrap();
    assert_eq!((s.nnz_in_view, s.col_nnz.len()), (1, 1_000_000));
    assert_eq!(s.grid.cols_per_cell, 1000);
    assert_eq!(s.grid.get(0, 999), 1);
}

/// The PNG's width and height from its IHDR, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |o: usize| u32::from_be_bytes(bytes[o..o + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn the_picture_has_its_size_is_not_blank_and_is_the_same_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let p = tiny(dir.path(), Codec::Zstd);
    let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
    let opts = PlotOptions::new().size(1000, 700);
    let s = vecfmt_plot::plot(&p, &a, &opts).unwrap();
    vecfmt_plot::plot(&p, &b, &opts).unwrap();
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(png_size(&bytes), (1000, 700));
    assert_eq!(bytes, std::fs::read(&b).unwrap(), "the same input gives the same bytes");
    let rgb = vecfmt_plot::render(&s, &opts).unwrap();
    assert_eq!(rgb.len(), 1000 * 700 * 3);
    let px: Vec<&[u8]> = rgb.chunks(3).collect();
    let white = px.iter().filter(|c| **c == [255, 255, 255]).count();
    // Mostly paper, but with text, axes, bars and the coloured pattern on it.
    assert!(white < px.len() * 97 / 100, "{white} of {} pixels are white", px.len());
    let coloured = px
        .iter()
        .filter(|c| {
            let (mx, mn) = (*c.iter().max().unwrap(), *c.iter().min().unwrap());
            mx - mn > 60
        })
        .count();
    assert!(coloured > 1000, "only {coloured} coloured pixels");
    // The PNG holds exactly the drawn pixels (it is stored with a palette when it can be).
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut decoded = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut decoded).unwrap();
    assert_eq!(&decoded[..info.buffer_size()], &rgb[..]);
    // Another matrix draws another picture.
    let zoomed = vecfmt_plot::render(&summary(&p, PlotOptions::new().rows(0..3)), &opts).unwrap();
    assert_ne!(zoomed, rgb);
}

#[test]
fn an_existing_output_is_kept_unless_replacing_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let p = tiny(dir.path(), Codec::Raw);
    let out = dir.path().join("out.png");
    std::fs::write(&out, b"keep me").unwrap();
    let e = vecfmt_plot::plot(&p, &out, &PlotOptions::new()).unwrap_err();
    assert!(matches!(&e, Error::OutputExists { path } if *path == out), "{e}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    vecfmt_plot::plot(&p, &out, &PlotOptions::new().replace(true)).unwrap();
    assert_eq!(png_size(&std::fs::read(&out).unwrap()), (1500, 1000));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "no temporary left: {names:?}");
}

#[test]
fn failures_leave_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    // Not a .vfm file: the core's typed error, naming it.
    let bad = dir.path().join("bad.vfm");
    std::fs::write(&bad, b"this is not a matrix at all, just some text").unwrap();
    let e = vecfmt_plot::plot(&bad, &out, &PlotOptions::new()).unwrap_err();
    assert!(matches!(e, Error::Vfm(vecfmt::Error::NotVfm { .. })), "{e}");
    assert!(e.to_string().contains("bad.vfm"), "{e}");
    // A size too small to draw on.
    let p = tiny(dir.path(), Codec::Raw);
    let e = vecfmt_plot::plot(&p, &out, &PlotOptions::new().size(100, 100)).unwrap_err();
    assert!(matches!(e, Error::BadSize { .. }), "{e}");
    // A directory that does not exist.
    let e = vecfmt_plot::plot(&p, dir.path().join("no/such/dir.png"), &PlotOptions::new()).unwrap_err();
    assert!(matches!(e, Error::Vfm(vecfmt::Error::Io { .. })), "{e}");
    assert!(!out.exists());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "only the inputs: {names:?}");
}

#[test]
fn empty_matrices_and_views_draw_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.vfm");
    write(&p, 0, 0, &[], Codec::Raw);
    let s = vecfmt_plot::plot(&p, dir.path().join("e.png"), &PlotOptions::new()).unwrap();
    assert_eq!((s.nnz_in_view, s.grid.counts.len(), s.col_nnz.len()), (0, 0, 0));
    let p = tiny(dir.path(), Codec::Raw);
    let s = vecfmt_plot::plot(&p, dir.path().join("z.png"), &PlotOptions::new().rows(6..10)).unwrap();
    assert_eq!((s.nnz_in_view, s.row_hist[0]), (0, 4));
}

/// Every committed format-v1 fixture (each dtype and codec, labels, sparse rows, an empty
/// matrix, 64-bit column indices) draws, and its summary agrees with the reader. The one with
/// 2^40 columns is too wide for per-column counts under the budget: a typed error, and a
/// zoom into its first 2^20 columns draws.
#[test]
fn the_v1_fixtures_draw() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/v1");
    let dir = tempfile::tempdir().unwrap();
    let mut drawn = 0;
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "vfm") {
            continue;
        }
        let out = dir.path().join(path.with_extension("png").file_name().unwrap());
        let m = Matrix::open(&path).unwrap();
        let mut opts = PlotOptions::new().size(900, 600);
        let mut cols = 0..m.n_cols();
        if m.n_cols() > 1 << 26 {
            let e = vecfmt_plot::plot(&path, &out, &opts).unwrap_err();
            assert!(matches!(e, Error::OverBudget { .. }), "{e}");
            cols = 0..1 << 20;
            opts = opts.cols(cols.clone());
        }
        let s = vecfmt_plot::plot(&path, &out, &opts).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let in_view: u64 = m
            .iter_rows()
            .map(|r| r.unwrap().indices().iter().filter(|j| cols.contains(j)).count() as u64)
            .sum();
        assert_eq!(
            (s.shape, s.nnz, s.nnz_in_view),
            (m.shape(), m.nnz(), in_view),
            "{}",
            path.display()
        );
        assert_eq!(s.col_nnz.iter().map(|&c| c as u64).sum::<u64>(), in_view);
        assert_eq!(s.grid.counts.iter().sum::<u64>(), in_view);
        assert_eq!(s.row_hist.iter().sum::<u64>(), m.n_rows());
        assert_eq!(png_size(&std::fs::read(&out).unwrap()), (900, 600));
        drawn += 1;
    }
    assert_eq!(drawn, 6);
}

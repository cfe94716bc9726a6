//! The two meta pages are real commit slots (FORMAT.md §2.2): the valid page with the
//! highest generation wins, a torn or corrupt page falls back to the other one, and a page of
//! a newer format version is refused by name.

use std::path::Path;

use vecfmt::consts::META_PAGE_SIZE;
use vecfmt::{DType, Error, Matrix, MatrixWriter, WriterOptions};
use vecfmt_testkit::vfm::reseal_page;

fn write_sample(path: &Path) {
    let mut w = MatrixWriter::create(path, WriterOptions::new(DType::F32, 100)).unwrap();
    w.push_row(1, &[2u32, 50], &[1.0f32, 2.0]).unwrap();
    w.push_row(4, &[99u32], &[3.0f32]).unwrap();
    w.finish().unwrap();
}

/// Writes into page B a copy of page A's commit with `generation` and `n_rows` changed: a
/// second commit that points at the same catalog.
fn second_commit(bytes: &mut [u8], generation: u64, n_rows: u64) {
    let page_size = META_PAGE_SIZE as usize;
    let mut b = bytes[..page_size].to_vec();
    b[10..12].copy_from_slice(&1u16.to_le_bytes());
    b[16..24].copy_from_slice(&generation.to_le_bytes());
    b[32..40].copy_from_slice(&n_rows.to_le_bytes());
    reseal_page(&mut b);
    bytes[page_size..2 * page_size].copy_from_slice(&b);
}

#[test]
fn the_highest_valid_generation_wins_and_a_torn_page_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    write_sample(&path);
    let original = std::fs::read(&path).unwrap();
    assert_eq!(Matrix::open(&path).unwrap().commit().generation, 1);
    assert!(matches!(
        Matrix::open(&path).unwrap().previous_commit(),
        Err(vecfmt::PageProblem::BadMagic)
    ));

    // A second commit in page B, with more rows, is chosen.
    let mut bytes = original.clone();
    second_commit(&mut bytes, 2, 9);
    std::fs::write(&path, &bytes).unwrap();
    let m = Matrix::open(&path).unwrap();
    assert_eq!((m.commit().generation, m.commit().slot, m.n_rows()), (2, 1, 9));
    assert_eq!(m.previous_commit().unwrap().generation, 1);
    assert!(m.row(8).unwrap().is_empty());
    assert!(m.verify().is_clean());
    drop(m);

    // The same commit torn after its first 64 bytes (the rest still zero): page A wins.
    let page = META_PAGE_SIZE as usize;
    let mut torn = original.clone();
    torn[page..page + 64].copy_from_slice(&bytes[page..page + 64]);
    std::fs::write(&path, &torn).unwrap();
    let m = Matrix::open(&path).unwrap();
    assert_eq!((m.commit().generation, m.n_rows()), (1, 5));
    assert!(matches!(m.previous_commit(), Err(vecfmt::PageProblem::Invalid(_))));
    drop(m);

    // Page A corrupt, page B valid: B wins.
    let mut a_bad = bytes.clone();
    a_bad[40] ^= 0x10;
    std::fs::write(&path, &a_bad).unwrap();
    assert_eq!(Matrix::open(&path).unwrap().commit().generation, 2);

    // Both corrupt: a clear error that names the file and both pages.
    let mut both_bad = a_bad.clone();
    both_bad[page + 40] ^= 0x10;
    std::fs::write(&path, &both_bad).unwrap();
    let err = Matrix::open(&path).unwrap_err();
    assert!(matches!(err, Error::NoValidCommit { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("m.vfm") && msg.contains("page A") && msg.contains("page B"),
        "{msg}"
    );
}

#[test]
fn a_page_of_a_newer_format_version_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    write_sample(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
    reseal_page(&mut bytes[..META_PAGE_SIZE as usize]);
    std::fs::write(&path, &bytes).unwrap();
    let err = Matrix::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );

    // Next to a valid version-1 commit, the newer page is passed over.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..10].copy_from_slice(&1u16.to_le_bytes());
    reseal_page(&mut bytes[..META_PAGE_SIZE as usize]);
    second_commit(&mut bytes, 2, 5);
    let page = META_PAGE_SIZE as usize;
    bytes[page + 8..page + 10].copy_from_slice(&2u16.to_le_bytes());
    reseal_page(&mut bytes[page..2 * page]);
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(Matrix::open(&path).unwrap().commit().generation, 1);
}

//! Regression: finished files used to keep the temporary file's 0600 mode, so other users
//! could not read them whatever the umask.

#[cfg(unix)]
#[test]
fn a_written_file_gets_the_mode_of_any_new_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    let mut w = vecfmt::MatrixWriter::create(&path, vecfmt::WriterOptions::new(vecfmt::DType::F32, 3)).unwrap();
    w.push_row(0, &[1u32], &[1.0f32]).unwrap();
    w.finish().unwrap();
    // What `open(O_CREAT, 0666)` gives under the current umask.
    let probe = dir.path().join("probe");
    std::fs::write(&probe, b"").unwrap();
    let expected = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, expected);
}

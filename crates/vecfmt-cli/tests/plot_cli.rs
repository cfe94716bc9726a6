//! `vecfmt plot` as a shell over `vecfmt_plot::plot`: it writes a PNG that decodes to the
//! asked size, and bad ranges, an existing output and a bad file are one clear error each,
//! with no output and no temporary file left. (The counts are checked in the library's
//! tests/plot.rs.)

use std::path::Path;
use std::process::{Command, Output};

fn vecfmt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vecfmt")).args(args).output().unwrap()
}

/// Runs a command that must fail with `code`, and returns its stderr.
fn fail(args: &[&str], code: i32) -> String {
    let o = vecfmt(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "vecfmt {args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A 300 × 5000 matrix with a Zipf-like pattern: row r has columns 0, r, 2r, ... below 5000.
fn matrix(path: &Path) {
    let opts = vecfmt::WriterOptions::new(vecfmt::DType::F32, 5000).codec(vecfmt::Codec::Zstd);
    let mut w = vecfmt::MatrixWriter::create(path, opts).unwrap();
    for r in 1..300u32 {
        let cols: Vec<u32> = (0..5000).step_by(r as usize).collect();
        w.push_row(r as u64, &cols, &vec![1.0f32; cols.len()]).unwrap();
    }
    w.finish().unwrap();
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn plot_writes_a_png_that_decodes_to_the_asked_size() {
    let dir = tempfile::tempdir().unwrap();
    let (m, out) = (dir.path().join("m.vfm"), dir.path().join("m.png"));
    matrix(&m);
    let [sm, so] = [&m, &out].map(|p| p.to_str().unwrap());
    let o = vecfmt(&["plot", sm, "-o", so, "--width", "1200", "--height", "800"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("wrote") && err.contains("m.png"), "{err}");
    let mut decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&out).unwrap()));
    // The picture is stored with a palette when it has at most 256 colours: expand to RGB.
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    assert_eq!(reader.output_color_type(), (png::ColorType::Rgb, png::BitDepth::Eight));
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1200, 800));
    let pixels = &buf[..info.buffer_size()];
    assert!(pixels.chunks(3).any(|c| c != [255, 255, 255]), "the picture is blank");
    // A zoom is a different picture; the same command again is the same bytes.
    let zoom = dir.path().join("zoom.png");
    let o = vecfmt(&[
        "plot",
        sm,
        "-o",
        zoom.to_str().unwrap(),
        "--rows",
        "10:20",
        "--cols",
        ":100",
        "--width",
        "1200",
        "--height",
        "800",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_ne!(std::fs::read(&zoom).unwrap(), std::fs::read(&out).unwrap());
    let again = vecfmt(&["plot", sm, "-o", so, "--width", "1200", "--height", "800", "--force"]);
    assert!(again.status.success());
    assert_eq!(files(dir.path()), ["m.png", "m.vfm", "zoom.png"]);
}

#[test]
fn bad_ranges_and_outputs_are_clear_errors_that_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (m, out) = (dir.path().join("m.vfm"), dir.path().join("out.png"));
    matrix(&m);
    let [sm, so] = [&m, &out].map(|p| p.to_str().unwrap());
    let err = fail(&["plot", sm, "-o", so, "--rows", "10:5"], 1);
    assert!(
        err.contains("m.vfm") && err.contains("row range 10:5 is empty"),
        "{err}"
    );
    assert!(err.contains("--rows"), "the CLI's hint names the flag: {err}");
    let err = fail(&["plot", sm, "-o", so, "--cols", "0:5001"], 1);
    assert!(
        err.contains("column range 0:5001 reaches past the matrix, which has 5000 columns"),
        "{err}"
    );
    let err = fail(&["plot", sm, "-o", so, "--rows", "300:"], 1);
    assert!(err.contains("row range 300:300 is empty"), "{err}");
    // Not a range at all: a usage error from the argument parser.
    let err = fail(&["plot", sm, "-o", so, "--rows", "7"], 2);
    assert!(err.contains("START:END"), "{err}");
    let err = fail(&["plot", sm, "-o", so, "--memory", "1M"], 1);
    assert!(err.contains("--cols") && err.contains("--memory"), "{err}");
    let err = fail(&["plot", sm, "-o", so, "--width", "10"], 1);
    assert!(err.contains("image size 10x1000"), "{err}");
    assert_eq!(files(dir.path()), ["m.vfm"]);
    // An existing output is kept without --force.
    std::fs::write(&out, b"keep").unwrap();
    let err = fail(&["plot", sm, "-o", so], 1);
    assert!(err.contains("out.png: exists; pass --force"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep");
    // A file that is not a .vfm: the damage exit code and the core's hint.
    let bad = dir.path().join("bad.vfm");
    std::fs::write(&bad, vec![7u8; 4096]).unwrap();
    let err = fail(
        &[
            "plot",
            bad.to_str().unwrap(),
            "-o",
            dir.path().join("b.png").to_str().unwrap(),
        ],
        3,
    );
    assert!(
        err.contains("bad.vfm: not a .vfm file") && err.contains("hint:"),
        "{err}"
    );
    assert_eq!(files(dir.path()), ["bad.vfm", "m.vfm", "out.png"]);
}

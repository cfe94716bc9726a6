//! A `.npy` file truncated while it is being read through its map (FORMAT.md §7). A child
//! process (this test binary, run again) reads the file whole through `NpySource`, pass after
//! pass, while the parent cuts the file short at a random length. The child must never die
//! from SIGBUS; every pass must read the array exactly or end in an error naming the file, and
//! a pass that begins after the truncation must end in an error.
//!
//! `VECFMT_TRUNCATE_TRIALS` sets the number of trials (40 by default).

use std::path::Path;
use std::time::{Duration, Instant};

use vecfmt::stream::{Block, MatrixSource};
use vecfmt_npy::{NpySource, ReadOptions};
use vecfmt_testkit::under_reader;

const CHILD_ENV: &str = "VECFMT_NPY_TRUNCATE_CHILD";
const ROWS: usize = 2000;
const COLS: usize = 1500;

/// A C-order float32 `.npy` of 12 MB, a tenth of it nonzero.
fn npy_bytes() -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({ROWS}, {COLS}), }}");
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(&header);
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..ROWS * COLS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = if x.is_multiple_of(10) {
            (x >> 40) as f32 / 4096.0 + 1.0
        } else {
            0.0
        };
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Entries and a weighted sum, read through the source.
fn digest(path: &Path) -> vecfmt::Result<(u64, f64)> {
    let opts = ReadOptions {
        block_bytes: 256 << 10,
        notify: vecfmt_testkit::silent(),
        ..ReadOptions::default()
    };
    let mut src = NpySource::open(path, &opts)?;
    let (mut n, mut s) = (0u64, 0.0f64);
    while let Some(b) = src.next_block()? {
        match b {
            Block::Rows(b) => {
                for (k, &r) in b.rows.iter().enumerate() {
                    for i in b.indptr[k] as usize..b.indptr[k + 1] as usize {
                        n += 1;
                        s += b.values.as_values().get(i).to_f64() * ((b.indices[i] % 89) as f64 + 1.0) + r as f64;
                    }
                }
            }
            Block::Triplets(_) => unreachable!("a C-order array is read by rows"),
        }
    }
    Ok((n, s))
}

/// The child: reads the file whole, pass after pass.
#[test]
fn npy_child_reader() {
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    under_reader::child(|| vecfmt::Result::Ok(()), |_| digest(Path::new(&path)));
}

#[test]
fn npy_truncated_under_a_reader_gives_an_error_not_a_signal() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let trials: usize = std::env::var("VECFMT_TRUNCATE_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let dir = tempfile::tempdir().unwrap();
    let bytes = npy_bytes();
    let whole = dir.path().join("whole.npy");
    std::fs::write(&whole, &bytes).unwrap();
    let t = Instant::now();
    let want = digest(&whole).unwrap();
    let pass = t.elapsed().as_micros().max(1000) as u64;
    let mut rng = under_reader::xorshift(0x9E37_79B9_7F4A_7C15);
    let (mut errors, mut sigbus, mut faulted, mut ok) = (0, 0, 0, 0);
    for trial in 0..trials {
        let path = dir.path().join(format!("t{trial}.npy"));
        std::fs::write(&path, &bytes).unwrap();
        let delay = Duration::from_micros(rng() % (2 * pass));
        let cut = rng() % bytes.len() as u64;
        let seen = under_reader::trial(
            "npy_child_reader",
            CHILD_ENV,
            &path,
            want,
            delay,
            || {
                let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                f.set_len(cut).unwrap();
            },
            &format!("trial {trial}"),
        );
        ok += seen.ok;
        sigbus += seen.sigbus;
        faulted += usize::from(seen.sigbus != 0);
        errors += 1;
        std::fs::remove_file(&path).unwrap();
    }
    eprintln!(
        ".npy truncated under a reader: {trials} trials, 0 signals, 0 wrong reads; {errors} readers got an error \
         ({faulted} after absorbing {sigbus} SIGBUS faults); {ok} passes before the truncation read the array exactly"
    );
}

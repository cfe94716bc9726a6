//! Truncation and changes under a reader (FORMAT.md §7). A child process (this test binary,
//! run again) maps a `.vfm` file and reads it whole, pass after pass, while the parent,
//! ignoring the file's lock as a foreign program would, cuts it short at a random length, or
//! replaces its contents in place (truncate and write a different file), or overwrites part
//! of it without changing its length. The child must never die from a signal, and every pass
//! must either read the original matrix exactly or end in an error that says the file changed
//! or was truncated; a pass that begins after the change must report the error.
//!
//! Trials alternate raw chunks (read in place from the map) and zstd chunks (decoded).
//! `VECFMT_TRUNCATE_TRIALS` sets the number of trials (100 by default).

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use vecfmt::{Codec, DType, Matrix, MatrixWriter, WriterOptions};
use vecfmt_testkit::under_reader;

const CHILD_ENV: &str = "VECFMT_TRUNCATE_CHILD";

/// A matrix of a few MB, so that a pass takes a while.
fn write_matrix(path: &Path, codec: Codec, seed: u64) {
    let mut w = MatrixWriter::create(path, WriterOptions::new(DType::F32, 50_000).codec(codec)).unwrap();
    let mut x = seed | 1;
    let mut cols = Vec::new();
    let mut vals = Vec::new();
    for r in 0..6000u64 {
        cols.clear();
        vals.clear();
        let mut c = 0u32;
        for _ in 0..60 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c += 1 + (x % 800) as u32;
            cols.push(c);
            vals.push((x >> 40) as f32 / 1024.0 + 1.0);
        }
        w.push_row(r, &cols, &vals).unwrap();
    }
    w.finish().unwrap();
}

/// A digest of every entry, read through the matrix.
fn digest(m: &Matrix) -> vecfmt::Result<(u64, f64)> {
    let (mut n, mut s) = (0u64, 0.0f64);
    for row in m.iter_rows() {
        let row = row?;
        for (c, v) in row.iter() {
            n += 1;
            s += v.to_f64() * ((c % 97) as f64 + 1.0) + row.id() as f64;
        }
    }
    Ok((n, s))
}

/// The child: opens the file, says READY, then reads it whole, pass after pass.
#[test]
fn child_reader() {
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    under_reader::child(|| Matrix::open(&path), digest);
}

#[derive(Debug, Clone, Copy)]
enum Change {
    /// Cut to a shorter length.
    Truncate,
    /// Truncated to nothing and written again with other contents (as `open(O_TRUNC)` and
    /// write do).
    Replace,
    /// Bytes inside the chunks overwritten, the length unchanged.
    Overwrite,
}

#[test]
fn truncated_or_rewritten_under_a_reader_gives_an_error_not_a_signal() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let trials: usize = std::env::var("VECFMT_TRUNCATE_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, codec) in [Codec::Raw, Codec::Zstd].into_iter().enumerate() {
        let p = dir.path().join(format!("m{i}.vfm"));
        write_matrix(&p, codec, 7);
        let other = dir.path().join(format!("other{i}.vfm"));
        write_matrix(&other, codec, 99);
        let want = digest(&Matrix::open(&p).unwrap()).unwrap();
        files.push((std::fs::read(&p).unwrap(), std::fs::read(&other).unwrap(), want));
    }
    // How long a pass takes, to spread the changes over the first few passes.
    let t = Instant::now();
    digest(&Matrix::open(dir.path().join("m0.vfm")).unwrap()).unwrap();
    let pass = t.elapsed().as_micros().max(1000) as u64;

    let mut rng = under_reader::xorshift(0x5DEE_CE66_D1CE_4E5B);
    let (mut errors, mut passes_ok, mut sigbus, mut readers_faulted) = (0, 0, 0, 0);
    let mut by_change = [0usize; 3];
    for trial in 0..trials {
        let (orig, other, want) = &files[trial % 2];
        let change = [Change::Truncate, Change::Replace, Change::Overwrite][(trial / 2) % 3];
        by_change[(trial / 2) % 3] += 1;
        let path = dir.path().join(format!("t{trial}.vfm"));
        std::fs::write(&path, orig).unwrap();
        // Written an hour ago, as files usually are before someone reads them: a change
        // then moves the modification time past any timestamp granularity.
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        // Within the first three passes, sometimes at once.
        let delay = Duration::from_micros(rng() % (3 * pass));
        let len = orig.len() as u64;
        let (cut, at) = (rng() % len, 8192 + rng() % (len / 2));
        let junk: Vec<u8> = (0..65536).map(|_| rng() as u8).collect();
        let seen = under_reader::trial(
            "child_reader",
            CHILD_ENV,
            &path,
            *want,
            delay,
            || {
                let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                match change {
                    Change::Truncate => f.set_len(cut).unwrap(),
                    Change::Replace => {
                        f.set_len(0).unwrap();
                        f.write_all_at(other, 0).unwrap();
                    }
                    // Garbage over a stretch of the chunks (the catalog is read at open only).
                    Change::Overwrite => f.write_all_at(&junk, at).unwrap(),
                }
            },
            &format!("trial {trial} ({change:?})"),
        );
        assert!(
            seen.error.contains("changed or truncated"),
            "trial {trial} ({change:?}): the error must say the file changed: {}",
            seen.error
        );
        passes_ok += seen.ok;
        sigbus += seen.sigbus;
        readers_faulted += usize::from(seen.sigbus != 0);
        errors += 1;
        std::fs::remove_file(&path).unwrap();
    }
    eprintln!(
        "truncation under a reader: {trials} trials ({} truncations, {} replacements, {} overwrites; raw and zstd \
         chunks), 0 signals, 0 wrong reads; {errors} readers got the changed-or-truncated error ({readers_faulted} \
         after absorbing {sigbus} SIGBUS faults in the map, the rest found by the length/mtime check); {passes_ok} \
         passes that ended before the change read the matrix exactly",
        by_change[0], by_change[1], by_change[2]
    );
}

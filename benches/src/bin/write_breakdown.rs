//! `write_breakdown`: where the time of writing M1 goes, split into CPU (writing to tmpfs,
//! where fsync is free) and disk (the same bytes written with `std::fs::write` + fsync),
//! against writing the raw CSR arrays as the Python peers do (three `write`s and an fsync).
//!
//! ```text
//! cargo run --release -p vecfmt-benches --bin write_breakdown -- [--rows N] [--reps N] [--tmpfs DIR]
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use vecfmt::{Codec, MatrixWriter};
use vecfmt_benches::stats::median;
use vecfmt_benches::{bench_data_dir, m1, write_vfm, writer_options, Csr, M1_ROWS};

fn as_bytes<T: Copy>(v: &[T]) -> &[u8] {
    // SAFETY: called with i64/u32/f32 slices only: no padding, every byte initialised.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// The peers' uncompressed baseline: the three CSR arrays written to one file, then fsync.
fn write_arrays(csr: &Csr, path: &Path) -> Result<()> {
    let mut f = std::fs::File::create(path)?;
    // int32 indptr, as scipy and the raw CSR byte count use.
    let indptr: Vec<i32> = csr.indptr.iter().map(|&x| x as i32).collect();
    f.write_all(as_bytes(&indptr))?;
    f.write_all(as_bytes(&csr.indices))?;
    f.write_all(as_bytes(&csr.data))?;
    f.sync_all()?;
    Ok(())
}

/// Runs `f` `reps` times; returns the median and every wall time in seconds.
fn time_reps(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<(Duration, Vec<f64>)> {
    let mut v = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        v.push(t.elapsed());
    }
    let all = v.iter().map(|d| d.as_secs_f64()).collect();
    Ok((median(v), all))
}

fn main() -> Result<()> {
    let mut rows = M1_ROWS;
    let mut reps = 5;
    let mut tmpfs = PathBuf::from("/dev/shm");
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => rows = val()?.parse()?,
            "--reps" => reps = val()?.parse()?,
            "--tmpfs" => tmpfs = val()?.into(),
            other => bail!("unknown argument {other:?}"),
        }
    }
    let csr = m1(rows);
    let raw_mb = csr.raw_csr_bytes() as f64 / 1e6;
    let disk = bench_data_dir().join("write-breakdown");
    let shm = tmpfs.join(format!("vecfmt-write-breakdown-{}", std::process::id()));
    std::fs::create_dir_all(&disk)?;
    std::fs::create_dir_all(&shm)?;
    println!("## Write breakdown, M1 {rows} rows ({raw_mb:.1} MB raw CSR), median of {reps}");
    println!();
    println!("| job | disk (ext4, fsync) | tmpfs (no disk) | MB/s of raw CSR on tmpfs |");
    println!("|---|---|---|---|");
    let mut out = serde_json::Map::new();
    for (name, codec) in [
        ("vecfmt raw", Some(Codec::Raw)),
        ("vecfmt zstd", Some(Codec::Zstd)),
        ("vecfmt raw, 1 encoder thread", None),
        ("CSR arrays: 3 writes + fsync", None),
    ] {
        let mut row = Vec::new();
        for dir in [&disk, &shm] {
            let path = dir.join("m1.vfm");
            let (d, all) = match (name, codec) {
                (_, Some(c)) => time_reps(reps, || {
                    let _ = std::fs::remove_file(&path);
                    write_vfm(&csr, &path, c).map(drop)
                })?,
                ("vecfmt raw, 1 encoder thread", None) => time_reps(reps, || {
                    let _ = std::fs::remove_file(&path);
                    let mut w = MatrixWriter::create(&path, writer_options(&csr, Codec::Raw).threads(1))?;
                    w.push_csr(0, &csr.indptr, &csr.indices, &csr.data)?;
                    w.finish().map(drop).map_err(Into::into)
                })?,
                _ => time_reps(reps, || {
                    let _ = std::fs::remove_file(&path);
                    write_arrays(&csr, &path)
                })?,
            };
            let _ = std::fs::remove_file(&path);
            row.push((d, all));
        }
        println!(
            "| {name} | {:.3} s | {:.3} s | {:.0} |",
            row[0].0.as_secs_f64(),
            row[1].0.as_secs_f64(),
            raw_mb / row[1].0.as_secs_f64()
        );
        out.insert(
            name.into(),
            serde_json::json!({"disk_seconds": row[0].0.as_secs_f64(), "disk_all": row[0].1,
                               "tmpfs_seconds": row[1].0.as_secs_f64(), "tmpfs_all": row[1].1}),
        );
    }
    std::fs::remove_dir_all(&shm)?;
    let path = bench_data_dir().join("write_breakdown.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&out)?)?;
    println!();
    println!("Written to {}", path.display());
    Ok(())
}

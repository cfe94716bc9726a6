//! `deflate_floor`: what gzip HDF5 output costs in compression alone, the floor under any
//! `.npz → .h5` conversion at that level.
//!
//! ```text
//! cargo run --release -p vecfmt-benches --bin deflate_floor -- [--rows N (100000)] [--reps N (5)]
//! ```
//!
//! Takes the first N rows of M1 as the CSR group `vecfmt convert` writes (`data` f32 and
//! `indices` i32 in chunks of 131,072 entries, `indptr` i64 in chunks of 65,536), applies
//! HDF5's byte shuffle to each chunk, then compresses every chunk to a zlib stream (what
//! HDF5's deflate filter stores) with zlib-rs (through flate2, vecfmt's previous path) and
//! with libdeflate, at levels 1–6, on 1 thread and on 2 (rayon). Prints the median time and
//! the total compressed size of each. The shuffle is timed apart.

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use vecfmt_benches::m1;
use vecfmt_benches::stats::{median, secs};

fn shuffle(raw: &[u8], esize: usize) -> Vec<u8> {
    let n = raw.len() / esize;
    let mut out = vec![0u8; raw.len()];
    for (j, dst) in out[..n * esize].chunks_exact_mut(n.max(1)).enumerate().take(esize) {
        for (i, d) in dst.iter_mut().enumerate() {
            *d = raw[i * esize + j];
        }
    }
    out
}

fn zlib_rs(input: &[u8], level: u32) -> usize {
    let mut z = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(input.len() / 2 + 64),
        flate2::Compression::new(level),
    );
    z.write_all(input).expect("in memory");
    z.finish().expect("in memory").len()
}

fn libdeflate(input: &[u8], level: u32) -> usize {
    let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(level as i32).expect("level 1-12"));
    let mut out = vec![0u8; c.zlib_compress_bound(input.len())];
    c.zlib_compress(input, &mut out).expect("bound is enough")
}

fn main() -> Result<()> {
    let (mut rows, mut reps) = (100_000usize, 5usize);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rows" => rows = it.next().context("--rows N")?.parse()?,
            "--reps" => reps = it.next().context("--reps N")?.parse::<usize>()?.max(1),
            other => bail!("unknown argument {other:?}"),
        }
    }
    let csr = m1(rows);
    let mut raw: Vec<(Vec<u8>, usize)> = Vec::new();
    let bytes = |v: &[u8], esize: usize, chunk: usize, out: &mut Vec<(Vec<u8>, usize)>| {
        for c in v.chunks(esize * chunk) {
            let mut b = c.to_vec();
            b.resize(esize * chunk, 0);
            out.push((b, esize));
        }
    };
    let data: Vec<u8> = csr.data.iter().flat_map(|x| x.to_le_bytes()).collect();
    let idx: Vec<u8> = csr.indices.iter().flat_map(|x| (*x as i32).to_le_bytes()).collect();
    let ptr: Vec<u8> = csr.indptr.iter().flat_map(|x| x.to_le_bytes()).collect();
    bytes(&data, 4, 1 << 17, &mut raw);
    bytes(&idx, 4, 1 << 17, &mut raw);
    bytes(&ptr, 8, 1 << 16, &mut raw);
    let total: usize = raw.iter().map(|c| c.0.len()).sum();
    let t = Instant::now();
    let chunks: Vec<Vec<u8>> = raw.iter().map(|(b, e)| shuffle(b, *e)).collect();
    let shuffle_s = secs(t.elapsed());
    println!(
        "M1 first {rows} rows: nnz {}, {} chunks, {:.1} MB to compress; shuffle (1 thread) {:.3} s",
        csr.nnz(),
        chunks.len(),
        total as f64 / 1e6,
        shuffle_s
    );
    println!("\n| level | codec | 1 thread | 2 threads | size | MB/s (2 threads) |");
    println!("|---|---|---|---|---|---|");
    let pool1 = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let pool2 = rayon::ThreadPoolBuilder::new().num_threads(2).build()?;
    for level in 1..=6u32 {
        for (name, f) in [
            ("zlib-rs", zlib_rs as fn(&[u8], u32) -> usize),
            ("libdeflate", libdeflate),
        ] {
            let mut size = 0;
            let mut time = |pool: &rayon::ThreadPool| {
                let ts: Vec<_> = (0..reps)
                    .map(|_| {
                        let t = Instant::now();
                        size = pool.install(|| chunks.par_iter().map(|c| f(c, level)).sum::<usize>());
                        t.elapsed()
                    })
                    .collect();
                secs(median(ts))
            };
            let (t1, t2) = (time(&pool1), time(&pool2));
            println!(
                "| {level} | {name} | {t1:.3} s | {t2:.3} s | {:.1} MB | {:.0} |",
                size as f64 / 1e6,
                total as f64 / 1e6 / t2
            );
        }
    }
    Ok(())
}

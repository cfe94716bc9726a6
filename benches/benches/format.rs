//! Criterion benchmarks of the `.vfm` format on a 20,000-row slice of M1 (~8 MB of raw CSR),
//! small enough that `cargo bench -p vecfmt-benches` finishes in a few minutes:
//!
//! - `write/{raw,zstd}`: `MatrixWriter` from CSR to a synced file, in raw CSR bytes/s;
//! - `scan/{raw,zstd,raw_par,memcpy}`: sum every value and index through `iter_rows`
//!   (and `par_chunks`), against a memcpy of the raw file's byte count;
//! - `row_read/{raw_warm,zstd_warm,zstd_cold}`: one random row per iteration, its values
//!   and indices summed; `zstd_cold` opens with `cache_bytes(0)`, so every read decodes
//!   its chunk.
//!
//! The full-size figures, side by side with the Python peers, come from `m1_report`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vecfmt::{Codec, Matrix, OpenOptions};
use vecfmt_benches::{bench_data_dir, m1, scan_sum, write_vfm, Csr};

const ROWS: usize = 20_000;

struct Fixture {
    csr: Csr,
    dir: PathBuf,
    raw: PathBuf,
    zstd: PathBuf,
    /// Random rows, fixed seed.
    picks: Vec<u64>,
}

fn fixture() -> Fixture {
    let csr = m1(ROWS);
    let dir = bench_data_dir().join("criterion");
    std::fs::create_dir_all(&dir).expect("create bench-data/criterion");
    let raw = dir.join("m1-20k.raw.vfm");
    let zstd = dir.join("m1-20k.zstd.vfm");
    write_vfm(&csr, &raw, Codec::Raw).expect("write raw");
    write_vfm(&csr, &zstd, Codec::Zstd).expect("write zstd");
    let mut rng = StdRng::seed_from_u64(20_000);
    let picks = (0..4096).map(|_| rng.random_range(0..ROWS as u64)).collect();
    Fixture {
        csr,
        dir,
        raw,
        zstd,
        picks,
    }
}

fn sum_rows(m: &Matrix) -> (f64, u64) {
    let mut acc = (0.0, 0u64);
    for r in m.iter_rows() {
        let r = r.expect("row");
        let (ix, v) = match (r.indices(), r.values().typed::<f32>()) {
            (vecfmt::Indices::U32(ix), Some(v)) => (ix, v),
            _ => unreachable!("M1 has u32 indices and f32 values"),
        };
        let (s, i) = scan_sum(ix, v);
        acc.0 += s;
        acc.1 += i;
    }
    acc
}

fn read_row(m: &Matrix, i: u64) -> (f64, u64) {
    let r = m.row(i).expect("row");
    match (r.indices(), r.values().typed::<f32>()) {
        (vecfmt::Indices::U32(ix), Some(v)) => scan_sum(ix, v),
        _ => unreachable!("M1 has u32 indices and f32 values"),
    }
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    let raw_bytes = f.csr.raw_csr_bytes();

    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Bytes(raw_bytes));
    g.sample_size(10);
    for (name, codec) in [("raw", Codec::Raw), ("zstd", Codec::Zstd)] {
        let out = f.dir.join(format!("m1-20k.write-{name}.vfm"));
        g.bench_function(name, |b| b.iter(|| write_vfm(&f.csr, &out, codec).expect("write")));
        let _ = std::fs::remove_file(&out);
    }
    g.finish();

    let raw = Matrix::open(&f.raw).expect("open raw");
    let zstd = Matrix::open(&f.zstd).expect("open zstd");
    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Bytes(raw_bytes));
    g.bench_function("raw", |b| b.iter(|| sum_rows(&raw)));
    g.bench_function("raw_par", |b| b.iter(|| vecfmt_benches::par_scan(&raw)));
    g.bench_function("zstd", |b| b.iter(|| sum_rows(&zstd)));
    let src = vec![1u8; raw.bytes_on_disk() as usize];
    let mut dst = vec![0u8; src.len()];
    g.throughput(Throughput::Bytes(src.len() as u64));
    g.bench_function("memcpy", |b| b.iter(|| vecfmt_benches::memcpy(&mut dst, &src)));
    g.finish();

    let zstd_cold = OpenOptions::new().cache_bytes(0).open(&f.zstd).expect("open zstd cold");
    let zstd_warm = OpenOptions::new()
        .cache_bytes(1 << 30)
        .open(&f.zstd)
        .expect("open zstd warm");
    for i in 0..ROWS as u64 {
        black_box(read_row(&zstd_warm, i));
        black_box(read_row(&raw, i));
    }
    let mut g = c.benchmark_group("row_read");
    g.throughput(Throughput::Elements(1));
    for (name, m) in [("raw_warm", &raw), ("zstd_warm", &zstd_warm), ("zstd_cold", &zstd_cold)] {
        let mut k = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                k = (k + 1) % f.picks.len();
                read_row(m, f.picks[k])
            })
        });
    }
    g.finish();

    // Opening: superblock, catalog and bucket index; no chunk is touched.
    let mut g = c.benchmark_group("open");
    for (name, path) in [("raw", &f.raw), ("zstd", &f.zstd)] {
        g.bench_function(name, |b| {
            b.iter_batched(|| (), |()| Matrix::open(path).expect("open"), BatchSize::SmallInput)
        });
    }
    g.finish();
}

criterion_group! {
    name = format;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(format);

//! # vecfmt-benches
//!
//! The standard workloads of `DESIGN.md`, generated deterministically, and the helpers the
//! benchmarks share: criterion benches in `benches/format.rs`, the side-by-side runner
//! `m1_report` and the codec sweep `zstd_sweep` in `src/bin/`.
//!
//! **M1, the vectors matrix** ([`m1`]): 200,000 rows × 4,000,000 columns; nonzeros per row
//! Poisson(50); column ids Zipf(1) by rank (id 0 most frequent), drawn until the row has its
//! Poisson count of *distinct* ids, so the raw CSR is the ~81 MB the design names; values
//! `1 + Geometric(1/2)` counts stored as f32.
//!
//! Rows are generated in blocks of [`M1_BLOCK_ROWS`], each from its own seeded RNG, so the
//! result does not depend on the number of threads and `m1(n)` is exactly the first `n`
//! rows of full M1.
//!
//! ```
//! let small = vecfmt_benches::m1(2_000);
//! assert_eq!(small.n_rows, 2_000);
//! assert_eq!(small.indptr.len(), 2_001);
//! // A prefix of the full matrix, whatever the size asked for.
//! let smaller = vecfmt_benches::m1(1_000);
//! assert_eq!(&small.indices[..smaller.indices.len()], &smaller.indices[..]);
//! ```

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Poisson, StandardGeometric, Zipf};
use rayon::prelude::*;
use vecfmt::{Codec, DType, MatrixWriter, WriteSummary, WriterOptions};

pub mod c1;

/// Rows of full M1.
pub const M1_ROWS: usize = 200_000;
/// Columns of M1.
pub const M1_COLS: usize = 4_000_000;
/// Mean nonzeros per row.
pub const M1_MEAN_NNZ: f64 = 50.0;
/// The fixed seed of M1.
pub const M1_SEED: u64 = 0x5EED_0000_0000_00A1;
/// Rows generated from one RNG stream. Changing it changes the matrix.
pub const M1_BLOCK_ROWS: usize = 1024;
/// Bumped whenever the generator's output changes, so cached dumps are regenerated.
pub const M1_GENERATOR: &str = "m1-v1";

/// A CSR matrix in scipy's layout, with the widths the Python peers read: `indptr` i64,
/// `indices` i32 (held as u32: every id is below 2^31), `data` f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    pub n_rows: usize,
    pub n_cols: usize,
    pub indptr: Vec<i64>,
    pub indices: Vec<u32>,
    pub data: Vec<f32>,
}

impl Csr {
    /// Stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }
    /// Bytes of the matrix as plain CSR with int32 indptr, indices and f32 data: scipy's
    /// in-memory size, and the same count as `vecfmt::Matrix::raw_csr_bytes`.
    pub fn raw_csr_bytes(&self) -> u64 {
        (self.n_rows as u64 + 1) * 4 + self.nnz() as u64 * 8
    }
    /// Row `i` as `(indices, values)`.
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[i] as usize, self.indptr[i + 1] as usize);
        (&self.indices[a..b], &self.data[a..b])
    }
    /// A 64-bit fingerprint of the contents (not cryptographic; it detects a stale dump).
    pub fn fingerprint(&self) -> u64 {
        let parts: [&[u8]; 3] = [as_bytes(&self.indptr), as_bytes(&self.indices), as_bytes(&self.data)];
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ (self.n_rows as u64) ^ ((self.n_cols as u64) << 32);
        for p in parts {
            let mut words = p.chunks_exact(8);
            for w in &mut words {
                h = (h ^ u64::from_le_bytes(w.try_into().expect("8 bytes"))).wrapping_mul(0x0000_0100_0000_01b3);
                h ^= h >> 29;
            }
            for &b in words.remainder() {
                h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    }
}

fn as_bytes<T: Copy>(v: &[T]) -> &[u8] {
    // SAFETY: only called with i64, u32 and f32 slices: plain integers and floats with no
    // padding, so every byte is initialised; u8 has alignment 1 and the length is the
    // slice's size in bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

/// One block of rows: per-row lengths, then their indices and values, concatenated.
struct Block {
    lens: Vec<u32>,
    indices: Vec<u32>,
    data: Vec<f32>,
}

fn m1_block(block: usize, rows: usize) -> Block {
    let mut rng = StdRng::seed_from_u64(M1_SEED.wrapping_add(block as u64));
    let poisson = Poisson::new(M1_MEAN_NNZ).expect("valid mean");
    let zipf = Zipf::new(M1_COLS as f64, 1.0).expect("valid Zipf");
    let mut b = Block {
        lens: Vec::with_capacity(rows),
        indices: Vec::with_capacity(rows * 52),
        data: Vec::with_capacity(rows * 52),
    };
    let mut row: Vec<u32> = Vec::with_capacity(128);
    for _ in 0..rows {
        let k = (poisson.sample(&mut rng) as usize).min(M1_COLS);
        row.clear();
        // Draw until the row holds k distinct ids: duplicates of the frequent ids are
        // common under Zipf(1), and dropping them would lose ~10% of the nonzeros.
        while row.len() < k {
            for _ in row.len()..k {
                row.push(zipf.sample(&mut rng) as u32 - 1);
            }
            row.sort_unstable();
            row.dedup();
        }
        b.lens.push(k as u32);
        b.indices.extend_from_slice(&row);
        for _ in 0..k {
            let g: u64 = rng.sample(StandardGeometric);
            b.data.push(1.0 + g.min(1 << 20) as f32);
        }
    }
    b
}

/// The first `rows` rows of M1 (full M1 is `m1(M1_ROWS)`), generated on rayon's pool.
pub fn m1(rows: usize) -> Csr {
    let n_blocks = rows.div_ceil(M1_BLOCK_ROWS);
    let blocks: Vec<Block> = (0..n_blocks)
        .into_par_iter()
        .map(|b| m1_block(b, M1_BLOCK_ROWS.min(rows - b * M1_BLOCK_ROWS)))
        .collect();
    let nnz: usize = blocks.iter().map(|b| b.indices.len()).sum();
    let mut csr = Csr {
        n_rows: rows,
        n_cols: M1_COLS,
        indptr: Vec::with_capacity(rows + 1),
        indices: Vec::with_capacity(nnz),
        data: Vec::with_capacity(nnz),
    };
    csr.indptr.push(0);
    let mut at = 0i64;
    for b in blocks {
        for l in b.lens {
            at += l as i64;
            csr.indptr.push(at);
        }
        csr.indices.extend_from_slice(&b.indices);
        csr.data.extend_from_slice(&b.data);
    }
    csr
}

/// Where benchmark data lives: `$CARGO_TARGET_DIR/bench-data`, else `<workspace>/target/bench-data`.
pub fn bench_data_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("bench-data")
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ sits inside the workspace")
        .to_path_buf()
}

/// The directory of the raw dump of `m1(rows)`: `bench-data/m1` for full M1, else
/// `bench-data/m1-<rows>`.
pub fn m1_dump_dir(rows: usize) -> PathBuf {
    if rows == M1_ROWS {
        bench_data_dir().join("m1")
    } else {
        bench_data_dir().join(format!("m1-{rows}"))
    }
}

fn shape_json(csr: &Csr) -> serde_json::Value {
    serde_json::json!({
        "n_rows": csr.n_rows,
        "n_cols": csr.n_cols,
        "nnz": csr.nnz(),
        "generator": M1_GENERATOR,
        "seed": M1_SEED,
        "fingerprint": format!("{:016x}", csr.fingerprint()),
    })
}

/// The file names of a raw dump, with their sizes for `csr`.
fn dump_files(csr: &Csr) -> [(&'static str, &[u8]); 3] {
    [
        ("indptr.i64", as_bytes(&csr.indptr)),
        ("indices.i32", as_bytes(&csr.indices)),
        ("data.f32", as_bytes(&csr.data)),
    ]
}

/// Whether `dir` already holds a dump of exactly `csr`: same `shape.json` (which carries a
/// fingerprint of the contents) and arrays of the right sizes.
pub fn dump_matches(csr: &Csr, dir: &Path) -> bool {
    let Ok(text) = fs::read(dir.join("shape.json")) else {
        return false;
    };
    let Ok(found) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return false;
    };
    found == shape_json(csr)
        && dump_files(csr)
            .iter()
            .all(|(name, bytes)| fs::metadata(dir.join(name)).is_ok_and(|m| m.len() == bytes.len() as u64))
}

/// Writes `csr` to `dir` as raw little-endian arrays (`indptr.i64`, `indices.i32`,
/// `data.f32`) and `shape.json` `{"n_rows", "n_cols", "nnz", ...}`: the input format of
/// `benches/python/peers_m1.py`. Skipped when `dir` already holds the same matrix.
/// Returns whether it wrote.
pub fn dump_raw(csr: &Csr, dir: &Path) -> Result<bool> {
    if dump_matches(csr, dir) {
        return Ok(false);
    }
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    // shape.json goes last: a dump interrupted halfway never matches.
    let _ = fs::remove_file(dir.join("shape.json"));
    for (name, bytes) in dump_files(csr) {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let mut f = fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        f.write_all(bytes).with_context(|| format!("write {}", tmp.display()))?;
        // Synced, so that writeback of the dump does not compete with the timed writes
        // that follow it.
        f.sync_all().with_context(|| format!("sync {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("rename to {}", path.display()))?;
    }
    let mut f = fs::File::create(dir.join("shape.json"))?;
    serde_json::to_writer_pretty(&mut f, &shape_json(csr))?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(true)
}

/// Writer options for M1-shaped data: f32 values, `csr.n_cols` columns, `csr.n_rows` rows.
pub fn writer_options(csr: &Csr, codec: Codec) -> WriterOptions {
    WriterOptions::new(DType::F32, csr.n_cols as u64)
        .n_rows(csr.n_rows as u64)
        .codec(codec)
}

/// Writes `csr` to a new `.vfm` file at `path` with `opts` (see [`writer_options`]).
pub fn write_vfm_with(csr: &Csr, path: &Path, opts: WriterOptions) -> Result<WriteSummary> {
    let mut w = MatrixWriter::create(path, opts)?;
    w.push_csr(0, &csr.indptr, &csr.indices, &csr.data)?;
    Ok(w.finish()?)
}

/// Writes `csr` to a new `.vfm` file at `path` with `codec` and the writer's defaults.
pub fn write_vfm(csr: &Csr, path: &Path, codec: Codec) -> Result<WriteSummary> {
    write_vfm_with(csr, path, writer_options(csr, codec))
}

/// Small statistics over timings.
pub mod stats {
    use std::time::Duration;

    /// The `q`-quantile (0..=1) of sorted samples, nearest rank.
    pub fn quantile<T: Copy>(sorted: &[T], q: f64) -> T {
        assert!(!sorted.is_empty(), "no samples");
        let k = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
        sorted[k]
    }
    /// The median of unsorted durations.
    pub fn median(mut d: Vec<Duration>) -> Duration {
        d.sort();
        quantile(&d, 0.5)
    }
    /// Seconds as f64.
    pub fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }
}

/// Runs `f` `n` times and returns every wall time.
pub fn time_n<T>(n: usize, mut f: impl FnMut() -> T) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect()
}

/// Sums every value (as f64, in eight lanes, so the loop vectorises) and every column index
/// of a CSR block: a scan that touches all its bytes, as a consumer would.
#[inline]
pub fn scan_sum(indices: &[u32], values: &[f32]) -> (f64, u64) {
    let mut lanes = [0f64; 8];
    let mut vc = values.chunks_exact(8);
    for c in &mut vc {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l += x as f64;
        }
    }
    let mut s: f64 = lanes.iter().sum();
    s += vc.remainder().iter().map(|&x| x as f64).sum::<f64>();
    let ix: u64 = indices.iter().map(|&i| i as u64).sum();
    (s, ix)
}

/// [`scan_sum`] over every chunk of an f32, u32-indexed matrix, in parallel with `par_chunks`.
pub fn par_scan(m: &vecfmt::Matrix) -> (f64, u64) {
    m.par_chunks()
        .map(|c| {
            let c = c.expect("chunk");
            let v = c.view();
            match (v.indices, v.values.typed::<f32>()) {
                (vecfmt::Indices::U32(ix), Some(vals)) => scan_sum(ix, vals),
                _ => panic!("par_scan wants an f32 matrix with u32 indices"),
            }
        })
        .reduce(|| (0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

/// A memcpy of `src` into `dst` (same length), the bandwidth reference of the scans.
#[inline(never)]
pub fn memcpy(dst: &mut [u8], src: &[u8]) {
    dst.copy_from_slice(src);
    std::hint::black_box(&dst);
}

/// Formats a duration in a human unit.
pub fn fmt_dur(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else if s >= 1e-6 {
        format!("{:.2} µs", s * 1e6)
    } else {
        format!("{:.0} ns", s * 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn m1_slice_is_a_prefix_and_well_formed() {
        let a = m1(3_000);
        let b = m1(1_500);
        assert_eq!(&a.indptr[..=1_500], &b.indptr[..]);
        assert_eq!(&a.indices[..b.nnz()], &b.indices[..]);
        for i in 0..a.n_rows {
            let (ix, v) = a.row(i);
            assert!(ix.windows(2).all(|w| w[0] < w[1]), "row {i} sorted and distinct");
            assert!(ix.iter().all(|&c| (c as usize) < M1_COLS));
            assert!(v.iter().all(|&x| x >= 1.0 && x.fract() == 0.0));
        }
        let mean = a.nnz() as f64 / a.n_rows as f64;
        assert!((mean - 50.0).abs() < 1.0, "mean nnz per row {mean}");
        // Zipf by rank: id 0 is the most frequent column.
        let zeros = a.indices.iter().filter(|&&c| c == 0).count();
        assert!(zeros > a.n_rows / 2, "id 0 appears in most rows ({zeros})");
    }

    #[test]
    fn dump_round_trips_and_is_skipped_when_current() {
        let csr = m1(700);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m1");
        assert!(dump_raw(&csr, &dir).unwrap());
        assert!(!dump_raw(&csr, &dir).unwrap(), "second dump is skipped");
        let idx = fs::read(dir.join("indices.i32")).unwrap();
        assert_eq!(idx.len(), csr.nnz() * 4);
        assert_eq!(&idx[..4], &csr.indices[0].to_le_bytes());
        let other = m1(701);
        assert!(!dump_matches(&other, &dir));
    }

    #[test]
    fn vfm_round_trip() {
        let csr = m1(900);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for codec in [Codec::Raw, Codec::Zstd] {
            let path = dir.join(format!("m.{codec:?}.vfm"));
            let s = write_vfm(&csr, &path, codec).unwrap();
            assert_eq!(s.nnz as usize, csr.nnz());
            let m = vecfmt::Matrix::open(&path).unwrap();
            assert_eq!(m.raw_csr_bytes(), csr.raw_csr_bytes());
            for i in [0usize, 1, 450, 899] {
                let r = m.row(i as u64).unwrap();
                let (ix, v) = csr.row(i);
                assert_eq!(r.indices(), vecfmt::Indices::U32(ix));
                assert_eq!(r.values().typed::<f32>(), Some(v));
            }
        }
    }

    #[test]
    fn quantiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(stats::quantile(&v, 0.5), 50);
        assert_eq!(stats::quantile(&v, 0.99), 99);
        assert_eq!(stats::quantile(&v, 1.0), 100);
        assert_eq!(
            stats::median(vec![
                Duration::from_secs(3),
                Duration::from_secs(1),
                Duration::from_secs(2)
            ]),
            Duration::from_secs(2)
        );
    }
}

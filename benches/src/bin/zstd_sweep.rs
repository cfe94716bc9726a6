//! `zstd_sweep`: chunk size × zstd level (and lz4) on M1, for choosing the compressed-codec
//! defaults: file size, write time, and the random read of a row whose chunk is not decoded.
//!
//! ```text
//! cargo run --release -p vecfmt-benches --bin zstd_sweep -- [--rows N] [--reads N]
//!     [--chunks 8,16,32,64] [--levels 1,3,5,9] [--no-lz4] [--no-breakdown]
//! ```
//!
//! For each setting: median of 3 writes (with fsync), file size (and its ratio to scipy's
//! `save_npz` when `target/bench-data/m1_report.json` holds the peers' figures), p50/p99 of
//! `--reads` random single-row reads with `cache_bytes(0)` (every read decodes its chunk),
//! and the decode scan throughput on all cores.
//!
//! The breakdown then splits one chunk's decode (`Matrix::chunk_uncached`) into its parts,
//! per chunk size: the crc32c of the stored bytes, zstd decompression alone, and the rest
//! (vecfmt's varint and byte-plane decode, validation, allocation); and times a lean decode
//! of the same payload written here (capacity reserved, u32 fast path, no second validation
//! pass), to show how much of the rest is avoidable.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vecfmt::{Codec, Indices, Matrix, OpenOptions};
use vecfmt_benches::stats::{median, quantile};
use vecfmt_benches::{bench_data_dir, m1, scan_sum, write_vfm_with, writer_options, Csr, M1_ROWS};

struct Args {
    rows: usize,
    reads: usize,
    chunks_kib: Vec<usize>,
    levels: Vec<i32>,
    lz4: bool,
    breakdown: bool,
}

fn list<T: std::str::FromStr>(s: &str) -> Result<Vec<T>> {
    s.split(',')
        .map(|x| {
            x.trim()
                .parse::<T>()
                .map_err(|_| anyhow::anyhow!("bad list item {x:?}"))
        })
        .collect()
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        rows: M1_ROWS,
        reads: 20_000,
        chunks_kib: vec![8, 16, 32, 64],
        levels: vec![1, 3, 5, 9],
        lz4: true,
        breakdown: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => a.rows = val()?.parse()?,
            "--reads" => a.reads = val()?.parse()?,
            "--chunks" => a.chunks_kib = list(&val()?)?,
            "--levels" => a.levels = list(&val()?)?,
            "--no-lz4" => a.lz4 = false,
            "--no-breakdown" => a.breakdown = false,
            "-h" | "--help" => {
                println!("zstd_sweep [--rows N] [--reads N] [--chunks 8,16,32,64] [--levels 1,3,5,9] [--no-lz4] [--no-breakdown]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(a)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn read_row(m: &Matrix, i: u64) -> (f64, u64) {
    let r = m.row(i).expect("row reads");
    match (r.indices(), r.values().typed::<f32>()) {
        (Indices::U32(ix), Some(v)) => scan_sum(ix, v),
        _ => unreachable!("M1 has u32 indices and f32 values"),
    }
}

/// save_npz's size, from a previous m1_report run with the peers.
fn npz_bytes() -> Option<f64> {
    let text = std::fs::read(bench_data_dir().join("m1_report.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    v["peers"]["save_npz"]["bytes"].as_f64()
}

struct Setting {
    label: String,
    codec: Codec,
    chunk: usize,
    level: i32,
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let csr = m1(args.rows);
    let raw_bytes = csr.raw_csr_bytes();
    let dir = bench_data_dir().join("sweep");
    std::fs::create_dir_all(&dir)?;
    let npz = if args.rows == M1_ROWS { npz_bytes() } else { None };
    let mut rng = StdRng::seed_from_u64(42);
    let picks: Vec<u64> = (0..args.reads).map(|_| rng.random_range(0..args.rows as u64)).collect();

    let mut settings = Vec::new();
    for &kib in &args.chunks_kib {
        for &level in &args.levels {
            settings.push(Setting {
                label: format!("zstd-{level}"),
                codec: Codec::Zstd,
                chunk: kib << 10,
                level,
            });
        }
        if args.lz4 {
            settings.push(Setting {
                label: "lz4".into(),
                codec: Codec::Lz4,
                chunk: kib << 10,
                level: 0,
            });
        }
    }

    println!(
        "## Sweep on M1 ({} rows, nnz {}, raw CSR {:.1} MB){}",
        csr.n_rows,
        csr.nnz(),
        raw_bytes as f64 / 1e6,
        npz.map_or(String::new(), |b| format!(", save_npz {:.1} MB", b / 1e6))
    );
    println!();
    println!("| chunk | codec | file MB | of which chunk bytes / padding+catalog MB | vs raw CSR | vs save_npz | write s (median of 3) | not-decoded read p50 / p99 µs | decode scan GB/s (raw CSR, all cores) |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut results = Vec::new();
    for s in &settings {
        let path = dir.join(format!("m1.{}.{}k.vfm", s.label, s.chunk >> 10));
        let opts = writer_options(&csr, s.codec).chunk_bytes(s.chunk).zstd_level(s.level);
        let mut times = Vec::new();
        for _ in 0..3 {
            let _ = std::fs::remove_file(&path);
            let t = Instant::now();
            write_vfm_with(&csr, &path, opts.clone())?;
            times.push(t.elapsed());
        }
        let write_s = median(times).as_secs_f64();
        let size = std::fs::metadata(&path)?.len() as f64;
        let m = OpenOptions::new().cache_bytes(0).open(&path)?;
        for &i in picks.iter().take(2000) {
            std::hint::black_box(read_row(&m, i));
        }
        let mut lat: Vec<Duration> = picks
            .iter()
            .map(|&i| {
                let t = Instant::now();
                std::hint::black_box(read_row(&m, i));
                t.elapsed()
            })
            .collect();
        lat.sort();
        let scan = median(vecfmt_benches::time_n(5, || vecfmt_benches::par_scan(&m)));
        let (p50, p99) = (us(quantile(&lat, 0.5)), us(quantile(&lat, 0.99)));
        let payload = m.chunks().iter().map(|c| c.stored_len).sum::<u64>() as f64;
        println!(
            "| {} KiB | {} | {:.2} | {:.2} / {:.2} | {:.1}% | {} | {:.3} | {:.1} / {:.1} | {:.2} |",
            s.chunk >> 10,
            s.label,
            size / 1e6,
            payload / 1e6,
            (size - payload) / 1e6,
            100.0 * size / raw_bytes as f64,
            npz.map_or("—".into(), |b| format!("{:.2}×", size / b)),
            write_s,
            p50,
            p99,
            raw_bytes as f64 / scan.as_secs_f64() / 1e9
        );
        results.push(serde_json::json!({
            "chunk_bytes": s.chunk, "codec": s.label, "level": s.level, "bytes": size,
            "vs_npz": npz.map(|b| size / b), "write_seconds": write_s, "chunk_bytes_total": payload,
            "read_not_decoded_p50_us": p50, "read_not_decoded_p99_us": p99,
            "decode_scan_gbps": raw_bytes as f64 / scan.as_secs_f64() / 1e9,
            "chunks": m.chunks().len(),
        }));
        drop(m);
        if !(s.codec == Codec::Zstd && s.level == 3) {
            std::fs::remove_file(&path)?;
        }
    }

    let mut breakdown = Vec::new();
    if args.breakdown {
        println!();
        println!("### Where a chunk decode goes (zstd-3, median per chunk, µs)");
        println!();
        println!("| chunk | rows/chunk | decoded KB | stored KB | chunk_uncached (all) | crc32c | zstd decompress | rest: vecfmt decode + validate | lean decode of the same payload |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for &kib in &args.chunks_kib {
            let path = dir.join(format!("m1.zstd-3.{kib}k.vfm"));
            if !path.exists() {
                let opts = writer_options(&csr, Codec::Zstd).chunk_bytes(kib << 10).zstd_level(3);
                write_vfm_with(&csr, &path, opts)?;
            }
            let b = breakdown_of(&path, &csr)?;
            println!(
                "| {kib} KiB | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                b.rows,
                b.decoded_kb,
                b.stored_kb,
                b.total,
                b.crc,
                b.zstd,
                b.total - b.crc - b.zstd,
                b.lean
            );
            let alt = alt_encodings(&path, &csr)?;
            breakdown.push(serde_json::json!({
                "chunk_bytes": kib << 10, "rows_per_chunk": b.rows, "decoded_kb": b.decoded_kb,
                "stored_kb": b.stored_kb, "chunk_uncached_us": b.total, "crc32c_us": b.crc,
                "zstd_decompress_us": b.zstd, "lean_decode_us": b.lean, "alt_index_encodings": alt,
            }));
            std::fs::remove_file(&path)?;
        }
        println!();
        println!("### Payload encodings inside the zstd-3 chunks (same chunks; f32 value planes unless said)");
        println!();
        println!("| chunk | index encoding | decoded KB/chunk | total stored MB | zstd decompress µs | decompress + lean decode µs (median per chunk) |");
        println!("|---|---|---|---|---|---|");
        for b in &breakdown {
            for a in b["alt_index_encodings"].as_array().expect("array") {
                println!(
                    "| {} KiB | {} | {:.1} | {:.2} | {:.2} | {:.2} |",
                    b["chunk_bytes"].as_u64().unwrap_or(0) >> 10,
                    a["encoding"].as_str().unwrap_or(""),
                    a["mean_decoded_bytes"].as_f64().unwrap_or(0.0) / 1e3,
                    a["stored_bytes"].as_f64().unwrap_or(0.0) / 1e6,
                    a["decompress_us"].as_f64().unwrap_or(0.0),
                    a["decode_us"].as_f64().unwrap_or(0.0)
                );
            }
        }
    }
    let out = bench_data_dir().join("zstd_sweep.json");
    std::fs::write(
        &out,
        serde_json::to_vec_pretty(&serde_json::json!({
            "rows": args.rows, "nnz": csr.nnz(), "raw_csr_bytes": raw_bytes, "save_npz_bytes": npz,
            "reads": args.reads, "settings": results, "breakdown": breakdown,
        }))?,
    )?;
    println!();
    println!("Written to {}", out.display());
    Ok(())
}

struct Breakdown {
    rows: f64,
    decoded_kb: f64,
    stored_kb: f64,
    total: f64,
    crc: f64,
    zstd: f64,
    lean: f64,
}

/// Median per-chunk time of a closure over a sample of chunks, each call timed alone.
fn per_chunk(n: usize, mut f: impl FnMut(usize)) -> f64 {
    let step = (n / 2000).max(1);
    let mut v: Vec<Duration> = Vec::new();
    for _round in 0..3 {
        for c in (0..n).step_by(step) {
            let t = Instant::now();
            f(c);
            v.push(t.elapsed());
        }
    }
    v.sort();
    us(quantile(&v, 0.5))
}

fn breakdown_of(path: &Path, csr: &Csr) -> Result<Breakdown> {
    let m = OpenOptions::new().cache_bytes(0).open(path)?;
    let file = std::fs::read(path)?;
    let entries = m.chunks().to_vec();
    let n = entries.len();
    let stored = |c: usize| {
        let e = &entries[c];
        &file[e.offset as usize..(e.offset + e.stored_len) as usize]
    };
    let total = per_chunk(n, |c| {
        std::hint::black_box(m.chunk_uncached(c).expect("chunk"));
    });
    let crc = per_chunk(n, |c| {
        std::hint::black_box(crc32c::crc32c(stored(c)));
    });
    let mut dec = zstd::bulk::Decompressor::new()?;
    let mut buf = vec![0u8; entries.iter().map(|e| e.decoded_len as usize).max().unwrap_or(0)];
    let zstd_t = per_chunk(n, |c| {
        let k = dec.decompress_to_buffer(stored(c), &mut buf[..]).expect("zstd");
        std::hint::black_box(&buf[..k]);
    });
    // The lean decode: decompress (as above), then parse into fresh vectors.
    let mut ok = true;
    let lean = per_chunk(n, |c| {
        let e = &entries[c];
        let k = dec.decompress_to_buffer(stored(c), &mut buf[..]).expect("zstd");
        let (offsets, idx, vals) = lean_decode(&buf[..k], e.n_listed as usize, e.nnz as usize);
        if c == 0 || c == n / 2 {
            let a = csr.indptr[e.row_start as usize] as usize;
            let b = csr.indptr[e.row_end as usize] as usize;
            ok &= idx == csr.indices[a..b] && vals == csr.data[a..b] && offsets.len() == e.n_listed as usize + 1;
        }
        std::hint::black_box((offsets, idx, vals));
    });
    if !ok {
        bail!("lean decode does not match the matrix (is the chunk layout dense with 4-byte offsets?)");
    }
    Ok(Breakdown {
        rows: entries.iter().map(|e| (e.row_end - e.row_start) as f64).sum::<f64>() / n as f64,
        decoded_kb: entries.iter().map(|e| e.decoded_len as f64).sum::<f64>() / n as f64 / 1e3,
        stored_kb: entries.iter().map(|e| e.stored_len as f64).sum::<f64>() / n as f64 / 1e3,
        total,
        crc,
        zstd: zstd_t,
        lean,
    })
}

/// The compressed-codec payload (FORMAT.md §4.3 as `chunk.rs` writes it) for the layout M1
/// chunks get: dense row section of 4-byte offsets, padded to 8; per-row delta varints;
/// f32 byte planes. Returns offsets, indices, values. Checks the increasing-index rule as
/// it goes, like the core's decoder, so the comparison is fair.
fn lean_decode(p: &[u8], n_listed: usize, nnz: usize) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    let off_end = (n_listed + 1) * 4;
    let rows_end = off_end.div_ceil(8) * 8;
    let offsets: Vec<u32> = p[..off_end]
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4")))
        .collect();
    let mut idx: Vec<u32> = Vec::with_capacity(nnz);
    let mut pos = rows_end;
    for w in offsets.windows(2) {
        let mut prev = 0u32;
        for j in w[0]..w[1] {
            let mut d = 0u32;
            let mut shift = 0;
            loop {
                let b = p[pos];
                pos += 1;
                d |= ((b & 0x7f) as u32) << shift;
                shift += 7;
                if b & 0x80 == 0 {
                    break;
                }
            }
            assert!(j == w[0] || d != 0, "repeated index");
            prev += d;
            idx.push(prev);
        }
    }
    let planes = &p[pos..pos + 4 * nnz];
    let (p0, rest) = planes.split_at(nnz);
    let (p1, rest) = rest.split_at(nnz);
    let (p2, p3) = rest.split_at(nnz);
    let vals: Vec<f32> = (0..nnz)
        .map(|i| f32::from_le_bytes([p0[i], p1[i], p2[i], p3[i]]))
        .collect();
    (offsets, idx, vals)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum IndexEnc {
    /// What the core writes today: LEB128 varints of per-row deltas (first one absolute).
    Varint,
    /// The same deltas as u32, split into four byte planes (like the values).
    DeltaPlanes,
    /// The same deltas as plain little-endian u32.
    DeltaLe,
    /// Varint indices as today, but integer-valued f32 values stored as u32 integer byte
    /// planes (a counts matrix puts all of its information in plane 0).
    VarintIntValues,
}

/// Builds the decoded payload of one chunk (dense row section, indices in `enc`, f32 byte
/// planes), for rows `r0..r1` of `csr`.
fn payload(csr: &Csr, r0: usize, r1: usize, enc: IndexEnc) -> Vec<u8> {
    let base = csr.indptr[r0];
    let mut out = Vec::new();
    for r in r0..=r1 {
        out.extend_from_slice(&((csr.indptr[r] - base) as u32).to_le_bytes());
    }
    while out.len() % 8 != 0 {
        out.push(0);
    }
    let (a, b) = (csr.indptr[r0] as usize, csr.indptr[r1] as usize);
    let mut deltas = Vec::with_capacity(b - a);
    for r in r0..r1 {
        let (ix, _) = csr.row(r);
        let mut prev = 0;
        for &c in ix {
            deltas.push(c - prev);
            prev = c;
        }
    }
    match enc {
        IndexEnc::Varint | IndexEnc::VarintIntValues => {
            for &d in &deltas {
                let mut d = d;
                while d >= 0x80 {
                    out.push((d as u8) | 0x80);
                    d >>= 7;
                }
                out.push(d as u8);
            }
        }
        IndexEnc::DeltaPlanes => {
            for plane in 0..4 {
                out.extend(deltas.iter().map(|d| (d >> (8 * plane)) as u8));
            }
        }
        IndexEnc::DeltaLe => {
            for d in &deltas {
                out.extend_from_slice(&d.to_le_bytes());
            }
        }
    }
    for plane in 0..4 {
        if enc == IndexEnc::VarintIntValues {
            // M1's values are all integers below 2^24: exact as u32.
            out.extend(csr.data[a..b].iter().map(|&v| ((v as u32) >> (8 * plane)) as u8));
        } else {
            out.extend(csr.data[a..b].iter().map(|v| (v.to_bits() >> (8 * plane)) as u8));
        }
    }
    out
}

/// Parses a payload built by [`payload`].
fn parse(p: &[u8], n_rows: usize, nnz: usize, enc: IndexEnc) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    if enc == IndexEnc::Varint {
        return lean_decode(p, n_rows, nnz);
    }
    if enc == IndexEnc::VarintIntValues {
        let (o, i, v) = lean_decode(p, n_rows, nnz);
        return (o, i, v.into_iter().map(|x| x.to_bits() as f32).collect());
    }
    let off_end = (n_rows + 1) * 4;
    let rows_end = off_end.div_ceil(8) * 8;
    let offsets: Vec<u32> = p[..off_end]
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4")))
        .collect();
    let ib = &p[rows_end..rows_end + 4 * nnz];
    let mut idx: Vec<u32> = match enc {
        IndexEnc::DeltaPlanes => {
            let (q0, rest) = ib.split_at(nnz);
            let (q1, rest) = rest.split_at(nnz);
            let (q2, q3) = rest.split_at(nnz);
            (0..nnz)
                .map(|i| u32::from_le_bytes([q0[i], q1[i], q2[i], q3[i]]))
                .collect()
        }
        _ => ib
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4")))
            .collect(),
    };
    // Per-row prefix sums; a zero gap after a row's first entry is a repeated index.
    for w in offsets.windows(2) {
        let row = &mut idx[w[0] as usize..w[1] as usize];
        for j in 1..row.len() {
            assert!(row[j] != 0, "repeated index");
            row[j] += row[j - 1];
        }
    }
    let vb = &p[rows_end + 4 * nnz..rows_end + 8 * nnz];
    let (p0, rest) = vb.split_at(nnz);
    let (p1, rest) = rest.split_at(nnz);
    let (p2, p3) = rest.split_at(nnz);
    let vals = (0..nnz)
        .map(|i| f32::from_le_bytes([p0[i], p1[i], p2[i], p3[i]]))
        .collect();
    (offsets, idx, vals)
}

/// Re-encodes the chunks of the file at `path` with each index encoding, compresses them
/// with zstd level 3, and reports the total stored size and the per-chunk decode time.
fn alt_encodings(path: &Path, csr: &Csr) -> Result<Vec<serde_json::Value>> {
    let m = OpenOptions::new().cache_bytes(0).open(path)?;
    let entries = m.chunks().to_vec();
    let mut comp = zstd::bulk::Compressor::new(3)?;
    let mut dec = zstd::bulk::Decompressor::new()?;
    let mut out = Vec::new();
    for enc in [
        IndexEnc::Varint,
        IndexEnc::DeltaPlanes,
        IndexEnc::DeltaLe,
        IndexEnc::VarintIntValues,
    ] {
        let mut stored = Vec::with_capacity(entries.len());
        let mut total = 0u64;
        for e in &entries {
            if e.n_listed != e.row_end - e.row_start {
                bail!(
                    "chunk {}..{} is not dense; the experiment assumes dense chunks",
                    e.row_start,
                    e.row_end
                );
            }
            let p = payload(csr, e.row_start as usize, e.row_end as usize, enc);
            if enc == IndexEnc::Varint && p.len() as u64 != e.decoded_len {
                bail!(
                    "rebuilt varint payload is {} bytes, the core wrote {}",
                    p.len(),
                    e.decoded_len
                );
            }
            let c = comp.compress(&p)?;
            total += c.len().next_multiple_of(64) as u64;
            stored.push((c, p.len()));
        }
        let mut buf = vec![0u8; stored.iter().map(|s| s.1).max().unwrap_or(0)];
        let mut ok = true;
        let t = per_chunk(entries.len(), |c| {
            let e = &entries[c];
            let k = dec.decompress_to_buffer(&stored[c].0[..], &mut buf[..]).expect("zstd");
            let r = parse(&buf[..k], e.n_listed as usize, e.nnz as usize, enc);
            if c == entries.len() / 3 {
                let (a, b) = (
                    csr.indptr[e.row_start as usize] as usize,
                    csr.indptr[e.row_end as usize] as usize,
                );
                ok &= r.1 == csr.indices[a..b] && r.2 == csr.data[a..b];
            }
            std::hint::black_box(r);
        });
        if !ok {
            bail!("{enc:?} decode does not round-trip");
        }
        let z = per_chunk(entries.len(), |c| {
            let k = dec.decompress_to_buffer(&stored[c].0[..], &mut buf[..]).expect("zstd");
            std::hint::black_box(&buf[..k]);
        });
        let decoded = stored.iter().map(|s| s.1 as f64).sum::<f64>() / stored.len() as f64;
        out.push(serde_json::json!({
            "encoding": format!("{enc:?}"), "stored_bytes": total, "decode_us": t,
            "decompress_us": z, "mean_decoded_bytes": decoded,
        }));
    }
    Ok(out)
}

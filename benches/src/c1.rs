//! **C1, the corpus** (shared/DESIGN.md), and the update-triplet streams of the `build`
//! benchmark.
//!
//! - 1,000,000 word types of random lowercase letters. The word of rank `r` (1-based) has
//!   length `floor(2 + 0.68·ln r + u)`, `u` uniform in [0, 1), clamped to 2..=16: frequent
//!   words are short (ranks 1–4 have 2 or 3 letters), the rarest 11–12. Under Zipf(1) the
//!   mean token is about 6.5 letters, so 100 MiB holds about 14 M tokens.
//! - Tokens are drawn with Zipf(1) frequencies by rank (`P(r) ∝ 1/r`) through an alias
//!   table, so a draw is one random number and two table reads.
//! - Lines are documents of 5–39 tokens (uniform), separated by single spaces.
//! - Fixed seed; the text is generated in blocks of [`C1_BLOCK_BYTES`], each from its own
//!   RNG stream, so the output does not depend on the number of threads, and a smaller C1 is
//!   a prefix of a larger one. A file of `bytes` ends at the last whole line that fits.
//!
//! ```
//! let v = vecfmt_benches::c1::Vocab::new();
//! assert_eq!(v.len(), vecfmt_benches::c1::C1_TYPES);
//! // Frequent words are shorter.
//! assert!(v.word(0).len() <= 3 && v.word(999_999).len() >= 9);
//! let a = vecfmt_benches::c1::c1_bytes(&v, 200_000);
//! let b = vecfmt_benches::c1::c1_bytes(&v, 100_000);
//! assert!(a.starts_with(&b) && a.ends_with(b"\n") && a.len() <= 200_000);
//! ```

use std::collections::HashSet;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;

/// Word types of C1.
pub const C1_TYPES: usize = 1_000_000;
/// The fixed seed of C1.
pub const C1_SEED: u64 = 0x5EED_0000_0000_00C1;
/// Bytes of text generated from one RNG stream (whole documents, so a block ends at a line
/// end once it reaches this size). Changing it changes the corpus.
pub const C1_BLOCK_BYTES: usize = 1 << 20;
/// Bumped whenever the generator's output changes, so cached files are regenerated.
pub const C1_GENERATOR: &str = "c1-v1";
/// Shortest and longest documents, in tokens.
pub const C1_DOC_TOKENS: (u64, u64) = (5, 39);

/// A small, fast, fully specified RNG (wyrand), so the corpus does not change with the
/// `rand` crate's version.
#[derive(Debug, Clone)]
pub struct Wy(u64);

impl Wy {
    /// A stream for `seed`, decorrelated from neighbouring seeds by a SplitMix64 step.
    pub fn new(seed: u64) -> Wy {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Wy(z ^ (z >> 31))
    }
    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = (self.0 as u128).wrapping_mul((self.0 ^ 0xe703_7ed1_a0b4_28db) as u128);
        ((t >> 64) as u64) ^ (t as u64)
    }
    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-32 for our `n`).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }
    /// Uniform in [0, 1).
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Walker's alias table over `n` outcomes: a draw is one random number and two reads.
#[derive(Debug, Clone)]
pub struct Alias {
    /// Per slot: the threshold (of 2^32) under which the slot's own outcome is taken, and
    /// the alias taken otherwise.
    slots: Vec<(u32, u32)>,
}

impl Alias {
    /// The table for weights `w` (not necessarily normalised; all finite and ≥ 0).
    pub fn new(w: &[f64]) -> Alias {
        let n = w.len();
        assert!(n > 0 && n < u32::MAX as usize, "alias table size");
        let total: f64 = w.iter().sum();
        let mut p: Vec<f64> = w.iter().map(|x| x * n as f64 / total).collect();
        let mut slots = vec![(u32::MAX, 0u32); n];
        let (mut small, mut large): (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
        for (i, &x) in p.iter().enumerate() {
            if x < 1.0 {
                small.push(i as u32);
            } else {
                large.push(i as u32);
            }
        }
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            let ps = p[s as usize];
            slots[s as usize] = ((ps * 4_294_967_296.0).min(u32::MAX as f64) as u32, l);
            p[l as usize] -= 1.0 - ps;
            if p[l as usize] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // What is left has probability 1 up to rounding: it always takes itself.
        for i in small.into_iter().chain(large) {
            slots[i as usize] = (u32::MAX, i);
        }
        Alias { slots }
    }
    /// Zipf(1) by rank over `n` outcomes: outcome `i` (0-based) has weight `1/(i+1)`.
    pub fn zipf1(n: usize) -> Alias {
        let w: Vec<f64> = (1..=n).map(|r| 1.0 / r as f64).collect();
        Alias::new(&w)
    }
    /// A draw, 0-based.
    #[inline]
    pub fn sample(&self, rng: &mut Wy) -> u32 {
        let x = rng.next_u64();
        let i = (((x >> 32) * self.slots.len() as u64) >> 32) as usize;
        let (thr, alias) = self.slots[i];
        if (x as u32) < thr {
            i as u32
        } else {
            alias
        }
    }
}

/// The C1 vocabulary: word `i` is the word of rank `i + 1`, and the alias table of their
/// Zipf(1) frequencies.
#[derive(Debug, Clone)]
pub struct Vocab {
    /// Every word's letters, concatenated, each followed by a space.
    text: Vec<u8>,
    /// Start of word `i` in `text`; `C1_TYPES + 1` entries.
    offsets: Vec<u32>,
    alias: Alias,
}

impl Default for Vocab {
    fn default() -> Self {
        Vocab::new()
    }
}

impl Vocab {
    /// The 1,000,000 words of C1 (about 0.2 s).
    pub fn new() -> Vocab {
        let mut rng = Wy::new(C1_SEED ^ 0x76_6f63_6162);
        let mut seen: HashSet<Vec<u8>> = HashSet::with_capacity(C1_TYPES);
        let mut text = Vec::with_capacity(C1_TYPES * 12);
        let mut offsets = Vec::with_capacity(C1_TYPES + 1);
        let mut word = Vec::with_capacity(32);
        for r in 1..=C1_TYPES {
            let mut len = (2.0 + 0.68 * (r as f64).ln() + rng.unit()).floor().clamp(2.0, 16.0) as usize;
            let mut tries = 0;
            loop {
                word.clear();
                word.extend((0..len).map(|_| b'a' + rng.below(26) as u8));
                if seen.insert(word.clone()) {
                    break;
                }
                tries += 1;
                if tries % 8 == 0 {
                    len += 1; // every word of this length may be taken (ranks 1-4 have 2 letters)
                }
            }
            offsets.push(text.len() as u32);
            text.extend_from_slice(&word);
            text.push(b' ');
        }
        offsets.push(text.len() as u32);
        Vocab {
            text,
            offsets,
            alias: Alias::zipf1(C1_TYPES),
        }
    }
    /// Number of word types.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }
    /// Never: C1 has words.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The word of 0-based rank `i`.
    pub fn word(&self, i: usize) -> &[u8] {
        &self.text[self.offsets[i] as usize..self.offsets[i + 1] as usize - 1]
    }
    /// The word with its trailing space.
    #[inline]
    fn word_sp(&self, i: usize) -> &[u8] {
        &self.text[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }
    /// Mean letters per token under the Zipf(1) frequencies.
    pub fn mean_token_len(&self) -> f64 {
        let h: f64 = (1..=self.len()).map(|r| 1.0 / r as f64).sum();
        (0..self.len())
            .map(|i| self.word(i).len() as f64 / (i + 1) as f64)
            .sum::<f64>()
            / h
    }
}

/// One block of C1 text: whole documents, at least [`C1_BLOCK_BYTES`] bytes.
#[derive(Debug)]
pub struct C1Block {
    pub text: Vec<u8>,
    /// Tokens per line, so a truncated block's tokens can be counted.
    pub line_tokens: Vec<u8>,
}

/// Block `b` of C1.
pub fn c1_block(v: &Vocab, b: u64) -> C1Block {
    let mut rng = Wy::new(C1_SEED.wrapping_add(b.wrapping_mul(0x1_0000_0001)));
    let mut text = Vec::with_capacity(C1_BLOCK_BYTES + 1024);
    let mut line_tokens = Vec::with_capacity(C1_BLOCK_BYTES / 150);
    let (lo, hi) = C1_DOC_TOKENS;
    while text.len() < C1_BLOCK_BYTES {
        let k = lo + rng.below(hi - lo + 1);
        for _ in 0..k {
            let w = v.alias.sample(&mut rng) as usize;
            text.extend_from_slice(v.word_sp(w));
        }
        *text.last_mut().expect("k >= 5") = b'\n';
        line_tokens.push(k as u8);
    }
    C1Block { text, line_tokens }
}

/// What a C1 file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct C1Summary {
    pub bytes: u64,
    pub lines: u64,
    pub tokens: u64,
}

/// Generates C1 of at most `max_bytes` (ending at the last whole line that fits), block by
/// block in batches on rayon's pool, calling `sink` with each piece in order.
pub fn c1_generate(v: &Vocab, max_bytes: u64, mut sink: impl FnMut(&[u8]) -> Result<()>) -> Result<C1Summary> {
    let batch = (rayon::current_num_threads() * 4).max(4) as u64;
    let mut s = C1Summary {
        bytes: 0,
        lines: 0,
        tokens: 0,
    };
    let mut next = 0u64;
    loop {
        let blocks: Vec<C1Block> = (next..next + batch).into_par_iter().map(|b| c1_block(v, b)).collect();
        next += batch;
        for blk in blocks {
            let room = max_bytes - s.bytes;
            if (blk.text.len() as u64) <= room {
                sink(&blk.text)?;
                s.bytes += blk.text.len() as u64;
                s.lines += blk.line_tokens.len() as u64;
                s.tokens += blk.line_tokens.iter().map(|&k| k as u64).sum::<u64>();
                continue;
            }
            // The last piece: whole lines up to `room` bytes.
            let mut end = 0usize;
            let mut line = 0usize;
            for (i, &c) in blk.text.iter().enumerate() {
                if c == b'\n' {
                    if i as u64 + 1 > room {
                        break;
                    }
                    end = i + 1;
                    s.tokens += blk.line_tokens[line] as u64;
                    line += 1;
                }
            }
            sink(&blk.text[..end])?;
            s.bytes += end as u64;
            s.lines += line as u64;
            return Ok(s);
        }
    }
}

/// C1 of at most `max_bytes`, in memory (for tests and small sizes).
pub fn c1_bytes(v: &Vocab, max_bytes: u64) -> Vec<u8> {
    let mut out = Vec::new();
    c1_generate(v, max_bytes, |b| {
        out.extend_from_slice(b);
        Ok(())
    })
    .expect("in-memory sink");
    out
}

/// Parses a size like `100M`, `1G`, `1.5G`, `4096` (binary units, as the CLI reads them).
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_uppercase();
    let t = t.strip_suffix("IB").or_else(|| t.strip_suffix('B')).unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M') => (&t[..t.len() - 1], 1 << 20),
        Some('G') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let x: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("{s:?} is not a size (e.g. 100M, 1G)"))?;
    if !x.is_finite() || x <= 0.0 {
        bail!("{s:?} is not a size (e.g. 100M, 1G)");
    }
    Ok((x * mult as f64) as u64)
}

/// The default C1 path for a size: `bench-data/c1-100m.txt`, `bench-data/c1-1g.txt`, ...
pub fn c1_path(bytes: u64) -> PathBuf {
    let name = if bytes.is_multiple_of(1 << 30) {
        format!("c1-{}g.txt", bytes >> 30)
    } else if bytes.is_multiple_of(1 << 20) {
        format!("c1-{}m.txt", bytes >> 20)
    } else {
        format!("c1-{bytes}.txt")
    };
    crate::bench_data_dir().join(name)
}

fn sidecar(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

fn c1_json(max_bytes: u64, s: &C1Summary) -> serde_json::Value {
    serde_json::json!({
        "generator": C1_GENERATOR,
        "seed": C1_SEED,
        "types": C1_TYPES,
        "max_bytes": max_bytes,
        "bytes": s.bytes,
        "lines": s.lines,
        "tokens": s.tokens,
    })
}

/// The summary recorded next to `path` (`path.json`) when it describes C1 of `max_bytes`
/// from this generator and the file has the recorded size.
pub fn c1_cached(path: &Path, max_bytes: u64) -> Option<C1Summary> {
    let j: serde_json::Value = serde_json::from_slice(&fs::read(sidecar(path)).ok()?).ok()?;
    let s = C1Summary {
        bytes: j["bytes"].as_u64()?,
        lines: j["lines"].as_u64()?,
        tokens: j["tokens"].as_u64()?,
    };
    (j == c1_json(max_bytes, &s) && fs::metadata(path).ok()?.len() == s.bytes).then_some(s)
}

/// Writes C1 of at most `max_bytes` to `path` unless it is already there (same generator,
/// size and recorded size). Returns the summary and whether it wrote.
pub fn c1_write(path: &Path, max_bytes: u64) -> Result<(C1Summary, bool)> {
    if let Some(s) = c1_cached(path, max_bytes) {
        return Ok((s, false));
    }
    if let Some(d) = path.parent() {
        fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
    }
    let _ = fs::remove_file(sidecar(path));
    let v = Vocab::new();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let f = fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    let mut w = BufWriter::with_capacity(8 << 20, f);
    let s = c1_generate(&v, max_bytes, |b| Ok(w.write_all(b)?)).with_context(|| format!("write {}", tmp.display()))?;
    let f = w.into_inner().map_err(|e| e.into_error()).context("flush")?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    let mut j = serde_json::to_vec_pretty(&c1_json(max_bytes, &s))?;
    j.push(b'\n');
    fs::write(sidecar(path), j)?;
    Ok((s, true))
}

/// Update triplets for `vecfmt build`: `n` triplets, row and column ids each Zipf(1) by
/// rank over `0..ids`, values `k/4` for `k` uniform in 1..=8 (exact in f32 and in short
/// decimal text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TripletSpec {
    pub n: u64,
    pub ids: u32,
    pub seed: u64,
}

/// Bumped whenever the triplet generator's output changes.
pub const TRIPLETS_GENERATOR: &str = "trip-v1";
/// Triplets generated from one RNG stream.
const TRIPLET_BLOCK: u64 = 1 << 20;
const VALUE_TEXT: [&str; 8] = ["0.25", "0.5", "0.75", "1", "1.25", "1.5", "1.75", "2"];

fn triplet_block(spec: &TripletSpec, alias: &Alias, b: u64, text: bool) -> Vec<u8> {
    let mut rng = Wy::new(spec.seed.wrapping_add(b.wrapping_mul(0x1_0000_0001)));
    let n = TRIPLET_BLOCK.min(spec.n - b * TRIPLET_BLOCK) as usize;
    let mut out = Vec::with_capacity(n * if text { 18 } else { 12 });
    let mut ib = itoa_buf();
    for _ in 0..n {
        let r = alias.sample(&mut rng);
        let c = alias.sample(&mut rng);
        let k = rng.below(8) as usize;
        if text {
            out.extend_from_slice(itoa(&mut ib, r));
            out.push(b'\t');
            out.extend_from_slice(itoa(&mut ib, c));
            out.push(b'\t');
            out.extend_from_slice(VALUE_TEXT[k].as_bytes());
            out.push(b'\n');
        } else {
            out.extend_from_slice(&r.to_le_bytes());
            out.extend_from_slice(&c.to_le_bytes());
            out.extend_from_slice(&((k + 1) as f32 / 4.0).to_le_bytes());
        }
    }
    out
}

fn itoa_buf() -> [u8; 10] {
    [0; 10]
}

fn itoa(buf: &mut [u8; 10], mut x: u32) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (x % 10) as u8;
        x /= 10;
        if x == 0 {
            return &buf[i..];
        }
    }
}

/// The 16-byte header of a binary triplet stream (docs/TRIPLETS.md): magic `VFMTRIP1`,
/// u16 version 1, u8 id width 4, u8 dtype code of f32, 4 zero bytes. Records follow: u32
/// row, u32 col, f32 value, little-endian.
pub fn triplet_header() -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(b"VFMTRIP1");
    h[8..10].copy_from_slice(&1u16.to_le_bytes());
    h[10] = 4;
    h[11] = vecfmt::DType::F32.code();
    h
}

/// Writes the triplets of `spec` to `path` as text (`row<TAB>col<TAB>value` lines) or as a
/// binary stream, unless the file is already there (recorded in `path.json`). Returns the
/// file's size and whether it wrote.
pub fn triplets_write(path: &Path, spec: &TripletSpec, text: bool) -> Result<(u64, bool)> {
    let want = serde_json::json!({
        "generator": TRIPLETS_GENERATOR,
        "n": spec.n, "ids": spec.ids, "seed": spec.seed,
        "form": if text { "text" } else { "binary" },
    });
    if let Ok(j) = fs::read(sidecar(path)) {
        if let Ok(mut j) = serde_json::from_slice::<serde_json::Value>(&j) {
            let size = j["bytes"].as_u64();
            if let Some(o) = j.as_object_mut() {
                o.remove("bytes");
            }
            if let Some(size) = size {
                if j == want && fs::metadata(path).is_ok_and(|m| m.len() == size) {
                    return Ok((size, false));
                }
            }
        }
    }
    if let Some(d) = path.parent() {
        fs::create_dir_all(d)?;
    }
    let _ = fs::remove_file(sidecar(path));
    let alias = Alias::zipf1(spec.ids as usize);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut w = BufWriter::with_capacity(8 << 20, fs::File::create(&tmp)?);
    let mut size = 0u64;
    if !text {
        w.write_all(&triplet_header())?;
        size += 16;
    }
    let n_blocks = spec.n.div_ceil(TRIPLET_BLOCK);
    let batch = (rayon::current_num_threads() * 4).max(4) as u64;
    let mut b0 = 0;
    while b0 < n_blocks {
        let blocks: Vec<Vec<u8>> = (b0..(b0 + batch).min(n_blocks))
            .into_par_iter()
            .map(|b| triplet_block(spec, &alias, b, text))
            .collect();
        for blk in blocks {
            w.write_all(&blk)?;
            size += blk.len() as u64;
        }
        b0 += batch;
    }
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    let mut j = want;
    j["bytes"] = size.into();
    fs::write(sidecar(path), serde_json::to_vec_pretty(&j)?)?;
    Ok((size, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_follows_zipf() {
        let a = Alias::zipf1(1000);
        let mut rng = Wy::new(7);
        let mut hist = vec![0u32; 1000];
        let n = 2_000_000;
        for _ in 0..n {
            hist[a.sample(&mut rng) as usize] += 1;
        }
        let h: f64 = (1..=1000).map(|r| 1.0 / r as f64).sum();
        for (i, &c) in hist.iter().enumerate().take(20) {
            let want = n as f64 / ((i + 1) as f64 * h);
            assert!(
                (c as f64 - want).abs() < 5.0 * want.sqrt() + 1.0,
                "rank {} got {c}, want {want}",
                i + 1
            );
        }
    }

    #[test]
    fn vocab_is_distinct_and_lengths_grow_with_rank() {
        let v = Vocab::new();
        let mut s = HashSet::new();
        for i in 0..v.len() {
            let w = v.word(i);
            assert!(!w.is_empty() && w.iter().all(u8::is_ascii_lowercase));
            assert!(s.insert(w), "duplicate word at rank {}", i + 1);
        }
        let mean_len =
            |r: std::ops::Range<usize>| r.clone().map(|i| v.word(i).len()).sum::<usize>() as f64 / r.len() as f64;
        assert!(mean_len(0..100) < mean_len(10_000..10_100));
        assert!(mean_len(10_000..10_100) < mean_len(900_000..900_100));
        let m = v.mean_token_len();
        assert!((6.0..7.0).contains(&m), "mean token length {m}");
    }

    #[test]
    fn corpus_lines_and_prefixes() {
        let v = Vocab::new();
        let text = c1_bytes(&v, 3 * C1_BLOCK_BYTES as u64 + 12_345);
        let again = c1_bytes(&v, 3 * C1_BLOCK_BYTES as u64 + 12_345);
        assert_eq!(text, again, "deterministic");
        let mut tokens = 0u64;
        for line in text.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
            let k = line.split(|&c| c == b' ').count() as u64;
            assert!((5..=39).contains(&k), "line of {k} tokens");
            tokens += k;
        }
        let mut n = 0;
        let sum = c1_generate(&v, 3 * C1_BLOCK_BYTES as u64 + 12_345, |b| {
            n += b.len();
            Ok(())
        })
        .unwrap();
        let prefix = c1_bytes(&v, C1_BLOCK_BYTES as u64 + 999);
        assert!(text.starts_with(&prefix), "a smaller C1 is a prefix");
        assert_eq!(sum.bytes as usize, text.len());
        assert_eq!(sum.tokens, tokens);
        assert_eq!(n, text.len());
    }

    #[test]
    fn triplet_files_and_header() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = TripletSpec {
            n: 1000,
            ids: 50,
            seed: 3,
        };
        let (tsize, wrote) = triplets_write(&tmp.path().join("t.tsv"), &spec, true).unwrap();
        assert!(wrote);
        assert!(!triplets_write(&tmp.path().join("t.tsv"), &spec, true).unwrap().1);
        let (bsize, _) = triplets_write(&tmp.path().join("t.bin"), &spec, false).unwrap();
        assert_eq!(bsize, 16 + 12 * 1000);
        let t = fs::read_to_string(tmp.path().join("t.tsv")).unwrap();
        assert_eq!(t.len() as u64, tsize);
        let b = fs::read(tmp.path().join("t.bin")).unwrap();
        assert_eq!(&b[..8], b"VFMTRIP1");
        // The same triplets in both forms.
        for (i, line) in t.lines().enumerate().take(50) {
            let f: Vec<&str> = line.split('\t').collect();
            let rec = &b[16 + 12 * i..16 + 12 * (i + 1)];
            assert_eq!(
                f[0].parse::<u32>().unwrap(),
                u32::from_le_bytes(rec[0..4].try_into().unwrap())
            );
            assert_eq!(
                f[1].parse::<u32>().unwrap(),
                u32::from_le_bytes(rec[4..8].try_into().unwrap())
            );
            assert_eq!(
                f[2].parse::<f32>().unwrap(),
                f32::from_le_bytes(rec[8..12].try_into().unwrap())
            );
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100M").unwrap(), 100 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert!(c1_path(1 << 30).ends_with("c1-1g.txt"));
        assert!(c1_path(100 << 20).ends_with("c1-100m.txt"));
    }
}

//! `cooccur_floor`: what a GloVe-style co-occurrence count costs on this machine, measured
//! stage by stage on the real corpus, to compare with `vecfmt cooccur` (issue 3's speed
//! target).
//!
//! The design measured here has none of the accumulator's duties: no chunk cache, no
//! commits, no crash safety, no labels. It is the least work an out-of-core count can do:
//!
//! 1. **pairs**: the window loop over word ids, with the same dense table as `cooccur`
//!    (rank product ≤ 362², f64 sums); every other pair is appended to one big buffer;
//! 2. **runs**: when the buffer is full it is radix-sorted, equal keys are summed, the
//!    transposed copy of each off-diagonal entry is made and sorted too, and both are merged
//!    into one run file, so that the end needs no transpose. An entry is a varint key delta
//!    and a one-byte code when its value is one window weight (a pair seen once), else the
//!    f64: about 3.2 bytes against 16 for a raw (key, f64);
//! 3. **merge**: one k-way heap merge of all runs (and the dense table's cells), summing equal
//!    keys, straight into the `.vfm` writer: f32 values, zstd level 1, as `cooccur` writes.
//!
//! Tokenising and word lookup run first and are timed on their own (they are not the subject:
//! `cooccur`'s front end was measured at 6–10 s on C1-1GB). Everything runs on one thread
//! but the writer's encoders, so the CPU time is the floor for one core.
//!
//! ```text
//! cargo run --release -p vecfmt-benches --bin cooccur_floor -- CORPUS VOCAB \
//!     [--shard K/N] [--memory MIB] [--window W] [--out OUT.vfm] [--tmp DIR]
//! ```
//! The runs go to a new directory in DIR (default: next to OUT), removed at the end.
//! VOCAB is `cooccur --save-vocab`'s file (`word<TAB>count`, most frequent first). The
//! weighting is harmonic (1/d), as in issue 3's benchmark.

use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use vecfmt::{Codec, DType, MatrixWriter, WriterOptions};

/// Dense-table rank product: `cooccur`'s `dense_block(362)`.
const DENSE_K: u64 = 362;

#[derive(Default)]
struct Fx(u64);
impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Clone, Copy, Default)]
#[repr(C)]
struct E {
    key: u64,
    v: f64,
}

fn key(r: u64, c: u64) -> u64 {
    (r << 32) | c
}

/// Radix digit width.
const BITS: u32 = 11;

/// The key bits that are not the same in every entry.
fn varying(v: &[E]) -> u64 {
    let (mut or, mut and) = (0u64, u64::MAX);
    for e in v {
        or |= e.key;
        and &= e.key;
    }
    or ^ and
}

/// One counting pass: moves `src` into `dst` ordered by the digit at `shift` (stable).
/// `starts` is left holding where each digit's entries start, plus the end.
fn scatter(src: &[E], dst: &mut [E], shift: u32, starts: &mut Vec<usize>) {
    let mask = (1u64 << BITS) - 1;
    starts.clear();
    starts.resize((1 << BITS) + 1, 0);
    for e in src {
        starts[((e.key >> shift) & mask) as usize + 1] += 1;
    }
    for d in 1..starts.len() {
        starts[d] += starts[d - 1];
    }
    // `starts[d]` is digit d's write cursor; afterwards it is where digit d + 1 starts.
    for e in src {
        let d = ((e.key >> shift) & mask) as usize;
        dst[starts[d]] = *e;
        starts[d] += 1;
    }
    starts.rotate_right(1);
    starts[0] = 0;
}

/// LSD radix sort on the bits that vary, `BITS` at a time.
fn radix_sort(v: &mut [E], scratch: &mut Vec<E>, starts: &mut Vec<usize>) {
    let mut varying = varying(v);
    scratch.clear();
    scratch.resize(v.len(), E::default());
    let mut in_scratch = false;
    while varying != 0 {
        let shift = varying.trailing_zeros();
        if in_scratch {
            scatter(scratch, v, shift, starts);
        } else {
            scatter(v, scratch, shift, starts);
        }
        in_scratch = !in_scratch;
        varying &= !(((1u64 << BITS) - 1) << shift);
    }
    if in_scratch {
        v.copy_from_slice(scratch);
    }
}

/// Sorts by key: one pass on the top `BITS` bits that vary scatters into buckets of a few
/// thousand entries, each then sorted by [`radix_sort`] while it sits in cache.
fn sort_keys(v: &mut [E], scratch: &mut Vec<E>, small: &mut Vec<E>) {
    let varying = varying(v);
    if varying == 0 {
        return;
    }
    let shift = (64 - varying.leading_zeros()).saturating_sub(BITS);
    scratch.clear();
    scratch.resize(v.len(), E::default());
    let mut buckets = Vec::new();
    scatter(v, scratch, shift, &mut buckets);
    let mut starts = Vec::new();
    for b in buckets.windows(2) {
        radix_sort(&mut scratch[b[0]..b[1]], small, &mut starts);
    }
    v.copy_from_slice(scratch);
}

fn sum_sorted(v: &mut Vec<E>) {
    if v.is_empty() {
        return;
    }
    let mut w = 0;
    for r in 1..v.len() {
        if v[r].key == v[w].key {
            v[w].v += v[r].v;
        } else {
            w += 1;
            v[w] = v[r];
        }
    }
    v.truncate(w + 1);
}

fn cpu_secs() -> f64 {
    // SAFETY: rusage is plain old data; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

struct Stage {
    t: Instant,
    cpu: f64,
}
impl Stage {
    fn start() -> Self {
        Stage {
            t: Instant::now(),
            cpu: cpu_secs(),
        }
    }
    fn end(&self, name: &str, per: u64) -> (f64, f64) {
        let (wall, cpu) = (self.t.elapsed().as_secs_f64(), cpu_secs() - self.cpu);
        println!(
            "{name:<8} {wall:7.2} s wall {cpu:7.2} s CPU  {:6.1} ns CPU per sparse update",
            cpu * 1e9 / per.max(1) as f64
        );
        (wall, cpu)
    }
}

/// The one-byte code of `v` when it is a window weight `w[d]` (code `d`) or `2 w[d]` (the
/// diagonal, code `64 + d`), for `d` below 64; 0 when it is not.
fn code_of(v: f64, w: &[f64]) -> u8 {
    let n = w.len().min(64);
    let d = (1.0 / v).round();
    if d >= 1.0 && (d as usize) < n && w[d as usize] == v {
        return d as u8;
    }
    let d = (2.0 / v).round();
    if d >= 1.0 && (d as usize) < n && 2.0 * w[d as usize] == v {
        return 64 + d as u8;
    }
    0
}

/// Sorts, sums and writes one buffer as a run holding both triangles; returns its entries.
fn spill(
    buf: &mut Vec<E>,
    scratch: &mut Vec<E>,
    small: &mut Vec<E>,
    tr: &mut Vec<E>,
    weights: &[f64],
    dir: &Path,
    runs: &mut Vec<PathBuf>,
) -> Result<u64> {
    sort_keys(buf, scratch, small);
    sum_sorted(buf);
    tr.clear();
    tr.extend(
        buf.iter()
            .filter(|e| (e.key >> 32) != (e.key & 0xffff_ffff))
            .map(|e| E {
                key: ((e.key & 0xffff_ffff) << 32) | (e.key >> 32),
                v: e.v,
            }),
    );
    sort_keys(tr, scratch, small);
    let path = dir.join(format!("run-{}", runs.len()));
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&path)?);
    let (mut i, mut j) = (0, 0);
    let (mut n, mut prev) = (0u64, 0u64);
    let mut rec = [0u8; 19];
    while i < buf.len() || j < tr.len() {
        let e = if j == tr.len() || (i < buf.len() && buf[i].key < tr[j].key) {
            i += 1;
            buf[i - 1]
        } else {
            j += 1;
            tr[j - 1]
        };
        // A run is a sequence of (varint key delta, value code[, f64]): a value that is one
        // window weight 1/d or 2/d (a pair seen once) takes one byte.
        let mut len = 0;
        let mut d = e.key - prev;
        prev = e.key;
        while d >= 0x80 {
            rec[len] = d as u8 | 0x80;
            d >>= 7;
            len += 1;
        }
        rec[len] = d as u8;
        len += 1;
        rec[len] = code_of(e.v, weights);
        len += 1;
        if rec[len - 1] == 0 {
            rec[len..len + 8].copy_from_slice(&e.v.to_le_bytes());
            len += 8;
        }
        w.write_all(&rec[..len])?;
        n += 1;
    }
    w.flush()?;
    runs.push(path);
    buf.clear();
    Ok(n)
}

struct Run<'a> {
    r: File,
    block: Vec<u8>,
    at: usize,
    key: u64,
    weights: &'a [f64],
}
impl Run<'_> {
    fn byte(&mut self) -> Result<Option<u8>> {
        if self.at == self.block.len() {
            self.block.resize(1 << 20, 0);
            let n = self.r.read(&mut self.block)?;
            self.block.truncate(n);
            self.at = 0;
            if n == 0 {
                return Ok(None);
            }
        }
        self.at += 1;
        Ok(Some(self.block[self.at - 1]))
    }
    fn next(&mut self) -> Result<Option<E>> {
        let (mut d, mut shift) = (0u64, 0);
        loop {
            let Some(b) = self.byte()? else {
                return if shift == 0 {
                    Ok(None)
                } else {
                    bail!("a run ends inside an entry")
                };
            };
            d |= ((b & 0x7f) as u64) << shift;
            shift += 7;
            if b < 0x80 {
                break;
            }
        }
        self.key += d;
        let c = self.byte()?.context("a run ends inside an entry")?;
        let v = match c {
            0 => {
                let mut b = [0u8; 8];
                for x in b.iter_mut() {
                    *x = self.byte()?.context("a run ends inside an entry")?;
                }
                f64::from_le_bytes(b)
            }
            1..64 => self.weights[c as usize],
            _ => 2.0 * self.weights[c as usize - 64],
        };
        Ok(Some(E { key: self.key, v }))
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut pos = Vec::new();
    let (mut shard, mut memory, mut window) = ((1u64, 1u64), 1024u64, 10usize);
    let (mut out, mut tmp) = (PathBuf::from("target/bench-data/floor.vfm"), None::<PathBuf>);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--shard" => {
                let (k, n) = val()?.split_once('/').context("--shard K/N")?;
                shard = (k.parse()?, n.parse()?);
                if shard.0 == 0 || shard.0 > shard.1 {
                    bail!("--shard K/N: K must be between 1 and N");
                }
            }
            "--memory" => memory = val()?.parse()?,
            "--window" => window = val()?.parse()?,
            "--out" => out = PathBuf::from(val()?),
            "--tmp" => tmp = Some(PathBuf::from(val()?)),
            _ if a.starts_with('-') => bail!("unknown option {a}"),
            _ => pos.push(a.clone()),
        }
    }
    let [corpus, vocab] = &pos[..] else {
        bail!("usage: cooccur_floor CORPUS VOCAB [options]")
    };

    // Setup: the vocabulary and the shard's lines as word ids.
    let t = Stage::start();
    let vtext = std::fs::read(vocab).with_context(|| vocab.clone())?;
    let mut words: HashMap<&[u8], u32, BuildHasherDefault<Fx>> = HashMap::default();
    for line in vtext.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        let w = line.split(|&c| c == b'\t').next().unwrap_or(line);
        let id = words.len() as u32;
        words.entry(w).or_insert(id);
    }
    let n_words = words.len() as u64;
    let text = std::fs::read(corpus).with_context(|| corpus.clone())?;
    let (lo, hi) = (
        text.len() as u64 * (shard.0 - 1) / shard.1,
        text.len() as u64 * shard.0 / shard.1,
    );
    // A line belongs to the shard where it starts, as `--shard` splits.
    let start_of = |at: u64| -> usize {
        if at == 0 {
            return 0;
        }
        match text[at as usize - 1..].iter().position(|&c| c == b'\n') {
            Some(p) => at as usize + p,
            None => text.len(),
        }
    };
    let (a, b) = (start_of(lo), start_of(hi));
    let mut ids: Vec<u32> = Vec::new();
    let mut ends: Vec<usize> = Vec::new();
    let mut tokens = 0u64;
    for line in text[a..b].split(|&c| c == b'\n') {
        for t in line.split(|c| c.is_ascii_whitespace()).filter(|t| !t.is_empty()) {
            tokens += 1;
            if let Some(&id) = words.get(t) {
                ids.push(id);
            }
        }
        ends.push(ids.len());
    }
    drop(words);
    drop(text);
    println!(
        "setup    {:7.2} s wall {:7.2} s CPU",
        t.t.elapsed().as_secs_f64(),
        cpu_secs() - t.cpu
    );
    println!(
        "{tokens} tokens, {} kept, {} lines, {n_words} words",
        ids.len(),
        ends.len()
    );

    // 1 + 2: pairs, dense table, runs.
    let parent = tmp.unwrap_or_else(|| out.parent().unwrap_or(Path::new(".")).to_path_buf());
    let dir = parent.join(format!("cooccur-floor-runs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let product = DENSE_K * DENSE_K;
    let mut start = vec![0u64];
    for r in 0..DENSE_K {
        let n = (product / (r + 1)).saturating_sub(r);
        start.push(start[r as usize] + n);
    }
    let mut dense = vec![0f64; start[DENSE_K as usize] as usize];
    // Buffer, sort scratch and transposed copy: 48 bytes per buffered update.
    let cap = (memory << 20) as usize / 48;
    let mut buf: Vec<E> = Vec::with_capacity(cap);
    let (mut scratch, mut small, mut tr) = (Vec::new(), Vec::new(), Vec::new());
    let mut runs = Vec::new();
    let (mut pairs, mut sparse, mut run_entries) = (0u64, 0u64, 0u64);
    let weights: Vec<f64> = (0..=window).map(|d| 1.0 / d.max(1) as f64).collect();
    let t = Stage::start();
    let mut spill_cpu = 0.0;
    let mut from = 0;
    for &end in &ends {
        let line = &ids[from..end];
        from = end;
        for i in 1..line.len() {
            for j in i.saturating_sub(window)..i {
                let (w, c) = (line[i] as u64, line[j] as u64);
                let (r, c, v) = if w == c {
                    (w, c, 2.0 * weights[i - j])
                } else {
                    (w.min(c), w.max(c), weights[i - j])
                };
                pairs += 1;
                if (r + 1) * (c + 1) <= product {
                    dense[(start[r as usize] + c - r) as usize] += v;
                    continue;
                }
                sparse += 1;
                buf.push(E { key: key(r, c), v });
                if buf.len() == cap {
                    let s = cpu_secs();
                    run_entries += spill(&mut buf, &mut scratch, &mut small, &mut tr, &weights, &dir, &mut runs)?;
                    spill_cpu += cpu_secs() - s;
                }
            }
        }
    }
    let (pw, pc) = t.end("pairs+runs", sparse);
    let t = Stage::start();
    // The dense table's cells, both triangles, go in as one more buffer.
    for r in 0..DENSE_K {
        for i in start[r as usize]..start[r as usize + 1] {
            if dense[i as usize] != 0.0 {
                buf.push(E {
                    key: key(r, r + i - start[r as usize]),
                    v: dense[i as usize],
                });
            }
        }
    }
    run_entries += spill(&mut buf, &mut scratch, &mut small, &mut tr, &weights, &dir, &mut runs)?;
    let (lw, lc) = t.end("last run", sparse);
    println!(
        "{pairs} pairs, {sparse} sparse ({:.1}%), {} runs, {run_entries} run entries ({:.2} GB); of pairs+runs, {spill_cpu:.2} s CPU sorting and writing runs",
        100.0 * sparse as f64 / pairs.max(1) as f64,
        runs.len(),
        runs.iter().map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum::<u64>() as f64 / 1e9
    );
    drop((buf, scratch, small, tr, dense, ids, ends));

    // 3: one k-way merge into the writer.
    let t = Stage::start();
    let mut rd: Vec<Run> = runs
        .iter()
        .map(|p| {
            Ok(Run {
                r: File::open(p)?,
                block: Vec::new(),
                at: 0,
                key: 0,
                weights: &weights,
            })
        })
        .collect::<Result<_>>()?;
    // The runs' next entries, smallest key on top; the top is replaced in place, one
    // sift-down per entry.
    let mut heads: Vec<f64> = vec![0.0; rd.len()];
    let mut heap = BinaryHeap::with_capacity(rd.len());
    for (i, r) in rd.iter_mut().enumerate() {
        if let Some(e) = r.next()? {
            heads[i] = e.v;
            heap.push(Reverse((e.key, i as u32)));
        }
    }
    let opts = WriterOptions::new(DType::F32, n_words)
        .n_rows(n_words)
        .codec(Codec::Zstd)
        .zstd_level(1);
    let mut w = MatrixWriter::create(&out, opts)?;
    let (mut row, mut cols, mut vals): (u64, Vec<u32>, Vec<f32>) = (0, Vec::new(), Vec::new());
    let mut cur: Option<(u64, f64)> = None;
    let mut emit = |k: u64, v: f64, w: &mut MatrixWriter| -> Result<()> {
        if k >> 32 != row && !cols.is_empty() {
            w.push_row(row, &cols, &vals)?;
            cols.clear();
            vals.clear();
        }
        row = k >> 32;
        cols.push(k as u32);
        vals.push(v as f32);
        Ok(())
    };
    while let Some(mut top) = heap.peek_mut() {
        let Reverse((k, i)) = *top;
        let v = heads[i as usize];
        match rd[i as usize].next()? {
            Some(e) => {
                heads[i as usize] = e.v;
                *top = Reverse((e.key, i));
            }
            None => {
                PeekMut::pop(top);
            }
        }
        match cur {
            Some((ck, cv)) if ck == k => cur = Some((k, cv + v)),
            Some((ck, cv)) => {
                emit(ck, cv, &mut w)?;
                cur = Some((k, v));
            }
            None => cur = Some((k, v)),
        }
    }
    if let Some((ck, cv)) = cur {
        emit(ck, cv, &mut w)?;
    }
    if !cols.is_empty() {
        w.push_row(row, &cols, &vals)?;
    }
    let s = w.finish()?;
    let (mw, mc) = t.end("merge", sparse);
    println!(
        "wrote {}: {} nonzeros, {:.2} GB",
        out.display(),
        s.nnz,
        s.bytes_on_disk as f64 / 1e9
    );
    let (wall, cpu) = (pw + lw + mw, pc + lc + mc);
    println!(
        "floor (pairs, runs, merge): {wall:.2} s wall, {cpu:.2} s CPU; {:.2} M tokens/s per core of CPU, {:.1} ns CPU per pair",
        tokens as f64 / cpu / 1e6,
        cpu * 1e9 / pairs.max(1) as f64
    );
    std::fs::remove_dir_all(&dir).with_context(|| dir.display().to_string())?;
    Ok(())
}

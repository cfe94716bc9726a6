//! `vecfmt merge` and `vecfmt compact`: sum matrices, and rewrite a file densely.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use vecfmt::{Accumulator, AccumulatorOptions, Codec, DType, Matrix, MatrixWriter, WriterOptions};

use crate::accumulate::{prepare_output, zstd_levels};
use crate::note;

/// Arguments of `vecfmt merge`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Sums matrices. When every input has labels, rows and columns are matched by label \
(the result has the union of the labels); otherwise the inputs must have the same shape. Streams row by row \
when the inputs line up; otherwise sums through the accumulator under --memory.\n\nExamples:\n  \
vecfmt merge part1.vfm part2.vfm part3.vfm -o total.vfm\n  vecfmt merge shard*.vfm -o total.vfm --memory 4G"
)]
pub struct MergeArgs {
    /// The matrices to sum.
    #[arg(required = true, num_args = 2..)]
    pub inputs: Vec<PathBuf>,
    /// The result.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Memory budget when inputs must be matched by label.
    #[arg(long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// Codec of the result: raw, lz4 or zstd.
    #[arg(long, default_value = "zstd")]
    pub codec: String,
    /// Value dtype of the result (default: the inputs' dtype, which must agree).
    #[arg(long)]
    pub dtype: Option<String>,
    /// zstd level of the result (1 is fastest, up to 22).
    #[arg(long, value_name = "N", default_value_t = vecfmt::consts::DEFAULT_ZSTD_LEVEL,
          value_parser = zstd_levels())]
    pub zstd_level: i32,
    /// Replace OUTPUT if it exists.
    #[arg(long)]
    pub force: bool,
}

fn labels_of(l: Option<vecfmt::Labels<'_>>) -> Result<Option<Vec<String>>> {
    let Some(l) = l else { return Ok(None) };
    Ok(Some(
        l.iter()
            .map(|s| s.map(str::to_owned))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("corrupt labels: {e}"))?,
    ))
}

pub fn merge(args: MergeArgs) -> Result<ExitCode> {
    let start = Instant::now();
    prepare_output(&args.output, args.force, false)?;
    for p in &args.inputs {
        if p == &args.output {
            bail!("{}: the output cannot also be an input", p.display());
        }
    }
    let ms: Vec<Matrix> = args.inputs.iter().map(Matrix::open).collect::<vecfmt::Result<_>>()?;
    let dtype = match &args.dtype {
        Some(d) => d.parse::<DType>()?,
        None => {
            let d = ms[0].dtype();
            for (m, p) in ms.iter().zip(&args.inputs) {
                if m.dtype() != d {
                    bail!(
                        "{}: holds {}, but {} holds {d}; pass --dtype to choose the result's",
                        p.display(),
                        m.dtype(),
                        args.inputs[0].display()
                    );
                }
            }
            d
        }
    };
    let codec = args.codec.parse::<Codec>()?;
    let mut row_l = Vec::new();
    let mut col_l = Vec::new();
    for m in &ms {
        row_l.push(labels_of(m.row_labels())?);
        col_l.push(labels_of(m.col_labels())?);
    }
    let all = |v: &[Option<Vec<String>>]| v.iter().all(Option::is_some);
    let none = |v: &[Option<Vec<String>>]| v.iter().all(Option::is_none);
    for (v, axis) in [(&row_l, "row"), (&col_l, "column")] {
        if !all(v) && !none(v) {
            bail!("some inputs have {axis} labels and some do not: cannot match them");
        }
    }
    let same = |v: &[Option<Vec<String>>]| v.windows(2).all(|w| w[0] == w[1]);
    let aligned = same(&row_l) && same(&col_l);
    if !aligned && (none(&row_l) || none(&col_l)) {
        bail!("the inputs' labels differ on one axis and are missing on the other: cannot match them");
    }
    if aligned {
        let shape = ms[0].shape();
        for (m, p) in ms.iter().zip(&args.inputs) {
            if m.shape() != shape {
                bail!(
                    "{}: shape {} × {} differs from {}'s {} × {}; unlabelled matrices must have the same shape",
                    p.display(),
                    m.n_rows(),
                    m.n_cols(),
                    args.inputs[0].display(),
                    shape.0,
                    shape.1
                );
            }
        }
        let nnz = merge_aligned(
            &ms,
            &args.output,
            dtype,
            codec,
            args.zstd_level,
            row_l.swap_remove(0),
            col_l.swap_remove(0),
        )?;
        note!(
            "vecfmt: merged {} inputs into {}: {} × {}, {nnz} nonzeros in {:.1} s",
            ms.len(),
            args.output.display(),
            shape.0,
            shape.1,
            start.elapsed().as_secs_f64()
        );
        return Ok(ExitCode::SUCCESS);
    }
    // Labels differ: sum through the accumulator, matching by label.
    let memory = match &args.memory {
        Some(m) => crate::parse_bytes(m)?,
        None => vecfmt::accum::default_memory_budget(),
    };
    let acc = Accumulator::create(
        &args.output,
        AccumulatorOptions::new(dtype)
            .memory(memory)
            .whole_process(true)
            .codec(codec)
            .zstd_level(args.zstd_level)
            .row_labels(true)
            .col_labels(true),
    )?;
    let mut p = acc.producer();
    for (k, m) in ms.iter().enumerate() {
        let rmap: Vec<u64> = row_l[k]
            .as_ref()
            .expect("labelled")
            .iter()
            .map(|l| acc.row_id(l))
            .collect::<vecfmt::Result<_>>()?;
        let cmap: Vec<u64> = col_l[k]
            .as_ref()
            .expect("labelled")
            .iter()
            .map(|l| acc.col_id(l))
            .collect::<vecfmt::Result<_>>()?;
        for row in m.iter_rows() {
            let row = row?;
            let r = rmap[row.id() as usize];
            let vals = row.values();
            for (i, c) in row.indices().iter().enumerate() {
                match vals.get(i) {
                    vecfmt::Scalar::F32(x) => p.add(r, cmap[c as usize], x as f64)?,
                    vecfmt::Scalar::F64(x) => p.add(r, cmap[c as usize], x)?,
                    vecfmt::Scalar::I32(x) => p.add_int(r, cmap[c as usize], x as i64)?,
                    vecfmt::Scalar::I64(x) => p.add_int(r, cmap[c as usize], x)?,
                    vecfmt::Scalar::U32(x) => p.add_int(r, cmap[c as usize], x as i64)?,
                    vecfmt::Scalar::U64(x) => {
                        p.add_int(r, cmap[c as usize], i64::try_from(x).context("value too large to sum")?)?
                    }
                }
            }
        }
    }
    p.flush()?;
    drop(p);
    drop(ms);
    let s = acc.finish()?;
    note!(
        "vecfmt: merged {} inputs by label into {}: {} × {}, {} nonzeros in {:.1} s",
        args.inputs.len(),
        args.output.display(),
        s.n_rows,
        s.n_cols,
        s.nnz,
        start.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Sums inputs of the same shape and labels row by row: a k-way merge holding one row per
/// input. Sums are exact in f64 (floats) or checked in i128 (integers), rounded once.
fn merge_aligned(
    ms: &[Matrix],
    out: &Path,
    dtype: DType,
    codec: Codec,
    zstd_level: i32,
    row_labels: Option<Vec<String>>,
    col_labels: Option<Vec<String>>,
) -> Result<u64> {
    let (n_rows, n_cols) = ms[0].shape();
    let mut w = MatrixWriter::create(
        out,
        WriterOptions::new(dtype, n_cols)
            .n_rows(n_rows)
            .codec(codec)
            .zstd_level(zstd_level),
    )?;
    if let Some(l) = row_labels {
        w.set_row_labels(l);
    }
    if let Some(l) = col_labels {
        w.set_col_labels(l);
    }
    let mut iters: Vec<_> = ms.iter().map(|m| m.iter_rows().peekable()).collect();
    let mut sum: std::collections::BTreeMap<u64, f64> = Default::default();
    let mut isum: std::collections::BTreeMap<u64, i128> = Default::default();
    let mut idx: Vec<u64> = Vec::new();
    let mut vals = vecfmt::ValueVec::new(dtype);
    let mut nnz = 0u64;
    loop {
        let mut next: Option<u64> = None;
        for it in iters.iter_mut() {
            match it.peek() {
                Some(Ok(r)) => next = Some(next.map_or(r.id(), |n: u64| n.min(r.id()))),
                Some(Err(_)) => return Err(it.next().expect("peeked").expect_err("peeked an error").into()),
                None => {}
            }
        }
        let Some(row) = next else { break };
        sum.clear();
        isum.clear();
        for it in iters.iter_mut() {
            if it.peek().is_some_and(|r| r.as_ref().is_ok_and(|r| r.id() == row)) {
                let r = it.next().expect("peeked")?;
                let v = r.values();
                for (i, c) in r.indices().iter().enumerate() {
                    match v.get(i) {
                        vecfmt::Scalar::F32(x) => *sum.entry(c).or_default() += x as f64,
                        vecfmt::Scalar::F64(x) => *sum.entry(c).or_default() += x,
                        vecfmt::Scalar::I32(x) => *isum.entry(c).or_default() += x as i128,
                        vecfmt::Scalar::I64(x) => *isum.entry(c).or_default() += x as i128,
                        vecfmt::Scalar::U32(x) => *isum.entry(c).or_default() += x as i128,
                        vecfmt::Scalar::U64(x) => *isum.entry(c).or_default() += x as i128,
                    }
                }
            }
        }
        idx.clear();
        vals.clear();
        for (&c, &x) in &sum {
            idx.push(c);
            match &mut vals {
                vecfmt::ValueVec::F32(v) => {
                    let y = x as f32;
                    if !y.is_finite() && x.is_finite() {
                        bail!("row {row}, column {c}: the sum {x} does not fit f32");
                    }
                    v.push(y)
                }
                vecfmt::ValueVec::F64(v) => v.push(x),
                _ => bail!("float inputs summed into an integer dtype: pass --dtype f32 or f64"),
            }
        }
        for (&c, &x) in &isum {
            idx.push(c);
            let fits = match &mut vals {
                vecfmt::ValueVec::F32(v) => {
                    v.push(x as f32);
                    true
                }
                vecfmt::ValueVec::F64(v) => {
                    v.push(x as f64);
                    true
                }
                vecfmt::ValueVec::I32(v) => i32::try_from(x).map(|y| v.push(y)).is_ok(),
                vecfmt::ValueVec::I64(v) => i64::try_from(x).map(|y| v.push(y)).is_ok(),
                vecfmt::ValueVec::U32(v) => u32::try_from(x).map(|y| v.push(y)).is_ok(),
                vecfmt::ValueVec::U64(v) => u64::try_from(x).map(|y| v.push(y)).is_ok(),
            };
            if !fits {
                bail!("row {row}, column {c}: the sum {x} overflows {dtype}");
            }
        }
        if !sum.is_empty() && !isum.is_empty() {
            bail!("inputs mix float and integer values; pass --dtype");
        }
        nnz += idx.len() as u64;
        w.push_row_dyn(row, vecfmt::Indices::U64(&idx), vals.as_values())?;
    }
    w.finish()?;
    Ok(nnz)
}

/// Arguments of `vecfmt compact`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Rewrites a file densely, dropping the free space that in-place updates leave, \
and finishes a build that was interrupted (its f64 working form gets its final dtype).\n\nExamples:\n  \
vecfmt compact vectors.vfm\n  vecfmt compact vectors.vfm --codec raw"
)]
pub struct CompactArgs {
    /// The .vfm file.
    pub file: PathBuf,
    /// Codec of the result: raw, lz4 or zstd.
    #[arg(long, default_value = "zstd")]
    pub codec: String,
    /// zstd level of the result (1 is fastest, up to 22).
    #[arg(long, value_name = "N", default_value_t = vecfmt::consts::DEFAULT_ZSTD_LEVEL,
          value_parser = zstd_levels())]
    pub zstd_level: i32,
    /// Memory budget (used when finishing an interrupted symmetric build such as `cooccur`;
    /// default: half of the available memory).
    #[arg(long, value_name = "BYTES")]
    pub memory: Option<String>,
}

pub fn compact(args: CompactArgs) -> Result<ExitCode> {
    let before = std::fs::metadata(&args.file)
        .with_context(|| format!("{}: cannot stat", args.file.display()))?
        .len();
    let memory = match &args.memory {
        Some(m) => crate::parse_bytes(m)?,
        None => vecfmt::accum::default_memory_budget(),
    };
    let s = vecfmt::accum::compact_with_memory(&args.file, args.codec.parse()?, args.zstd_level, memory)?;
    note!(
        "vecfmt: compacted {}: {} → {} bytes",
        args.file.display(),
        before,
        s.bytes_on_disk
    );
    Ok(ExitCode::SUCCESS)
}

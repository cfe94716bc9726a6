//! `vecfmt merge` and `vecfmt compact`: sum matrices, and rewrite a file densely. The work is
//! [`vecfmt::merge`] and [`vecfmt::compact`]; this maps their flags to options.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use vecfmt::{CompactOptions, MergeOptions};

use crate::accumulate::zstd_levels;
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
    /// Threads that sum rows, each on its own range (default: all cores).
    #[arg(short = 'j', long = "threads", value_name = "N")]
    pub threads: Option<usize>,
}

pub fn merge(args: MergeArgs) -> Result<ExitCode> {
    let start = Instant::now();
    let mut opts = MergeOptions::new()
        .codec(args.codec.parse()?)
        .zstd_level(args.zstd_level)
        .overwrite(args.force)
        .whole_process(true);
    if let Some(d) = &args.dtype {
        opts = opts.dtype(d.parse()?);
    }
    if let Some(m) = &args.memory {
        opts = opts.memory(crate::parse_bytes(m)?);
    }
    if let Some(n) = args.threads {
        opts = opts.threads(n);
    }
    let s = vecfmt::merge(&args.inputs, &args.output, &opts)?;
    note!(
        "vecfmt: merged {} inputs{} into {}: {} × {}, {} nonzeros in {:.1} s",
        s.inputs,
        if s.by_label { " by label" } else { "" },
        args.output.display(),
        s.n_rows,
        s.n_cols,
        s.nnz,
        start.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
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
    let mut opts = CompactOptions::new()
        .codec(args.codec.parse()?)
        .zstd_level(args.zstd_level);
    if let Some(m) = &args.memory {
        opts = opts.memory(crate::parse_bytes(m)?);
    }
    let s = vecfmt::compact(&args.file, &opts)?;
    note!(
        "vecfmt: compacted {}: {} → {} bytes",
        args.file.display(),
        s.bytes_before,
        s.bytes_on_disk
    );
    Ok(ExitCode::SUCCESS)
}

//! `vecfmt convert`: one pipeline from any source format to any sink format, through
//! `vecfmt::stream::pump`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use vecfmt::stream::{pump, MatrixSink, MatrixSource, VfmSink, VfmSource};
use vecfmt::Codec;

/// Arguments of `vecfmt convert`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  vecfmt convert vectors.vfm copy.vfm --codec raw")]
pub struct ConvertArgs {
    /// The input file (or directory of Parquet files).
    pub input: PathBuf,
    /// The output file.
    pub output: PathBuf,
    /// Input format, when the extension does not tell.
    #[arg(long, value_name = "FMT")]
    pub from: Option<String>,
    /// Output format, when the extension does not tell.
    #[arg(long, value_name = "FMT")]
    pub to: Option<String>,
    /// Codec of a .vfm output: raw, lz4 or zstd.
    #[arg(long, default_value = "zstd")]
    pub codec: String,
    /// Memory budget, e.g. 512M or 4G.
    #[arg(long, value_name = "BYTES", default_value = "1G")]
    pub memory: String,
}

/// The formats `convert` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Vfm,
}

impl Format {
    fn parse(name: &str) -> Result<Format> {
        Ok(match name {
            "vfm" => Format::Vfm,
            other => bail!("unknown format {other:?}; known formats: vfm"),
        })
    }

    fn of_path(path: &Path, flag: Option<&str>) -> Result<Format> {
        if let Some(f) = flag {
            return Format::parse(f);
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match ext.as_str() {
            "vfm" => Ok(Format::Vfm),
            _ => bail!(
                "{}: cannot tell the format from the extension {ext:?}; pass --from/--to (known: vfm)",
                path.display()
            ),
        }
    }
}

fn open_source(path: &Path, fmt: Format) -> Result<Box<dyn MatrixSource>> {
    Ok(match fmt {
        Format::Vfm => Box::new(VfmSource::open(path)?),
    })
}

fn create_sink(path: &Path, fmt: Format, source: &dyn MatrixSource, args: &ConvertArgs) -> Result<Box<dyn MatrixSink>> {
    Ok(match fmt {
        Format::Vfm => Box::new(VfmSink::create(path, source.header(), args.codec.parse::<Codec>()?)?),
    })
}

/// Runs `vecfmt convert`.
pub fn run(args: ConvertArgs) -> Result<ExitCode> {
    let memory = crate::parse_bytes(&args.memory)?;
    let from = Format::of_path(&args.input, args.from.as_deref())?;
    let to = Format::of_path(&args.output, args.to.as_deref())?;
    let mut source = open_source(&args.input, from)?;
    let sink = create_sink(&args.output, to, source.as_ref(), &args)?;
    let s = pump(source.as_mut(), sink, memory)?;
    eprintln!(
        "vecfmt: wrote {} ({} rows with entries, {} nonzeros)",
        args.output.display(),
        s.rows,
        s.nnz
    );
    Ok(ExitCode::SUCCESS)
}

//! Generates corpus C1 (shared/DESIGN.md; see `vecfmt_benches::c1`).
//!
//! ```sh
//! cargo run --release -p vecfmt-benches --bin c1_gen -- --bytes 1G -o target/bench-data/c1-1g.txt
//! cargo run --release -p vecfmt-benches --bin c1_gen -- --bytes 100M      # default path
//! ```
//!
//! Deterministic; skipped when the file is already there with the size recorded in its
//! `.json` sidecar.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use vecfmt_benches::c1;

fn main() -> Result<()> {
    let mut bytes = 1u64 << 30;
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bytes" | "--size" => bytes = c1::parse_size(&args.next().context("--bytes needs a size")?)?,
            "-o" | "--output" => out = Some(args.next().context("-o needs a path")?.into()),
            "-h" | "--help" => {
                println!(
                    "usage: c1_gen [--bytes 1G|100M|...] [-o PATH]   (default path: target/bench-data/c1-<size>.txt)"
                );
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let path = out.unwrap_or_else(|| c1::c1_path(bytes));
    let t = Instant::now();
    let (s, wrote) = c1::c1_write(&path, bytes)?;
    println!(
        "{} {}: {} bytes, {} lines, {} tokens ({:.2} bytes/token){}",
        if wrote { "wrote" } else { "already there:" },
        path.display(),
        s.bytes,
        s.lines,
        s.tokens,
        s.bytes as f64 / s.tokens as f64,
        if wrote {
            format!(
                " in {:.1} s ({:.0} MB/s)",
                t.elapsed().as_secs_f64(),
                s.bytes as f64 / 1e6 / t.elapsed().as_secs_f64()
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

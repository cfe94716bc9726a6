//! `vecfmt vocab merge`: sums vocabulary parts (`cooccur --vocab-only --shard`) and cuts them
//! once. The work is [`vecfmt_text::vocab_merge`]; this maps the flags to its options.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, Result};
use vecfmt_text::VocabMergeOptions;

use crate::hints::text_error;
use crate::note;

/// Arguments of `vecfmt vocab`.
#[derive(clap::Args, Debug)]
pub struct VocabArgs {
    #[command(subcommand)]
    command: VocabCommand,
}

#[derive(clap::Subcommand, Debug)]
enum VocabCommand {
    /// Sum vocabulary parts counted shard by shard, then apply --min-count and --max-vocab
    /// once: the vocabulary of a single pass.
    #[command(
        after_help = "Parts are `label<TAB>count` lines, as `vecfmt cooccur --vocab-only --shard K/N \
--save-vocab FILE` writes them. The result lists the words most frequent first, ties in byte order, as \
`vecfmt cooccur` orders them; give it to `vecfmt cooccur --vocab`.\n\nExamples:\n  \
vecfmt cooccur corpus.txt --vocab-only --shard 1/2 --save-vocab part1.tsv\n  \
vecfmt cooccur corpus.txt --vocab-only --shard 2/2 --save-vocab part2.tsv\n  \
vecfmt vocab merge part1.tsv part2.tsv -o vocab.tsv --min-count 5 --max-vocab 400000"
    )]
    Merge(MergeArgs),
}

#[derive(clap::Args, Debug)]
struct MergeArgs {
    /// The vocabulary parts to sum.
    #[arg(required = true)]
    parts: Vec<PathBuf>,
    /// The vocabulary file to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Drop words seen fewer than K times in all the parts together.
    #[arg(long, value_name = "K", default_value_t = 1)]
    min_count: u64,
    /// Keep only the V most frequent words.
    #[arg(long, value_name = "V")]
    max_vocab: Option<usize>,
    /// Replace OUTPUT if it exists.
    #[arg(long)]
    force: bool,
}

pub fn run(args: VocabArgs) -> Result<ExitCode> {
    match args.command {
        VocabCommand::Merge(args) => merge(args),
    }
}

fn merge(args: MergeArgs) -> Result<ExitCode> {
    let start = Instant::now();
    let mut opts = VocabMergeOptions::new().min_count(args.min_count).replace(args.force);
    if let Some(v) = args.max_vocab {
        opts = opts.max_vocab(v);
    }
    let s = vecfmt_text::vocab_merge(&args.parts, &args.output, &opts).map_err(|e| match e {
        // `vocab merge` has no --append.
        vecfmt_text::Error::OutputExists { path } => anyhow!("{}: exists; pass --force to replace it", path.display()),
        e => text_error(e),
    })?;
    note!(
        "vecfmt: merged {} parts into {}: {} of {} words, {} tokens, in {:.1} s",
        s.parts,
        s.output.display(),
        s.words,
        s.distinct_words,
        s.tokens,
        start.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

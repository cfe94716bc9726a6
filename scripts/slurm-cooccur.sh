#!/usr/bin/env bash
# The engine-free way to count a corpus on a cluster: Slurm job arrays with `--shard K/N`,
# then `vocab merge` and `merge`. Needs only the `vecfmt` command (`pip install ./python` puts
# it on PATH) and a file system every node sees. See docs/DASK.md.
#
#   scripts/slurm-cooccur.sh N OUT_DIR CORPUS...       submits the three steps, chained
#
# Each step is idempotent: a rerun of a failed array task rewrites its part from scratch
# (parts are published under their final name only when complete).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 N OUT_DIR CORPUS..." >&2; exit 2; }
n=$1; out=$2; shift 2
mkdir -p "$out/parts"
corpus=$(printf '%q ' "$@")
opts="--window 10 --weighting harmonic"   # the counting options, the same for every shard

vocab=$(sbatch --parsable --array=1-"$n" --job-name=vecfmt-vocab --wrap \
  "vecfmt cooccur $corpus --vocab-only --shard \$SLURM_ARRAY_TASK_ID/$n --save-vocab $out/parts/vocab-\$SLURM_ARRAY_TASK_ID.tsv")
merged_vocab=$(sbatch --parsable --dependency=afterok:"$vocab" --job-name=vecfmt-vocab-merge --wrap \
  "vecfmt vocab merge $out/parts/vocab-*.tsv -o $out/vocab.tsv --min-count 5 --force")
count=$(sbatch --parsable --array=1-"$n" --dependency=afterok:"$merged_vocab" --job-name=vecfmt-count --mem=8G --wrap \
  "vecfmt cooccur $corpus $opts --vocab $out/vocab.tsv --shard \$SLURM_ARRAY_TASK_ID/$n --dtype f64 --memory 6G -o $out/parts/part-\$SLURM_ARRAY_TASK_ID.vfm --force")
sbatch --parsable --dependency=afterok:"$count" --job-name=vecfmt-merge --mem=8G --wrap \
  "vecfmt merge $out/parts/part-*.vfm -o $out/cooc.vfm --dtype f32 --memory 6G --force && rm -r $out/parts"

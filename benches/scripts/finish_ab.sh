#!/usr/bin/env bash
# The finish of a build alone, two binaries side by side: `vecfmt compact` of a working file
# (a `cooccur` or `build` killed during its finish, or after a commit), copied afresh before
# each run, runs interleaved. Prints one line per run: binary, rep, wall, user, sys, RSS.
#
#   benches/scripts/finish_ab.sh OLD/vecfmt NEW/vecfmt WORKING.vfm [REPS] [MEMORY]
#
# To get a working file of C1-1GB: start `vecfmt cooccur target/bench-data/c1-1g.txt -o w.vfm
# --window 10 --weighting harmonic --min-count 5 --memory 1G -j 2`, and SIGKILL it when a
# file `.w.vfm.*.tmp` appears (its rewrite started: the file holds every sum).
set -euo pipefail
old=$1 new=$2 orig=$3 reps=${4:-3} memory=${5:-1G}
work=$(dirname "$orig")/finish-ab-$$.vfm
trap 'rm -f "$work"' EXIT
for rep in $(seq 1 "$reps"); do
  for b in old new; do
    bin=$old
    [ "$b" = new ] && bin=$new
    rm -f "$work"
    cp --sparse=always "$orig" "$work"
    sync
    /usr/bin/time -f "$b rep$rep wall %e user %U sys %S rss_kb %M" \
      "$bin" compact "$work" --memory "$memory" --zstd-level 1 2>&1 | tail -1
  done
done

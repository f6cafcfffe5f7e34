#!/usr/bin/env bash
# Runs every libFuzzer target for N seconds (default 10) on a scratch copy of
# its seed corpus, so runs never modify the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
make -C c_src fuzz-build >/dev/null
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for f in c_src/build-fuzz/fuzz_*; do
    t=$(basename "$f")
    mkdir -p "$scratch/$t"
    if [ -d "c_src/fuzz/corpus/$t" ]; then cp -r "c_src/fuzz/corpus/$t/." "$scratch/$t/"; fi
    echo "fuzz: $t for ${secs}s"
    "$f" -max_total_time="$secs" -print_final_stats=0 -artifact_prefix="$scratch/" "$scratch/$t" 2>&1 | tail -n 2
done

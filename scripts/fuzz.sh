#!/usr/bin/env bash
# Runs every libFuzzer target for N seconds (default 10) on a scratch copy of
# its seed corpus, so runs never modify the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
make -C c_src fuzz-build >/dev/null
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Crashes are kept (and shown) so that they can become regression tests.
artifacts=c_src/build-fuzz/artifacts
mkdir -p "$artifacts"
for f in c_src/build-fuzz/fuzz_*; do
    t=$(basename "$f")
    mkdir -p "$scratch/$t"
    if [ -d "c_src/fuzz/corpus/$t" ]; then cp -r "c_src/fuzz/corpus/$t/." "$scratch/$t/"; fi
    echo "fuzz: $t for ${secs}s"
    if ! "$f" -max_total_time="$secs" -print_final_stats=0 -artifact_prefix="$artifacts/$t-" \
            "$scratch/$t" > "$scratch/$t.log" 2>&1; then
        grep -A30 "ERROR\|runtime error\|==ERROR" "$scratch/$t.log" | head -40
        echo "fuzz: $t crashed; input kept in $artifacts" >&2
        exit 1
    fi
    tail -n 1 "$scratch/$t.log"
done

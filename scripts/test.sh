#!/usr/bin/env bash
# Runs the test groups and prints one summary line at the end.
#   test.sh all      C unit tests, Erlang (Common Test), Elixir (ExUnit), fuzz smoke
#   test.sh san      C unit tests and the Erlang suite with ASan+UBSan regentd
#   test.sh long     the cluster suite five times over (failures under load and
#                    timing show up as flakes) and 60 s of each fuzzer
#   test.sh c|erlang|elixir
set -uo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
results=()
failed=0

run() { # name, command...
    local name=$1; shift
    echo "==== $name"
    if "$@"; then results+=("$name ok"); else results+=("$name FAILED"); failed=1; fi
}

c_tests()      { make -C c_src test; }
c_san_tests()  { make -C c_src test SAN=1; }
erlang_tests() { make -s all >/dev/null && rebar3 ct --readable=compact; }
# A daemon killed by a sanitizer report would just be restarted by its member,
# so the run also fails if any report was printed.
erlang_san()   { make -C c_src SAN=1 >/dev/null && make -s all >/dev/null || return 1
                 local log; log=$(mktemp)
                 REGENT_TEST_DAEMON="$PWD/priv/regentd-san" rebar3 ct --readable=compact 2>&1 | tee "$log"
                 local rc=${PIPESTATUS[0]}
                 if grep -q "Sanitizer\|runtime error:" "$log"; then echo "sanitizer reports above" >&2; rc=1; fi
                 rm -f "$log"; return $rc; }
elixir_tests() { make -s all >/dev/null && MIX_ENV=test mix test &&
                 (cd examples/elixir_app && mix test); }
fuzz_smoke()   { bash scripts/fuzz.sh 10; }
cluster_soak() { make -s all >/dev/null &&
                 rebar3 ct --readable=compact --suite=regent_cluster_SUITE --repeat=5; }
fuzz_long()    { bash scripts/fuzz.sh 60; }

export MIX_REBAR3=${MIX_REBAR3:-$(command -v rebar3)}
case $what in
    all)    run c c_tests; run erlang erlang_tests; run elixir elixir_tests
            run fuzz-smoke fuzz_smoke ;;
    san)    run c-san c_san_tests; run erlang-san erlang_san ;;
    long)   run cluster-soak cluster_soak; run fuzz-long fuzz_long ;;
    c)      run c c_tests ;;
    erlang) run erlang erlang_tests ;;
    elixir) run elixir elixir_tests ;;
    *)      echo "usage: $0 all|san|long|c|erlang|elixir" >&2; exit 2 ;;
esac
summary=$(IFS=', '; echo "${results[*]}")
if [ $failed -eq 0 ]; then echo "SUMMARY: all passed ($summary)"; else echo "SUMMARY: FAILED ($summary)"; fi
exit $failed

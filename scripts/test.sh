#!/usr/bin/env bash
# Runs the test groups and prints one summary line at the end.
#   test.sh all      C unit tests, the raft_fixture simulation (short), Erlang
#                    (Common Test: single node, clusters, the nemesis with its
#                    checkers, overload, a 60 s soak), Elixir (ExUnit), hosts
#                    (short), bench smoke, fuzz smoke
#   test.sh san      C unit tests and simulation under ASan+UBSan, C unit tests
#                    under valgrind memcheck, the single-node and cluster suites
#                    against an ASan+UBSan regentd
#   test.sh long     the cluster suite five times over, 200,000 registrations,
#                    the nemesis on many seeds in both modes, 30 minutes of
#                    soak, a long simulation and 60 s of each fuzzer
#   test.sh hosts    regent across network namespaces: three hosts on default
#                    options, and the nemesis's hosts mode (REGENT_HOSTS_SEEDS,
#                    REGENT_HOSTS_MS); skips where namespaces cannot be made
#   test.sh c|sim|erlang|nemesis|elixir
# docs/testing.md says what each covers.
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
sim_short()    { make -C c_src sim; }
sim_san()      { make -C c_src sim SAN=1; }
sim_long()     { make -C c_src sim SIM_ARGS="--seeds 200 --steps 20000"; }
# The normal (-O2 -g) build of every C unit test under memcheck.
c_valgrind()   { make -C c_src test >/dev/null || return 1
                 local t rc=0
                 for t in c_src/build/test_*; do
                     case $t in *.o) continue ;; esac
                     echo "valgrind: $t"
                     valgrind -q --error-exitcode=1 --leak-check=full --child-silent-after-fork=yes \
                         --errors-for-leak-kinds=definite,indirect "$t" >/dev/null || rc=1
                 done
                 return $rc; }
# The nemesis suite needs the deliberately broken daemon for its self-test.
erlang_tests() { make -s all >/dev/null && make -s -C c_src buggy >/dev/null &&
                 rebar3 ct --readable=compact; }
nemesis_tests() { make -s all >/dev/null && make -s -C c_src buggy >/dev/null &&
                  rebar3 ct --readable=compact --suite=regent_nemesis_SUITE; }
nemesis_long() { make -s all >/dev/null && make -s -C c_src buggy >/dev/null &&
                 REGENT_NEMESIS_SEEDS=${REGENT_NEMESIS_SEEDS:-"11 12 13 14 15 16 17 18 19 20"} \
                 REGENT_NEMESIS_MS=${REGENT_NEMESIS_MS:-60000} \
                 rebar3 ct --readable=compact --suite=regent_nemesis_SUITE --case=random_schedules; }
# A daemon killed by a sanitizer report would just be restarted by its member,
# so the run also fails if any report was printed.
erlang_san()   { make -C c_src SAN=1 >/dev/null && make -s all >/dev/null || return 1
                 local log; log=$(mktemp)
                 REGENT_TEST_DAEMON="$PWD/priv/regentd-san" rebar3 ct --readable=compact \
                     --suite=regent_SUITE,regent_cluster_SUITE,regent_duplicate_SUITE,regent_events_SUITE,regent_sup_SUITE 2>&1 | tee "$log"
                 local rc=${PIPESTATUS[0]}
                 if grep -q "Sanitizer\|runtime error:" "$log"; then echo "sanitizer reports above" >&2; rc=1; fi
                 rm -f "$log"; return $rc; }
elixir_tests() { make -s all >/dev/null && MIX_ENV=test mix test &&
                 (cd examples/elixir_app && mix test); }
# Every benchmark scenario at tiny sizes; fails if a row has no value for regent.
bench_smoke()  { make -s bench-smoke; }
fuzz_smoke()   { bash scripts/fuzz.sh 10; }
# 200,000 registrations instead of 20,000.
overload_long() { make -s all >/dev/null &&
                  REGENT_OVERLOAD_REGS=200000 rebar3 ct --readable=compact --suite=regent_overload_SUITE; }
# 30 minutes of churn with a fault every minute (regent_soak_SUITE).
soak_long()    { make -s all >/dev/null &&
                 REGENT_SOAK_MS=${REGENT_SOAK_MS:-1800000} REGENT_SOAK_FAULT_MS=${REGENT_SOAK_FAULT_MS:-60000} \
                 rebar3 ct --readable=compact --suite=regent_soak_SUITE; }
hosts_long()   { REGENT_HOSTS_SEEDS=${REGENT_HOSTS_SEEDS:-"$(seq -s ' ' 101 120)"} \
                 REGENT_HOSTS_MS=${REGENT_HOSTS_MS:-60000} hosts_tests; }
cluster_soak() { make -s all >/dev/null &&
                 rebar3 ct --readable=compact --suite=regent_cluster_SUITE --repeat=5; }
fuzz_long()    { bash scripts/fuzz.sh 60; }
# regent across network namespaces (regent_hosts_run): a controller node on
# the hosts' bridge; skips, saying why, where namespaces cannot be made.
hosts_tests()  { make -s all >/dev/null || return 1
                 mkdir -p _build/test-hosts/ebin
                 erlc -o _build/test-hosts/ebin -pa _build/default/lib/regent/ebin \
                     $(ls test/*.erl | grep -v -e _SUITE.erl -e test/telemetry.erl) || return 1
                 epmd -daemon
                 erl -noshell -name regent_hosts_ctl@10.77.0.1 -setcookie regent_hosts \
                     -kernel net_ticktime 8 -connect_all false \
                     -pa _build/default/lib/regent/ebin -pa _build/test-hosts/ebin \
                     -eval 'regent_hosts_run:main().'; }

export MIX_REBAR3=${MIX_REBAR3:-$(command -v rebar3)}
case $what in
    all)    run c c_tests; run sim sim_short; run erlang erlang_tests
            run elixir elixir_tests; run hosts hosts_tests
            run bench-smoke bench_smoke; run fuzz-smoke fuzz_smoke ;;
    san)    run c-san c_san_tests; run sim-san sim_san; run c-valgrind c_valgrind
            run erlang-san erlang_san ;;
    long)   run cluster-soak cluster_soak; run overload-long overload_long; run nemesis-long nemesis_long
            run hosts-long hosts_long; run soak-long soak_long
            run sim-long sim_long; run fuzz-long fuzz_long ;;
    c)      run c c_tests ;;
    sim)    run sim sim_short ;;
    erlang) run erlang erlang_tests ;;
    nemesis) run nemesis nemesis_tests ;;
    hosts)  run hosts hosts_tests ;;
    elixir) run elixir elixir_tests ;;
    *)      echo "usage: $0 all|san|long|hosts|c|sim|erlang|nemesis|elixir" >&2; exit 2 ;;
esac
summary=$(IFS=', '; echo "${results[*]}")
if [ $failed -eq 0 ]; then echo "SUMMARY: all passed ($summary)"; else echo "SUMMARY: FAILED ($summary)"; fi
exit $failed

# regent: top-level commands. `make setup` once, then `make`, `make test`,
# `make demo`. See README.md.
REBAR ?= rebar3
MIX   ?= mix

.PHONY: all setup daemon erlang test test-c test-san test-long test-erlang test-elixir \
        test-hosts demo bench bench-build bench-smoke fuzz docs clean

all: daemon erlang

setup:
	bash scripts/setup.sh

daemon:
	$(MAKE) -C c_src

erlang: daemon
	$(REBAR) compile

# Every test (C, Erlang, Elixir); ends with one summary line.
test:
	bash scripts/test.sh all

# The C tests and the Erlang suite against regentd built with ASan+UBSan.
test-san:
	bash scripts/test.sh san

# The cluster suite repeated and longer fuzzing (not in CI).
test-long:
	bash scripts/test.sh long

# regent across network namespaces with real packet drops (root; skips
# with the reason where namespaces cannot be made). REGENT_HOSTS_SEEDS,
# REGENT_HOSTS_MS pick the nemesis schedules.
test-hosts:
	bash scripts/test.sh hosts

test-c:
	bash scripts/test.sh c

test-erlang:
	bash scripts/test.sh erlang

test-elixir:
	bash scripts/test.sh elixir

# A local demo on the embedded defaults: three nodes, named gen_servers,
# a process kill, a leader kill.
demo: erlang
	mkdir -p _build/demo
	erlc -o _build/demo examples/demo/demo_counter.erl examples/demo/demo.erl
	epmd -daemon
	erl -noshell -sname regent_demo -pa _build/default/lib/regent/ebin -pa _build/demo -eval 'demo:main(), halt().'

# The benchmark program: regent, global and Elixir Registry side by side.
# BENCH_ROUNDS=3, BENCH_SCENARIOS=1,2,... (subset), BENCH_ADAPTERS=mod,...
ELIXIR_EBIN = $(shell elixir -e 'IO.write(:code.lib_dir(:elixir))' 2>/dev/null)/ebin
BENCH_ERL = erl -noshell -pa _build/default/lib/regent/ebin -pa _build/bench -pa $(ELIXIR_EBIN)
bench-build: erlang
	mkdir -p _build/bench
	erlc -o _build/bench bench/bench_registry.erl
	erlc -pa _build/bench -pa _build/default/lib/regent/ebin -o _build/bench bench/*.erl
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror $$(pkg-config --cflags libuv) -o _build/bench/floor \
	    bench/floor.c $$(pkg-config --libs libuv)
	epmd -daemon

bench: bench-build
	$(BENCH_ERL) -sname regent_bench -eval 'regent_bench:main(), halt().'

# Every scenario at tiny sizes, 1 round, every adapter; fails unless every
# row has a value for regent (part of `make test'). Output: _build/bench-smoke.
bench-smoke: bench-build
	$(BENCH_ERL) -sname regent_bench_smoke_$$$$ -eval 'regent_bench:smoke(), halt().'

# Longer fuzzing runs of every decoder (CI runs them briefly).
fuzz:
	bash scripts/fuzz.sh 300

docs:
	$(REBAR) edoc

clean:
	$(MAKE) -C c_src clean
	rm -rf _build logs

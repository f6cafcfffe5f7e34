%% Benchmark adapter: regent with TLS off on the raft port (`{tls, false}'),
%% beside bench_regent (TLS on, the default), so that the table shows what
%% the TLS pump costs (docs/cluster.md, Security).
-module(bench_regent_plain).
-behaviour(bench_registry).
-export([label/0, scope/0, start/1, stop/0, register_name/2, unregister_name/1,
         whereis_name/1, count/0, await/1]).

label() -> "regent, TLS off".
scope() -> cluster.

start(_Nodes) -> bench_regent:start_with([{tls, false}]).
await(N) -> bench_regent:await(N).
stop() -> bench_regent:stop().
register_name(Name, Pid) -> bench_regent:register_name(Name, Pid).
unregister_name(Name) -> bench_regent:unregister_name(Name).
whereis_name(Name) -> bench_regent:whereis_name(Name).
count() -> bench_regent:count().

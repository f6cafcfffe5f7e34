%% Benchmark adapter: OTP's global.
-module(bench_global).
-behaviour(bench_registry).
-export([label/0, scope/0, start/1, stop/0, register_name/2, unregister_name/1,
         whereis_name/1, count/0, max_names/0]).

%% Optional callback: global's registration rate collapses as its table
%% grows (~80 names/s past 90k names on one node, here), so runs above this
%% size would take hours.
max_names() -> 20000.

label() -> "global".
scope() -> cluster.
start(_Nodes) -> ok.

stop() ->
    [global:unregister_name(N) || {bench, _} = N <- global:registered_names()],
    ok.

register_name(Name, Pid) -> global:register_name({bench, Name}, Pid).
unregister_name(Name) -> global:unregister_name({bench, Name}), ok.
whereis_name(Name) -> global:whereis_name({bench, Name}).
count() -> length([N || {bench, _} = N <- global:registered_names()]).

%% Benchmark adapter: syn 3 (names through its via contract, groups through
%% its process groups), in a scope of its own on the run's nodes. syn is
%% not packaged in Debian: this adapter runs when syn is on the code path
%% (bench/README.md: build it with ../shared/peers/build.sh, then
%% ERL_LIBS=... make bench BENCH_ADAPTERS=bench_syn); otherwise the run
%% leaves it out.
%%
%% syn is eventually consistent: register_name/2 answers once the local
%% node has the name, and the other nodes learn it by a broadcast, so two
%% nodes may both answer `yes' for one name and syn resolves the conflict
%% afterwards (the race row counts those double yeses).
-module(bench_syn).
-behaviour(bench_registry).
-export([label/0, scope/0, available/0,
         start/1, stop/0, register_name/2, unregister_name/1, whereis_name/1, count/0,
         group_start/1, group_stop/0, group_join/2, group_lookup/1, group_dispatch/2,
         group_count/1]).

%% Scopes of its own: names and groups are measured in separate rounds.
-define(SCOPE, bench_syn).
-define(GROUPS, bench_syn_groups).

label() -> "syn".
scope() -> cluster.

available() ->
    case code:ensure_loaded(syn) of
        {module, _} -> true;
        {error, _} -> {false, "syn is not on the code path (bench/README.md)"}
    end.

%% ---- names ----

start(_Nodes) -> start_scope(?SCOPE).
stop() -> application:stop(syn).

register_name(Name, Pid) -> syn:register_name({?SCOPE, Name}, Pid).
unregister_name(Name) -> syn:unregister_name({?SCOPE, Name}).
whereis_name(Name) -> syn:whereis_name({?SCOPE, Name}).
count() -> syn:registry_count(?SCOPE).

%% ---- groups ----

group_start(_Nodes) -> start_scope(?GROUPS).
group_stop() -> stop().

group_join(Group, Value) -> syn:join(?GROUPS, Group, self(), Value).
group_lookup(Group) -> syn:members(?GROUPS, Group).
group_dispatch(Group, Fun) -> Fun(syn:members(?GROUPS, Group)).
group_count(Group) -> syn:member_count(?GROUPS, Group).

%% syn started on this node, in Scope (each round starts it afresh).
start_scope(Scope) ->
    {ok, _} = application:ensure_all_started(syn),
    ok = syn:add_node_to_scopes([Scope]).

%% Benchmark adapter: Elixir's Registry (local only). Written in Erlang
%% against 'Elixir.Registry' so the benchmark needs no Mix project. Names
%% live in a registry with unique keys, groups in a second one with
%% duplicate keys. Registry only registers the calling process, so here the
%% caller owns the names it registers (the Pid argument is not used);
%% regent and global register a separate owner process per name.
-module(bench_elixir_registry).
-behaviour(bench_registry).
-export([label/0, scope/0, start/1, stop/0, register_name/2, unregister_name/1,
         whereis_name/1, count/0, available/0]).
-export([group_start/1, group_stop/0, group_join/2, group_lookup/1, group_dispatch/2,
         group_count/1]).

-define(REG, 'Elixir.BenchRegistry').
-define(GROUPS, 'Elixir.BenchGroups').

label() -> "Elixir Registry".
scope() -> local.

%% Elixir's ebin must be on the code path (the Makefile adds it when
%% `elixir' is installed).
available() ->
    case code:ensure_loaded('Elixir.Registry') of
        {module, _} -> true;
        {error, E} -> {false, io_lib:format("Elixir's Registry does not load (~p): "
                                            "is elixir installed?", [E])}
    end.

start(_Nodes) ->
    start_registry(?REG, unique).

stop() ->
    stop_registry(?REG).

%% One partition per scheduler, as Registry's docs advise for concurrent
%% use (with duplicate keys, a lookup then reads every partition and a
%% dispatch calls the fun once per partition that has entries).
start_registry(Name, Keys) ->
    {ok, _} = application:ensure_all_started(elixir),
    {ok, Pid} = 'Elixir.Registry':start_link([{keys, Keys}, {name, Name},
                                              {partitions, erlang:system_info(schedulers)}]),
    unlink(Pid),
    ok.

%% gen_server:stop, not exit(Pid, shutdown): Registry is a supervisor,
%% which ignores an exit signal from any process but its parent, and its
%% parent may be gone (an erpc process that started it, in scenario 8).
stop_registry(Name) ->
    case whereis(Name) of
        undefined -> ok;
        Pid -> catch gen_server:stop(Pid, shutdown, 30000), ok
    end.

register_name(Name, _Pid) -> 'Elixir.Registry':register_name({?REG, Name}, self()).
unregister_name(Name) -> 'Elixir.Registry':unregister_name({?REG, Name}), ok.
whereis_name(Name) -> 'Elixir.Registry':whereis_name({?REG, Name}).
count() -> 'Elixir.Registry':count(?REG).

%% ---- groups: duplicate keys --------------------------------------------------

group_start(_Nodes) -> start_registry(?GROUPS, duplicate).
group_stop() -> stop_registry(?GROUPS).

group_join(Group, Value) ->
    {ok, _} = 'Elixir.Registry':register(?GROUPS, Group, Value),
    ok.

group_lookup(Group) -> 'Elixir.Registry':lookup(?GROUPS, Group).
group_dispatch(Group, Fun) -> 'Elixir.Registry':dispatch(?GROUPS, Group, Fun).
group_count(Group) -> length('Elixir.Registry':lookup(?GROUPS, Group)).

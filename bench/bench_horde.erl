%% Benchmark adapter: Horde 0.10. Names: a Horde.Registry (keys unique)
%% whose members are the run's nodes, through its via contract. Scenario
%% 13, distributed supervision: a Horde.DynamicSupervisor with a second
%% Horde.Registry. Horde is not packaged in Debian: this adapter runs when
%% Horde and its dependencies are on the code path (bench/README.md: build
%% them with ../shared/peers/build.sh, then ERL_LIBS=... make bench
%% BENCH_ADAPTERS=bench_horde); otherwise the run leaves it out.
%%
%% Horde's registry is a delta CRDT: register_name/2 answers from the
%% local replica, and the others learn the name at their next sync, so two
%% nodes may both answer `yes' for one name (the race row counts those).
%%
%% Each child is an idle process that registers its id through the
%% Horde.Registry, as a Horde singleton does, so that both systems do the
%% same work per child (regent registers each child under its id too).
-module(bench_horde).
-behaviour(bench_registry).
-export([label/0, scope/0, available/0,
         start/1, stop/0, register_name/2, unregister_name/1, whereis_name/1, count/0,
         sup_start/1, sup_start_child/1, sup_running/1, start_named/1]).

-define(SUP, bench_horde_sup).
-define(REG, bench_horde_reg).
-define(NAMES, bench_horde_names).

label() -> "Horde".
scope() -> cluster.

available() ->
    case code:ensure_loaded('Elixir.Horde.DynamicSupervisor') of
        {module, _} -> true;
        {error, _} -> {false, "Horde is not on the code path (bench/README.md)"}
    end.

%% ---- names ----

%% Members `auto', Horde's default for a registry: its node listener keeps
%% them to the connected nodes, so the names of a node that goes down are
%% dropped (with a static list they stay for good). The list also holds the
%% benchmark's own node, which runs no registry: ready once it counts at
%% least the run's nodes.
start(Nodes) ->
    start_horde(),
    {ok, R} = 'Elixir.Horde.Registry':start_link([{name, ?NAMES}, {keys, unique},
                                                 {members, auto}]),
    unlink(R),
    N = length(Nodes),
    wait(fun() -> length('Elixir.Horde.Cluster':members(?NAMES)) >= N end).

%% Horde.Registry registers its supervisor as '<name>.Supervisor'.
stop() ->
    case whereis('bench_horde_names.Supervisor') of
        undefined -> ok;
        Sup -> 'Elixir.Horde.Registry':stop(Sup)
    end.

register_name(Name, Pid) -> 'Elixir.Horde.Registry':register_name({?NAMES, Name}, Pid).
unregister_name(Name) -> 'Elixir.Horde.Registry':unregister_name({?NAMES, Name}).
whereis_name(Name) -> 'Elixir.Horde.Registry':whereis_name({?NAMES, Name}).
count() -> 'Elixir.Horde.Registry':count(?NAMES).

%% Elixir's logger application sits beside elixir's own (Horde needs it).
start_horde() ->
    true = code:add_patha(filename:join([filename:dirname(code:lib_dir(elixir)), "logger", "ebin"])),
    {ok, _} = application:ensure_all_started(horde),
    ok.

%% ---- supervision ----

%% The members are the run's nodes, set as Horde's own tests set them
%% (members: auto would count the benchmark's own node too, which runs no
%% Horde; keeping the list up to date with Horde.Cluster.set_members on
%% nodedown, as its node listener does, gave the same result in the halt
%% row). Ready once every node's supervisor and registry count all of them.
sup_start(Nodes) ->
    start_horde(),
    {ok, R} = 'Elixir.Horde.Registry':start_link([{name, ?REG}, {keys, unique},
                                                 {members, [{?REG, N} || N <- Nodes]}]),
    {ok, S} = 'Elixir.Horde.DynamicSupervisor':start_link([{name, ?SUP}, {strategy, one_for_one},
                                                          {members, [{?SUP, N} || N <- Nodes]}]),
    unlink(R),
    unlink(S),
    N = length(Nodes),
    wait(fun() -> length('Elixir.Horde.Cluster':members(?SUP)) =:= N andalso
                      length('Elixir.Horde.Cluster':members(?REG)) =:= N end).

sup_start_child(Id) ->
    Spec = #{id => Id, start => {?MODULE, start_named, [Id]}},
    {ok, _} = 'Elixir.Horde.DynamicSupervisor':start_child(?SUP, Spec).

%% A child restarted after its node went down may find its old name still
%% in the registry for a moment: it tries again (the time counts).
start_named(Id) ->
    Pid = spawn_link(fun regent_bench:idle/0),
    register(Id, Pid, 200),
    {ok, Pid}.

register(Id, Pid, Tries) ->
    case 'Elixir.Horde.Registry':register_name({?REG, Id}, Pid) of
        yes -> ok;
        no when Tries > 0 -> timer:sleep(25), register(Id, Pid, Tries - 1);
        no -> exit(name_taken)
    end.

sup_running(Excluded) ->
    length([P || {_, P, _, _} <- 'Elixir.Horde.DynamicSupervisor':which_children(?SUP),
                 is_pid(P), node(P) =/= Excluded]).

wait(F) ->
    case catch F() of
        true -> ok;
        _ -> timer:sleep(20), wait(F)
    end.

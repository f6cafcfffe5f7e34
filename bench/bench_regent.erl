%% Benchmark adapter: regent. Names live in a unique registry (bench_reg),
%% groups in a second registry started with `{keys, duplicate}'
%% (bench_groups), as a Registry is one kind or the other.
-module(bench_regent).
-behaviour(bench_registry).
-export([label/0, scope/0, start/1, stop/0, register_name/2, unregister_name/1,
         whereis_name/1, count/0, await/1, start_nowait/0]).
-export([group_start/1, group_stop/0, group_join/2, group_lookup/1, group_dispatch/2,
         group_count/1, group_await/1, group_registry/0]).
-export([start_with/1]).
-export([sup_start/1, sup_start_child/1, sup_running/1, start_idle/0]).  % bench_regent_plain: the same with other options

-define(REG, bench_reg).
-define(GROUPS, bench_groups).

label() -> "regent".
scope() -> cluster.

start(_Nodes) ->
    start_with([]).

start_with(Extra) ->
    start_registry(?REG, Extra).

%% Not linked: the caller is an erpc process that exits when this returns.
start_registry(Reg, Extra) ->
    {ok, _} = application:ensure_all_started(crypto),
    {ok, Pid} = regent:start_link(Reg, [{register_timeout, 30000} | Extra]),
    unlink(Pid),
    ok = regent:await_ready(Reg, 30000).

%% The cluster has formed when every node sees all of them.
await(N) ->
    await(?REG, N).

await(Reg, N) ->
    wait(fun() -> length(regent:get_members(Reg)) =:= N andalso
                      regent:get_leader(Reg) =/= undefined andalso
                      regent:ready(Reg) end).

%% For the late-join row: start the member and return at once.
start_nowait() ->
    {ok, _} = application:ensure_all_started(crypto),
    {ok, Pid} = regent:start_link(?REG, [{register_timeout, 600000}]),
    unlink(Pid),
    ok.

stop() ->
    stop_registry(?REG).

stop_registry(Reg) ->
    case whereis(Reg) of
        undefined -> ok;
        Pid -> gen_server:stop(Pid, normal, 30000)
    end.

register_name(Name, Pid) -> regent:register_name({?REG, Name}, Pid).
unregister_name(Name) -> regent:unregister_name({?REG, Name}).
whereis_name(Name) -> regent:whereis_name({?REG, Name}).
count() -> regent:count(?REG).

%% ---- groups: duplicate keys --------------------------------------------------

group_start(_Nodes) -> start_registry(?GROUPS, [{keys, duplicate}]).
group_await(N) -> await(?GROUPS, N).
group_stop() -> stop_registry(?GROUPS).
%% For the bench to find the leader (the join row runs on a follower).
group_registry() -> ?GROUPS.

group_join(Group, Value) ->
    {ok, _} = regent:register(?GROUPS, Group, Value),
    ok.

group_lookup(Group) -> regent:lookup(?GROUPS, Group).
group_dispatch(Group, Fun) -> regent:dispatch(?GROUPS, Group, Fun).
group_count(Group) -> length(regent:lookup(?GROUPS, Group)).

wait(F) ->
    case catch F() of
        true -> ok;
        _ -> timer:sleep(10), wait(F)
    end.

%% ---- supervision: regent_sup on the names' registry, default lease ----

sup_start(Nodes) ->
    ok = start_registry(?REG, []),
    ok = await(length(Nodes)),
    {ok, Pid} = regent_sup:start_link(#{name => bench_sup, registry => ?REG}),
    unlink(Pid),
    %% Every supervisor holds its lease, as this node sees.
    wait(fun() -> map_size(regent_sup_place:live_nodes(?REG, bench_sup)) =:= length(Nodes) end).

sup_start_child(Id) ->
    {ok, _} = regent_sup:start_child(bench_sup, #{id => Id, start => {?MODULE, start_idle, []}}).

start_idle() ->
    {ok, spawn_link(fun regent_bench:idle/0)}.

sup_running(Excluded) ->
    length([P || #{pid := P} <- regent_sup:children(bench_sup), is_pid(P), node(P) =/= Excluded]).

%% Soak: churn on a 3-node cluster (register, unregister, owners dying)
%% with a fault at a fixed interval, then everything unregistered and the
%% memory compared with its baseline.
%%
%% REGENT_SOAK_MS (default 60000) of churn, a fault every
%% REGENT_SOAK_FAULT_MS (default 15000); make test-long runs 30 minutes
%% with a fault every minute. The faults cycle through: kill -9 of a
%% regentd (its member restarts it), the leadership moved to another node,
%% and a node cut from the others (distribution and raft) for 2 s.
%%
%% The baseline is taken after a warm-up (a first round of churn, then
%% everything unregistered), so that what a daemon or a table allocates
%% once is not counted as growth. At the end, with every name gone again,
%% each node must be back within the tolerance, per node:
%% - the registry's ETS tables: within 64 KiB of the baseline;
%% - regentd's RSS: within 25% + 8 MiB of the baseline (a restarted
%%   daemon starts afresh, then replays);
%% - the raft data dir: within 8 MiB of the baseline (it holds a snapshot
%%   and up to snapshot_threshold + snapshot_trailing entries, whatever the
%%   run's length).
%% It prints each figure's growth per hour.
-module(regent_soak_SUITE).
-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([churn/1]).

-define(REG, soak_reg).
-define(WORKERS, 12).
-define(NAMES, 400).

suite() -> [{timetrap, {minutes, 60}}].

all() -> [churn].

init_per_suite(Config) ->
    ok = regent_test_lib:start_distribution(),
    Config.

end_per_suite(_Config) ->
    regent_test_lib:stop_peers().

churn(_Config) ->
    Ms = list_to_integer(os:getenv("REGENT_SOAK_MS", "60000")),
    FaultMs = list_to_integer(os:getenv("REGENT_SOAK_FAULT_MS", "15000")),
    Nodes = regent_test_lib:peers(3, ["-kernel", "dist_auto_connect", "once",
                                      "-connect_all", "false"]),
    ok = regent_test_lib:mesh(Nodes),
    [ok = erpc:call(N, regent_test_lib, start_remote, [?REG, [{daemon, regent_test_lib:daemon()}]])
     || N <- Nodes],
    ok = regent_test_lib:await_cluster(?REG, Nodes, 3),
    %% Warm-up, then the baseline.
    {Ops0, _} = run_churn(Nodes, min(10000, Ms div 4), infinity),
    ok = drain(Nodes),
    Base = measure(Nodes),
    T0 = erlang:monotonic_time(millisecond),
    {Ops, Faults} = run_churn(Nodes, Ms, FaultMs),
    ok = drain(Nodes),
    Hours = (erlang:monotonic_time(millisecond) - T0) / 3600000,
    End = measure(Nodes),
    ct:pal("soak: ~p ms of churn, ~p operations (~p in the warm-up), ~p faults: ~p",
           [Ms, Ops, Ops0, length(Faults), Faults]),
    Report = [report(N, maps:get(N, Base), maps:get(N, End), Hours) || N <- Nodes],
    [ct:pal("~s", [L]) || {L, _} <- Report],
    [] = [Bad || {_, Bads} <- Report, Bad <- Bads],
    ok.

%% ---- churn ------------------------------------------------------------------

%% Workers on every node for Ms; a fault every FaultMs. Returns the number
%% of operations and the faults.
run_churn(Nodes, Ms, FaultMs) ->
    Self = self(),
    Workers = [spawn_link(fun() -> worker(Self, Nodes, I, 0) end) || I <- lists:seq(1, ?WORKERS)],
    Faults = faults(Nodes, erlang:monotonic_time(millisecond) + Ms, FaultMs, 0, []),
    [W ! {stop, Self} || W <- Workers],
    Ops = lists:sum([receive {ops, W, N} -> N end || W <- Workers]),
    {Ops, Faults}.

worker(Parent, Nodes, I, Ops) ->
    receive
        {stop, Parent} -> Parent ! {ops, self(), Ops}
    after 0 ->
            Node = lists:nth(rand:uniform(length(Nodes)), Nodes),
            Name = {I, rand:uniform(?NAMES)},
            try op(rand:uniform(3), Node, Name)
            catch _:_ -> ok % unavailable during a fault; the churn goes on
            end,
            worker(Parent, Nodes, I, Ops + 1)
    end.

%% Register a new process; unregister (and end the owner, so that no
%% process outlives its name); or kill the name's owner.
op(1, Node, Name) ->
    P = erlang:spawn(Node, timer, sleep, [infinity]),
    R = try erpc:call(Node, regent, register_name, [{?REG, Name}, P], 10000)
        catch C:E -> {C, E}
        end,
    R =:= yes orelse exit(P, kill);
op(2, Node, Name) ->
    Owner = erpc:call(Node, regent, whereis_name, [{?REG, Name}]),
    erpc:call(Node, regent, unregister_name, [{?REG, Name}], 10000),
    is_pid(Owner) andalso exit(Owner, kill);
op(3, Node, Name) ->
    case erpc:call(Node, regent, whereis_name, [{?REG, Name}]) of
        P when is_pid(P) -> exit(P, kill);
        undefined -> ok
    end.

faults(Nodes, Deadline, FaultMs, K, Acc) ->
    Now = erlang:monotonic_time(millisecond),
    case Now >= Deadline of
        true ->
            lists:reverse(Acc);
        false ->
            timer:sleep(case FaultMs of infinity -> Deadline - Now; _ -> min(FaultMs, Deadline - Now) end),
            case FaultMs =/= infinity andalso erlang:monotonic_time(millisecond) < Deadline of
                true -> faults(Nodes, Deadline, FaultMs, K + 1, [fault(K rem 3, Nodes) | Acc]);
                false -> lists:reverse(Acc)
            end
    end.

fault(0, Nodes) ->
    N = pick(Nodes),
    OsPid = maps:get(os_pid, maps:get(daemon, erpc:call(N, regent, status, [?REG]))),
    os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    await(Nodes),
    {kill_daemon, N};
fault(1, Nodes) ->
    {Leader, _} = erpc:call(hd(Nodes), regent, get_leader, [?REG]),
    N = pick(Nodes -- [Leader]),
    ok = erpc:call(N, regent_fault, take_leadership, [?REG]),
    await(Nodes),
    {leader_moved_to, N};
fault(2, Nodes) ->
    N = pick(Nodes),
    Rest = Nodes -- [N],
    [erpc:call(N, erlang, disconnect_node, [R]) || R <- Rest],
    {ok, _} = erpc:call(N, regent_fault, cut_raft, [?REG, Rest]),
    [{ok, _} = erpc:call(R, regent_fault, cut_raft, [?REG, [N]]) || R <- Rest],
    timer:sleep(2000),
    [erpc:call(X, regent_fault, heal_raft, [?REG]) || X <- Nodes],
    regent_test_lib:mesh(Nodes),
    await(Nodes),
    {cut, N}.

await(Nodes) ->
    ok = regent_test_lib:wait_until(
           fun() ->
                   Sts = [erpc:call(N, regent, status, [?REG]) || N <- Nodes],
                   lists:all(fun(St) -> maps:get(ready, St) andalso length(maps:get(members, St)) =:= 3 end, Sts)
                       andalso length(lists:usort([maps:get(leader, St) || St <- Sts])) =:= 1
           end, 60000).

%% Every name unregistered (owners killed: their names go by themselves),
%% every node's table empty.
drain(Nodes) ->
    await(Nodes),
    ok = regent_test_lib:wait_until(
           fun() ->
                   [exit(P, kill) || N <- Nodes,
                                     {_, P} <- erpc:call(N, regent, select, [?REG, [{{'$1', '$2', '_'}, [], [{{'$1', '$2'}}]}]])],
                   lists:all(fun(N) -> erpc:call(N, regent, count, [?REG]) =:= 0 end, Nodes)
           end, 60000).

%% ---- memory ----------------------------------------------------------------

measure(Nodes) ->
    maps:from_list([{N, erpc:call(N, fun() -> node_memory() end)} || N <- Nodes]).

node_memory() ->
    #{daemon := #{rss := Rss, data_dir := Dir}} = regent:status(?REG),
    Words = lists:sum([ets:info(T, memory) || T <- ets:all(),
                                              lists:member(ets:info(T, owner), [whereis(?REG)])]),
    #{ets => Words * erlang:system_info(wordsize), rss => Rss, dir => dir_bytes(Dir)}.

dir_bytes(Dir) ->
    filelib:fold_files(Dir, "", true, fun(F, Acc) -> Acc + filelib:file_size(F) end, 0).

report(N, #{ets := E0, rss := R0, dir := D0}, #{ets := E1, rss := R1, dir := D1}, Hours) ->
    PerHour = fun(A, B) -> round((B - A) / max(Hours, 1.0e-6)) end,
    Line = io_lib:format("~p: ETS ~p -> ~p bytes (~p/h), regentd RSS ~p -> ~p bytes (~p/h), "
                         "data dir ~p -> ~p bytes (~p/h)",
                         [N, E0, E1, PerHour(E0, E1), R0, R1, PerHour(R0, R1), D0, D1, PerHour(D0, D1)]),
    Bad = [{N, ets, E0, E1} || E1 > E0 + 65536]
        ++ [{N, rss, R0, R1} || R1 > R0 * 1.25 + 8 * 1024 * 1024]
        ++ [{N, data_dir, D0, D1} || D1 > D0 + 8 * 1024 * 1024],
    {Line, Bad}.

pick(L) -> lists:nth(rand:uniform(length(L)), L).

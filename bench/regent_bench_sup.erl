%% Scenario 13 of `make bench': distributed supervision on three nodes.
%% For every adapter with the supervision contract (bench_registry):
%% children started per second from one caller and from 100 callers, the
%% memory each child costs, and, with a node halted, how long until all of
%% its children run again on the survivors. regent runs with its default
%% lease (3000 ms) and margin (500 ms): the halt row is bounded below by
%% their sum, by design (docs/supervision.md).
-module(regent_bench_sup).

-export([scenario/3]).
%% On the peers, through erpc.
-export([start_many/3, beam_bytes/0]).

-define(CALLERS, 100).
%% How long the halt row waits for the children to run again.
-define(RECOVERY_MS, 30000).

scenario(Adapters, Rounds, #{sup_children := N, sup_halt := M}) ->
    One = regent_bench:measure(Adapters, Rounds, fun(_) -> true end,
                               fun(A) -> one_caller(A, N) end),
    Many = regent_bench:measure(Adapters, Rounds, fun(_) -> true end,
                                fun(A) -> many_callers(A, N) end),
    Halt = regent_bench:measure(Adapters, Rounds, fun(_) -> true end,
                                fun(A) -> halted(A, M) end),
    K = regent_bench:k(N),
    [regent_bench:row(Label, Metric, Unit, Better, V)
     || {Res, Label} <- [{One, regent_bench:fmt("13. 3 nodes, ~s children, one caller", [K])},
                         {Many, regent_bench:fmt("13. 3 nodes, ~s children, ~p callers",
                                                 [K, ?CALLERS])},
                         {Halt, regent_bench:fmt("13. 3 nodes, a node with ~s children halted",
                                                 [regent_bench:k(M)])}],
        {Metric0, V} <- Res,
        {Metric, Unit, Better} <- [metric(Metric0)]].

metric(rate) -> {"start_child", "children/s", higher};
metric(beam) -> {"memory per child, BEAM (3 nodes)", "bytes", lower};
metric(daemon) -> {"memory per child, regentd RSS (3 nodes)", "bytes", lower};
metric(recovered) -> {"until all run again on the survivors", "ms", lower};
metric(restarted) -> {"running again within 30 s", "%", higher}.

cluster(A, Fun) ->
    %% On every node at once: each start waits for the whole cluster.
    regent_bench:on_cluster(3, fun(Nodes) ->
                                       Reqs = [erpc:send_request(Nd, A, sup_start, [Nodes])
                                               || Nd <- Nodes],
                                       [ok = erpc:receive_response(R, 120000) || R <- Reqs],
                                       ok
                               end, Fun).

one_caller(A, N) ->
    cluster(A, fun([Caller | _] = Nodes) ->
                       B0 = sum(Nodes, ?MODULE, beam_bytes),
                       D0 = sum(Nodes, regent_bench, rss_kb),
                       T = erpc:call(Caller, ?MODULE, start_many, [A, 1, N], infinity),
                       B1 = sum(Nodes, ?MODULE, beam_bytes),
                       D1 = sum(Nodes, regent_bench, rss_kb),
                       Mem = #{beam => (B1 - B0) / N},
                       Daemon = case A of
                                    bench_regent -> #{daemon => (D1 - D0) * 1024 / N};
                                    _ -> #{}
                                end,
                       maps:merge(Mem#{rate => N * 1.0e6 / T}, Daemon)
               end).

many_callers(A, N) ->
    Per = max(1, N div ?CALLERS),
    cluster(A, fun(Nodes) ->
                       Self = self(),
                       T0 = erlang:monotonic_time(microsecond),
                       Pids = [spawn_link(fun() ->
                                                  Node = lists:nth(1 + I rem 3, Nodes),
                                                  erpc:call(Node, ?MODULE, start_many,
                                                            [A, I * Per + 1, Per], infinity),
                                                  Self ! {done, self()}
                                          end) || I <- lists:seq(0, ?CALLERS - 1)],
                       [receive {done, P} -> ok end || P <- Pids],
                       T = erlang:monotonic_time(microsecond) - T0,
                       #{rate => Per * ?CALLERS * 1.0e6 / T}
               end).

%% 3 x M children from one caller (least loaded: about M per node), then
%% the node that is not the caller's halts.
halted(A, M) ->
    cluster(A, fun([Caller | _] = Nodes) ->
                       Total = 3 * M,
                       _ = erpc:call(Caller, ?MODULE, start_many, [A, 1, Total], infinity),
                       Victim = lists:last(Nodes),
                       regent_bench:wait(fun() ->
                                                 erpc:call(Caller, A, sup_running, [nowhere]) =:= Total
                                         end, 60000),
                       OnVictim = Total - erpc:call(Caller, A, sup_running, [Victim]),
                       T0 = erlang:monotonic_time(millisecond),
                       erpc:cast(Victim, erlang, halt, []),
                       Running = fun() -> erpc:call(Caller, A, sup_running, [Victim]) end,
                       try regent_bench:wait(fun() -> Running() =:= Total end, ?RECOVERY_MS) of
                           ok -> #{recovered => erlang:monotonic_time(millisecond) - T0,
                                   restarted => 100.0}
                       catch error:wait_timeout ->
                               %% No time to report: how many came back.
                               Back = Running() - (Total - OnVictim),
                               io:format(" [~s: ~p of the halted node's ~p children running "
                                         "again after ~p s]", [A:label(), Back, OnVictim,
                                                               ?RECOVERY_MS div 1000]),
                               #{restarted => 100.0 * Back / OnVictim}
                       end
               end).

%% On a peer: children From..From+N-1, one after the other; µs in all.
start_many(A, From, N) ->
    regent_bench:usec(fun() -> [{ok, _} = A:sup_start_child({c, I})
                                || I <- lists:seq(From, From + N - 1)] end).

beam_bytes() ->
    [garbage_collect(P) || P <- processes()],
    erlang:memory(total).

sum(Nodes, M, F) ->
    lists:sum([erpc:call(Nd, M, F, [], 60000) || Nd <- Nodes]).

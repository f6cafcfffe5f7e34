%% Events, atomic updates, bulk operations and telemetry across real BEAM
%% nodes with their own regentd (issue 15): subscriptions see every
%% committed change once, in log order, on every node, or are told to
%% resync; update_metadata/2 loses no concurrent update; register_many is
%% seen whole or not at all; telemetry events come out (through the test
%% double in test/telemetry.erl).
-module(regent_events_SUITE).
-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1, end_per_testcase/2]).
-export([follower_restore_no_gap/1, writer/2]).
-export([events_everywhere/1, filters/1, overflow_resync/1, daemon_restart_resync/1,
         concurrent_increments/1, bulk_seen_whole/1, telemetry_events/1]).
-export([subscriber/3, incrementer/4, count_sampler/3]).

-define(REG, events_reg).

suite() -> [{timetrap, {minutes, 3}}].

all() ->
    [events_everywhere, filters, overflow_resync, daemon_restart_resync,
     follower_restore_no_gap, concurrent_increments, bulk_seen_whole, telemetry_events].

init_per_suite(Config) ->
    ok = regent_test_lib:start_distribution(),
    Daemon = regent_test_lib:daemon(),
    [{daemon, Daemon} | Config].

end_per_suite(_Config) ->
    ok.

end_per_testcase(_Case, _Config) ->
    regent_test_lib:stop_peers().

%% ---- helpers ------------------------------------------------------------

three_nodes(Config) ->
    Nodes = regent_test_lib:peers(3, []),
    [ok = erpc:call(N, regent_test_lib, start_remote,
                    [?REG, [{daemon, ?config(daemon, Config)}]]) || N <- Nodes],
    regent_test_lib:await_cluster(?REG, Nodes, 3),
    Nodes.

idle_on(Node) ->
    erlang:spawn(Node, timer, sleep, [infinity]).

%% On a peer: subscribes with Filter, then forwards everything it gets to
%% the test process.
subscriber(Filter, Opts, To) ->
    {ok, Ref} = regent:subscribe(?REG, Filter, Opts),
    To ! {subscribed, self(), Ref},
    forward(To).

forward(To) ->
    receive
        {read_now, N} -> To ! {read, self(), N}, forward(To);
        Msg -> To ! {from, self(), Msg}, forward(To)
    end.

subscribe_on(Node, Filter) ->
    subscribe_on(Node, Filter, []).

subscribe_on(Node, Filter, Opts) ->
    Pid = erlang:spawn(Node, ?MODULE, subscriber, [Filter, Opts, self()]),
    receive {subscribed, Pid, Ref} -> {Pid, Ref} after 5000 -> error(no_subscription) end.

%% What a subscriber received, until Done(Events) or the deadline: its
%% messages in order.
collect(Pid, Done, Ms) ->
    collect(Pid, Done, erlang:monotonic_time(millisecond) + Ms, []).

collect(Pid, Done, Deadline, Acc) ->
    case Done(lists:reverse(Acc)) of
        true -> lists:reverse(Acc);
        false ->
            Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
            receive {from, Pid, Msg} -> collect(Pid, Done, Deadline, [Msg | Acc])
            after Left -> error({timeout, lists:reverse(Acc)})
            end
    end.

events(Msgs) ->
    [{I, E} || {regent_event, _, I, E} <- Msgs].

%% ---- cases --------------------------------------------------------------

%% Changes made on all three nodes reach a subscriber on each node once
%% each, in log order (strictly growing indices... per entry), and the
%% three streams are the same.
events_everywhere(Config) ->
    [A, B, C] = Nodes = three_nodes(Config),
    Subs = [subscribe_on(N, all) || N <- Nodes],
    Owners = [{N, I, idle_on(N)} || N <- Nodes, I <- lists:seq(1, 20)],
    [yes = erpc:call(N, regent, register_name, [{?REG, {N, I}}, P]) || {N, I, P} <- Owners],
    [ok = erpc:call(N, regent, unregister_name, [{?REG, {N, I}}]) || {N, I, _} <- Owners, I rem 2 =:= 0],
    ok = erpc:call(B, regent, set_metadata, [{?REG, {A, 1}}, tagged]),
    Expected = 60 + 30 + 1,
    Streams = [events(collect(Pid, fun(Ms) -> length(events(Ms)) >= Expected end, 10000))
               || {Pid, _} <- Subs],
    [S1, S2, S3] = Streams,
    S1 = S2, S2 = S3,
    Expected = length(S1),
    Indices = [I || {I, _} <- S1],
    Indices = lists:sort(Indices), % log order
    30 = length([x || {_, {unregister, _, _, _}} <- S1]),
    [{_, {update, {A, 1}, _, tagged}}] = [E || {_, {update, _, _, _}} = E <- S1],
    %% Nothing more: each change once.
    [receive {from, Pid, M} -> error({extra, M}) after 300 -> ok end || {Pid, _} <- Subs],
    _ = C,
    ok.

%% A key filter and a match specification over {Key, Pid, Value}.
filters(Config) ->
    [A, B, _C] = three_nodes(Config),
    {ByKey, _} = subscribe_on(B, {key, watched}),
    {ByMatch, _} = subscribe_on(B, {match, [{{{job, '_'}, '_', '$1'}, [{'>', '$1', 10}], [true]}]}),
    yes = erpc:call(A, regent, register_name, [{?REG, other}, idle_on(A)]),
    yes = erpc:call(A, regent, register_name, [{?REG, watched}, idle_on(A)]),
    yes = erpc:call(A, regent, register_name, [{?REG, {job, 1}}, idle_on(A), 5]),
    yes = erpc:call(A, regent, register_name, [{?REG, {job, 2}}, idle_on(A), 50]),
    [{regent_resync, _, _, []}, {regent_event, _, _, {register, watched, _, undefined}}] =
        collect(ByKey, fun(Ms) -> length(Ms) >= 2 end, 5000),
    [{regent_resync, _, _, []}, {regent_event, _, _, {register, {job, 2}, _, 50}}] =
        collect(ByMatch, fun(Ms) -> length(Ms) >= 2 end, 5000),
    [receive {from, P, M} -> error({extra, M}) after 300 -> ok end || P <- [ByKey, ByMatch]],
    ok.

%% A subscriber that does not read past its bound is cut off and then told
%% to resync, with the entries as they are; events follow from there.
overflow_resync(Config) ->
    [A, B, _C] = three_nodes(Config),
    Self = self(),
    Slow = erlang:spawn(B, fun() ->
                                   {ok, Ref} = regent:subscribe(?REG, all, [{max_queue, 20}]),
                                   Self ! {subscribed, self(), Ref},
                                   receive go -> ok end,
                                   forward(Self)
                           end),
    receive {subscribed, Slow, _} -> ok after 5000 -> error(no_subscription) end,
    Owners = [{I, idle_on(A)} || I <- lists:seq(1, 200)],
    [yes = erpc:call(A, regent, register_name, [{?REG, {n, I}}, P]) || {I, P} <- Owners],
    %% Every registration is in B's mirror before the subscriber reads.
    regent_test_lib:wait_until(fun() -> erpc:call(B, regent, count, [?REG]) =:= 200 end, 5000),
    Slow ! go,
    Msgs = collect(Slow, fun(Ms) -> lists:any(fun(M) -> element(1, M) =:= regent_resync andalso
                                                            length(element(4, M)) =:= 200 end, Ms)
                         end, 5000),
    %% Some events, then (at most the bound's worth later) a resync with all 200.
    Events = events(Msgs),
    true = length(Events) < 200,
    yes = erpc:call(A, regent, register_name, [{?REG, after_resync}, idle_on(A)]),
    [{regent_event, _, _, {register, after_resync, _, _}}] =
        collect(Slow, fun(Ms) -> length(Ms) >= 1 end, 5000),
    ok.

%% A daemon killed -9 comes back, its member rebuilds the mirror from a
%% DUMP, and subscribers on that node are told to resync.
daemon_restart_resync(Config) ->
    [A, B, _C] = three_nodes(Config),
    {Sub, _} = subscribe_on(B, all),
    yes = erpc:call(A, regent, register_name, [{?REG, before}, idle_on(A)]),
    [_, {regent_event, _, _, {register, before, _, _}}] =
        collect(Sub, fun(Ms) -> length(Ms) >= 2 end, 5000),
    St = erpc:call(B, regent, status, [?REG]),
    os:cmd("kill -9 " ++ integer_to_list(maps:get(os_pid, maps:get(daemon, St)))),
    [{regent_resync, _, _, Entries}] = collect(Sub, fun(Ms) -> length(Ms) >= 1 end, 15000),
    [before] = [K || {K, _, _} <- Entries],
    ok.

%% A follower's daemon paused (SIGSTOP) while the leader's log moves past
%% it and is compacted (snapshots every 16 entries, none kept): on SIGCONT
%% it is sent a snapshot, and the entries after it arrive meanwhile, since
%% a writer keeps going. Its subscriber must never get an event after a gap
%% (an event the leader's subscriber got) without a resync first. Before
%% the fix regentd shipped the changes of the entries applied right after
%% a restore, in the same loop iteration, ahead of the restore's DUMP:
%% events on top of a mirror that lacked what the snapshot brought (found
%% by the nemesis on hosts, pause_daemon).
follower_restore_no_gap(Config) ->
    Nodes = regent_test_lib:peers(3, []),
    [ok = erpc:call(N, regent_test_lib, start_remote,
                    [?REG, [{daemon, ?config(daemon, Config)}, {snapshot_threshold, 16},
                            {snapshot_trailing, 0}]]) || N <- Nodes],
    ok = regent_test_lib:await_cluster(?REG, Nodes, 3),
    {L, _} = erpc:call(hd(Nodes), regent, get_leader, [?REG]),
    [F | _] = Nodes -- [L],
    {SubL, _} = subscribe_on(L, all),
    {SubF, _} = subscribe_on(F, all),
    DaemonF = integer_to_list(maps:get(os_pid, maps:get(daemon, erpc:call(F, regent, status, [?REG])))),
    os:cmd("kill -STOP " ++ DaemonF),
    Writers = [erlang:spawn(L, ?MODULE, writer, [self(), {W, 0}]) || W <- lists:seq(1, 8)],
    ok = regent_test_lib:wait_until(fun() -> erpc:call(L, regent, count, [?REG]) >= 300 end, 30000),
    os:cmd("kill -CONT " ++ DaemonF),
    ok = regent_test_lib:wait_until(fun() -> erpc:call(L, regent, count, [?REG]) >= 600 end, 30000),
    [W ! stop || W <- Writers],
    Lasts = [receive {written, W, {I, N}} -> {w, I, N - 1} after 10000 -> error(writer) end
             || W <- Writers],
    Total = erpc:call(L, regent, count, [?REG]),
    ok = regent_test_lib:wait_until(fun() -> erpc:call(F, regent, count, [?REG]) =:= Total end, 30000),
    %% Until each subscriber has every writer's last name, by an event or a
    %% resync.
    Done = fun(Ms) ->
                   Seen = [K || {regent_event, _, _, {register, K, _, _}} <- Ms]
                       ++ [K || {regent_resync, _, _, Es} <- Ms, {K, _, _} <- Es],
                   Lasts -- Seen =:= []
           end,
    LMsgs = collect(SubL, Done, 30000),
    FMsgs = collect(SubF, Done, 30000),
    LIdx = [I || {I, _} <- events(LMsgs)],
    Gaps = gaps(FMsgs, LIdx),
    ct:pal("~p registrations; the paused follower got ~p events and ~p resyncs; gaps: ~p",
           [Total, length(events(FMsgs)), length([r || {regent_resync, _, _, _} <- FMsgs]),
            lists:sublist(Gaps, 5)]),
    [] = Gaps,
    ok.

%% On the leader's node: registers names one after another until told to
%% stop.
writer(To, {I, N}) ->
    receive stop -> To ! {written, self(), {I, N}}
    after 0 ->
            yes = regent:register_name({?REG, {w, I, N}}, To),
            writer(To, {I, N + 1})
    end.

%% Events the follower got after skipping one the leader's subscriber got,
%% with no resync in between: {SkippedIndex, EventIndex}.
gaps(Msgs, LIdx) ->
    {_, Gaps} = lists:foldl(
                  fun({regent_resync, _, I, _}, {_, G}) -> {I, G};
                     ({regent_event, _, I, _}, {Prev, G}) ->
                          {I, [{J, I} || J <- LIdx, J > Prev, J < I] ++ G};
                     (_, Acc) -> Acc
                  end, {0, []}, Msgs),
    lists:reverse(Gaps).

%% 60 concurrent read-modify-write increments of one name's metadata, 20
%% from each node, each in a process of its own, end at exactly 60 (with
%% get_metadata/set_metadata: 26-28). Then 4 processes per node doing 25
%% each, one after the other: 360.
concurrent_increments(Config) ->
    [A, _, _] = Nodes = three_nodes(Config),
    yes = erpc:call(A, regent, register_name, [{?REG, counter}, idle_on(A), 0]),
    increments(Nodes, 20, 1, 60),
    increments(Nodes, 4, 25, 360).

increments(Nodes, PerNode, Each, Total) ->
    Self = self(),
    Workers = [erlang:spawn(N, ?MODULE, incrementer, [counter, Each, Self, go])
               || N <- Nodes, _ <- lists:seq(1, PerNode)],
    [W ! go || W <- Workers],
    Results = [receive {incremented, W, R} -> R after 60000 -> error(no_increments) end
               || W <- Workers],
    %% Every update succeeded, none was lost: the value is their number.
    [] = [R || R <- lists:append(Results), element(1, R) =/= ok],
    [regent_test_lib:wait_until(fun() -> erpc:call(N, regent, get_metadata, [{?REG, counter}])
                                             =:= {ok, Total} end, 5000) || N <- Nodes],
    ok.

%% On a peer: waits for go, then N increments of Name's metadata; answers
%% their results.
incrementer(Name, N, To, go) ->
    receive go -> ok end,
    Rs = [regent:update_metadata({?REG, Name}, fun(V) -> V + 1 end) || _ <- lists:seq(1, N)],
    To ! {incremented, self(), Rs}.

%% 10,000 names registered in one call on a follower are seen by a reader
%% on another node all at once or not at all, and unregistered likewise
%% in one call; per-name answers say which names were taken.
bulk_seen_whole(Config) ->
    Nodes = three_nodes(Config),
    {Leader, _} = erpc:call(hd(Nodes), regent, get_leader, [?REG]),
    [F, R | _] = Nodes -- [Leader],
    Taken = idle_on(Leader),
    yes = erpc:call(Leader, regent, register_name, [{?REG, {bulk, 7}}, Taken]),
    regent_test_lib:wait_until(fun() -> erpc:call(R, regent, count, [?REG]) =:= 1 end, 5000),
    Sampler = erlang:spawn(R, ?MODULE, count_sampler, [self(), [1, 10000], []]),
    Owner = idle_on(F),
    Answers = erpc:call(F, regent, register_many,
                        [?REG, [{{bulk, I}, Owner, I} || I <- lists:seq(1, 10000)]]),
    10000 = length(Answers),
    {no, Taken} = lists:nth(7, Answers),
    9999 = length([yes || yes <- Answers]),
    regent_test_lib:wait_until(fun() -> erpc:call(R, regent, count, [?REG]) =:= 10000 end, 5000),
    ok = erpc:call(F, regent, unregister_many, [?REG, [{bulk, I} || I <- lists:seq(1, 10000)]]),
    regent_test_lib:wait_until(fun() -> erpc:call(R, regent, count, [?REG]) =:= 0 end, 5000),
    Sampler ! {stop, self()},
    Seen = receive {counts, S} -> S after 5000 -> error(no_sampler) end,
    %% register_many's names appear in one insert: on the way up the
    %% reader saw 1, then 10000, never a count in between. (unregister_many
    %% removes its names one after the other within one message of the
    %% member: the way down passes through the counts in between.)
    Up = lists:takewhile(fun(N) -> N =/= 10000 end, Seen),
    [1] = lists:usort(Up),
    true = lists:member(10000, Seen),
    ok.

%% On a peer: the registry's count, sampled in a loop, distinct values in
%% order, until told to stop.
count_sampler(To, _Allowed, Acc) ->
    receive {stop, To} -> To ! {counts, lists:reverse(Acc)}
    after 0 ->
            N = regent:count(?REG),
            count_sampler(To, _Allowed, case Acc of [N | _] -> Acc; _ -> [N | Acc] end)
    end.

%% The events of docs/telemetry.md come out on one node: the spans of a
%% register, an unregister and a consistent read, a leader change, and a
%% daemon restart.
telemetry_events(Config) ->
    true = register(regent_telemetry_events, self()),
    try
        {ok, Pid} = regent:start_link(tele_reg, [{daemon, ?config(daemon, Config)},
                                                 {data_dir, ?config(priv_dir, Config)}]),
        ok = regent:await_ready(tele_reg),
        expect([leader, change], #{registry => tele_reg}),
        yes = regent:register_name({tele_reg, t}, self()),
        expect([register, start], #{registry => tele_reg, name => t}),
        expect([register, stop], #{registry => tele_reg, name => t, result => yes}),
        Me = self(),
        Me = regent:whereis_name_consistent({tele_reg, t}),
        expect([consistent_read, stop], #{registry => tele_reg, result => Me}),
        ok = regent:unregister_name({tele_reg, t}),
        expect([unregister, stop], #{registry => tele_reg, name => t, result => ok}),
        OsPid = maps:get(os_pid, maps:get(daemon, regent:status(tele_reg))),
        os:cmd("kill -9 " ++ integer_to_list(OsPid)),
        expect([daemon, restart], #{registry => tele_reg}),
        unlink(Pid),
        gen_server:stop(Pid)
    after
        unregister(regent_telemetry_events)
    end.

expect(Event, Meta) ->
    Full = [regent | Event],
    receive
        {telemetry, Full, Measurements, Got} when is_map(Measurements) ->
            maps:with(maps:keys(Meta), Got) =:= Meta orelse error({metadata, Full, Got}),
            ok
    after 10000 -> error({no_event, Full})
    end.

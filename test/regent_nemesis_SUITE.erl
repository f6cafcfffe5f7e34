%% The nemesis test (regent_nemesis) and its checker (regent_history):
%% - the checker catches violations planted in small synthetic histories and
%%   passes clean ones;
%% - with regentd built with a known bug (unregister-if-owner skips the owner
%%   check), a scripted schedule produces a history the checker rejects,
%%   and the same schedule passes with the real regentd;
%% - seeded random schedules of faults and concurrent clients pass.
%% REGENT_NEMESIS_SEEDS="1 2 3" and REGENT_NEMESIS_MS pick the random
%% schedules; the daemons snapshot every 128 entries unless
%% REGENT_NEMESIS_SNAPSHOTS=default (regent's own thresholds, which a short
%% run never reaches); REGENT_NEMESIS_FAULTS="one_way halt" limits the kinds
%% of fault (make test-long runs more and longer ones).
-module(regent_nemesis_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([checker_synthetic/1, checker_catches_injected_bug/1,
         scripted_schedule_passes/1, random_schedules/1]).

suite() -> [{timetrap, {minutes, 30}}].

all() ->
    [checker_synthetic, checker_catches_injected_bug, scripted_schedule_passes,
     random_schedules].

init_per_suite(Config) ->
    ok = regent_test_lib:start_distribution(),
    Config.

end_per_suite(_Config) ->
    ok.

%% ---- the checker on synthetic histories ----------------------------------

checker_synthetic(_Config) ->
    [P1, P2] = [spawn(fun() -> receive stop -> ok end end) || _ <- [1, 2]],
    N = self_node_name,
    Final = fun(Rows) -> #{tables => #{a => Rows, b => Rows}, dead => []} end,
    Reg = fun(P, I, C, R) -> #{f => register, name => N, pid => P, invoke => I,
                               complete => C, result => R} end,
    Read = fun(I, C, V) -> #{f => read, name => N, invoke => I, complete => C, result => V} end,
    Unreg = fun(I, C, R) -> #{f => unregister, name => N, invoke => I, complete => C,
                              result => R} end,
    Kill = fun(P, T) -> #{f => kill, pid => P, invoke => T, complete => T, result => ok} end,
    Kinds = fun(Ops, Risks, F) -> lists:usort([K || {K, _, _} <- regent_history:check(Ops, Risks, F)]) end,
    %% Clean: P1 holds, is unregistered, P2 takes it, reads agree.
    Clean = [Reg(P1, 0, 10, yes), Read(11, 12, P1), Unreg(20, 30, ok),
             Read(31, 32, undefined), Reg(P2, 40, 50, yes), Reg(P1, 41, 49, no),
             Read(60, 70, P2)],
    [] = Kinds(Clean, [], Final([{N, P2}])),
    %% Two owners: P2 gets a yes while nothing ended P1.
    [lost, two_owners] = Kinds([Reg(P1, 0, 10, yes), Reg(P2, 20, 30, yes)], [], Final([{N, P2}])),
    %% ... unless P1 was killed, unregistered (even without an answer), or
    %% its node was at risk of a purge first.
    [] = Kinds([Reg(P1, 0, 10, yes), Kill(P1, 15), Reg(P2, 20, 30, yes)], [], Final([{N, P2}])),
    [] = Kinds([Reg(P1, 0, 10, yes), Unreg(12, 13, {error, timeout}), Reg(P2, 20, 30, yes)],
               [], Final([{N, P2}])),
    [] = Kinds([Reg(P1, 0, 10, yes), Reg(P2, 20, 30, yes)],
               [#{node => node(P1), from => 15, to => 18}], Final([{N, P2}])),
    %% A risk that ended long before does not excuse it.
    [lost, two_owners] = Kinds([Reg(P1, 100000000, 100000010, yes), Reg(P2, 100000020, 100000030, yes)],
                               [#{node => node(P1), from => 1, to => 2}], Final([{N, P2}])),
    %% Stale read: P2 must have been seen.
    [resurrected, stale_read] =
        Kinds([Reg(P1, 0, 10, yes), Unreg(20, 30, ok), Reg(P2, 40, 50, yes),
               Read(60, 70, P1)], [], Final([{N, P2}])),
    [stale_read] = Kinds([Reg(P1, 0, 10, yes), Read(20, 30, undefined)], [], Final([{N, P1}])),
    %% A read overlapping the registration may see either.
    [] = Kinds([Reg(P1, 0, 10, yes), Read(5, 30, undefined)], [], Final([{N, P1}])),
    %% Resurrected and unknown pids.
    [resurrected] = Kinds([Reg(P1, 0, 10, yes), Unreg(20, 30, ok), Read(40, 50, P1)],
                          [], Final([])),
    [unknown_pid] = Kinds([Reg(P1, 0, 10, no), Read(40, 50, P1)], [], Final([])),
    %% Lost, diverged, dead owner.
    [lost] = Kinds([Reg(P1, 0, 10, yes)], [], Final([])),
    [diverged] = Kinds([], [], #{tables => #{a => [{N, P1}], b => []}, dead => []}),
    [dead_owner] = Kinds([], [], #{tables => #{a => [{N, P1}]}, dead => [P1]}),
    %% Membership after the last heal: every live member in, no dead voter,
    %% min(voters, live) voters.
    Members = fun(Ms, Live) -> #{tables => #{}, dead => [],
                                 membership => #{members => Ms, live => Live, voters => 3}} end,
    [] = Kinds([], [], Members([{{a, r}, voter}, {{b, r}, voter}, {{c, r}, voter},
                                {{d, r}, standby}], [a, b, c, d])),
    [] = Kinds([], [], Members([{{a, r}, voter}, {{b, r}, voter}], [a, b])),
    [membership] = Kinds([], [], Members([{{a, r}, voter}, {{b, r}, voter},
                                          {{raft_id, 7}, voter}], [a, b])),
    [membership] = Kinds([], [], Members([{{a, r}, voter}, {{b, r}, voter},
                                          {{c, r}, voter}], [a, b])),
    [membership] = Kinds([], [], Members([{{a, r}, voter}, {{b, r}, voter}], [a, b, c])),
    [membership] = Kinds([], [], Members([{{a, r}, voter}, {{b, r}, standby},
                                          {{c, r}, standby}], [a, b, c])),
    [P ! stop || P <- [P1, P2]],
    ok.

%% ---- the injected bug ----------------------------------------------------

checker_catches_injected_bug(Config) ->
    Buggy = filename:join(code:priv_dir(regent), "regentd-buggy"),
    true = filelib:is_regular(Buggy) orelse {skip, "make -C c_src buggy"},
    R = regent_nemesis:run(#{workload => owner_check_scenario, daemon => Buggy}),
    report(R, Config),
    Kinds = lists:usort([K || {K, _, _} <- maps:get(violations, R)]),
    ct:pal("violations found with the injected bug: ~p", [Kinds]),
    true = lists:member(lost, Kinds).

scripted_schedule_passes(Config) ->
    R = regent_nemesis:run(#{workload => owner_check_scenario}),
    report(R, Config),
    ok = maps:get(quiet, R),
    [] = maps:get(violations, R).

%% ---- seeded random schedules -----------------------------------------------

random_schedules(Config) ->
    Seeds = [list_to_integer(S) || S <- string:lexemes(os:getenv("REGENT_NEMESIS_SEEDS", "1"), " ,")],
    Ms = list_to_integer(os:getenv("REGENT_NEMESIS_MS", "30000")),
    %% Overrides of regent_nemesis:run/1's defaults, if asked for.
    Snapshots = case os:getenv("REGENT_NEMESIS_SNAPSHOTS") of
                    false -> #{};
                    "small" -> #{snapshots => small};
                    "default" -> #{snapshots => default}
                end,
    Opts = case os:getenv("REGENT_NEMESIS_FAULTS") of
               false -> Snapshots;
               Ks -> Snapshots#{fault_kinds => [fault_kind(K) || K <- string:lexemes(Ks, " ,")]}
           end,
    Failed = [Seed || Seed <- Seeds,
                      begin
                          R = regent_nemesis:run(Opts#{seed => Seed, duration => Ms}),
                          report(R, Config),
                          maps:get(violations, R) =/= [] orelse maps:get(quiet, R) =/= ok
                      end],
    ?assertEqual([], Failed, "seeds with violations (rerun one with REGENT_NEMESIS_SEEDS)").

fault_kind("kill_daemon") -> kill_daemon;
fault_kind("halt") -> halt;
fault_kind("partition") -> partition;
fault_kind("one_way") -> one_way.

report(#{seed := Seed, ops := Ops, faults := Faults, violations := V, quiet := Quiet} = R, Config) ->
    ct:pal("seed ~p: ~p ops, ~p faults, quiet: ~p, ~p violations~nfaults: ~p",
           [Seed, Ops, length(Faults), Quiet, length(V), [F || {F, _} <- Faults]]),
    Quiet =/= ok andalso
        ct:pal("NOT QUIET (~p: no single cluster 30 s after a heal, or no single "
               "table 60 s after the last); views: ~p", [Quiet, maps:get(views, R)]),
    [ct:pal("VIOLATION ~s", [regent_history:describe(X)]) || X <- lists:sublist(V, 20)],
    V =/= [] andalso begin
                         File = filename:join(?config(priv_dir, Config),
                                              "history-" ++ integer_to_list(Seed) ++ ".term"),
                         ok = file:write_file(File, io_lib:format("~p.~n", [maps:get(history, R)])),
                         ok = file:write_file(File ++ ".bin", term_to_binary(maps:get(history, R))),
                         ct:pal("history written to ~s", [File])
                     end,
    ok.

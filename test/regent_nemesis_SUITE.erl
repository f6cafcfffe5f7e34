%% The nemesis test (regent_nemesis) and its checker (regent_history):
%% - the checker catches violations planted in small synthetic histories and
%%   passes clean ones (registrations; subscriptions' logs and a counter's
%%   increments);
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
-export([checker_synthetic/1, checker_synthetic_events/1, checker_catches_injected_bug/1,
         scripted_schedule_passes/1, random_schedules/1, checker_synthetic_children/1,
         checker_linearizable_synthetic/1]).

suite() -> [{timetrap, {minutes, 30}}].

all() ->
    [checker_synthetic, checker_synthetic_events, checker_synthetic_children,
     checker_linearizable_synthetic,
     checker_catches_injected_bug,
     scripted_schedule_passes, random_schedules].

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

%% Subscriptions' logs and a counter's increments: clean histories pass,
%% each planted violation is caught under its own name.
checker_synthetic_events(_Config) ->
    [Pa, Pb, Pc, Owner] = Pids = [spawn(fun() -> receive stop -> ok end end) || _ <- [1, 2, 3, 4]],
    Kinds = fun(Ops, F, Subs) ->
                    lists:usort([K || {K, _, _} <- regent_history:check(Ops, [], F, Subs)])
            end,
    %% The log: the counter registered with 0 before index 9; a and b
    %% registered in one entry (10), the counter incremented (12), a
    %% unregistered (13), the counter incremented and c registered in one
    %% entry (15), the counter incremented again (17).
    Log = [{10, {register, a, Pa, undefined}}, {10, {register, b, Pb, undefined}},
           {12, {update, counter, Owner, 1}},
           {13, {unregister, a, Pa, undefined}},
           {15, {update, counter, Owner, 2}}, {15, {register, c, Pc, undefined}},
           {17, {update, counter, Owner, 3}}],
    Ev = fun(Es) -> [{event, I, E} || {I, E} <- Es] end,
    Between = fun(Lo, Hi) -> [X || {I, _} = X <- Log, I > Lo, I =< Hi] end,
    At9 = [{counter, Owner, 0}],
    At12 = [{counter, Owner, 1}, {a, Pa, undefined}, {b, Pb, undefined}],
    At15 = [{counter, Owner, 2}, {b, Pb, undefined}, {c, Pc, undefined}],
    End = [{b, Pb}, {c, Pc}, {counter, Owner}],
    Sub = fun(N, Msgs) -> #{sub => N, node => N, log => Msgs} end,
    %% From the start to the end, drained when its member had applied 18.
    Whole = Sub(n1, [{resync, 9, At9} | Ev(Log)] ++ [{flushed, 18}]),
    %% A gap (say its mailbox overflowed, or its daemon restarted) and a
    %% resync, drained.
    Gap = Sub(n2, [{resync, 9, At9} | Ev(Between(9, 13))] ++ [{resync, 15, At15}]
                  ++ Ev(Between(15, 17)) ++ [{flushed, 17}]),
    %% Joined late; its member went down at the end.
    Late = Sub(n3, [{resync, 12, At12} | Ev(Between(12, 17))] ++ [{member_down, killed}]),
    %% Its node halted in the middle of entry 10: only a prefix of 10.
    Cut = Sub(n4, [{resync, 9, At9}, {event, 10, {register, a, Pa, undefined}}]),
    %% A subscriber that could not subscribe.
    Failed = Sub(n5, [{subscribe_failed, {'EXIT', noproc}}]),
    Tables = fun(Rows) -> #{tables => #{n1 => Rows, n2 => Rows}, dead => []} end,
    Clean = [Whole, Gap, Late, Cut, Failed],
    [] = Kinds([], Tables(End), Clean),
    %% A lost event: another subscriber without a resync since missed the
    %% counter's update at 15 (the later update still applies); its table
    %% at 15 then also differs from n2's resync there.
    Lost = Sub(n6, [{resync, 9, At9} | Ev(Log -- [{15, {update, counter, Owner, 2}}])]),
    [lost_event, resync_mismatch] = Kinds([], Tables(End), Clean ++ [Lost]),
    %% The last entry's event missed by a subscriber drained after its
    %% member applied it: nothing else differs.
    LostLast = Sub(n6, [{resync, 9, At9} | Ev(Between(9, 15))] ++ [{flushed, 17}]),
    [lost_event] = Kinds([], Tables(End), Clean ++ [LostLast]),
    %% ... but drained before, it may not have been told yet.
    [] = Kinds([], Tables(End), Clean ++ [LostLast#{log := [{resync, 9, At9} | Ev(Between(9, 15))]
                                                             ++ [{flushed, 16}]}]),
    %% A reordered pair within one entry, and across two entries.
    Swap = fun(X, Y) -> fun(L) -> [case E of X -> Y; Y -> X; _ -> E end || E <- L] end end,
    SwapIn10 = Swap({10, {register, a, Pa, undefined}}, {10, {register, b, Pb, undefined}}),
    [reordered_event] = Kinds([], Tables(End), Clean ++ [Sub(n6, [{resync, 9, At9} | Ev(SwapIn10(Log))])]),
    Swap12And13 = Swap({12, {update, counter, Owner, 1}}, {13, {unregister, a, Pa, undefined}}),
    [reordered_event] = Kinds([], Tables(End), Clean ++ [Sub(n6, [{resync, 9, At9} | Ev(Swap12And13(Log))])]),
    %% A duplicated event.
    [duplicate_event] = Kinds([], Tables(End),
                              Clean ++ [Sub(n6, [{resync, 9, At9} | Ev(Log ++ [{17, {update, counter, Owner, 3}}])])]),
    %% An event before any resync.
    [missing_resync] = Kinds([], Tables(End), Clean ++ [Sub(n6, Ev(Between(12, 17)))]),
    %% An event that does not apply to the resync's entries (a register of
    %% a name held), alone so that nothing else sees index 10.
    [event_mismatch] = Kinds([], Tables(End),
                             [Sub(n6, [{resync, 9, [{a, Pb, undefined}]} | Ev(Between(9, 10))])]),
    %% A resync whose entries are not the table as of its index (the
    %% counter's value at 12 was 1).
    BadResync = Sub(n6, [{resync, 12, [{counter, Owner, 0}, {a, Pa, undefined}, {b, Pb, undefined}]}
                         | Ev(Between(12, 17))]),
    [resync_mismatch] = Kinds([], Tables(End), Clean ++ [BadResync]),
    %% A drained subscriber's table differs from its node's final table.
    [final_mismatch] = Kinds([], #{tables => #{n1 => End -- [{c, Pc}]}, dead => []}, [Whole]),
    %% The counter: registered with 0, incremented by update_metadata/2.
    Reg = #{f => register, name => counter, pid => Owner, invoke => 0, complete => 1, result => yes},
    Inc = fun(I, R) -> #{f => incr, name => counter, node => n1, invoke => I, complete => I + 5,
                         result => R} end,
    Incs = [Inc(10, {ok, 1}), Inc(20, {ok, 2}), Inc(21, {error, {conflict, 64}}),
            Inc(30, {error, {exit, {timeout, x}}}), Inc(40, {ok, 3})],
    Counter = fun(Vs) -> #{tables => #{n1 => [{counter, Owner}]}, dead => [],
                           counters => #{counter => Vs}} end,
    %% Three acknowledged, one indeterminate: 3 or 4, on every node.
    [] = Kinds([Reg | Incs], Counter(#{n1 => 3, n2 => 4}), []),
    [lost_increment] = Kinds([Reg | Incs], Counter(#{n1 => 3, n2 => 2}), []),
    [extra_increment] = Kinds([Reg | Incs], Counter(#{n1 => 5}), []),
    %% A conflict is no effect: without the indeterminate call, 4 is one too many.
    [extra_increment] = Kinds([Reg | Incs -- [Inc(30, {error, {exit, {timeout, x}}})]],
                              Counter(#{n1 => 4}), []),
    %% The counter gone at the end.
    [lost, lost_increment] = Kinds([Reg | Incs], #{tables => #{n1 => []}, dead => [],
                                                    counters => #{counter => #{n1 => undefined}}}, []),
    [duplicate_increment] = Kinds([Reg, Inc(10, {ok, 1}), Inc(11, {ok, 1}), Inc(20, {ok, 2})],
                                  Counter(#{n1 => 3}), []),
    %% An acknowledged value above the final one (within the bounds: two
    %% indeterminate calls may have counted before it): a later write
    %% went back.
    Two = [Inc(10, {error, {exit, {timeout, x}}}), Inc(11, {error, {exit, {timeout, y}}})],
    [lost_increment] = Kinds([Reg, Inc(20, {ok, 3}) | Two], Counter(#{n1 => 2}), []),
    [] = Kinds([Reg, Inc(20, {ok, 3}) | Two], Counter(#{n1 => 3}), []),
    %% not_registered while the owner held the name throughout.
    [stale_read] = Kinds([Reg, Inc(10, {error, not_registered})], Counter(#{n1 => 0}), []),
    [P ! stop || P <- Pids],
    ok.

%% ---- the supervision rules on synthetic histories -------------------------

%% A clean history passes; a planted overlap is two_instances (also when
%% the first instance's node was halted only after the second started); a
%% child without a live instance at the end, or only one started after
%% the bound, is lost_child.
checker_synthetic_children(_Config) ->
    [P1, P2, P3] = [list_to_pid("<0." ++ integer_to_list(N) ++ ".0>") || N <- [101, 102, 103]],
    Up = fun(Id, P, N, T) -> #{f => child_up, name => Id, pid => P, node => N, time => T} end,
    Down = fun(P, T) -> #{f => child_down, pid => P, time => T} end,
    Final = fun(Ids, Halts) -> #{ids => Ids, heal => 1000, bound => 500, halts => Halts} end,
    Check = fun(Events, F) -> lists:usort([K || {K, _, _} <- regent_history_sup:check(Events, F)]) end,
    %% Clean: c1 moves from a to b after a's halt; c2 runs on b throughout.
    Clean = [Up(c1, P1, a, 10), Up(c1, P2, b, 600), Up(c2, P3, b, 20)],
    [] = Check(Clean, Final([c1, c2], [{a, 500}])),
    [] = Check([Up(c, P1, a, 10), Down(P1, 100), Up(c, P2, b, 101)], Final([c], [])),
    %% two_instances: P1 ends after P2 started.
    [two_instances] = Check([Up(c, P1, a, 10), Up(c, P2, b, 100), Down(P1, 150)], Final([c], [])),
    %% ... and a node halted only after the successor started.
    [two_instances] = Check([Up(c, P1, a, 10), Up(c, P2, b, 100)], Final([c], [{a, 200}])),
    %% A paused VM (SIGSTOP): its instance may overlap the next one while
    %% paused, if it dies within a second of the resume; not if it lives on,
    %% and not if the pause was over before the second started.
    Paused = fun(Pauses) -> (Final([c], []))#{pauses => Pauses} end,
    [] = Check([Up(c, P1, a, 10), Up(c, P2, b, 100), Down(P1, 2000)], Paused([{a, 50, 1500}])),
    [two_instances] = Check([Up(c, P1, a, 10), Up(c, P2, b, 100), Down(P1, 2600000)],
                            Paused([{a, 50, 1500}])),
    [two_instances] = Check([Up(c, P1, a, 10), Up(c, P2, b, 100), Down(P1, 150)],
                            Paused([{a, 20, 60}])),
    [two_instances] = Check([Up(c, P1, a, 10), Up(c, P2, b, 100), Down(P1, 2000)],
                            Paused([{b, 50, 1500}])),
    %% lost_child: no live instance at the end; or the only one too late.
    [lost_child] = Check([Up(c, P1, a, 10), Down(P1, 100)], Final([c], [])),
    [lost_child] = Check([Up(c, P1, a, 10), Down(P1, 100), Up(c, P2, b, 1600)], Final([c], [])),
    [lost_child] = Check([], Final([never_started], [])),
    %% Through regent_history:check/4, as the nemesis calls it.
    Planted = #{tables => #{}, dead => [],
                children => (Final([c], []))#{events => [Up(c, P1, a, 10), Up(c, P2, b, 20)]}},
    [two_instances] = lists:usort([K || {K, _, _} <- regent_history:check([], [], Planted)]),
    ok.

%% ---- the linearizability checker on synthetic histories ------------------

%% regent_linearizable rejects each planted non-linearizable history (a
%% stale consistent read, two owners at once, a write that takes effect
%% before its invocation, a write read back after an acknowledged
%% unregister, an acknowledged increment lost) and accepts tricky
%% linearizable ones (overlapping calls, indeterminate writes that took
%% effect or never did, a dead holder replaced, the member hiding its own
%% dead owner while another node still reads it, two indeterminate writes
%% that explain a read only together, a purge and re-claim during a risk).
checker_linearizable_synthetic(_Config) ->
    [P, Q] = [list_to_pid("<0." ++ integer_to_list(N) ++ ".0>") || N <- [101, 102]],
    Op = fun(F, Pid, I, C, R) ->
                 M = #{f => F, name => n, node => a@h, invoke => I, complete => C, result => R},
                 case Pid of undefined -> M; _ -> M#{pid => Pid} end
         end,
    Check = fun(Ops, Risks) ->
                    Kills = [K || #{f := kill} = K <- Ops],
                    regent_linearizable:check_name([O || #{f := F} = O <- Ops, F =/= kill],
                                                   Kills, Risks)
            end,
    Bad = [[Op(register, P, 0, 10, yes), Op(read, undefined, 20, 30, undefined)],
           [Op(register, P, 0, 10, yes), Op(register, Q, 20, 30, yes)],
           [Op(read, undefined, 0, 10, P), Op(register, P, 20, 30, yes)],
           [Op(register, P, 0, 10, yes), Op(unregister, undefined, 20, 30, ok),
            Op(read, undefined, 40, 50, P)],
           [Op(register, P, 0, 10, yes), Op(incr, undefined, 20, 30, {ok, 1}),
            Op(incr, undefined, 40, 50, {ok, 1})],
           [Op(register, P, 0, 10, yes), Op(incr, undefined, 20, 30, {ok, 1}),
            Op(incr, undefined, 40, 50, {ok, 3})]],
    [{violation, _} = Check(H, []) || H <- Bad],
    Good = [[Op(register, P, 0, 30, yes), Op(read, undefined, 10, 20, P)],
            [Op(register, P, 0, 10, {error, timeout}), Op(read, undefined, 20, 30, P),
             Op(read, undefined, 40, 50, P)],
            [Op(register, P, 0, 10, {error, timeout}), Op(read, undefined, 20, 30, undefined)],
            [Op(register, P, 0, 10, yes), Op(kill, P, 15, 15, ok), Op(register, Q, 20, 30, yes),
             Op(read, undefined, 40, 50, Q)],
            [Op(register, P, 0, 10, yes), Op(kill, P, 15, 15, ok),
             (Op(read, undefined, 20, 30, undefined))#{node => node(P)},
             (Op(read, undefined, 40, 50, P))#{node => b@h}],
            [Op(register, P, 0, 10, yes), Op(incr, undefined, 20, 30, {ok, 1}),
             Op(incr, undefined, 40, 50, {error, timeout}), Op(incr, undefined, 60, 70, {ok, 3})],
            [Op(register, P, 0, 10, yes), Op(incr, undefined, 20, 30, {error, {conflict, 9}}),
             Op(incr, undefined, 40, 50, {ok, 1})],
            %% Two indeterminate ops in a row explain the read: the
            %% unregister took effect, then Q's register did.
            [Op(register, P, 0, 10, yes), Op(unregister, undefined, 20, 30, {error, timeout}),
             Op(register, Q, 25, 35, {error, timeout}), Op(read, undefined, 40, 50, Q)]],
    [ok = Check(H, []) || H <- Good],
    %% A purge during a risk of P's node, then its member's re-claim.
    Risk = [#{node => node(P), from => 15, to => 35}],
    Purged = [Op(register, P, 0, 10, yes), Op(read, undefined, 20, 30, undefined),
              Op(read, undefined, 40, 50, P)],
    ok = Check(Purged, Risk),
    {violation, _} = Check(Purged, []),
    %% Through check/2, as the nemesis calls it.
    {[{not_linearizable, n, _}], #{names := 1, unknown := []}} =
        regent_linearizable:check(hd(Bad), []),
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

report(R, Config) ->
    [ct:pal("~s", [L]) || L <- regent_nemesis_report:lines(R)],
    case regent_nemesis_report:write_history(R, ?config(priv_dir, Config)) of
        none -> ok;
        File -> ct:pal("history written to ~s", [File])
    end.

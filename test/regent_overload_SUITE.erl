%% Overload: what one member of a 3-node cluster does under more writes
%% than the log takes at once (regent_overload runs the callers on that
%% node).
%% - ten_thousand_callers: 10,000 processes register at once; every one is
%%   answered (yes, or a clear error), the member's queue of waiting writes
%%   stays under max_pending_writes, and every acknowledged yes is then
%%   readable through whereis_name_consistent. Prints p50/p99/max latency.
%% - bound_refuses_beyond: the same burst against max_pending_writes 1000:
%%   the writes beyond the bound exit regent_overloaded at once and leave
%%   nothing behind; the queue never holds more than 1000.
%% - many_registrations: 50 processes register REGENT_OVERLOAD_REGS names
%%   (20,000 here; make test-long: 200,000) one after another; every node
%%   ends with all of them, and all are readable through
%%   whereis_name_consistent. Prints the rate.
%% docs/testing.md reports the numbers.
-module(regent_overload_SUITE).
-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([ten_thousand_callers/1, bound_refuses_beyond/1, many_registrations/1]).

-define(REG, overload_reg).

suite() -> [{timetrap, {minutes, 20}}].

all() -> [ten_thousand_callers, bound_refuses_beyond, many_registrations].

init_per_suite(Config) ->
    ok = regent_test_lib:start_distribution(),
    Config.

end_per_suite(_Config) ->
    ok.

init_per_testcase(Case, Config) ->
    Nodes = regent_test_lib:peers(3, ["+P", "1000000"]),
    Extra = case Case of
                bound_refuses_beyond -> [{max_pending_writes, 1000}];
                _ -> []
            end,
    [ok = erpc:call(N, regent_test_lib, start_remote,
                    [?REG, [{daemon, regent_test_lib:daemon()} | Extra]]) || N <- Nodes],
    ok = regent_test_lib:await_cluster(?REG, Nodes, 3),
    [{nodes, Nodes} | Config].

end_per_testcase(_Case, _Config) ->
    regent_test_lib:stop_peers().

%% ---- the cases ------------------------------------------------------------

ten_thousand_callers(Config) ->
    [A | _] = ?config(nodes, Config),
    R = burst(A, 10000),
    #{results := Rs, max_pending := MaxPending} = R,
    %% Every caller answered: yes, or one of the documented errors.
    10000 = maps:get(yes, Rs, 0) + maps:get(overloaded, Rs, 0) + maps:get(unavailable, Rs, 0),
    true = MaxPending =< 65536,
    ok = all_readable(A, maps:get(acked, R)).

bound_refuses_beyond(Config) ->
    [A | _] = ?config(nodes, Config),
    #{results := Rs, max_pending := MaxPending, acked := Acked, refused := Refused} = burst(A, 10000),
    10000 = maps:get(yes, Rs, 0) + maps:get(overloaded, Rs, 0) + maps:get(unavailable, Rs, 0),
    true = maps:get(overloaded, Rs, 0) > 0,
    true = MaxPending =< 1000,
    ok = all_readable(A, Acked),
    %% A refused write had no effect.
    [] = [N || N <- Refused,
               erpc:call(A, regent, whereis_name_consistent, [{?REG, N}]) =/= undefined],
    ok.

many_registrations(Config) ->
    [A | _] = Nodes = ?config(nodes, Config),
    Total = list_to_integer(os:getenv("REGENT_OVERLOAD_REGS", "20000")),
    #{ms := Ms, results := Rs, acked := Acked} =
        erpc:call(A, regent_overload, sequential, [?REG, 50, Total div 50], infinity),
    ct:pal("~p registrations from 50 processes in ~p ms: ~p/s; results ~p",
           [Total, Ms, Total * 1000 div max(1, Ms), Rs]),
    Total = maps:get(yes, Rs, 0),
    ok = regent_test_lib:wait_until(
           fun() -> [Total, Total, Total] =:= [erpc:call(N, regent, count, [?REG]) || N <- Nodes] end,
           60000),
    ok = all_readable(A, Acked).

%% ---- helpers --------------------------------------------------------------

%% N callers at once on Node, the member's queue sampled meanwhile.
burst(Node, N) ->
    R = erpc:call(Node, regent_overload, burst, [?REG, N], infinity),
    #{results := Rs, latency_us := Lat, max_pending := MaxPending, ms := Ms} = R,
    ct:pal("~p concurrent callers: ~p in ~p ms; latency p50 ~p us, p99 ~p us, max ~p us; "
           "the member's queue of waiting writes peaked at ~p",
           [N, Rs, Ms, maps:get(p50, Lat), maps:get(p99, Lat), maps:get(max, Lat), MaxPending]),
    R.

%% Every acknowledged name reads back, through the log, as its owner.
all_readable(Node, Acked) ->
    T0 = erlang:monotonic_time(millisecond),
    Wrong = erpc:call(Node, regent_overload, check_consistent, [?REG, Acked], infinity),
    ct:pal("~p acknowledged names read through whereis_name_consistent in ~p ms; wrong: ~p",
           [length(Acked), erlang:monotonic_time(millisecond) - T0, length(Wrong)]),
    [] = lists:sublist(Wrong, 10),
    ok.

%% Duplicate keys (`{keys, duplicate}': process groups, pub/sub) across
%% real BEAM nodes with their own regentd: entries registered from every
%% node, seen by lookup/2 and dispatch/3 everywhere, and gone when their
%% process exits or their node dies; after a partition heals, and when two
%% clusters merge, the entries of live processes are all there again and
%% nothing conflicts (no process is killed).
-module(regent_duplicate_SUITE).
-include_lib("common_test/include/ct.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         end_per_testcase/2]).
-export([registered_everywhere/1, process_exit/1, node_down/1,
         partition_heal/1, two_clusters_merge/1]).
-export([member/4, notify_all/2]).

-define(REG, group_reg).

suite() -> [{timetrap, {minutes, 3}}].

all() ->
    [registered_everywhere, process_exit, node_down, partition_heal,
     two_clusters_merge].

init_per_suite(Config) ->
    ok = regent_test_lib:start_distribution(),
    Daemon = regent_test_lib:daemon(),
    [{daemon, Daemon} | Config].

end_per_suite(_Config) ->
    ok.

end_per_testcase(_Case, _Config) ->
    regent_test_lib:stop_peers().

%% ---- helpers ------------------------------------------------------------

start_on(Nodes, Config) ->
    [ok = erpc:call(N, regent_test_lib, start_remote,
                    [?REG, [{keys, duplicate}, {register_timeout, 2000},
                            {daemon, ?config(daemon, Config)}]])
     || N <- Nodes],
    ok.

%% On a peer: registers itself under Key with Value (N times), tells the
%% test process, then passes every message on to it until `stop'.
member(Key, Value, N, To) ->
    [{ok, _} = regent:register(?REG, Key, Value) || _ <- lists:seq(1, N)],
    To ! {joined, self()},
    member_loop(To).

member_loop(To) ->
    receive
        stop -> ok;
        Msg -> To ! {forwarded, self(), Msg}, member_loop(To)
    end.

join(Node, Key, Value) ->
    join(Node, Key, Value, 1).

join(Node, Key, Value, N) ->
    Pid = erlang:spawn(Node, ?MODULE, member, [Key, Value, N, self()]),
    receive {joined, Pid} -> Pid after 10000 -> error({no_join, Node}) end.

lookup(Node, Key) ->
    lists:sort(erpc:call(Node, regent, lookup, [?REG, Key])).

%% Every node of Nodes sees exactly Entries under Key.
seen_everywhere(Nodes, Key, Entries) ->
    regent_test_lib:wait_until(
      fun() -> [lookup(N, Key) || N <- Nodes] =:= [lists:sort(Entries) || _ <- Nodes] end,
      15000).

three_nodes(Config, Extra) ->
    Nodes = regent_test_lib:peers(3, Extra),
    Extra =/= [] andalso regent_test_lib:mesh(Nodes),
    start_on(Nodes, Config),
    regent_test_lib:await_cluster(?REG, Nodes, 3),
    Nodes.

%% ---- cases --------------------------------------------------------------

%% One key joined from three nodes (one process twice): every node's
%% lookup/2, count/1 and count_match/3 see the four entries, and
%% dispatch/3 from the third node reaches the processes on all three.
registered_everywhere(Config) ->
    [A, B, C] = Nodes = three_nodes(Config, []),
    Pa = join(A, topic, a),
    Pb = join(B, topic, b, 2),
    Pc = join(C, topic, c),
    All = [{Pa, a}, {Pb, b}, {Pb, b}, {Pc, c}],
    seen_everywhere(Nodes, topic, All),
    [4 = erpc:call(N, regent, count, [?REG]) || N <- Nodes],
    [2 = erpc:call(N, regent, count_match, [?REG, topic, b]) || N <- Nodes],
    %% dispatch/3 with {M, F, A}: called as notify_all(Entries, hello).
    ok = erpc:call(C, regent, dispatch, [?REG, topic, {?MODULE, notify_all, [hello]}]),
    [receive {forwarded, P, {hello, V}} -> ok after 5000 -> error({no_dispatch, P}) end
     || {P, V} <- All],
    ok.

%% A dispatcher: runs on the node that dispatches.
notify_all(Entries, Tag) ->
    [P ! {Tag, V} || {P, V} <- Entries].

%% A process that exits takes its entries with it on every node; another
%% process's entries under the same key stay.
process_exit(Config) ->
    [A, B, C] = Nodes = three_nodes(Config, []),
    Pa = join(A, room, 1),
    Pb = join(B, room, 2, 3),
    seen_everywhere(Nodes, room, [{Pa, 1}, {Pb, 2}, {Pb, 2}, {Pb, 2}]),
    Pb ! stop,
    seen_everywhere(Nodes, room, [{Pa, 1}]),
    [0 = length(erpc:call(N, regent, keys, [?REG, Pb])) || N <- [A, C]],
    exit(Pa, kill),
    seen_everywhere(Nodes, room, []).

%% A node that dies (kill -9 of its BEAM and its daemon) loses its entries
%% on the others, which keep serving the key.
node_down(Config) ->
    [A, B, C] = three_nodes(Config, []),
    Pa = join(A, room, 1),
    Pb = join(B, room, 2),
    seen_everywhere([A, B, C], room, [{Pa, 1}, {Pb, 2}]),
    kill9(B),
    seen_everywhere([A, C], room, [{Pa, 1}]),
    Pc = join(C, room, 3),
    seen_everywhere([A, C], room, [{Pa, 1}, {Pc, 3}]).

kill9(Node) ->
    St = erpc:call(Node, regent, status, [?REG]),
    OsPids = [erpc:call(Node, os, getpid, []),
              integer_to_list(maps:get(os_pid, maps:get(daemon, St)))],
    true = erlang:monitor_node(Node, true),
    os:cmd("kill -9 " ++ lists:join(" ", OsPids)),
    receive {nodedown, Node} -> ok after 5000 -> error({still_up, Node}) end.

%% A node cut off (distribution and raft) loses its entries on the
%% majority side, which goes on adding entries; on heal, the cut-off
%% node's live process has its entries back everywhere, nothing conflicts,
%% and every entry made on either side is there.
partition_heal(Config) ->
    Nodes = three_nodes(Config, ["-kernel", "dist_auto_connect", "once",
                                 "-connect_all", "false"]),
    {Leader, _} = erpc:call(hd(Nodes), regent, get_leader, [?REG]),
    [C | _] = Nodes -- [Leader],
    [A, B] = Nodes -- [C],
    Pc = join(C, room, c, 2),
    Pa = join(A, room, a),
    seen_everywhere(Nodes, room, [{Pa, a}, {Pc, c}, {Pc, c}]),
    [{ok, _} = erpc:call(N, regent_fault, cut_raft, [?REG, Other])
     || {N, Other} <- [{C, [A, B]}, {A, [C]}, {B, [C]}]],
    [true = erpc:call(C, erlang, disconnect_node, [N]) || N <- [A, B]],
    seen_everywhere([A, B], room, [{Pa, a}]),
    Pb = join(B, room, b),
    seen_everywhere([A, B], room, [{Pa, a}, {Pb, b}]),
    Ref = erlang:monitor(process, Pc),
    [{ok, 0} = erpc:call(N, regent_fault, heal_raft, [?REG]) || N <- Nodes],
    [true = erpc:call(C, net_kernel, connect_node, [N]) || N <- [A, B]],
    regent_test_lib:await_cluster(?REG, Nodes, 3),
    seen_everywhere(Nodes, room, [{Pa, a}, {Pb, b}, {Pc, c}, {Pc, c}]),
    receive {'DOWN', Ref, process, Pc, Why} -> error({killed_on_heal, Why})
    after 0 -> ok
    end.

%% Two clusters of the registry formed apart meet: the smaller dissolves
%% into the bigger, and the entries of both sides are all there after.
two_clusters_merge(Config) ->
    [A, B, C] = regent_test_lib:peers(3, ["-kernel", "dist_auto_connect", "once",
                                          "-connect_all", "false"]),
    regent_test_lib:mesh([B, C]),
    start_on([A], Config),
    start_on([B, C], Config),
    regent_test_lib:await_cluster(?REG, [A], 1),
    regent_test_lib:await_cluster(?REG, [B, C], 2),
    Pa = join(A, room, a, 2),
    Pb = join(B, room, b),
    Pc = join(C, other, c),
    seen_everywhere([A], room, [{Pa, a}, {Pa, a}]),
    seen_everywhere([B, C], room, [{Pb, b}]),
    Refs = [erlang:monitor(process, P) || P <- [Pa, Pb, Pc]],
    regent_test_lib:mesh([A, B, C]),
    regent_test_lib:await_cluster(?REG, [A, B, C], 3),
    seen_everywhere([A, B, C], room, [{Pa, a}, {Pa, a}, {Pb, b}]),
    seen_everywhere([A, B, C], other, [{Pc, c}]),
    [receive {'DOWN', R, process, _, Why} -> error({killed_on_merge, Why}) after 0 -> ok end
     || R <- Refs],
    ok.

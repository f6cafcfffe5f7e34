%% regent across real BEAM nodes (OTP's peer), each with its own regentd:
%% joining, replication, forwarding to the leader, races, process and node
%% failures, daemon kills, graceful leave, late joiners.
-module(regent_cluster_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([join_one_by_one/1, join_at_once/1, five_nodes_roles/1,
         replication_and_forwarding/1, race_for_names/1,
         process_exit_cluster_wide/1, node_down_purge/1, leader_node_killed/1,
         follower_daemon_kill9/1, leader_daemon_kill9/1, graceful_leave/1,
         late_joiner_gets_table/1, wrong_secret_member/1,
         raft_handshake_from_erlang/1, quorum_lost_then_recover/1,
         full_partition/1, distribution_partition/1, small_side_leader_purges_nothing/1,
         two_clusters_merge/1,
         race_two_nodes/1, burst_of_deaths/1, standby_promoted/1,
         quorum_lost_then_voters_return/1, merge_with_resolve_fun/1,
         caught_up_follower_leads_changes/1, leader_node_kill9_removed/1,
         leader_then_voter_kill9/1, shared_data_dir_pid_namespace/1,
         leader_beam_stopped/1, memberless_node_owner_exits/1,
         squatted_raft_port/1, connection_flood/1, follower_disk_full/1,
         data_dir_deleted/1, follower_beam_stopped_bounded/1,
         tls_refuses_plaintext/1, tls_certificates/1, tls_relay_flips_bytes/1,
         tls_handshake_flood/1]).
-export([keep_claimant/3, reg_many/4]).
-export([forwarder/1]).
-export([stop_remote/1]).

-define(REG, cluster_reg).

suite() -> [{timetrap, {minutes, 3}}].

all() ->
    [join_one_by_one, join_at_once, five_nodes_roles, replication_and_forwarding,
     race_for_names, process_exit_cluster_wide, node_down_purge,
     leader_node_killed, follower_daemon_kill9, leader_daemon_kill9,
     graceful_leave, late_joiner_gets_table, wrong_secret_member,
     raft_handshake_from_erlang, quorum_lost_then_recover, full_partition,
     distribution_partition, small_side_leader_purges_nothing, two_clusters_merge,
     race_two_nodes,
     burst_of_deaths, standby_promoted, quorum_lost_then_voters_return,
     merge_with_resolve_fun, caught_up_follower_leads_changes,
     leader_node_kill9_removed, leader_then_voter_kill9,
     shared_data_dir_pid_namespace, leader_beam_stopped,
     memberless_node_owner_exits, squatted_raft_port, connection_flood,
     follower_disk_full, data_dir_deleted, follower_beam_stopped_bounded,
     tls_refuses_plaintext, tls_certificates, tls_relay_flips_bytes,
     tls_handshake_flood].

groups() -> [].

init_per_suite(Config) ->
    ok = regent_test_lib:start_distribution(),
    Daemon = regent_test_lib:daemon(),
    [{daemon, Daemon} | Config].

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, Config) ->
    [catch peer:stop(P) || P <- proplists:get_value(peers, get_peers(Config), [])],
    ok.

%% ---- helpers ------------------------------------------------------------

get_peers(_Config) ->
    case get(peers) of
        undefined -> [];
        Ps -> [{peers, Ps}]
    end.

peers(N) ->
    peers(N, []).

%% Extra: more emulator flags, e.g. to keep distribution cut once cut.
peers(N, Extra) ->
    regent_test_lib:peers(N, Extra).

stop_remote(Reg) ->
    gen_server:stop(Reg).

start_on(Nodes, Config) ->
    start_on(Nodes, Config, []).

start_on(Nodes, Config, Extra) ->
    [ok = erpc:call(N, regent_test_lib, start_remote,
                    [?REG, [{daemon, ?config(daemon, Config)} | Extra]])
     || N <- Nodes],
    ok.

await_cluster(Nodes, Size) ->
    regent_test_lib:await_cluster(?REG, Nodes, Size).

leader(N) -> erpc:call(N, regent, get_leader, [?REG]).

idle_on(Node) ->
    erlang:spawn(Node, timer, sleep, [infinity]).

reg(Node, Name, Pid) ->
    erpc:call(Node, regent, register_name, [{?REG, Name}, Pid]).

%% Registers Name for one new process on Node, retrying until `yes' (for
%% writes while the cluster recovers). One owner for every attempt: an
%% attempt that timed out may still commit, and then the same pid again is
%% `yes' where a new one would be `no'.
reg_until_yes(Node, Name, Ms) ->
    Owner = idle_on(Node),
    wait_until(fun() -> reg(Node, Name, Owner) =:= yes end, Ms).

where(Node, Name) ->
    erpc:call(Node, regent, whereis_name, [{?REG, Name}]).

count(Node) ->
    erpc:call(Node, regent, count, [?REG]).

os_pid(Node) ->
    maps:get(os_pid, maps:get(daemon, erpc:call(Node, regent, status, [?REG]))).

%% Running (a zombie left unreaped no longer takes part in raft).
os_process_alive(OsPid) ->
    case file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat") of
        {ok, Stat} ->
            [_, After] = string:split(Stat, ")", trailing),
            not lists:prefix(" Z", binary_to_list(After));
        {error, _} ->
            false
    end.

wait_until(Fun, Ms) ->
    regent_test_lib:wait_until(Fun, Ms).

%% Three nodes in one cluster, started with Extra options; and its leader.
three_nodes(Config, Extra) ->
    Nodes = peers(3),
    start_on(Nodes, Config, Extra),
    await_cluster(Nodes, 3),
    {LeaderNode, _} = leader(hd(Nodes)),
    {Nodes, LeaderNode}.

%% N names {Tag, I} registered on Node, each for a process of its own there.
registered_on(Node, Tag, N) ->
    Ps = [{I, idle_on(Node)} || I <- lists:seq(1, N)],
    [yes = reg(Node, {Tag, I}, P) || {I, P} <- Ps],
    Ps.

roles(Node) ->
    lists:sort([R || {_, R} <- erpc:call(Node, regent, get_members, [?REG])]).

%% kill -9 of a node's BEAM and its regentd at once, as a host that dies.
kill9_node(Node) ->
    Pids = [erpc:call(Node, os, getpid, []), integer_to_list(os_pid(Node))],
    true = erlang:monitor_node(Node, true),
    os:cmd("kill -9 " ++ lists:join(" ", Pids)),
    receive {nodedown, Node} -> ok after 5000 -> error({still_up, Node}) end.

%% Node's view of the configuration is exactly Live, with Voters voters.
membership_is(Node, Live, Voters) ->
    Ms = erpc:call(Node, regent, get_members, [?REG]),
    lists:sort([N || {{N, _}, _} <- Ms]) =:= lists:sort(Live) andalso
        length([V || {_, voter} = V <- Ms]) =:= Voters.

%% ---- joining ------------------------------------------------------------

join_one_by_one(Config) ->
    [A, B, C] = Nodes = peers(3),
    start_on([A], Config),
    await_cluster([A], 1),
    start_on([B], Config),
    await_cluster([A, B], 2),
    start_on([C], Config),
    await_cluster(Nodes, 3),
    %% A joiner votes once its member has said it is synced: soon, not at once.
    wait_until(fun() -> roles(C) =:= [voter, voter, voter] end, 10000),
    {A, ?REG} = leader(C).

join_at_once(Config) ->
    Nodes = peers(3),
    Parent = self(),
    [spawn_link(fun() -> start_on([N], Config), Parent ! {started, N} end) || N <- Nodes],
    [receive {started, N} -> ok end || N <- Nodes],
    await_cluster(Nodes, 3),
    wait_until(fun() -> roles(hd(Nodes)) =:= [voter, voter, voter] end, 10000).

five_nodes_roles(Config) ->
    Nodes = peers(5),
    [start_on([N], Config) || N <- Nodes],
    await_cluster(Nodes, 5),
    wait_until(fun() -> roles(hd(Nodes)) =:= [standby, standby, voter, voter, voter] end, 10000),
    %% Standbys serve reads too.
    P = idle_on(lists:nth(5, Nodes)),
    yes = reg(lists:nth(5, Nodes), five, P),
    [wait_until(fun() -> where(N, five) =:= P end, 2000) || N <- Nodes],
    ok.

%% ---- writes and reads ---------------------------------------------------

replication_and_forwarding(Config) ->
    [A, B, C] = Nodes = peers(3),
    start_on(Nodes, Config),
    await_cluster(Nodes, 3),
    %% Register from every node, including followers (forwarded).
    Regs = [{N, I, idle_on(N)} || N <- Nodes, I <- lists:seq(1, 50)],
    [yes = reg(N, {N, I}, P) || {N, I, P} <- Regs],
    %% Read-your-writes on the registering node at once; elsewhere soon.
    [P = where(N, {N, I}) || {N, I, P} <- Regs],
    [wait_until(fun() -> where(M, {N, I}) =:= P end, 2000) || {N, I, P} <- Regs, M <- Nodes],
    %% A consistent read from a follower.
    {_, P0} = {ok, element(3, hd(Regs))},
    Follower = hd([N || N <- Nodes, leader(N) =/= {N, ?REG}]),
    P0 = erpc:call(Follower, regent, whereis_name_consistent, [{?REG, {A, 1}}]),
    %% Convergence: from yes on B until C sees it.
    Lat = [begin
               P = idle_on(B),
               yes = reg(B, {conv, I}, P),
               T0 = erlang:monotonic_time(microsecond),
               wait_until(fun() -> where(C, {conv, I}) =:= P end, 2000),
               erlang:monotonic_time(microsecond) - T0
           end || I <- lists:seq(1, 20)],
    ct:pal("convergence B->C (us, incl. rpc polling): median ~p, max ~p",
           [lists:nth(10, lists:sort(Lat)), lists:max(Lat)]),
    150 + 20 = count(C).

race_for_names(Config) ->
    race(Config, 3).

race_two_nodes(Config) ->
    race(Config, 2).

%% Racers nodes register the same 1,000 names at once, each with its own
%% processes: exactly one yes per name, every node ends with the winner.
race(Config, Racers0) ->
    [A | _] = Nodes = peers(3),
    start_on(Nodes, Config),
    await_cluster(Nodes, 3),
    N = 1000,
    Racers = lists:sublist(Nodes, Racers0),
    Self = self(),
    [spawn_link(fun() ->
                        Answers = erpc:call(Node, lists, map,
                                            [fun(I) -> {I, regent:register_name({?REG, {race, I}},
                                                                                 erlang:spawn(timer, sleep, [infinity]))}
                                             end, lists:seq(1, N)]),
                        Self ! {answers, Node, Answers}
                end) || Node <- Racers],
    All = [receive {answers, Node, As} -> {Node, As} end || Node <- Racers],
    [begin
         Yes = [Node || {Node, As} <- All, {I2, yes} <- As, I2 =:= I],
         ?assertEqual(1, length(Yes), {name, I})
     end || I <- lists:seq(1, N)],
    %% Everyone converges on the winner.
    [begin
         W = where(A, {race, I}),
         [wait_until(fun() -> where(M, {race, I}) =:= W end, 2000) || M <- Nodes]
     end || I <- lists:seq(1, N)],
    ok.

%% ---- failures -----------------------------------------------------------

process_exit_cluster_wide(Config) ->
    [A, B, C] = Nodes = peers(3),
    start_on(Nodes, Config),
    await_cluster(Nodes, 3),
    Ps = [idle_on(B) || _ <- lists:seq(1, 100)],
    [yes = reg(B, {p, I}, P) || {I, P} <- lists:zip(lists:seq(1, 100), Ps)],
    wait_until(fun() -> count(A) =:= 100 andalso count(C) =:= 100 end, 5000),
    [exit(P, kill) || P <- Ps],
    wait_until(fun() -> count(A) =:= 0 andalso count(C) =:= 0 end, 5000).

node_down_purge(Config) ->
    [A, B, C] = Nodes = peers(3),
    start_on(Nodes, Config),
    await_cluster(Nodes, 3),
    Ps = [idle_on(C) || _ <- lists:seq(1, 200)],
    [yes = reg(C, {c, I}, P) || {I, P} <- lists:zip(lists:seq(1, 200), Ps)],
    wait_until(fun() -> count(A) =:= 200 end, 5000),
    true = erlang:monitor_node(C, true),
    T0 = erlang:monotonic_time(millisecond),
    erpc:cast(C, erlang, halt, []),
    receive {nodedown, C} -> ok after 5000 -> error(node_still_up) end,
    wait_until(fun() -> count(A) =:= 0 andalso count(B) =:= 0 end, 10000),
    ct:pal("node down -> names purged on A and B in ~p ms",
           [erlang:monotonic_time(millisecond) - T0]),
    wait_until(fun() -> length(roles(A)) =:= 2 end, 10000),
    yes = reg(A, after_purge, idle_on(A)).

leader_node_killed(Config) ->
    {Nodes, LeaderNode} = three_nodes(Config, []),
    [S1, S2] = Nodes -- [LeaderNode],
    Kept = idle_on(S1),
    yes = reg(S1, kept, Kept),
    wait_until(fun() -> where(S2, kept) =:= Kept end, 2000),
    Doomed = idle_on(LeaderNode),
    yes = reg(S2, doomed, Doomed),
    true = erlang:monitor_node(LeaderNode, true),
    T0 = erlang:monotonic_time(millisecond),
    erpc:cast(LeaderNode, erlang, halt, []),
    receive {nodedown, LeaderNode} -> ok after 5000 -> error(leader_still_up) end,
    %% A registration succeeds again through a new leader.
    reg_until_yes(S1, {again, 1}, 10000),
    ct:pal("leader node killed -> a registration succeeded after ~p ms",
           [erlang:monotonic_time(millisecond) - T0]),
    %% Nothing acknowledged is lost; the dead node's names are purged.
    Kept = where(S2, kept),
    wait_until(fun() -> where(S1, doomed) =:= undefined andalso
                            where(S2, doomed) =:= undefined end, 10000),
    true = leader(S1) =/= {LeaderNode, ?REG}.

daemon_kill9(Which, Config) ->
    {Nodes, LeaderNode} = three_nodes(Config, []),
    Victim = case Which of
                 leader -> LeaderNode;
                 follower -> hd(Nodes -- [LeaderNode])
             end,
    Ps = registered_on(Victim, v, 50),
    OsPid = os_pid(Victim),
    os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    %% Writes keep working (elsewhere at once, on the victim once it is back).
    Other = hd(Nodes -- [Victim]),
    reg_until_yes(Other, {during, Which}, 10000),
    wait_until(fun() -> os_pid(Victim) =/= OsPid andalso
                            maps:get(ready, erpc:call(Victim, regent, status, [?REG])) end, 10000),
    await_cluster(Nodes, 3),
    %% The victim's registrations are intact everywhere.
    [[wait_until(fun() -> where(N, {v, I}) =:= P end, 5000) || N <- Nodes] || {I, P} <- Ps],
    yes = reg(Victim, {after_kill, Which}, idle_on(Victim)),
    ok.

follower_daemon_kill9(Config) -> daemon_kill9(follower, Config).
leader_daemon_kill9(Config) -> daemon_kill9(leader, Config).

graceful_leave(Config) ->
    {Nodes, LeaderNode} = three_nodes(Config, []),
    [F1, F2] = Nodes -- [LeaderNode],
    Epoch = erpc:call(F1, regent, get_epoch, [?REG]),
    %% The leader leaves: leadership is transferred first, then it is removed.
    ok = erpc:call(LeaderNode, ?MODULE, stop_remote, [?REG]),
    wait_until(fun() -> length(roles(F1)) =:= 2 end, 10000),
    {NewLeader, _} = leader(F1),
    true = lists:member(NewLeader, [F1, F2]),
    true = erpc:call(F1, regent, get_epoch, [?REG]) > Epoch,
    yes = reg(F2, after_leave, idle_on(F2)),
    wait_until(fun() -> is_pid(where(F1, after_leave)) end, 2000).

late_joiner_gets_table(Config) ->
    [A, B, C] = peers(3),
    start_on([A, B], Config),
    await_cluster([A, B], 2),
    Owner = idle_on(A),
    [yes = reg(A, {late, I}, Owner) || I <- lists:seq(1, 2000)],
    start_on([C], Config),
    await_cluster([A, B, C], 3),
    wait_until(fun() -> count(C) =:= 2000 end, 10000),
    Owner = where(C, {late, 1999}).

%% ---- security -------------------------------------------------------------

%% A member configured with another secret cannot replicate: it never gets
%% the table, never votes, and the others carry on.
wrong_secret_member(Config) ->
    [A, B, C] = peers(3),
    start_on([A, B], Config),
    await_cluster([A, B], 2),
    yes = reg(A, before, idle_on(A)),
    start_on([C], Config, [{secret, <<"not the cluster's secret">>}]),
    timer:sleep(2000), % time enough to sync, were the secret right
    false = maps:get(ready, erpc:call(C, regent, status, [?REG])),
    0 = count(C),
    yes = reg(B, during, idle_on(B)),
    wait_until(fun() -> is_pid(where(A, during)) end, 2000),
    [voter, voter] = [R || R <- roles(A), R =:= voter].

%% The handshake spoken from Erlang with OTP's crypto: regentd's challenge
%% carries the documented HMAC; a wrong proof is dropped, a right one kept.
%% (With TLS off: with TLS the same handshake runs inside the TLS session,
%% tls_refuses_plaintext.)
raft_handshake_from_erlang(Config) ->
    [A] = peers(1),
    start_on([A], Config, [{tls, false}]),
    await_cluster([A], 1),
    Daemon = maps:get(daemon, erpc:call(A, regent, status, [?REG])),
    Port = maps:get(raft_port, Daemon),
    Id = maps:get(raft_id, Daemon),
    Secret = crypto:hash(sha256, ["regent:", atom_to_binary(erlang:get_cookie())]),
    {error, closed} = handshake(Port, Id, Secret, fun(_) -> <<0:256>> end),
    {ok, Sock} = handshake(Port, Id, Secret,
                           fun({NonceC, NonceA, From}) ->
                                   mac(Secret, <<"regent-connect">>, NonceA, NonceC, From, Id)
                           end),
    {error, timeout} = gen_tcp:recv(Sock, 0, 300), % accepted: still open
    gen_tcp:close(Sock),
    %% A HELLO for another target id is refused before any challenge.
    {ok, S2} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
    ok = gen_tcp:send(S2, hello(7, Id + 1, <<0:128>>)),
    {error, closed} = gen_tcp:recv(S2, 0, 6000).

hello(From, To, NonceC) ->
    Addr = <<"127.0.0.1:9">>,
    <<16#524547454E540002:64, From:64, To:64, NonceC/binary,
      (byte_size(Addr)):16, Addr/binary>>.

mac(Secret, Label, N1, N2, From, To) ->
    crypto:mac(hmac, sha256, Secret, <<Label/binary, N1/binary, N2/binary, From:64, To:64>>).

handshake(Port, Id, Secret, Proof) ->
    {ok, S} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
    From = 16#1234567,
    NonceC = crypto:strong_rand_bytes(16),
    ok = gen_tcp:send(S, hello(From, Id, NonceC)),
    {ok, <<NonceA:16/binary, MacA:32/binary>>} = gen_tcp:recv(S, 48, 5000),
    MacA = mac(Secret, <<"regent-accept">>, NonceC, NonceA, From, Id),
    ok = gen_tcp:send(S, Proof({NonceC, NonceA, From})),
    case gen_tcp:recv(S, 0, 1000) of
        {error, closed} -> {error, closed};
        {error, timeout} -> {ok, S}
    end.

%% ---- quorum and partitions -------------------------------------------------

%% The majority of voters is gone for good: writes wait and then exit
%% regent_unavailable while reads go on; regent:recover/1 re-forms the
%% registry on the survivor with its own live names.
quorum_lost_then_recover(Config) ->
    [A, B, C] = Nodes = peers(3),
    start_on(Nodes, Config, [{register_timeout, 1000}]),
    await_cluster(Nodes, 3),
    Mine = [{I, idle_on(A)} || I <- lists:seq(1, 20)],
    [yes = reg(A, {a, I}, P) || {I, P} <- Mine],
    yes = reg(B, {b, 1}, idle_on(B)),
    wait_until(fun() -> count(A) =:= 21 end, 5000),
    Daemons = [os_pid(N) || N <- [B, C]],
    [begin
         true = erlang:monitor_node(N, true),
         erpc:cast(N, erlang, halt, []),
         receive {nodedown, N} -> ok after 5000 -> error({still_up, N}) end
     end || N <- [B, C]],
    %% A halted BEAM's regentd exits on EOF a moment later; until then it can
    %% still acknowledge A's entries (it once did: the write below committed).
    wait_until(fun() -> not lists:any(fun os_process_alive/1, Daemons) end, 5000),
    {error, {regent_unavailable, {?REG, blocked}}} =
        try {ok, reg(A, blocked, idle_on(A))}
        catch exit:{exception, R} -> {error, R}
        end,
    {_, P1} = hd(Mine),
    P1 = where(A, {a, 1}), % reads go on
    ok = erpc:call(A, regent, recover, [?REG]),
    wait_until(fun() -> maps:get(ready, erpc:call(A, regent, status, [?REG])) end, 10000),
    yes = reg(A, after_recover, idle_on(A)),
    [P = erpc:call(A, regent, whereis_name_consistent, [{?REG, {a, I}}]) || {I, P} <- Mine],
    wait_until(fun() -> count(A) =:= 21 end, 5000), % B's names went with B
    [{{A, ?REG}, voter}] = erpc:call(A, regent, get_members, [?REG]).

%% Distribution and the raft port cut between {A, B} and {C}: C refuses
%% writes; A and B purge C's names and give one to another process; on heal
%% C rejoins and its process that still claims the name is killed by the
%% default conflict policy. Then every node has the same table.
full_partition(Config) ->
    partition(Config, full, kill).

%% Distribution alone cut (the raft links stay up), conflict policy notify.
distribution_partition(Config) ->
    partition(Config, distribution, notify).

partition(Config, How, Policy) ->
    Nodes = peers(3, ["-kernel", "dist_auto_connect", "once", "-connect_all", "false"]),
    regent_test_lib:mesh(Nodes),
    start_on(Nodes, Config, [{register_timeout, 1000}, {conflict, Policy}]),
    await_cluster(Nodes, 3),
    %% The cut-off node is a follower (a cut-off leader steps down first).
    {Leader, _} = leader(hd(Nodes)),
    [C | _] = Nodes -- [Leader],
    [A, B] = Nodes -- [C],
    Self = self(),
    Pc = erlang:spawn(C, ?MODULE, forwarder, [Self]),
    yes = reg(C, contested, Pc),
    Kept = idle_on(C),
    yes = reg(C, kept_on_c, Kept),
    wait_until(fun() -> where(A, contested) =:= Pc end, 2000),
    Ref = erlang:monitor(process, Pc),
    %% Cut.
    How =:= full andalso cut_raft([C], [A, B]),
    [true = erpc:call(C, erlang, disconnect_node, [N]) || N <- [A, B]],
    wait_until(fun() -> not lists:member(C, erpc:call(A, erlang, nodes, [])) end, 5000),
    %% The majority purges C's names and lets another process take one.
    wait_until(fun() -> where(A, contested) =:= undefined end, 10000),
    Pa = idle_on(A),
    yes = reg(A, contested, Pa),
    %% The minority refuses writes (it cannot reach a leader).
    {error, {regent_unavailable, _}} =
        try {ok, reg(C, minority_write, idle_on(C))}
        catch exit:{exception, R} -> {error, R}
        end,
    Pc = where(C, contested), % and still reads its old view
    %% Heal.
    How =:= full andalso heal_raft(Nodes),
    [true = erpc:call(C, net_kernel, connect_node, [N]) || N <- [A, B]],
    %% The policy ran on the claimant.
    case Policy of
        kill ->
            receive {'DOWN', Ref, process, Pc, {regent_conflict, contested, Pa}} -> ok
            after 15000 -> error(no_conflict_kill)
            end;
        notify ->
            receive {forwarded, Pc, {regent_conflict, contested, Pa}} -> ok
            after 15000 -> error(no_conflict_notice)
            end
    end,
    %% Everyone converges: C is a member again, one table everywhere, C's
    %% uncontested name re-claimed.
    await_cluster(Nodes, 3),
    wait_until(fun() -> [where(N, contested) || N <- Nodes] =:= [Pa, Pa, Pa] end, 10000),
    wait_until(fun() -> [where(N, kept_on_c) || N <- Nodes] =:= [Kept, Kept, Kept] end, 10000),
    wait_until(fun() -> length(lists:usort([table(N) || N <- Nodes])) =:= 1 end, 10000),
    yes = reg(C, after_heal, idle_on(C)).

%% A cut of distribution alone puts the leader on the small side of five
%% voters, {L, X} | {A, B, C}. L loses A, B and C one at a time; it must
%% purge nothing of the big side, and after the wait it sees no majority
%% and hands the leadership over, to a voter of the big side (libraft's own
%% pick could be X, which then led for good without acting); the big
%% side's leader purges L's and X's names. A wrong purge by L would have
%% committed before that (the raft links are up), so the big side's names
%% must all still be there.
small_side_leader_purges_nothing(Config) ->
    Nodes = peers(5, ["-kernel", "dist_auto_connect", "once", "-connect_all", "false"]),
    regent_test_lib:mesh(Nodes),
    start_on(Nodes, Config, [{voters, 5}, {register_timeout, 1000}]),
    await_cluster(Nodes, 5),
    wait_until(fun() -> roles(hd(Nodes)) =:= [voter, voter, voter, voter, voter] end, 15000),
    {L, _} = leader(hd(Nodes)),
    [X | Big] = Nodes -- [L],
    Theirs = [{N, idle_on(N)} || N <- Big],
    [yes = reg(N, {big, N}, P) || {N, P} <- Theirs],
    yes = reg(L, small, idle_on(L)),
    wait_until(fun() -> [where(N, {big, B}) || N <- Nodes, {B, _} <- Theirs] =:=
                            [P || _ <- Nodes, {_, P} <- Theirs] end, 5000),
    [true = erpc:call(Small, erlang, disconnect_node, [N]) || Small <- [L, X], N <- Big],
    [A | _] = Big,
    wait_until(fun() -> where(A, small) =:= undefined end, 20000),
    [P = where(N, {B, B0}) || N <- Big, {B0, P} <- Theirs, B <- [big]].

cut_raft(Side1, Side2) ->
    [{ok, _} = erpc:call(N, regent_fault, cut_raft, [?REG, Side2]) || N <- Side1],
    [{ok, _} = erpc:call(N, regent_fault, cut_raft, [?REG, Side1]) || N <- Side2],
    ok.

heal_raft(Nodes) ->
    [{ok, 0} = erpc:call(N, regent_fault, heal_raft, [?REG]) || N <- Nodes],
    ok.

table(Node) ->
    lists:sort(erpc:call(Node, regent, select, [?REG, [{{'$1', '$2', '_'}, [], [{{'$1', '$2'}}]}]])).

%% On a peer: passes every message on to the test process.
forwarder(To) ->
    receive Msg -> To ! {forwarded, self(), Msg}, forwarder(To) end.

%% Two clusters of the same registry formed apart meet: the smaller one
%% dissolves into the bigger, and its claim on a name the bigger one gave to
%% another live process is settled by the conflict policy (kill).
two_clusters_merge(Config) ->
    [A, B, C] = peers(3, ["-kernel", "dist_auto_connect", "once", "-connect_all", "false"]),
    regent_test_lib:mesh([B, C]),
    start_on([A], Config),
    start_on([B, C], Config),
    await_cluster([A], 1),
    await_cluster([B, C], 2),
    Pa = idle_on(A),
    yes = reg(A, both, Pa),
    OnlyA = idle_on(A),
    yes = reg(A, only_a, OnlyA),
    Pb = idle_on(B),
    yes = reg(B, both, Pb),
    Ref = erlang:monitor(process, Pa),
    regent_test_lib:mesh([A, B, C]),
    receive {'DOWN', Ref, process, Pa, {regent_conflict, both, Pb}} -> ok
    after 15000 -> error(no_conflict_kill)
    end,
    await_cluster([A, B, C], 3),
    wait_until(fun() -> [where(N, both) || N <- [A, B, C]] =:= [Pb, Pb, Pb] end, 10000),
    wait_until(fun() -> [where(N, only_a) || N <- [A, B, C]] =:= [OnlyA, OnlyA, OnlyA] end, 10000),
    true = lists:member(leader(A), [{B, ?REG}, {C, ?REG}]).

%% 10,000 registered processes on one node die at once: the other nodes see
%% none of them soon after.
burst_of_deaths(Config) ->
    [A, B, C] = Nodes = peers(3),
    start_on(Nodes, Config),
    await_cluster(Nodes, 3),
    N = 10000,
    ok = erpc:call(B, fun() ->
                              Ps = [spawn(timer, sleep, [infinity]) || _ <- lists:seq(1, N)],
                              Self = self(),
                              Regs = [spawn_link(fun() ->
                                                         [yes = regent:register_name({?REG, {burst, I}}, P)
                                                          || {I, P} <- Chunk],
                                                         Self ! done
                                                 end)
                                      || Chunk <- chunk(lists:zip(lists:seq(1, N), Ps), 100)],
                              [receive done -> ok end || _ <- Regs],
                              persistent_term:put(burst_pids, Ps),
                              ok
                      end),
    wait_until(fun() -> count(A) =:= N andalso count(C) =:= N end, 20000),
    T0 = erlang:monotonic_time(millisecond),
    ok = erpc:call(B, fun() -> [exit(P, kill) || P <- persistent_term:get(burst_pids)], ok end),
    wait_until(fun() -> count(C) =:= 0 end, 20000),
    T1 = erlang:monotonic_time(millisecond),
    wait_until(fun() -> count(A) =:= 0 andalso count(B) =:= 0 end, 5000),
    ct:pal("10000 deaths on B -> none left on C after ~p ms", [T1 - T0]).

chunk([], _) -> [];
chunk(L, N) when length(L) =< N -> [L];
chunk(L, N) -> {H, T} = lists:split(N, L), [H | chunk(T, N)].

%% A voter's node dies in a 5-node cluster: it is removed and a synced
%% standby is promoted, back to 3 voters.
standby_promoted(Config) ->
    Nodes = peers(5),
    [start_on([N], Config) || N <- Nodes],
    await_cluster(Nodes, 5),
    wait_until(fun() -> roles(hd(Nodes)) =:= [standby, standby, voter, voter, voter] end, 10000),
    {Leader, _} = leader(hd(Nodes)),
    Voter = hd([N || {{N, _}, voter} <- erpc:call(Leader, regent, get_members, [?REG]),
                     N =/= Leader]),
    true = erlang:monitor_node(Voter, true),
    erpc:cast(Voter, erlang, halt, []),
    receive {nodedown, Voter} -> ok after 5000 -> error(still_up) end,
    wait_until(fun() -> roles(Leader) =:= [standby, voter, voter, voter] end, 15000),
    yes = reg(Leader, after_promotion, idle_on(Leader)).

%% The majority's daemons stop (SIGSTOP): writes wait and time out; when
%% they continue, writes resume without any recovery step.
quorum_lost_then_voters_return(Config) ->
    [A, B, C] = Nodes = peers(3),
    start_on(Nodes, Config, [{register_timeout, 1000}]),
    await_cluster(Nodes, 3),
    Stopped = [integer_to_list(os_pid(N)) || N <- [B, C]],
    [os:cmd("kill -STOP " ++ P) || P <- Stopped],
    {error, {regent_unavailable, _}} =
        try {ok, reg(A, while_stopped, idle_on(A))}
        catch exit:{exception, R} -> {error, R}
        end,
    [os:cmd("kill -CONT " ++ P) || P <- Stopped],
    reg_until_yes(A, after_return, 10000),
    wait_until(fun() -> is_pid(where(C, after_return)) end, 5000).

%% The conflict policy {resolve, Fun}: here Fun keeps the claimant, so the
%% name moves to it when the clusters merge.
merge_with_resolve_fun(Config) ->
    [A, B, C] = peers(3, ["-kernel", "dist_auto_connect", "once", "-connect_all", "false"]),
    regent_test_lib:mesh([B, C]),
    Policy = [{conflict, {resolve, fun ?MODULE:keep_claimant/3}}],
    start_on([A], Config, Policy),
    start_on([B, C], Config, Policy),
    await_cluster([A], 1),
    await_cluster([B, C], 2),
    Pa = idle_on(A),
    yes = reg(A, both, Pa),
    yes = reg(B, both, idle_on(B)),
    regent_test_lib:mesh([A, B, C]),
    await_cluster([A, B, C], 3),
    wait_until(fun() -> [where(N, both) || N <- [A, B, C]] =:= [Pa, Pa, Pa] end, 15000).

keep_claimant(_Name, Claimant, _Holder) ->
    Claimant.

%% A voter cut off while the configuration changes catches up with
%% AppendEntries that hold commands, the change and more commands. libraft
%% 0.22.1 then records the wrong index for the pending change and, once that
%% server leads, refuses every membership change (nemesis seed 29); regentd
%% corrects the index (c_src/raft_fixes.h). Here the caught-up voter takes
%% the leadership and a new node must still be able to join.
caught_up_follower_leads_changes(Config) ->
    [A, B, C, D, E] = peers(5),
    start_on([A, B, C], Config),
    await_cluster([A, B, C], 3),
    {Leader, _} = leader(A),
    [F | _] = [A, B, C] -- [Leader],
    Others = [A, B, C] -- [F],
    {ok, 2} = erpc:call(F, regent_fault, cut_raft, [?REG, Others]),
    [yes = reg(Leader, {before, I}, idle_on(Leader)) || I <- lists:seq(1, 20)],
    start_on([D], Config),
    await_cluster([D | Others], 4),
    wait_until(fun() -> roles(Leader) =:= [standby, voter, voter, voter] end, 10000),
    [yes = reg(Leader, {later, I}, idle_on(Leader)) || I <- lists:seq(1, 20)],
    {ok, 0} = erpc:call(F, regent_fault, heal_raft, [?REG]),
    wait_until(fun() -> is_pid(where(F, {later, 20})) end, 10000),
    wait_until(fun() ->
                       ok = erpc:call(F, regent_fault, take_leadership, [?REG]),
                       leader(F) =:= {F, ?REG}
               end, 10000),
    start_on([E], Config),
    await_cluster([A, B, C, D, E], 5),
    {F, ?REG} = leader(E).

%% kill -9 of the leader's node (BEAM and regentd): the survivors' leader
%% removes its server, whatever the order of the nodedown, the election and
%% the settle timer; a survivor can then leave gracefully and the last one
%% still writes. (Before: the dead server stayed a voter for ever, and the
%% last node was a candidate that could not elect itself.)
leader_node_kill9_removed(Config) ->
    {Nodes, LeaderNode} = three_nodes(Config, []),
    [S1, S2] = Nodes -- [LeaderNode],
    kill9_node(LeaderNode),
    T0 = erlang:monotonic_time(millisecond),
    wait_until(fun() -> membership_is(S1, [S1, S2], 2) andalso
                            membership_is(S2, [S1, S2], 2) end, 5000),
    ct:pal("dead leader's server removed ~p ms after the nodedown",
           [erlang:monotonic_time(millisecond) - T0]),
    ok = erpc:call(S1, ?MODULE, stop_remote, [?REG]),
    wait_until(fun() -> membership_is(S2, [S2], 1) end, 5000),
    yes = reg(S2, after_both, idle_on(S2)).

%% Five nodes: the leader dies, then another voter 1 s later. The new leader
%% promotes standbys and removes the dead voters, so three voters remain
%% after each loss and the three survivors keep writing.
leader_then_voter_kill9(Config) ->
    Nodes = peers(5),
    [start_on([N], Config) || N <- Nodes],
    await_cluster(Nodes, 5),
    wait_until(fun() -> roles(hd(Nodes)) =:= [standby, standby, voter, voter, voter] end, 10000),
    {Leader, _} = leader(hd(Nodes)),
    Other = hd(Nodes -- [Leader]),
    kill9_node(Leader),
    timer:sleep(1000), % the schedule under test: the second loss 1 s later
    Live1 = Nodes -- [Leader],
    [Voter | _] = [N || {{N, _}, voter} <- erpc:call(Other, regent, get_members, [?REG]),
                        lists:member(N, Live1)],
    kill9_node(Voter),
    Live = Live1 -- [Voter],
    wait_until(fun() -> lists:all(fun(N) -> membership_is(N, Live, 3) end, Live) end, 10000),
    [yes = reg(N, {after_two_kills, N}, idle_on(N)) || N <- Live].

%% Containers that share /dev/shm (--ipc=host) run BEAMs in PID namespaces of
%% their own. A member started there on the same data_dir as two running
%% ones must not take their directories for stale (their /proc/<pid> is
%% invisible to it): before, it deleted them, a regentd aborted, its member
%% bootstrapped a cluster of its own and acknowledged names were lost.
shared_data_dir_pid_namespace(Config) ->
    case os:cmd("unshare --pid --fork --mount-proc true 2>&1 && echo ok") of
        "ok\n" -> shared_data_dir_pid_namespace_(Config);
        Why -> {skip, "needs unshare --pid (root): " ++ Why}
    end.

shared_data_dir_pid_namespace_(Config) ->
    Base = filename:join(?config(priv_dir, Config), "shared_shm"),
    Opts = [{data_dir, Base}],
    [A, B] = peers(2),
    start_on([A, B], Config, Opts),
    await_cluster([A, B], 2),
    Ps = [{I, idle_on(lists:nth(1 + I rem 2, [A, B]))} || I <- lists:seq(1, 200)],
    [yes = reg(node(P), {shared, I}, P) || {I, P} <- Ps],
    Daemons = [daemon_of(N) || N <- [A, B]],
    C = namespaced_peer(),
    "1" = erpc:call(C, os, getpid, []), % PID 1 of its own namespace
    start_on([C], Config, Opts),
    await_cluster([A, B, C], 3),
    %% Same daemons, same dirs, every name everywhere.
    Daemons = [daemon_of(N) || N <- [A, B]],
    [true = filelib:is_dir(Dir) || {_, _, Dir} <- Daemons],
    [[wait_until(fun() -> where(N, {shared, I}) =:= P end, 5000) || {I, P} <- Ps]
     || N <- [A, B, C]],
    %% And the one in the namespace sweeps nothing of theirs when it leaves.
    ok = erpc:call(C, ?MODULE, stop_remote, [?REG]),
    [true = filelib:is_dir(Dir) || {_, _, Dir} <- Daemons].

daemon_of(Node) ->
    #{os_pid := OsPid, starts := Starts, data_dir := Dir} =
        maps:get(daemon, erpc:call(Node, regent, status, [?REG])),
    {OsPid, Starts, Dir}.

paths() ->
    [P || P <- code:get_path(), string:find(P, code:lib_dir()) =:= nomatch].

%% A peer BEAM in a PID namespace of its own (with its own /proc), on the
%% same host, network and files.
namespaced_peer() ->
    {ok, Peer, Node} =
        peer:start_link(#{name => peer:random_name(regent_ns),
                          exec => {"/bin/sh", ["-c", unshare_script(), "sh"]},
                          args => ["-setcookie", atom_to_list(erlang:get_cookie())
                                   | lists:append([["-pa", P] || P <- paths()])]}),
    unlink(Peer),
    put(peers, [Peer | case get(peers) of undefined -> []; L -> L end]),
    Node.

%% erl under `unshare --pid --fork`, without peer's -detached: a detached
%% erl would leave the namespace's PID 1, which takes every process in the
%% namespace with it.
unshare_script() ->
    "for a do shift; [ \"$a\" = -detached ] && continue; set -- \"$@\" \"$a\"; done; "
        "exec " ++ os:find_executable("unshare") ++ " --pid --fork --mount-proc "
        ++ os:find_executable("erl") ++ " \"$@\"".

%% SIGSTOP of the leader's BEAM while its regentd runs on: writes reach the
%% leader's daemon through its member, so before, no write committed anywhere
%% until SIGCONT. Now the daemon hears no ALIVE from its member for 1 s and
%% hands the leadership over; writes resume on the other nodes while the
%% BEAM is still stopped, and it rejoins after SIGCONT.
leader_beam_stopped(Config) ->
    {Nodes, LeaderNode} = three_nodes(Config, [{register_timeout, 8000}]),
    [F1, F2] = Nodes -- [LeaderNode],
    Beam = erpc:call(LeaderNode, os, getpid, []),
    os:cmd("kill -STOP " ++ Beam),
    T0 = erlang:monotonic_time(millisecond),
    try
        yes = reg(F1, while_stopped, idle_on(F1)),
        Took = erlang:monotonic_time(millisecond) - T0,
        ct:pal("leader's BEAM stopped -> a registration succeeded after ~p ms", [Took]),
        true = Took < 4000,
        wait_until(fun() -> is_pid(where(F2, while_stopped)) end, 2000)
    after
        os:cmd("kill -CONT " ++ Beam)
    end,
    await_cluster(Nodes, 3),
    wait_until(fun() -> is_pid(where(LeaderNode, while_stopped)) end, 10000),
    yes = reg(LeaderNode, after_cont, idle_on(LeaderNode)).

%% A pid on a connected node that runs no member of the registry: nobody
%% watched it, and its name outlived it for ever. The member that registered
%% it now monitors it.
memberless_node_owner_exits(Config) ->
    [A, X] = peers(2),
    start_on([A], Config),
    await_cluster([A], 1),
    true = erpc:call(A, net_kernel, connect_node, [X]),
    P = idle_on(X),
    yes = reg(A, remote_owner, P),
    P = where(A, remote_owner),
    exit(P, kill),
    wait_until(fun() -> where(A, remote_owner) =:= undefined end, 3000).

%% A follower's regentd dies and another process binds its raft port before
%% the restart. Before: the daemon silently bound another port while the
%% configuration kept the old address; the follower stayed a candidate, its
%% names stale and its writes timing out. Now it joins again under a fresh
%% id with its new address, and keeps its names.
squatted_raft_port(Config) ->
    {Nodes, LeaderNode} = three_nodes(Config, []),
    F = hd(Nodes -- [LeaderNode]),
    Ps = registered_on(F, sq, 50),
    #{raft_port := RaftPort, os_pid := OsPid} =
        maps:get(daemon, erpc:call(F, regent, status, [?REG])),
    %% The member is held still while its daemon dies and the port is taken,
    %% so the squatter binds it first.
    Beam = erpc:call(F, os, getpid, []),
    os:cmd("kill -STOP " ++ Beam),
    os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    {ok, Squat} = squat(RaftPort, 100),
    os:cmd("kill -CONT " ++ Beam),
    try
        reg_until_yes(F, after_squat, 20000),
        await_cluster(Nodes, 3),
        #{raft_port := NewPort} = maps:get(daemon, erpc:call(F, regent, status, [?REG])),
        true = NewPort =/= RaftPort,
        [[wait_until(fun() -> where(N, {sq, I}) =:= P end, 5000) || {I, P} <- Ps] || N <- Nodes],
        wait_until(fun() -> membership_is(LeaderNode, Nodes, 3) end, 10000)
    after
        gen_tcp:close(Squat)
    end.

squat(Port, Tries) ->
    case gen_tcp:listen(Port, [{ip, {127, 0, 0, 1}}, {reuseaddr, true}]) of
        {ok, L} -> {ok, L};
        {error, eaddrinuse} when Tries > 0 -> timer:sleep(10), squat(Port, Tries - 1);
        Error -> Error
    end.

%% Idle connections without the secret, as fast as they can be opened, to
%% the leader's raft port, with every daemon at 256 fds. Before: fds ran out,
%% regentd crashed (libraft's double free in raft_barrier's error path) and
%% writes stopped. Now the handshakes in flight are capped (per source
%% address too) and time out in 2 s, so raft keeps its fds: every write
%% during the flood succeeds and no daemon restarts.
connection_flood(Config) ->
    Wrapper = filename:join(?config(priv_dir, Config), "regentd-256fds"),
    ok = file:write_file(Wrapper, ["#!/bin/sh\nulimit -n 256\nexec ",
                                   ?config(daemon, Config), " \"$@\"\n"]),
    ok = file:change_mode(Wrapper, 8#755),
    {Nodes, LeaderNode} = three_nodes(Config, [{daemon, Wrapper}]),
    #{raft_port := RaftPort} = maps:get(daemon, erpc:call(LeaderNode, regent, status, [?REG])),
    Starts = [daemon_of(N) || N <- Nodes],
    Flood = spawn_link(fun() -> flood(RaftPort, 5000, []) end),
    Deadline = erlang:monotonic_time(millisecond) + 8000,
    Written = write_while(Nodes, Deadline, 0),
    Flood ! {stop, self()},
    Held = receive {flooded, N} -> N after 10000 -> error(flood_stuck) end,
    ct:pal("flood: ~p connections opened; ~p registrations during it", [Held, Written]),
    true = Held > 1000,
    Starts = [daemon_of(N) || N <- Nodes],
    yes = reg(LeaderNode, after_flood, idle_on(LeaderNode)).

%% Opens connections until told to stop or Max are open, holding them all.
flood(Port, Max, Socks) ->
    receive
        {stop, From} ->
            [gen_tcp:close(S) || S <- Socks],
            From ! {flooded, length(Socks)}
    after 0 ->
            case length(Socks) < Max andalso
                gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}], 1000) of
                {ok, S} -> flood(Port, Max, [S | Socks]);
                false -> timer:sleep(10), flood(Port, Max, Socks);
                {error, _} -> flood(Port, Max, Socks)
            end
    end.

%% Registers on every node in turn until Deadline; every one must succeed.
write_while(Nodes, Deadline, K) ->
    case erlang:monotonic_time(millisecond) > Deadline of
        true ->
            K;
        false ->
            N = lists:nth(1 + K rem length(Nodes), Nodes),
            %% 50 KB of metadata each: raft_uv fills and opens segments (fds)
            %% while the flood lasts.
            yes = erpc:call(N, regent, register_name,
                            [{?REG, {during_flood, K}}, idle_on(N), binary:copy(<<"m">>, 50000)]),
            write_while(Nodes, Deadline, K + 1)
    end.

%% A follower's data dir fills up (its own small tmpfs). Before: it stopped
%% applying yet reported ready, lag 0, while its mirror fell behind. Now its
%% status says so (not ready, an error) and, once there is room again, it
%% catches up by itself.
follower_disk_full(Config) ->
    Mnt = filename:join(?config(priv_dir, Config), "small_tmpfs"),
    ok = filelib:ensure_path(Mnt),
    case os:cmd("mount -t tmpfs -o size=6m tmpfs " ++ Mnt ++ " 2>&1 && echo ok") of
        "ok\n" -> try follower_disk_full_(Config, Mnt)
                  after os:cmd("umount -l " ++ Mnt)
                  end;
        Why -> {skip, "needs mount -t tmpfs (root): " ++ Why}
    end.

follower_disk_full_(Config, Mnt) ->
    [A, B, F] = Nodes = peers(3),
    start_on([A, B], Config),
    await_cluster([A, B], 2),
    start_on([F], Config, [{data_dir, Mnt}]),
    await_cluster(Nodes, 3),
    {Leader, _} = leader(A),
    Big = binary:copy(<<"m">>, 60000),
    Owner = idle_on(Leader),
    Write = fun(I) -> erpc:call(Leader, regent, register_name, [{?REG, {big, I}}, Owner, Big]) end,
    [yes = Write(I) || I <- lists:seq(1, 150)],
    %% 9 MB for 6 MB: the follower cannot persist and says so.
    wait_until(fun() -> #{ready := false, error := Error} = erpc:call(F, regent, status, [?REG]),
                        Error =/= undefined end, 10000),
    false = erpc:call(F, regent, ready, [?REG]),
    %% Room again: it recovers by itself and has every name.
    "" = os:cmd("mount -o remount,size=256m " ++ Mnt),
    [yes = Write(I) || I <- lists:seq(151, 160)],
    wait_until(fun() -> #{ready := true, error := undefined} =
                            erpc:call(F, regent, status, [?REG]), true end, 20000),
    wait_until(fun() -> count(F) =:= 160 end, 10000),
    yes = reg(F, after_room, idle_on(F)).

%% A follower's data dir is deleted under its running daemon. Before: the
%% daemon wedged while its member reported ready, and the restart crashed
%% the member. Now the daemon notices within a second and exits; its member
%% starts a fresh one that joins again with the node's names.
data_dir_deleted(Config) ->
    {Nodes, LeaderNode} = three_nodes(Config, []),
    F = hd(Nodes -- [LeaderNode]),
    Ps = registered_on(F, dd, 50),
    Member = erpc:call(F, erlang, whereis, [?REG]),
    {OsPid, _, Dir} = daemon_of(F),
    "" = os:cmd("rm -rf " ++ Dir),
    wait_until(fun() -> element(1, daemon_of(F)) =/= OsPid end, 5000),
    reg_until_yes(F, after_rm, 20000),
    await_cluster(Nodes, 3),
    Member = erpc:call(F, erlang, whereis, [?REG]), % the same member, no crash
    true = filelib:is_regular(filename:join(Dir, "regent.id")),
    [[wait_until(fun() -> where(N, {dd, I}) =:= P end, 5000) || {I, P} <- Ps] || N <- Nodes],
    wait_until(fun() -> membership_is(LeaderNode, Nodes, 3) end, 10000).

%% A follower's BEAM is stopped under write load while its regentd runs on.
%% Before: the daemon queued every applied change for its member without
%% bound (it grew by all the traffic). Now past 16 MiB it drops changes, and
%% once the member reads again it resyncs the member's mirror with a DUMP.
follower_beam_stopped_bounded(Config) ->
    {Nodes, LeaderNode} = three_nodes(Config, []),
    [F, G] = Nodes -- [LeaderNode],
    {OsPid, _, _} = daemon_of(F),
    {OsPidG, _, _} = daemon_of(G),
    Rss0 = rss_kb(OsPid) - rss_kb(OsPidG),
    Beam = erpc:call(F, os, getpid, []),
    os:cmd("kill -STOP " ++ Beam),
    Owner = idle_on(LeaderNode),
    Meta = binary:copy(<<"m">>, 4000),
    try
        %% About 80 MB of changes for F's member, registered in batches.
        [ok = erpc:call(LeaderNode, regent_cluster_SUITE, reg_many,
                        [?REG, [{bulk, B, I} || I <- lists:seq(1, 500)], Owner, Meta])
         || B <- lists:seq(1, 40)],
        %% Both daemons hold the same table and log; F's member reads nothing.
        Grew = rss_kb(OsPid) - rss_kb(OsPidG) - Rss0,
        ct:pal("stopped follower's regentd grew by ~p KB more than a running one's", [Grew]),
        true = Grew < 48 * 1024
    after
        os:cmd("kill -CONT " ++ Beam)
    end,
    wait_until(fun() -> count(F) =:= count(LeaderNode) end, 30000),
    Owner = where(F, {bulk, 40, 500}),
    {OsPid, _, _} = daemon_of(F), % the same daemon: it was never restarted
    yes = reg(F, after_cont, idle_on(F)).

%% Called on a node: registers Names for Owner in parallel.
reg_many(Reg, Names, Owner, Meta) ->
    Parent = self(),
    Pids = [spawn_link(fun() -> Parent ! {self(), regent:register_name({Reg, N}, Owner, Meta)} end)
            || N <- Names],
    [yes = receive {P, R} -> R end || P <- Pids],
    ok.

rss_kb(OsPid) ->
    {ok, Status} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/status"),
    [Line] = [L || L <- binary:split(Status, <<"\n">>, [global]), binary:match(L, <<"VmRSS">>) =/= nomatch],
    [_, Kb | _] = string:lexemes(binary_to_list(Line), " \t"),
    list_to_integer(Kb).

%% TLS is on by default: a peer that speaks the id handshake in plain text
%% (as raft_handshake_from_erlang does with TLS off), or garbage, never
%% reaches it, and the daemon carries on.
tls_refuses_plaintext(Config) ->
    [A] = peers(1),
    start_on([A], Config),
    await_cluster([A], 1),
    #{raft_port := Port, raft_id := Id} = maps:get(daemon, erpc:call(A, regent, status, [?REG])),
    {ok, S1} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
    ok = gen_tcp:send(S1, hello(7, Id, <<0:128>>)),
    {error, closed} = gen_tcp:recv(S1, 0, 5000),
    {ok, S2} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
    ok = gen_tcp:send(S2, crypto:strong_rand_bytes(4096)),
    {error, closed} = gen_tcp:recv(S2, 0, 5000),
    yes = reg(A, still_fine, idle_on(A)),
    {_, 1, _} = daemon_of(A).

%% Certificates instead of the PSK, as for TLS distribution: members with
%% certificates from the cluster's CA form a cluster; one whose certificate
%% comes from another CA (with the right cookie) never gets the table.
tls_certificates(Config) ->
    case os:find_executable("openssl") of
        false -> {skip, "no openssl command to make certificates"};
        _ -> tls_certificates_(Config, ?config(priv_dir, Config))
    end.

tls_certificates_(Config, Dir) ->
    Good = make_certs(Dir, "good"),
    Rogue = make_certs(Dir, "rogue"),
    [A, B, C] = peers(3),
    start_on([A, B], Config, [{tls, Good}]),
    await_cluster([A, B], 2),
    yes = reg(A, over_tls, idle_on(A)),
    wait_until(fun() -> is_pid(where(B, over_tls)) end, 2000),
    start_on([C], Config, [{tls, Rogue}]),
    timer:sleep(2000), % time enough to sync, were its certificate right
    false = maps:get(ready, erpc:call(C, regent, status, [?REG])),
    0 = count(C),
    yes = reg(B, during, idle_on(B)),
    wait_until(fun() -> is_pid(where(A, during)) end, 2000).

%% A CA and a certificate it signed, in Dir/Name-*; the TLS options.
make_certs(Dir, Name) ->
    F = fun(Suffix) -> filename:join(Dir, Name ++ "-" ++ Suffix) end,
    Run = fun(Args) ->
                  Out = os:cmd("openssl " ++ Args ++ " 2>&1; echo rc=$?"),
                  lists:suffix("rc=0\n", Out) orelse error({openssl, Args, Out})
          end,
    Ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes",
    Run("req -x509 " ++ Ec ++ " -keyout " ++ F("ca.key") ++ " -out " ++ F("ca.pem")
        ++ " -days 2 -subj /CN=" ++ Name ++ "-ca"),
    Run("req " ++ Ec ++ " -keyout " ++ F("node.key") ++ " -out " ++ F("node.csr")
        ++ " -subj /CN=" ++ Name ++ "-node"),
    Run("x509 -req -in " ++ F("node.csr") ++ " -CA " ++ F("ca.pem") ++ " -CAkey " ++ F("ca.key")
        ++ " -CAcreateserial -out " ++ F("node.pem") ++ " -days 2"),
    [{certfile, F("node.pem")}, {keyfile, F("node.key")}, {cacertfile, F("ca.pem")}].

%% A relay between daemons that flips a byte after the TLS handshake, on
%% the raft connections B and C open to A. nftables redirects them (A binds
%% 127.0.0.2; the relay reaches A from 127.0.0.3, which the rule leaves
%% alone). TLS ends each tampered connection, raft reconnects, nothing
%% corrupt is applied (every node ends with the same table) and no daemon
%% restarts. Before TLS, the flipped bytes went to raft_uv. Runs under ASan
%% in make test-san. Needs root and nft; skips otherwise.
tls_relay_flips_bytes(Config) ->
    case os:cmd("nft list tables >/dev/null 2>&1 && echo ok") of
        "ok\n" -> tls_relay_flips_bytes_(Config);
        _ -> {skip, "needs nft (nftables) and root"}
    end.

tls_relay_flips_bytes_(Config) ->
    {ok, Probe} = gen_tcp:listen(0, [{ip, {127, 0, 0, 2}}]),
    {ok, P} = inet:port(Probe),
    gen_tcp:close(Probe),
    {Relay, Q} = relay_start({127, 0, 0, 2}, P, 3, self()),
    Table = "regent_relay_" ++ os:getpid(),
    Nft = fun(Cmd) -> "" = os:cmd("nft " ++ Cmd ++ " 2>&1") end,
    Nft("add table ip " ++ Table),
    try
        Nft("add chain ip " ++ Table ++ " out '{ type nat hook output priority -100 ; }'"),
        Nft("add rule ip " ++ Table ++ " out ip daddr 127.0.0.2 tcp dport " ++ integer_to_list(P)
            ++ " ip saddr != 127.0.0.3 redirect to :" ++ integer_to_list(Q)),
        [A, B, C] = Nodes = peers(3),
        start_on([A], Config, [{bind_host, "127.0.0.2"}, {port_range, {P, P}}]),
        await_cluster([A], 1),
        start_on([B, C], Config),
        await_cluster(Nodes, 3),
        Daemons = [daemon_of(N) || N <- Nodes],
        Owner = idle_on(B),
        %% Writes go on while the relay tampers with the first connections.
        [yes = reg(B, {relayed, I}, Owner) || I <- lists:seq(1, 50)],
        wait_until(fun() -> relay_flipped(Relay) >= 3 end, 20000),
        wait_until(fun() -> relay_closed_after_flip(Relay) >= 1 end, 10000),
        [yes = reg(C, {after_flips, I}, idle_on(C)) || I <- lists:seq(1, 50)],
        await_cluster(Nodes, 3),
        wait_until(fun() -> length(lists:usort([table(N) || N <- Nodes])) =:= 1 end, 10000),
        100 = count(A),
        Daemons = [daemon_of(N) || N <- Nodes], % none restarted
        ct:pal("relay: ~p connections tampered with, ~p of them torn down",
               [relay_flipped(Relay), relay_closed_after_flip(Relay)])
    after
        os:cmd("nft delete table ip " ++ Table),
        exit(Relay, kill)
    end.

%% The relay: accepts on Q, connects to Host:Port from 127.0.0.3 and copies
%% both ways; in the first Flips connections it flips one byte at offset
%% 2000 of what flows towards Host.
relay_start(Host, Port, Flips, Test) ->
    Self = self(),
    Pid = spawn(fun() ->
                        {ok, L} = gen_tcp:listen(0, [binary, {active, false}, {reuseaddr, true}]),
                        {ok, Q} = inet:port(L),
                        Self ! {relay_port, Q},
                        Acceptor = self(),
                        spawn_link(fun() -> relay_accept(L, Host, Port, Acceptor) end),
                        relay_state(#{flips => Flips, flipped => 0, closed => 0, test => Test})
                end),
    receive {relay_port, Q} -> {Pid, Q} after 5000 -> error(relay_not_started) end.

relay_state(#{flips := Flips, flipped := F, closed := C} = St) ->
    receive
        {may_flip, From} ->
            From ! {flip, Flips > F},
            relay_state(St#{flipped := F + (case Flips > F of true -> 1; false -> 0 end)});
        closed_after_flip ->
            relay_state(St#{closed := C + 1});
        {get, What, From} ->
            From ! {What, maps:get(What, St)},
            relay_state(St)
    end.

relay_flipped(Relay) -> relay_get(Relay, flipped).
relay_closed_after_flip(Relay) -> relay_get(Relay, closed).

relay_get(Relay, What) ->
    Relay ! {get, What, self()},
    receive {What, V} -> V after 5000 -> error(relay_silent) end.

relay_accept(L, Host, Port, Relay) ->
    {ok, Down} = gen_tcp:accept(L),
    Pid = spawn(fun() -> relay_conn(Host, Port, Relay) end),
    ok = gen_tcp:controlling_process(Down, Pid),
    Pid ! {down, Down},
    relay_accept(L, Host, Port, Relay).

relay_conn(Host, Port, Relay) ->
    Down = receive {down, D} -> D end,
    case gen_tcp:connect(Host, Port, [binary, {active, false}, {ip, {127, 0, 0, 3}}]) of
        {ok, Up} ->
            Relay ! {may_flip, self()},
            Flip = receive {flip, F} -> F end,
            Self = self(),
            spawn_link(fun() -> relay_copy(Up, Down, none, Self) end),
            relay_copy(Down, Up, case Flip of true -> 2000; false -> none end, Self),
            Flip andalso (Relay ! closed_after_flip);
        {error, _} ->
            gen_tcp:close(Down)
    end.

%% Copies From to To until either ends; At: the offset of the byte to flip.
relay_copy(From, To, At, Conn) ->
    relay_copy(From, To, At, 0, Conn).

relay_copy(From, To, At, Off, Conn) ->
    case gen_tcp:recv(From, 0) of
        {ok, Data} ->
            Size = byte_size(Data),
            Out = case At of
                      N when is_integer(N), N >= Off, N < Off + Size ->
                          K = N - Off,
                          <<Pre:K/binary, B, Post/binary>> = Data,
                          <<Pre/binary, (B bxor 16#40), Post/binary>>;
                      _ ->
                          Data
                  end,
            case gen_tcp:send(To, Out) of
                ok -> relay_copy(From, To, At, Off + Size, Conn);
                {error, _} -> gen_tcp:close(From), gen_tcp:close(To)
            end;
        {error, _} ->
            gen_tcp:close(From),
            gen_tcp:close(To)
    end.

%% A flood of TLS handshakes (OTP's ssl client, TLS 1.3, without the PSK)
%% against the leader's raft port, from 16 processes for 6 s. The
%% handshakes in flight and the new connections per second are capped, so
%% the cluster keeps committing and the daemon's fds and memory stay
%% bounded; no daemon restarts.
tls_handshake_flood(Config) ->
    {ok, _} = application:ensure_all_started(ssl),
    {Nodes, LeaderNode} = three_nodes(Config, []),
    #{raft_port := Port, os_pid := OsPid} =
        maps:get(daemon, erpc:call(LeaderNode, regent, status, [?REG])),
    Starts = [daemon_of(N) || N <- Nodes],
    %% The leader's daemon against a follower's: both hold the same table.
    {OsPidF, _, _} = daemon_of(hd(Nodes -- [LeaderNode])),
    Rss0 = rss_kb(OsPid) - rss_kb(OsPidF),
    Self = self(),
    Deadline = erlang:monotonic_time(millisecond) + 6000,
    Clients = [spawn_link(fun() -> Self ! {tried, handshakes(Port, Deadline, 0)} end)
               || _ <- lists:seq(1, 16)],
    Sampler = spawn_link(fun() -> Self ! {max_fds, max_fds(OsPid, Deadline, 0)} end),
    Written = write_while(Nodes, Deadline, 0),
    Tried = lists:sum([receive {tried, T} -> T end || _ <- Clients]),
    MaxFds = receive {max_fds, F} -> F end,
    Grew = rss_kb(OsPid) - rss_kb(OsPidF) - Rss0,
    ct:pal("handshake flood: ~p handshakes tried, ~p registrations meanwhile, "
           "at most ~p fds, RSS +~p KB over a follower's", [Tried, Written, MaxFds, Grew]),
    true = is_pid(Sampler),
    true = Tried > 500,
    true = MaxFds < 256,
    true = Grew < 32 * 1024,
    Starts = [daemon_of(N) || N <- Nodes].

handshakes(Port, Deadline, K) ->
    case erlang:monotonic_time(millisecond) > Deadline of
        true ->
            K;
        false ->
            case ssl:connect({127, 0, 0, 1}, Port, [{versions, ['tlsv1.3']},
                                                   {verify, verify_none},
                                                   {active, false}], 2000) of
                {ok, S} -> ssl:close(S); % not expected: there is no certificate
                {error, _} -> ok
            end,
            handshakes(Port, Deadline, K + 1)
    end.

max_fds(OsPid, Deadline, Max) ->
    case erlang:monotonic_time(millisecond) > Deadline of
        true ->
            Max;
        false ->
            {ok, Fds} = file:list_dir("/proc/" ++ integer_to_list(OsPid) ++ "/fd"),
            timer:sleep(50),
            max_fds(OsPid, Deadline, max(Max, length(Fds)))
    end.

%% `make test-hosts': regent across hosts with their own addresses
%% (regent_hosts, one network namespace per BEAM), run by a controller node
%% on the hosts' bridge (`-name regent_hosts_ctl@10.77.0.1', started by
%% scripts/test.sh). Two parts:
%% 1. default_options: three hosts start regent with no option at all (no
%%    bind_host) and form one cluster; a gen_server registered through a
%%    via tuple on one host is called from another; a real partition
%%    (nftables drops, both ways) cuts one host off, the other two go on
%%    registering, and after the heal the cut host sees what they did;
%% 2. cut_node_comes_back: a host cut off (both ways) long enough for
%%    its nodedown and for the leader to remove its server comes back by
%%    itself after the heal: nobody reconnects the nodes for it (regent's
%%    members send with noconnect, so before they reconnected to their
%%    raft peers' nodes themselves, it stayed apart and leaderless);
%% 3. the nemesis in its hosts mode (regent_nemesis_hosts) on seeded
%%    schedules: REGENT_HOSTS_SEEDS ("1 2" by default), REGENT_HOSTS_MS
%%    (20000) each; REGENT_HOSTS_FAULTS="one_way loss" limits the faults.
%% It skips, saying why, where namespaces cannot be made. Exit status 0 when
%% everything passed (or skipped), 1 otherwise.
-module(regent_hosts_run).

-export([main/0]).

-define(REG, hosts_reg).

-spec main() -> no_return().
main() ->
    case regent_hosts:available() of
        {false, Why} ->
            io:format("test-hosts: SKIPPED: ~s~n", [Why]),
            halt(0);
        true ->
            {ok, _} = application:ensure_all_started(crypto),
            Results = try
                          ok = regent_hosts:setup(5),
                          [part(default_options, fun default_options/0),
                           part(cut_node_comes_back, fun cut_node_comes_back/0)
                           | [part({nemesis, Seed}, fun() -> schedule(Seed) end) || Seed <- seeds()]]
                      after
                          regent_hosts:teardown()
                      end,
            Failed = [P || {P, failed} <- Results],
            io:format("test-hosts: ~p parts, ~p failed ~p~n", [length(Results), length(Failed), Failed]),
            halt(case Failed of [] -> 0; _ -> 1 end)
    end.

part(Name, Fun) ->
    io:format("==== ~p~n", [Name]),
    T0 = erlang:monotonic_time(millisecond),
    R = try Fun() of
            ok -> ok;
            Other -> io:format("~p: ~p~n", [Name, Other]), failed
        catch C:E:St -> io:format("~p: ~p:~p~n~p~n", [Name, C, E, St]), failed
        end,
    io:format("~p: ~p in ~p ms~n", [Name, R, erlang:monotonic_time(millisecond) - T0]),
    {Name, R}.

seeds() ->
    [list_to_integer(S) || S <- string:lexemes(os:getenv("REGENT_HOSTS_SEEDS", "1 2"), " ,")].

%% ---- 1. three hosts, default options -------------------------------------

default_options() ->
    on_three_hosts(host, [], fun(Nodes) -> default_options(lists:zip(Nodes, [1, 2, 3])) end).

%% Fun([A, B, C]) with a node on each of hosts 1-3, stopped afterwards.
on_three_hosts(Prefix, Args, Fun) ->
    Peers = [begin
                 {ok, P, N} = regent_hosts:start_node(I, peer:random_name(Prefix), Args),
                 {P, N}
             end || I <- [1, 2, 3]],
    try
        Fun([N || {_, N} <- Peers])
    after
        [catch peer:stop(P) || {P, _} <- Peers]
    end.

default_options([{A, 1}, {B, 2}, {C, 3}] = Hosts) ->
    Nodes = [A, B, C],
    regent_nemesis_hosts:mesh(Nodes),
    [ok = erpc:call(N, regent_test_lib, start_remote, [?REG, []]) || N <- Nodes],
    ok = regent_test_lib:await_cluster(?REG, Nodes, 3),
    %% Each daemon listens on its host's own address, which it found alone.
    [ok = listens_on(N, I) || {N, I} <- Hosts],
    %% A gen_server registered through a via tuple on A, called from C.
    Via = {via, regent, {?REG, counter}},
    {ok, Pid} = erpc:call(A, gen_server, start, [Via, regent_echo_server, 0, []]),
    %% C's mirror has it within a round trip (reads are local).
    ok = regent_test_lib:wait_until(
           fun() -> erpc:call(C, regent, whereis_name, [{?REG, counter}]) =:= Pid end, 5000),
    pong = erpc:call(C, gen_server, call, [Via, ping]),
    Pid = erpc:call(B, regent, whereis_name_consistent, [{?REG, counter}]),
    %% A real partition: host 1 hears nothing from 2 and 3, nor they from it.
    ok = regent_hosts:drop(1, [2, 3]),
    [ok = regent_hosts:drop(I, [1]) || I <- [2, 3]],
    Q = erlang:spawn(B, timer, sleep, [infinity]),
    %% The majority side elects a leader if it has to and commits.
    ok = regent_test_lib:wait_until(
           fun() -> erpc:call(B, regent, register_name, [{?REG, during}, Q]) =:= yes end, 30000),
    Q = erpc:call(C, regent, whereis_name_consistent, [{?REG, during}]),
    %% ... while the cut-off host cannot: the drops are real.
    R = erlang:spawn(A, timer, sleep, [infinity]),
    Cut = try erpc:call(A, regent, register_name, [{?REG, cut_off}, R], 15000)
          catch Class:Reason -> {Class, Reason}
          end,
    Cut =/= yes orelse error({cut_off_host_committed, Cut}),
    io:format("the cut-off host's register_name: ~p~n", [Cut]),
    [ok = regent_hosts:heal(I) || I <- [1, 2, 3]],
    %% Healed: host 1 catches up (its reads are local: no hop to the leader).
    ok = regent_test_lib:wait_until(
           fun() -> erpc:call(A, regent, whereis_name, [{?REG, during}]) =:= Q end, 30000),
    Pid = erpc:call(A, regent, whereis_name_consistent, [{?REG, counter}]),
    ok.

%% The raft port is bound to the host's address (ss inside its namespace).
listens_on(N, I) ->
    Port = maps:get(raft_port, maps:get(daemon, erpc:call(N, regent, status, [?REG]))),
    Want = regent_hosts:address(I) ++ ":" ++ integer_to_list(Port),
    Out = os:cmd("ip netns exec " ++ regent_hosts:namespace(I) ++ " ss -Hltn"),
    case string:find(Out, Want) of
        nomatch -> {not_listening_on, Want, Out};
        _ -> ok
    end.

%% ---- 2. a cut node comes back by itself -----------------------------------

cut_node_comes_back() ->
    on_three_hosts(back, ["-connect_all", "false"], fun cut_node_comes_back/1).

cut_node_comes_back([A, B, C] = Nodes) ->
    regent_nemesis_hosts:mesh(Nodes),
    [ok = erpc:call(N, regent_test_lib, start_remote, [?REG, []]) || N <- Nodes],
    ok = regent_test_lib:await_cluster(?REG, Nodes, 3),
    %% Host 3 cut off both ways until the other side has removed its server
    %% (nodedown after the tick time, then the leader's plan).
    ok = regent_hosts:drop(3, [1, 2]),
    [ok = regent_hosts:drop(I, [3]) || I <- [1, 2]],
    ok = regent_test_lib:wait_until(
           fun() -> length(erpc:call(A, regent, get_members, [?REG])) =:= 2 end, 60000),
    false = lists:member(C, erpc:call(A, erlang, nodes, [])),
    [ok = regent_hosts:heal(I) || I <- [1, 2, 3]],
    %% No mesh here: C's member must reconnect and rejoin by itself.
    T0 = erlang:monotonic_time(millisecond),
    ok = regent_test_lib:await_cluster(?REG, Nodes, 3),
    io:format("the cut node was back in the cluster ~p ms after the heal~n",
              [erlang:monotonic_time(millisecond) - T0]),
    P = erlang:spawn(C, timer, sleep, [infinity]),
    yes = erpc:call(C, regent, register_name, [{?REG, back}, P]),
    P = erpc:call(B, regent, whereis_name_consistent, [{?REG, back}]),
    ok.

%% ---- 3. the nemesis on hosts ---------------------------------------------

schedule(Seed) ->
    Ms = list_to_integer(os:getenv("REGENT_HOSTS_MS", "20000")),
    Kinds = case os:getenv("REGENT_HOSTS_FAULTS") of
                false -> #{};
                Ks -> #{fault_kinds => [fault_kind(K) || K <- string:lexemes(Ks, " ,")]}
            end,
    R = regent_nemesis:run(Kinds#{mode => hosts, seed => Seed, duration => Ms}),
    [io:format("~s~n", [L]) || L <- regent_nemesis_report:lines(R)],
    ok = filelib:ensure_path("_build/test-hosts"),
    case regent_nemesis_report:write_history(R, "_build/test-hosts") of
        none -> ok;
        File -> io:format("history written to ~s~n", [File])
    end,
    case R of
        #{violations := [], quiet := ok} -> ok;
        _ -> {violations, length(maps:get(violations, R)), quiet, maps:get(quiet, R)}
    end.

%% Only the names the hosts mode knows become atoms.
fault_kind(K) ->
    case [A || A <- lists:usort(regent_nemesis_hosts:kinds()), atom_to_list(A) =:= K] of
        [A] -> A;
        [] -> error({unknown_fault, K})
    end.

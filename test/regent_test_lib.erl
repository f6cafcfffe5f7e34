%% What the cluster and nemesis suites share to run regent on peer nodes.
-module(regent_test_lib).

-export([daemon/0, start_distribution/0, start_remote/2, mesh/1, peers/2, stop_peers/0,
         wait_until/2, await_cluster/3]).

%% The regentd the suites run: REGENT_TEST_DAEMON (make test-san's ASan
%% build), or priv/regentd.
daemon() ->
    case os:getenv("REGENT_TEST_DAEMON") of
        false -> filename:join(code:priv_dir(regent), "regentd");
        Path -> Path
    end.

%% Makes the test node a distributed node (Common Test may start without).
start_distribution() ->
    {ok, _} = application:ensure_all_started(crypto),
    case node() of
        nonode@nohost ->
            os:cmd("epmd -daemon"),
            %% Named after our OS pid: two test runs on one machine (two
            %% checkouts) must not take the same node name.
            Name = list_to_atom("regent_ct_" ++ os:getpid()),
            {ok, _} = net_kernel:start(Name, #{name_domain => shortnames}),
            ok;
        _ ->
            ok
    end.

%% Called on a peer: starts the member, unlinked from the short-lived rpc.
start_remote(Reg, Opts) ->
    {ok, _} = application:ensure_all_started(crypto),
    {ok, Pid} = regent:start_link(Reg, Opts),
    unlink(Pid),
    ok.

%% Connects every pair of Nodes (peers run with dist_auto_connect once).
mesh(Nodes) ->
    [true = erpc:call(A, net_kernel, connect_node, [B]) || A <- Nodes, B <- Nodes, A < B],
    ok.

%% N peer nodes with our code path and cookie, unlinked, remembered in the
%% calling process for stop_peers/0. Extra: more emulator flags, e.g. to
%% keep distribution cut once cut.
peers(N, Extra) ->
    [begin
         {ok, Peer, Node} = peer:start_link(
                              #{name => peer:random_name(regent),
                                args => ["-setcookie", atom_to_list(erlang:get_cookie())
                                         | Extra ++ lists:append([["-pa", P] || P <- paths()])]}),
         unlink(Peer),
         put(peers, [Peer | case get(peers) of undefined -> []; L -> L end]),
         Node
     end || _ <- lists:seq(1, N)].

paths() ->
    [P || P <- code:get_path(), string:find(P, code:lib_dir()) =:= nomatch].

%% Stops the peers this process started.
stop_peers() ->
    [catch peer:stop(P) || P <- case erase(peers) of undefined -> []; Ps -> Ps end],
    ok.

%% Polls Fun until it returns true (an exception counts as not yet), at
%% most Ms milliseconds.
wait_until(Fun, Ms) ->
    wait_until_(Fun, erlang:monotonic_time(millisecond) + Ms).

wait_until_(Fun, Deadline) ->
    case catch Fun() of
        true -> ok;
        _ ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> error(timeout_waiting);
                false -> timer:sleep(10), wait_until_(Fun, Deadline)
            end
    end.

%% Every node of Nodes is ready, sees Size members and the same leader.
await_cluster(Reg, Nodes, Size) ->
    Leader = fun(N) -> erpc:call(N, regent, get_leader, [Reg]) end,
    wait_until(fun() ->
                       lists:all(fun(N) ->
                                         St = erpc:call(N, regent, status, [Reg]),
                                         maps:get(ready, St) andalso
                                             length(maps:get(members, St)) =:= Size andalso
                                             maps:get(leader, St) =/= undefined
                                 end, Nodes)
                           andalso length(lists:usort([Leader(N) || N <- Nodes])) =:= 1
               end, 20000).

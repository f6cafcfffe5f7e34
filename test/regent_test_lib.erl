%% What the cluster and nemesis suites share to run regent on peer nodes.
-module(regent_test_lib).

-export([start_distribution/0, start_remote/2, mesh/1]).

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

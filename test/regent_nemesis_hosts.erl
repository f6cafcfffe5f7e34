%% The nemesis's hosts mode: its nodes run on hosts of their own
%% (regent_hosts: a network namespace and an address each, regent with no
%% bind_host), and its faults are real network faults rather than regent's
%% hooks. regent_nemesis runs the same clients, observers and checkers on
%% both modes; this module is what differs: where nodes start and which
%% faults exist.
%%
%% Faults (regent_nemesis:run/1 picks from `fault_kinds'):
%% - partition: two sides drop each other's packets (nftables, both ways);
%% - bridge: two sides cut apart, and one node that both still reach;
%% - one_way: one side drops every packet from the other, which still
%%   hears it (a TCP connection between them stalls either way: its data or
%%   its acknowledgements are lost);
%% - loss: every host drops 1-10 % of the packets from the others;
%% - delay: bytes into every raft port wait 1-20 ms plus a jitter of up to
%%   as much again (regent_lossy_proxy);
%% - pause_beam, pause_daemon: SIGSTOP of a node's BEAM or of its regentd
%%   for 1-5 s, SIGCONT at the heal;
%% - kill_beam: kill -9 of a node's BEAM (like halt, with no goodbye);
%% - kill_daemon and halt: as in the loopback mode (regent_nemesis).
%% Partitions hold for 2-12 s: with the hosts' net_ticktime of 8 s, the
%% shorter ones stall distribution without a nodedown and the longer ones
%% are noticed as nodes going down, which is when regent purges.
%%
%% The risk windows (when a purge may remove a node's names, which the
%% checkers must allow) follow regent's rule that only a leader seeing a
%% node go down purges it: the minority side of a partition; both cut
%% sides of a bridge or a one-way cut; every node under loss (a tick may
%% be lost long enough); a paused BEAM. Delay touches only the raft port
%% and a paused daemon leaves its BEAM up, so neither opens one.
-module(regent_nemesis_hosts).

-export([view/1]).
-export([tables/0, start_proxies/1, stop/1, start_node/1, halt_node/2,
         member_opts/0, mesh/1, fault/2, heal/1, kinds/0]).

-include_lib("regent/src/regent_member.hrl").

-define(HOSTS, 5).
-define(TICKTIME, 8).

%% @doc The faults this mode picks from by default (partitions twice).
-spec kinds() -> [atom()].
kinds() ->
    [partition, partition, bridge, one_way, loss, delay, pause_beam, pause_daemon,
     kill_beam, kill_daemon, halt].

%% @doc Host bookkeeping: {Node, HostIndex, BeamOsPid} and {{proxy, I}, Peer, ProxyNode}.
-spec tables() -> ets:tid().
tables() ->
    ets:new(nemesis_hosts, [public, set]).

%% @doc A proxy in front of each host's raft port. The controller's own
%% distribution gets the hosts' net_ticktime first.
-spec start_proxies(map()) -> ok.
start_proxies(#{hosts := T}) ->
    net_kernel:set_net_ticktime(?TICKTIME),
    [begin
         {ok, Peer, PNode} = regent_hosts:start_proxy(I, peer:random_name(proxy)),
         unlink(Peer),
         ets:insert(T, {{proxy, I}, Peer, PNode})
     end || I <- lists:seq(1, ?HOSTS)],
    ok.

%% @doc Stops the proxies.
-spec stop(map()) -> ok.
stop(#{hosts := T}) ->
    [catch peer:stop(P) || {{proxy, _}, P, _} <- ets:tab2list(T)],
    ok.

%% @doc A regent node on a free host (one no live node is on).
-spec start_node(map()) -> node().
start_node(#{hosts := T, nodes := NodesT}) ->
    Used = [I || {N, I, _} <- ets:tab2list(T), is_atom(N), ets:member(NodesT, N)],
    [I | _] = lists:seq(1, ?HOSTS) -- Used,
    {ok, Peer, Node} =
        regent_hosts:start_node(I, peer:random_name(nemesis),
                                ["-connect_all", "false"]),
    unlink(Peer),
    OsPid = erpc:call(Node, os, getpid, []),
    ets:insert(T, {Node, I, OsPid}),
    ets:insert(NodesT, {Node, Peer}),
    Node.

%% @doc kill -9 of a node's BEAM.
-spec halt_node(map(), node()) -> ok.
halt_node(#{hosts := T}, Node) ->
    [{Node, _, OsPid}] = ets:lookup(T, Node),
    os:cmd("kill -9 " ++ OsPid),
    ok.

%% @doc No bind_host: the default must find the host's address. A fixed
%% raft port, for the proxy's nat rule.
-spec member_opts() -> [{atom(), term()}].
member_opts() ->
    P = regent_hosts:raft_port(),
    [{port_range, {P, P}}].

%% @doc Connects every pair, retrying: a link that a heal just freed may
%% still be going down.
-spec mesh([node()]) -> ok.
mesh(Nodes) ->
    ok = regent_test_lib:wait_until(
           fun() ->
                   lists:all(fun(B) -> B end,
                             [erpc:call(A, net_kernel, connect_node, [B])
                              || A <- Nodes, B <- Nodes, A < B])
           end, 30000).

%% @doc Injects one fault; returns the nemesis state with how long to hold
%% it (`hold', ms).
-spec fault(atom(), map()) -> map().
fault(partition, #{tabs := Tabs} = S) ->
    {Side1, Side2} = regent_nemesis:split(live(Tabs)),
    cut(Tabs, Side1, Side2),
    cut(Tabs, Side2, Side1),
    AtRisk = regent_nemesis:at_risk(Tabs, [Side1, Side2]),
    hold(2000, 12000, regent_nemesis:risk(AtRisk, open,
                                          regent_nemesis:note({partition, Side1, Side2}, S)));
fault(bridge, #{tabs := Tabs} = S) ->
    [Bridge | Rest] = shuffle(live(Tabs)),
    {Side1, Side2} = lists:split(max(1, length(Rest) div 2), Rest),
    cut(Tabs, Side1, Side2),
    cut(Tabs, Side2, Side1),
    hold(2000, 12000, regent_nemesis:risk(Side1 ++ Side2, open,
                                          regent_nemesis:note({bridge, Side1, Bridge, Side2}, S)));
fault(one_way, #{tabs := Tabs} = S) ->
    {From, To} = regent_nemesis:split(live(Tabs)),
    cut(Tabs, To, From),
    hold(2000, 12000, regent_nemesis:risk(From ++ To, open,
                                          regent_nemesis:note({one_way, From, drops_to, To}, S)));
fault(loss, #{tabs := Tabs} = S) ->
    Pct = rand:uniform(10),
    Live = live(Tabs),
    [ok = regent_hosts:loss(host(Tabs, N), hosts(Tabs, Live -- [N]), Pct) || N <- Live],
    hold(2000, 8000, regent_nemesis:risk(Live, open, regent_nemesis:note({loss, Pct}, S)));
fault(delay, #{tabs := Tabs} = S) ->
    Ms = rand:uniform(20),
    Jitter = rand:uniform(Ms + 1) - 1,
    [ok = regent_hosts:delay(P, Ms, Jitter) || P <- proxies(Tabs)],
    hold(2000, 8000, regent_nemesis:note({delay, Ms, Jitter}, S));
fault(pause_beam, #{tabs := #{hosts := T} = Tabs} = S) ->
    N = regent_nemesis:pick(live(Tabs)),
    [{N, _, OsPid}] = ets:lookup(T, N),
    pause(OsPid, N, hold(1000, 5000, regent_nemesis:risk([N], open,
                                                         regent_nemesis:note({pause_beam, N}, S))));
fault(pause_daemon, #{tabs := Tabs} = S) ->
    N = regent_nemesis:pick(live(Tabs)),
    OsPid = regent_nemesis:daemon_os_pid(N),
    pause(integer_to_list(OsPid), N, hold(1000, 5000, regent_nemesis:note({pause_daemon, N}, S))).

%% @doc Lifts every rule and delay and resumes what was paused.
-spec heal(map()) -> map().
heal(#{tabs := Tabs} = S0) ->
    %% Each resume is logged when it happens: the children checker allows
    %% a paused VM's instances to outlive their lease until just after it.
    S = lists:foldl(fun({P, N}, Acc) ->
                            os:cmd("kill -CONT " ++ P),
                            regent_nemesis:note({resume, N}, Acc)
                    end, S0, maps:get(paused, S0, [])),
    [ok = regent_hosts:heal(I) || I <- lists:seq(1, ?HOSTS)],
    [ok = regent_hosts:delay(P, 0, 0) || P <- proxies(Tabs)],
    maps:remove(paused, S).

%% @doc What a node's member knows of the others, for a run that got stuck:
%% the nodes it is connected to and, for each peer it heard of, the raft id
%% and whether it counts it as up.
-spec view(node()) -> map().
view(N) ->
    erpc:call(N, fun() ->
                         #st{peers = Peers} = sys:get_state(nemesis_reg, 5000),
                         #{nodes => nodes(),
                           peers => maps:map(fun(_, P) -> maps:with([id, up, phase, leader_node], P) end,
                                             Peers)}
                 end, 10000).

%% ---- helpers --------------------------------------------------------------

%% Every node of To drops every packet from From.
cut(Tabs, To, From) ->
    [ok = regent_hosts:drop(host(Tabs, N), hosts(Tabs, From)) || N <- To].

pause(OsPid, N, S) ->
    os:cmd("kill -STOP " ++ OsPid),
    S#{paused => [{OsPid, N} | maps:get(paused, S, [])]}.

hold(Min, Max, S) ->
    S#{hold => Min + rand:uniform(Max - Min)}.

live(Tabs) -> regent_nemesis:live_nodes(Tabs).

host(#{hosts := T}, N) -> ets:lookup_element(T, N, 2).

hosts(Tabs, Nodes) -> [host(Tabs, N) || N <- Nodes].

proxies(#{hosts := T}) -> [P || {{proxy, _}, _, P} <- ets:tab2list(T)].

shuffle(L) -> [X || {_, X} <- lists:sort([{rand:uniform(), X} || X <- lists:sort(L)])].

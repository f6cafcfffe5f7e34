%% @doc The member's peers: the members of the same registry on other
%% nodes, and what is known of the leader.
%%
%% Members talk over Erlang distribution, as {regent, Msg} to the member
%% registered under the registry's name on the other node (send_peer/3;
%% docs/protocol.md lists the messages). Every member says hello to every
%% node that comes up and records what the others say of themselves: raft
%% id, phase, leader, members, whether they are synced. peer_message/2 and
%% cluster_event/2 hand the messages of other members, nodeups, nodedowns
%% and the clustering timers to the concern that handles each. A new leader
%% (from STATUS) makes the waiting writes go again (leader_seen/2).
%%
%% Owns the fields `peers', `leader_id', `leader_since' and
%% `leaderless_since'. Called by regent_member (messages), regent_daemon
%% (STARTED, STATUS) and every concern that needs a member's node for a raft
%% id (node_of/2), the leader's node (leader_node_known/1), whether we lead
%% (is_leader/1), or to send to a peer.
-module(regent_peers).

-export([send_peer/3, send_pid/2, hello_all/1, peer_message/2, cluster_event/2, peer_seen/3,
         node_of/2, member_id/2, is_leader/1, leader_node_known/1, leader_seen/2]).

-include_lib("kernel/include/logger.hrl").
-include("regent_member.hrl").

%% @private
%% Messages between members of one registry travel as {regent, Msg} to the
%% locally registered name of the member on the other node. A send never
%% suspends the member: to a node whose connection is busy (a BEAM that is
%% stopped, say, fills it and keeps it busy until its nodedown, about a
%% minute later) it is dropped and `busy' returned. Before, the member hung
%% in such a send, and every write of the node with it (found by
%% follower_beam_stopped_bounded under ASan: a 66 s stall that ended at the
%% stopped node's nodedown, when its daemon had been elected leader).
-spec send_peer(node(), term(), #st{}) -> ok | busy.
send_peer(Node, Msg, #st{reg = Reg}) when is_atom(Node) ->
    to_peer({Reg, Node}, Msg).

%% @private send_peer/3 to a member's pid (the sender of a request).
-spec send_pid(pid(), term()) -> ok | busy.
send_pid(Pid, Msg) ->
    to_peer(Pid, Msg).

to_peer(Dest, Msg) ->
    case erlang:send(Dest, {regent, Msg}, [noconnect, nosuspend]) of
        ok -> ok;
        _NotSent -> busy
    end.


%% @private
-spec hello_all(#st{}) -> ok.
hello_all(S) ->
    [send_peer(N, {hello, self(), node(), info(S)}, S) || N <- nodes()],
    ok.

info(#st{phase = Phase, daemon_id = Id, leader_id = Leader, members = Ms,
         synced = Synced} = S) ->
    #{phase => Phase, id => Id, leader_id => Leader,
      leader_node => node_of(Leader, S),
      members => [I || {I, _, _} <- Ms], synced => Synced andalso regent_status:healthy(S),
      keys => maps:get(keys, S#st.opts)}.

%% @private
%% The node whose member runs the daemon with raft id Id.
-spec node_of(non_neg_integer(), #st{}) -> node() | undefined.
node_of(0, _S) ->
    undefined;
node_of(Id, #st{daemon_id = Id}) ->
    node();
node_of(Id, #st{peers = Peers}) ->
    case [N || {N, #{id := I, up := true}} <- maps:to_list(Peers), I =:= Id] of
        [N | _] -> N;
        [] -> undefined
    end.

%% @private
-spec member_id(non_neg_integer(), #st{}) ->
          {node(), atom()} | {raft_id, non_neg_integer()}.
member_id(Id, #st{reg = Reg} = S) ->
    case node_of(Id, S) of
        undefined -> {raft_id, Id};
        N -> {N, Reg}
    end.

%% @private
-spec is_leader(#st{}) -> boolean().
is_leader(#st{leader_id = L, daemon_id = Me}) ->
    L =/= 0 andalso L =:= Me.

%% @private
-spec leader_node_known(#st{}) -> node() | undefined.
leader_node_known(#st{peers = Peers} = S) ->
    case node_of(S#st.leader_id, S) of
        undefined ->
            case [L || {_, #{up := true, leader_node := L}} <- maps:to_list(Peers),
                       L =/= undefined] of
                [L | _] -> L;
                [] -> undefined
            end;
        N ->
            N
    end.

%% ---- messages from other members -----------------------------------------

%% @private
-spec peer_message(term(), #st{}) -> #st{}.
peer_message({hello, Pid, Node, Info}, S) ->
    send_pid(Pid, {hello_ack, node(), info(S)}),
    heard_of(Node, Info, S);
peer_message({hello_ack, Node, Info}, S) ->
    heard_of(Node, Info, S);
peer_message({fwd, From, Origin, Ops}, S) ->
    regent_outbox:forwarded(From, Origin, Ops, S);
peer_message({replies, Replies}, S) ->
    regent_outbox:replies(Replies, S);
peer_message({join, _From, _Node, _Id, _Address} = Request, S) ->
    regent_membership:request(Request, S);
peer_message({joined, _Id}, S) ->
    S; % the MEMBERS frame says the rest
peer_message(join_retry, S) ->
    regent_discovery:join_later(?JOIN_RETRY_MS div 4, S);
peer_message({leave, _From, _Id} = Request, S) ->
    regent_membership:request(Request, S);
peer_message({left, _}, S) ->
    S;
peer_message({transfer_to, _Id} = Request, S) ->
    regent_membership:request(Request, S);
peer_message({gone, Node, Id}, #st{peers = Peers} = S) ->
    Old = maps:get(Node, Peers, #{}),
    regent_membership:plan(S#st{peers = Peers#{Node => Old#{id => Id, up => false, left => true}}});
peer_message(_Other, S) ->
    S.

%% A member's view: record it, let the leader plan, merge if it is another
%% cluster, and send ops that were waiting to know where the leader is.
heard_of(Node, Info, S0) ->
    kind_check(Node, Info, S0),
    S = regent_merge:maybe_merge(Node, Info, regent_membership:plan(peer_seen(Node, Info, S0))),
    case S#st.outbox of
        [] -> S;
        _ -> regent_outbox:queue_flush(S)
    end.

%% Every node must start a registry with the same `keys': a member of the
%% other kind ignores this registry's entries. Said once per peer (its
%% recorded view has the other kind from then on).
kind_check(Node, #{keys := Theirs}, #st{reg = Reg, opts = #{keys := Ours}, peers = Peers})
  when Theirs =/= Ours ->
    case maps:get(Node, Peers, #{}) of
        #{keys := Theirs} -> ok;
        _ -> ?LOG_ERROR("regent ~p: the member on ~p runs with {keys, ~p}, this one with "
                        "{keys, ~p}: each ignores the other's entries; start the registry "
                        "with the same keys on every node", [Reg, Node, Theirs, Ours])
    end;
kind_check(_Node, _Info, _S) ->
    ok.

%% @private
-spec peer_seen(node(), map(), #st{}) -> #st{}.
peer_seen(Node, Info, #st{peers = Peers} = S) ->
    Old = maps:remove(left, maps:get(Node, Peers, #{})),
    S#st{peers = Peers#{Node => maps:merge(Old, Info#{up => true})}}.

%% ---- nodes, timers, the leader -------------------------------------------

%% @private
-spec cluster_event(tuple(), #st{}) -> #st{}.
cluster_event({nodeup, Node}, S) ->
    send_peer(Node, {hello, self(), node(), info(S)}, S),
    S;
cluster_event({nodedown, Node}, #st{peers = Peers} = S0) ->
    S = case maps:find(Node, Peers) of
            {ok, P} -> S0#st{peers = Peers#{Node := P#{up => false, down_at => ?NOW_MS()}}};
            error -> S0
        end,
    %% Armed on every member, not only on the one that leads now: the
    %% leader may die with the node, and the next one is elected within the
    %% wait (a leader's kill -9 left its server a voter for ever).
    erlang:send_after(?DOWN_SETTLE_MS, self(), {down_settled, Node}),
    S;
cluster_event({down_settled, Node}, S) ->
    case is_leader(S) andalso not lists:member(Node, nodes()) of
        true -> regent_membership:leader_lost_node(Node, S);
        false -> S
    end;
cluster_event({discover}, #st{phase = discovering} = S) ->
    regent_discovery:decide(S);
cluster_event({join_retry}, #st{phase = joining} = S) ->
    regent_discovery:ask_to_join(S#st{join_timer = undefined});
cluster_event({join_retry}, S) ->
    S#st{join_timer = undefined};
cluster_event({plan}, S) ->
    regent_membership:plan(S#st{plan_timer = undefined});
%% Hellos travel once, on a nodeup or a new leader, and a send to a busy
%% connection is dropped (send_peer/3). So each second, a member hellos
%% again the connected nodes it has no current view of, and, while its
%% daemon has had no leader for a while, every node: that is how a member
%% whose server was removed while it was cut off hears it (the leader no
%% longer replicates to it, and a short real partition brings no
%% nodedown and nodeup, hence no hello). Found by the nemesis on hosts: a
%% one-way cut left two removed servers leaderless for good.
cluster_event({refresh}, #st{peers = Peers, leader_id = Leader} = S) ->
    erlang:send_after(?REFRESH_MS, self(), {refresh}),
    %% Only nodes whose member we heard from (a node without one is helloed
    %% on its nodeup, once), and not members that said they left.
    Known = [N || N <- nodes(), not maps:get(left, maps:get(N, Peers, #{left => true}), false)],
    Stale = case Leader =:= 0 andalso S#st.phase =:= running andalso
                ?NOW_MS() - S#st.leaderless_since > ?REFRESH_MS of
                true -> Known;
                false -> [N || N <- Known, maps:get(up, maps:get(N, Peers), false) =/= true]
            end,
    Stale =/= [] andalso
        begin
            Hello = {hello, self(), node(), info(S)},
            [send_peer(N, Hello, S) || N <- Stale]
        end,
    regent_membership:keep_majority(reconnect(S));
cluster_event({ask_leader, Node}, S) ->
    send_peer(Node, {hello, self(), node(), info(S)}, S),
    S;
cluster_event(_, S) ->
    S.

%% Members send with `noconnect' (send_peer/3), so a distribution link to a
%% member's node that went down (a real partition, longer than the net
%% tick time) would stay down after the network heals, where a plain send
%% would have set it up again: the two sides would stay apart, the removed
%% side leaderless for good. So, as Erlang's own auto-connect would, each
%% refresh connects again to the nodes of the members in our raft
%% configuration that are down, and to the leader's node we are joining
%% through, one attempt at a time per node, in a process of its own (an
%% unreachable node takes net_setuptime to fail). Not with the option
%% `{reconnect, false}', nor when the kernel's `dist_auto_connect' is
%% `once' or `never': whoever chose that keeps links down on purpose.
reconnect(#st{opts = #{reconnect := false}} = S) ->
    S;
reconnect(#st{peers = Peers, members = Ms, reconnecting = Busy0} = S) ->
    case application:get_env(kernel, dist_auto_connect, always) of
        always ->
            Busy = maps:filter(fun(_, Pid) -> is_process_alive(Pid) end, Busy0),
            Ids = [Id || {Id, _, _} <- Ms],
            Joining = [S#st.join_target || S#st.phase =:= joining,
                       is_atom(S#st.join_target), S#st.join_target =/= undefined],
            Connected = [node() | nodes()],
            Down = lists:usort([N || {N, #{id := Id, up := false}} <- maps:to_list(Peers),
                                     lists:member(Id, Ids)] ++ Joining)
                -- (Connected ++ maps:keys(Busy)),
            S#st{reconnecting = maps:merge(Busy, maps:from_list(
                                                   [{N, spawn(net_kernel, connect_node, [N])}
                                                    || N <- Down]))};
        _ ->
            S
    end.

%% @private
%% A new leader (or the first one): writes waiting for it go (again). When
%% we become the leader, nodes that went down meanwhile are purged.
-spec leader_seen(non_neg_integer(), #st{}) -> #st{}.
leader_seen(Leader, #st{leader_id = Leader} = S) ->
    S;
leader_seen(Leader, S0) ->
    regent_telemetry:execute([leader, change], #{count => 1},
                             #{registry => S0#st.reg, leader => node_of(Leader, S0),
                               leader_id => Leader}),
    S = regent_outbox:requeue_all(
          S0#st{leader_id = Leader, leader_since = ?NOW_MS(),
                leaderless_since = case Leader of 0 -> ?NOW_MS(); _ -> 0 end}),
    S1 = case is_leader(S) andalso regent_membership:dist_majority(S) of
             true -> regent_membership:plan(regent_membership:purge_absent_nodes(S));
             false -> S
         end,
    hello_all(S1),
    regent_outbox:queue_flush(S1).

%% @doc The leader's membership: on the member whose daemon leads, keeping
%% the raft configuration in shape and purging the names of nodes that go
%% down.
%%
%% plan/1 makes one change at a time: remove a dead server (plan_step/1 is
%% where the leader decides to remove a dead voter, replacing it first when
%% it can), else promote synced standbys up to the `voters' option, else
%% make joined spares standbys. It runs again after each change, on
%% MEMBERS, on hellos, on nodedowns and when the leadership arrives. What
%% other members ask the leader (to join, to leave, to take the leadership)
%% becomes a change here too (request/2). A node that stays down for
%% ?DOWN_SETTLE_MS loses its names (purge_node/2), unless this leader no
%% longer sees a majority of the voters' nodes: then it hands the
%% leadership over (leader_lost_node/2).
%%
%% Owns the fields `members', `changes', `change_busy' and `plan_timer'.
%% Called by regent_daemon (MEMBERS and CHANGED frames), regent_peers
%% (hellos, requests, nodedowns, a new leader, the {plan} timer) and
%% regent_member (take_leadership calls from regent_fault).
-module(regent_membership).

-export([plan/1, change_done/3, request/2, take_leadership/1,
         leader_lost_node/2, dist_majority/1, purge_absent_nodes/1, keep_majority/1]).

-include_lib("kernel/include/logger.hrl").
-include("regent_member.hrl").

-define(UNMAPPED_GRACE_MS, 3000).
-define(ALONE_LEADER_MS, 5000).

%% ---- nodes that go down --------------------------------------------------

%% @private
-spec purge_absent_nodes(#st{}) -> #st{}.
purge_absent_nodes(#st{reg = Tab} = S) ->
    Owners = ets:foldl(fun({_, Pid, _}, Acc) -> Acc#{node(Pid) => true} end,
                       #{}, Tab),
    Absent = maps:keys(Owners) -- [node() | nodes()],
    lists:foldl(fun purge_node/2, S, Absent).

purge_node(Node, S) ->
    ?LOG_NOTICE("regent ~p: node ~p is down; purging its names",
                [S#st.reg, Node]),
    regent_telemetry:execute([purge], #{count => 1}, #{registry => S#st.reg, node => Node}),
    regent_outbox:submit(purge_node, atom_to_binary(Node, utf8), internal, infinity, S).

%% @private
%% Our Erlang view decides what is dead. If it no longer reaches a majority
%% of the voters' nodes (a partition of distribution alone, with raft links
%% still up), we are on the wrong side: leadership goes to a voter the raft
%% links still reach, whose member then sees the majority and acts.
-spec leader_lost_node(node(), #st{}) -> #st{}.
leader_lost_node(Node, S) ->
    case dist_majority(S) of
        true -> plan(purge_node(Node, S));
        false -> hand_over(S)
    end.

%% @private
-spec dist_majority(#st{}) -> boolean().
dist_majority(#st{members = Ms, daemon_id = Me} = S) ->
    Voters = [Id || {Id, voter, _} <- Ms],
    Seen = [Id || Id <- Voters, Id =:= Me orelse alive_id(Id, S)],
    2 * length(Seen) > length(Voters).

%% @private
%% Also each second ({refresh}): a leader that has led for ?ALONE_LEADER_MS
%% without seeing a majority of the voters' nodes hands over. Its
%% leadership may have come from its own side of a cut of distribution
%% alone, or a transfer may have failed; acting only on nodedowns, such a
%% leader kept the leadership for good and the big side never purged the
%% small side (small_side_leader_purges_nothing). The wait bounds the
%% transfers when no side has a majority (a 2-2 cut): one per wait.
-spec keep_majority(#st{}) -> #st{}.
keep_majority(#st{hand_overs = {_, Last}} = S) ->
    Now = ?NOW_MS(),
    case regent_peers:is_leader(S) andalso Now - S#st.leader_since > ?ALONE_LEADER_MS
        andalso (Last =:= undefined orelse Now - Last > ?ALONE_LEADER_MS)
        andalso not dist_majority(S) of
        true -> hand_over(S);
        false -> S
    end.

%% To a voter whose member we do not see, which is on the other side of the
%% cut, with the majority: libraft's own pick (the most up-to-date voter)
%% may be a voter on our side, which then cannot act either. Each attempt
%% takes the next of those voters, then libraft's pick, and round again: one
%% of them may be dead (a transfer to it fails without a word).
hand_over(#st{change_busy = true} = S) ->
    S;
hand_over(#st{reg = Reg, members = Ms, daemon_id = Me, hand_overs = {N, _}} = S) ->
    ?LOG_WARNING("regent ~p: this leader no longer sees a majority of voters' "
                 "nodes; handing leadership over", [Reg]),
    Unseen = lists:sort([Id || {Id, voter, _} <- Ms, Id =/= Me, not alive_id(Id, S)]),
    Targets = Unseen ++ [0],
    Target = lists:nth(1 + N rem length(Targets), Targets),
    change(transfer, Target, voter, <<>>, {transfer, Target},
           S#st{hand_overs = {N + 1, ?NOW_MS()}}).

%% ---- the plan ------------------------------------------------------------

%% @private
%% One change at a time: remove a dead server, else promote up to `voters'
%% voters, else make joined spares standbys. Re-run after each change, on
%% MEMBERS, on nodedown and when leadership arrives.
-spec plan(#st{}) -> #st{}.
plan(#st{change_busy = true} = S) ->
    S;
plan(S) ->
    case regent_peers:is_leader(S) andalso dist_majority(S) of
        true -> plan_step(S);
        false -> S
    end.

plan_step(#st{members = Ms, daemon_id = Me, opts = Opts} = S0) ->
    S = settling_later(unmapped_later(S0)),
    Live = [M || {Id, _, _} = M <- Ms, Id =:= Me orelse alive_id(Id, S)],
    Dead = [Id || {Id, _, _} <- Ms, Id =/= Me, dead_id(Id, S)],
    Voters = [Id || {Id, voter, _} <- Live],
    Target = min(maps:get(voters, Opts), length(Live)),
    %% Only a standby whose member has its table (it said so in a hello)
    %% becomes a voter: one that cannot catch up (a wrong secret, say) must
    %% neither stall the changes nor count for the quorum.
    Promotable = [Id || {Id, standby, _} <- Live, synced_id(Id, S)],
    Spares = [Id || {Id, spare, _} <- Live],
    DeadVoters = [Id || {Id, voter, _} <- Ms, lists:member(Id, Dead)],
    DeadOthers = Dead -- DeadVoters,
    %% Servers neither live nor known dead yet (a node down for less than
    %% ?DOWN_SETTLE_MS, an id no member has claimed yet): the voter count is
    %% not changed for their sake until they are decided (the timers above
    %% bring the plan back then), or a flap would promote and then demote.
    Undecided = [Id || {Id, _, _} <- Ms, Id =/= Me, not alive_id(Id, S),
                       not lists:member(Id, Dead)],
    if
        DeadOthers =/= [] ->
            plan_change(remove, hd(DeadOthers), spare, S);
        %% Replace a dead voter before removing it: removing first leaves
        %% a smaller voter set that a partition can strand (the other side
        %% then needs this node's vote to elect).
        DeadVoters =/= [], length(Voters) < Target, Promotable =/= [] ->
            plan_change(assign, hd(Promotable), voter, S);
        DeadVoters =/= [] ->
            plan_change(remove, hd(DeadVoters), spare, S);
        Spares =/= [] ->
            plan_change(assign, hd(Spares), standby, S);
        length(Voters) < Target, Promotable =/= [], Undecided =:= [] ->
            plan_change(assign, hd(Promotable), voter, S);
        %% A dead voter that came back after a standby replaced it (its
        %% node was cut off, not dead) leaves one voter too many: demote
        %% one that is not us. regentd refuses while another voter may lack
        %% the last configuration (c_src/node_change.c, may_demote).
        length(Voters) > Target, Undecided =:= [] ->
            plan_change(assign, lists:max(Voters -- [Me]), standby, S);
        true ->
            S
    end.

%% The reason recorded with a planned change says what it was, for the log.
plan_change(Kind, Id, Role, S) ->
    change(Kind, Id, Role, <<>>, {plan, Kind, Id, Role}, S).

synced_id(Id, #st{peers = Peers}) ->
    lists:any(fun(#{id := I, up := true, synced := true}) -> I =:= Id;
                 (_) -> false
              end, maps:values(Peers)).

alive_id(Id, #st{peers = Peers}) ->
    lists:any(fun(#{id := I, up := Up}) -> I =:= Id andalso Up;
                 (_) -> false
              end, maps:values(Peers)).

%% Dead: its node is known to be down, or no member has claimed the id for a
%% while since we lead (a previous incarnation of a restarted node).
dead_id(Id, #st{peers = Peers, leader_since = Since} = S) ->
    Known = [P || #{id := I} = P <- maps:values(Peers), I =:= Id],
    case Known of
        [] -> ?NOW_MS() - Since > ?UNMAPPED_GRACE_MS;
        _ -> lists:all(fun settled_down/1, Known) andalso not alive_id(Id, S)
    end.

%% Down, and for long enough (a member that left says so: no wait).
settled_down(#{up := true}) -> false;
settled_down(#{down_at := T}) -> ?NOW_MS() - T >= ?DOWN_SETTLE_MS;
settled_down(_) -> true.

%% A server whose node went down less than ?DOWN_SETTLE_MS ago is judged
%% once the wait is over: look again then. Every rule that waits re-arms the
%% plan until it is decided, whatever the order of nodedowns, elections and
%% timers.
settling_later(#st{members = Ms, peers = Peers} = S) ->
    Ids = [Id || {Id, _, _} <- Ms],
    Waits = [?DOWN_SETTLE_MS - (?NOW_MS() - T)
             || #{id := Id, up := false, down_at := T} <- maps:values(Peers),
                lists:member(Id, Ids), ?NOW_MS() - T < ?DOWN_SETTLE_MS],
    case Waits of
        [] -> S;
        _ -> plan_later(max(1, lists:min(Waits)), S)
    end.

%% Ids nobody has claimed yet are judged after the grace period: look again
%% then.
unmapped_later(#st{members = Ms, daemon_id = Me, peers = Peers} = S) ->
    Claimed = [I || #{id := I} <- maps:values(Peers)],
    case [Id || {Id, _, _} <- Ms, Id =/= Me, not lists:member(Id, Claimed)] of
        [] -> S;
        _ -> plan_later(?UNMAPPED_GRACE_MS, S)
    end.

%% Arms the one {plan} timer to fire in Ms, unless it fires sooner already.
plan_later(Ms, #st{plan_timer = Timer} = S) ->
    Due = ?NOW_MS() + Ms,
    case Timer of
        {_, At} when At =< Due ->
            S;
        _ ->
            case Timer of
                {Ref, _} -> erlang:cancel_timer(Ref);
                undefined -> ok
            end,
            S#st{plan_timer = {erlang:send_after(Ms, self(), {plan}), Due}}
    end.

%% ---- changes, and what members ask for -----------------------------------

change(Kind, Id, Role, Address, Why, #st{port = Port} = S) ->
    Ref = erlang:unique_integer([positive, monotonic]),
    %% A daemon that just died takes nothing; its successor resets the
    %% pending changes (regent_daemon:start_daemon/1).
    regent_daemon:command(Port, regent_proto:change(Kind, Ref, Id, Role, Address)),
    S#st{changes = maps:put(Ref, Why, S#st.changes), change_busy = true}.

%% @private
-spec change_done(pos_integer(), non_neg_integer(), #st{}) -> #st{}.
change_done(Ref, Status, #st{reg = Reg} = S0) ->
    case maps:take(Ref, S0#st.changes) of
        error ->
            S0;
        {Why, Changes} ->
            S = S0#st{changes = Changes, change_busy = false},
            Status =:= 0 orelse
                ?LOG_WARNING("regent ~p: membership change ~p failed: ~p",
                             [Reg, Why, Status]),
            case Why of
                {join, From, Id} ->
                    regent_peers:send_pid(From, case Status of
                                                    0 -> {joined, Id};
                                                    _ -> join_retry
                                                end);
                {leave, From} ->
                    regent_peers:send_pid(From, {left, Status});
                {transfer, _} ->
                    ok;
                {plan, _, _, _} ->
                    ok
            end,
            case Status of
                0 -> plan(S);
                _ -> plan_later(?JOIN_RETRY_MS, S)
            end
    end.

%% @private
%% What other members ask the leader's member: to add the server of a
%% joining member, to remove a leaving one's, to hand the leadership over.
-spec request(term(), #st{}) -> #st{}.
request({join, From, Node, Id, Address}, S) ->
    S1 = regent_peers:peer_seen(Node, #{id => Id, phase => joining}, S),
    case regent_peers:is_leader(S1) andalso not S1#st.change_busy of
        true -> change(add, Id, spare, Address, {join, From, Id}, S1);
        false -> regent_peers:send_pid(From, join_retry), S1
    end;
request({leave, From, Id}, S) ->
    case regent_peers:is_leader(S) andalso not S#st.change_busy of
        true -> change(remove, Id, spare, <<>>, {leave, From}, S);
        false -> regent_peers:send_pid(From, {left, busy_or_not_leader}), S
    end;
request({transfer_to, Id}, S) ->
    case regent_peers:is_leader(S) andalso not S#st.change_busy of
        true -> change(transfer, Id, voter, <<>>, {transfer, Id}, S);
        false -> S
    end.

%% @private
%% regent_fault:take_leadership/1 (tests): ask the leader to hand over.
-spec take_leadership(#st{}) -> ok | {error, no_leader}.
take_leadership(#st{daemon_id = Me} = S) ->
    case regent_peers:leader_node_known(S) of
        undefined -> {error, no_leader};
        Node when Node =:= node() -> ok;
        Node -> regent_peers:send_peer(Node, {transfer_to, Me}, S), ok
    end.

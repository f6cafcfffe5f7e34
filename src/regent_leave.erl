%% @doc Leaving a cluster: for good on a graceful stop (leave/1), or to
%% join another one or re-form one alone (dissolve/2).
%%
%% On a graceful stop a leader hands the leadership over, then asks the new
%% leader to remove its server; leave/1 runs in terminate/2 and waits there
%% (a few seconds at most) for the answers. A dissolve stops the daemon,
%% drops the raft state and starts a fresh daemon under a new id, which
%% bootstraps or joins the cluster led from a given node; the names our
%% live processes held are claimed in the new table, and callers' writes
%% that may have reached the old cluster are answered `{error, unavailable}'.
%%
%% No fields of its own: dissolve/2 resets port, daemon_id, members,
%% claims and join_target. Called by regent_member (terminate/2, the
%% recover call), regent_daemon (a restarted daemon that lost its state),
%% regent_discovery (a raft port that moved) and regent_merge (going over
%% to another cluster).
-module(regent_leave).

-export([leave/1, dissolve/2]).

-include_lib("kernel/include/logger.hrl").
-include("regent_member.hrl").

%% @private
%% A graceful stop leaves the cluster: leadership is handed over first, then
%% the (new) leader removes us from the configuration.
-spec leave(#st{}) -> ok.
leave(#st{members = Ms} = S) when length(Ms) > 1 ->
    S1 = case regent_peers:is_leader(S) of
             true -> transfer_away(S);
             false -> S
         end,
    ask_to_leave(S1, ?NOW_MS() + 3000),
    %% Whatever the leader answered: the others stop counting on us, so the
    %% leader's plan removes us even if our request was lost.
    [regent_peers:send_peer(N, {gone, node(), S1#st.daemon_id}, S1) || N <- nodes()],
    ok;
leave(_S) ->
    ok.

%% The leader may not know yet that it leads (it has just been handed the
%% leadership): ask again until it removes us or the deadline passes.
ask_to_leave(S, Deadline) ->
    case regent_peers:leader_node_known(S) of
        Node when Node =/= undefined, Node =/= node() ->
            regent_peers:send_peer(Node, {leave, self(), S#st.daemon_id}, S);
        _ ->
            ok
    end,
    Left = Deadline - ?NOW_MS(),
    receive
        {regent, {left, 0}} -> ok
    after min(max(Left, 0), 100) ->
            case Left > 0 of
                true -> ask_to_leave(S, Deadline);
                false -> ok
            end
    end.

transfer_away(#st{port = Port} = S) ->
    Ref = erlang:unique_integer([positive, monotonic]),
    regent_daemon:command(Port, regent_proto:change(transfer, Ref, 0, voter, <<>>)),
    await_new_leader(S, ?NOW_MS() + 2000).

await_new_leader(#st{port = Port} = S, Deadline) ->
    Left = max(0, Deadline - ?NOW_MS()),
    receive
        {Port, {data, Frame}} ->
            S1 = case regent_proto:decode(Frame) of
                     {status, St} -> S#st{status = St,
                                          leader_id = maps:get(leader_id, St)};
                     _ -> S
                 end,
            case regent_peers:is_leader(S1) orelse S1#st.leader_id =:= 0 of
                true -> await_new_leader(S1, Deadline);
                false -> S1
            end
    after Left ->
            S
    end.

%% ---- leaving a cluster to join another, or to re-form one ----------------

%% @private
%% Drops this member's raft state and starts a fresh daemon under a new id:
%% bootstrapping a one-node cluster (regent:recover/1 after losing the
%% quorum) or joining the cluster led from Target. Reads keep being served
%% from the mirror meanwhile; once the new table arrives, names our live
%% processes held are claimed in it under the conflict policy.
-spec dissolve(bootstrap | {join, node() | undefined}, #st{}) -> #st{}.
dissolve(Mode, #st{reg = Reg, port = Port, dir = Dir} = S) ->
    ?LOG_WARNING("regent ~p: leaving the current raft cluster (~p)", [Reg, Mode]),
    is_port(Port) andalso regent_daemon:stop_daemon(Port),
    regent_data_dir:remove_dir(Dir),
    ok = filelib:ensure_path(Dir),
    %% Duplicate-key entries never conflict: the new table's DUMP adds back
    %% those of our live processes (regent_duplicate:reconcile/2).
    Claims = [Row || maps:get(keys, S#st.opts) =:= unique,
                     {_, Pid, _} = Row <- ets:tab2list(Reg),
                     node(Pid) =:= node(), is_process_alive(Pid)],
    S1 = regent_outbox:requeue_all(
           regent_outbox:give_up_sent(S#st{port = undefined, daemon_id = 0, members = [],
                                           claims = Claims})),
    case Mode of
        bootstrap -> regent_daemon:start_daemon(S1, true);
        {join, Target} -> regent_daemon:start_daemon(S1#st{join_target = Target}, false)
    end.

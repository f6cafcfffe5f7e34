%% @doc The member's outbox: every write, a caller's or the member's own,
%% as an op that waits here until it is answered.
%%
%% A write becomes an op with a ref (submit/5) and is batched with every op
%% that arrives meanwhile: one flush per pass through the mailbox, in
%% frames of at most ?FRAME_BYTES. It goes to our daemon if it leads, else
%% to the leader's member, and stays pending until a reply answers it. While
%% no daemon runs, the mirror is not synced or no leader is known, ops wait
%% in the outbox (flush/1); a RETRY, a new leader or a new daemon sends them
%% again (requeue_all/1); callers whose deadline passes get
%% `{error, unavailable}' (tick/1). The leader's member also takes the ops
%% other members forward (forwarded/4) and routes back the replies of
%% theirs that failed (daemon_replies/2).
%%
%% Owns the fields `pending', `outbox', `flush_queued', `tick', `sent_upto'
%% and `settled_at', and the #op{} record. Called by regent_member (write
%% calls, `flush' and `tick' messages), regent_daemon (APPLIED and REPLIES
%% frames, a restart), regent_peers (forwarded ops and replies, a new
%% leader), regent_mirror (unregisters of exited owners, replies held until
%% the DUMP), regent_membership (purges), regent_merge (claims) and
%% regent_leave (a dissolve).
-module(regent_outbox).

-export([submit/5, queue_flush/1, flush/1, tick/1,
         replies/2, daemon_replies/2, forwarded/4,
         requeue_all/1, give_up_sent/1]).

-include_lib("kernel/include/logger.hrl").
-include("regent_member.hrl").

-define(TICK_MS, 50).
-define(RETRY_MS, 20).
-define(FRAME_BYTES, 4 * 1024 * 1024).
%% How often a flush tells the FSM which of our refs it may forget.
-define(SETTLE_MS, 100).

%% @private
%% Refs are unique in this BEAM, not just in this member: a member that is
%% restarted after a crash resumes its daemon's log, whose replayed replies
%% carry the previous incarnation's refs.
-spec submit(atom(), term(), gen_server:from() | internal | {claim, term(), pid()},
             integer() | infinity, #st{}) -> #st{}.
submit(Kind, Args, From, Deadline, S) ->
    Ref = erlang:unique_integer([positive, monotonic]),
    Op = #op{from = From, kind = Kind, bin = encode_op(Kind, Ref, Args),
             deadline = Deadline, watch = regent_mirror:watch_of(Kind, Args, S)},
    queue_flush(arm_tick(S#st{pending = maps:put(Ref, Op, S#st.pending),
                              outbox = [Ref | S#st.outbox]})).

encode_op(register, Ref, {Key, Pid, Meta, Replace}) ->
    regent_proto:op_register(Ref, Key, Pid, Meta, Replace);
encode_op(unregister, Ref, Key) ->
    regent_proto:op_unregister(Ref, Key);
encode_op(unregister_if_owner, Ref, {Key, Pid}) ->
    regent_proto:op_unregister_if_owner(Ref, Key, Pid);
encode_op(set_meta, Ref, {Key, Meta}) ->
    regent_proto:op_set_meta(Ref, Key, Meta);
encode_op(read, Ref, Key) ->
    regent_proto:op_read(Ref, Key);
encode_op(purge_node, Ref, Node) ->
    regent_proto:op_purge_node(Ref, Node, any, 0);
encode_op(register_new, Ref, {Key, Pid, Value, Replace}) ->
    regent_proto:op_register_new(Ref, Key, Pid, Value, Replace);
encode_op(set_meta_if_owner, Ref, {Key, Pid, Value}) ->
    regent_proto:op_set_meta_if_owner(Ref, Key, Pid, Value);
encode_op(group_add, Ref, {Key, Pid, Value}) ->
    regent_proto:op_group_add(Ref, Key, Pid, Value);
encode_op(group_del, Ref, {Key, Pid, Which, Value}) ->
    regent_proto:op_group_del(Ref, Key, Pid, Which, Value);
encode_op(meta_put, Ref, {Key, Value, When}) ->
    regent_proto:op_meta_put(Ref, Key, Value, When);
encode_op(meta_del, Ref, Key) ->
    regent_proto:op_meta_del(Ref, Key);
encode_op(set_meta_if_version, Ref, {Key, Pid, Version, Meta}) ->
    regent_proto:op_set_meta_if_version(Ref, Key, Pid, Version, Meta);
encode_op(meta_cas, Ref, {Key, Expect, New}) ->
    regent_proto:op_meta_cas(Ref, Key, Expect, New);
encode_op(read_entry, Ref, Key) ->
    regent_proto:op_read_entry(Ref, Key);
encode_op(register_many, Ref, Items) ->
    regent_proto:op_register_many(Ref, Items);
encode_op(unregister_many, Ref, Keys) ->
    regent_proto:op_unregister_many(Ref, Keys).

%% @private
%% Every unanswered op goes out again (to a new daemon or a new leader),
%% oldest first; the outbox is kept newest first. A purge is dropped
%% instead: it was a leader's decision from its own view, and the next
%% leader purges what it sees down itself (a stale one, sent after a heal,
%% would remove live names).
-spec requeue_all(#st{}) -> #st{}.
requeue_all(#st{pending = Pending0} = S) ->
    Pending = maps:filter(fun(_, #op{kind = K}) -> K =/= purge_node end, Pending0),
    S#st{pending = Pending, outbox = lists:reverse(lists:sort(maps:keys(Pending)))}.

%% @private
%% One flush per pass through the mailbox: every op that arrives before the
%% `flush' message is processed travels in the same frame (and, usually,
%% the same raft entry).
-spec queue_flush(#st{}) -> #st{}.
queue_flush(#st{flush_queued = true} = S) ->
    S;
queue_flush(S) ->
    self() ! flush,
    S#st{flush_queued = true}.

%% @private
-spec flush(#st{}) -> #st{}.
flush(#st{outbox = []} = S) ->
    S;
flush(#st{port = undefined} = S) ->
    S; % sent once a daemon runs again
flush(#st{synced = false} = S) ->
    S; % after the DUMP: ops that committed before a crash are answered by
       % their replayed replies first, and are not sent again
flush(#st{daemon_id = 0} = S) ->
    S; % the daemon has not started yet
flush(#st{leader_id = 0} = S) ->
    S; % sent once a leader is known
flush(#st{port = Port, outbox = Outbox, pending = Pending, leader_id = Leader,
          daemon_id = Me} = S0) ->
    {Settle, S} = settle(S0),
    Ops = [Op#op.bin || Ref <- lists:reverse(Outbox),
                        {ok, Op} <- [maps:find(Ref, Pending)]] ++ Settle,
    %% The outbox is newest first and refs grow: its head is the highest.
    Sent = S#st{outbox = [], sent_upto = max(S#st.sent_upto, hd(Outbox))},
    case Leader =:= Me of
        true ->
            [regent_daemon:command(Port, regent_proto:ops(C)) || C <- chunks(Ops)],
            Sent;
        false ->
            case regent_peers:node_of(Leader, S) of
                undefined ->
                    S; % once the leader's member has said hello
                Node ->
                    Results = [regent_peers:send_peer(Node, {fwd, self(), Me, C}, S)
                               || C <- chunks(Ops)],
                    case lists:all(fun(R) -> R =:= ok end, Results) of
                        true ->
                            Sent;
                        false ->
                            %% The leader's node is unreachable for now: the
                            %% ops stay in the outbox and go again shortly
                            %% (a copy that did go is skipped by the FSM).
                            erlang:send_after(?RETRY_MS, self(), flush),
                            S#st{sent_upto = Sent#st.sent_upto}
                    end
            end
    end.

%% Now and then a flush also tells the FSM which of our refs it may forget
%% from its de-duplication set: all below the oldest op still pending.
settle(#st{pending = Pending, settled_at = At} = S) ->
    Now = ?NOW_MS(),
    case (At =:= undefined orelse Now - At >= ?SETTLE_MS) andalso map_size(Pending) > 0 of
        true -> {[regent_proto:op_settle(lists:min(maps:keys(Pending)))],
                 S#st{settled_at = Now}};
        false -> {[], S}
    end.

%% Frames of at most ~?FRAME_BYTES (regentd refuses frames over 64 MiB).
chunks([]) ->
    [];
chunks(Ops) ->
    chunks(Ops, 0, [], []).

chunks([], _, Cur, Acc) ->
    lists:reverse([lists:reverse(Cur) | Acc]);
chunks([Op | Rest], Size, Cur, Acc) when Cur =/= [],
                                         Size + byte_size(Op) > ?FRAME_BYTES ->
    chunks(Rest, byte_size(Op), [Op], [lists:reverse(Cur) | Acc]);
chunks([Op | Rest], Size, Cur, Acc) ->
    chunks(Rest, Size + byte_size(Op), [Op | Cur], Acc).

%% @private
-spec replies([regent_proto:reply()], #st{}) -> #st{}.
replies(Replies, S) ->
    lists:foldl(fun reply/2, S, Replies).

reply({Ref, Result, Payload}, S) ->
    case maps:take(Ref, S#st.pending) of
        error ->
            S; % answered already (a retried op that committed twice)
        {Op, Pending} when Result =:= retry ->
            %% Not committed (no leader yet, leadership lost): again shortly.
            erlang:send_after(?RETRY_MS, self(), flush),
            S#st{pending = maps:put(Ref, Op, Pending),
                 outbox = [Ref | S#st.outbox]};
        {Op, Pending} ->
            answer(Op, Result, Payload, S),
            regent_mirror:watch(Op, Result, S#st{pending = Pending})
    end.

answer(#op{from = {claim, Name, Pid}}, Result, Holder, S) ->
    regent_merge:claim_answered(Name, Pid, Result, Holder, S);
answer(#op{from = internal}, ok, _, _S) ->
    ok;
answer(#op{from = internal, kind = Kind}, Result, _, #st{reg = Reg}) ->
    %% Only a re-claim after the daemon lost state can be refused.
    ?LOG_WARNING("regent ~p: internal ~p answered ~p", [Reg, Kind, Result]);
answer(#op{from = From}, bad, _, _S) ->
    gen_server:reply(From, {error, bad_request});
answer(#op{from = From, kind = register}, ok, _, _S) ->
    gen_server:reply(From, yes);
answer(#op{from = From, kind = register}, no, Holder, _S) ->
    gen_server:reply(From, {no, regent_name:decode(Holder)});
answer(#op{from = From, kind = register_new}, ok, _, _S) ->
    gen_server:reply(From, {ok, self()}); % the member, as Registry's owner
answer(#op{from = From, kind = register_new}, no, Holder, _S) ->
    gen_server:reply(From, {no, regent_name:decode(Holder)});
answer(#op{from = From, kind = read_entry}, ok, Payload, _S) ->
    gen_server:reply(From, regent_proto:entry(Payload));
answer(#op{from = From, kind = set_meta_if_version}, no, Payload, _S) ->
    gen_server:reply(From, {conflict, regent_proto:entry(Payload)});
answer(#op{from = From, kind = meta_cas}, no, Value, _S) ->
    gen_server:reply(From, {conflict, binary_to_term(Value)});
answer(#op{from = From, kind = meta_cas}, not_found, _, _S) ->
    gen_server:reply(From, {conflict, absent});
answer(#op{from = From, kind = register_many}, ok, Payload, _S) ->
    gen_server:reply(From, {many, regent_proto:many_answers(Payload)});
answer(#op{from = From, kind = group_add}, no, _, _S) ->
    gen_server:reply(From, {error, full});
answer(#op{from = From, kind = group_add}, ok, _, _S) ->
    gen_server:reply(From, {ok, self()});
answer(#op{from = From, kind = Kind}, not_found, _, _S)
  when Kind =:= set_meta; Kind =:= set_meta_if_owner; Kind =:= set_meta_if_version ->
    gen_server:reply(From, {error, not_registered});
answer(#op{from = From, kind = read}, ok, <<>>, _S) ->
    gen_server:reply(From, undefined);
answer(#op{from = From, kind = read}, ok, PidBin, _S) ->
    %% As whereis_name/1: a local owner that has exited reads as gone.
    Pid = regent_name:decode(PidBin),
    Alive = node(Pid) =/= node() orelse is_process_alive(Pid),
    gen_server:reply(From, case Alive of true -> Pid; false -> undefined end);
answer(#op{from = From}, ok, _, _S) ->
    gen_server:reply(From, ok).

%% Periodic while ops are pending: callers whose deadline passed get
%% {error, unavailable} (regent exits with regent_unavailable for them).
arm_tick(#st{tick = true} = S) ->
    S;
arm_tick(S) ->
    erlang:send_after(?TICK_MS, self(), tick),
    S#st{tick = true}.

%% @private
-spec tick(#st{}) -> #st{}.
tick(#st{pending = Pending} = S) ->
    Now = ?NOW_MS(),
    Expired = [Ref || {Ref, #op{deadline = D}} <- maps:to_list(Pending),
                      D =/= infinity, D =< Now],
    [gen_server:reply(From, {error, unavailable})
     || Ref <- Expired, #op{from = From} <- [maps:get(Ref, Pending)]],
    S1 = S#st{pending = maps:without(Expired, Pending),
              outbox = S#st.outbox -- Expired},
    case map_size(S1#st.pending) of
        0 -> S1;
        _ -> arm_tick(S1)
    end.

%% ---- the leader's member: forwarded ops, and replies to route ------------

%% @private
%% On the leader's member: ops another member forwarded to us.
-spec forwarded(pid(), pos_integer(), [binary()], #st{}) -> #st{}.
forwarded(From, Origin, Ops, S) ->
    Taken = regent_peers:is_leader(S) andalso
        regent_daemon:command(S#st.port, regent_proto:fwd_ops(Origin, Ops)),
    Taken orelse
        regent_peers:send_pid(From, {replies, [{regent_proto:op_ref(Op), retry, <<>>} || Op <- Ops]}),
    S.

%% @private
%% A REPLIES frame: ops whose entry failed (RETRY, BAD).
-spec daemon_replies([{pos_integer(), pos_integer(), atom(), binary()}], #st{}) -> #st{}.
daemon_replies(Replies, #st{daemon_id = Me} = S) ->
    %% Ops forwarded to us by other members are answered through them.
    Mine = [{Ref, R, P} || {Origin, Ref, R, P} <- Replies, Origin =:= Me],
    Theirs = [R || {Origin, _, _, _} = R <- Replies, Origin =/= Me],
    route_replies(Theirs, S),
    replies(Mine, S).

%% Ops forwarded to us whose entry failed: their members retry them.
route_replies([], _S) ->
    ok;
route_replies(Replies, S) ->
    ByOrigin = maps:groups_from_list(fun({O, _, _, _}) -> O end,
                                     fun({_, Ref, R, P}) -> {Ref, R, P} end,
                                     Replies),
    maps:foreach(fun(Origin, Rs) ->
                         case regent_peers:node_of(Origin, S) of
                             undefined -> ok;
                             N -> regent_peers:send_peer(N, {replies, Rs}, S)
                         end
                 end, ByOrigin).

%% ---- leaving a cluster ---------------------------------------------------

%% @private
%% A caller's write that went to the old cluster may have been applied
%% there, and its answer would only come from that cluster's daemon under
%% our old raft id. Sending it again could apply it twice (a register
%% answered `no' although it took effect, an unregister removing a later
%% owner: found by the nemesis test), so the caller gets `unavailable',
%% which like a timeout leaves the outcome open. Reads, and our own
%% unregisters of dead owners (harmless twice), go again.
-spec give_up_sent(#st{}) -> #st{}.
give_up_sent(#st{pending = Pending, sent_upto = Upto} = S) ->
    Sent = maps:filter(fun(Ref, #op{from = From, kind = K}) ->
                               Ref =< Upto andalso K =/= read andalso K =/= read_entry andalso is_caller(From)
                       end, Pending),
    [gen_server:reply(From, {error, unavailable}) || #op{from = From} <- maps:values(Sent)],
    S#st{pending = maps:without(maps:keys(Sent), Pending)}.

is_caller({Pid, _Tag}) -> is_pid(Pid);
is_caller(_) -> false.

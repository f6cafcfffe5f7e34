%% @doc The member's mirror of the daemon's table in ETS, and the monitors
%% that turn the exits of owners into unregisters.
%%
%% change/2 applies each change the daemon streams (put, del, del_purge) to
%% the ETS table named after the registry, which `regent' reads in the
%% caller's process. Owners on this node are monitored (`owned'), and so are
%% owners on connected nodes that run no member of this registry,
%% registered through us (`watched'): when one exits, an
%% unregister-if-still-owner op goes to the outbox for each of its names.
%% After a (re)start the daemon's DUMP replaces the table (reconcile/2), and
%% then the member is synced (synced/1): held replies answered, claims made,
%% await_ready callers answered, waiting ops sent.
%%
%% Owns the fields `synced', `dump', `held', `reclaim_on_dump', `owned',
%% `watched' and `waiters'. Called by regent_daemon (APPLIED and DUMP
%% frames), regent_outbox (watch_of/3 when an op is submitted, watch/3 when
%% it is answered) and regent_member ('DOWN' messages, await_ready calls).
%% Listeners are told where change/2 applies a change (regent_events).
%% Changes of the duplicate-key table go to regent_duplicate, those of the
%% registry metadata to regent_meta; a member ignores the changes of the
%% other kind of table than its registry's.
-module(regent_mirror).

-export([dump_frame/3, changes/2, change/2, owner_down/3, reconcile/2, synced/1, await_ready/2,
         watch_of/3, watch/3, track/3, untrack/3]).

-include_lib("kernel/include/logger.hrl").
-include("regent_member.hrl").

%% @private
-spec changes([regent_proto:change()], #st{}) -> #st{}.
%% The changes of one APPLIED frame, in order. A run of puts of distinct
%% names goes into ETS in one insert, so readers see all of a
%% register_many or none of it (an ets:insert/2 of a list is atomic and
%% isolated); a run of duplicate-key removals is done key by key in one
%% pass each (regent_duplicate:del_run/2), not entry by entry.
changes([], S) ->
    S;
changes([{put, _, _, _} | _] = Cs, #st{opts = #{keys := unique}} = S) ->
    {Run, Rest} = put_run(Cs, #{}, []),
    changes(Rest, puts(Run, S));
changes([{group_del, _, _, all} | _] = Cs, #st{opts = #{keys := duplicate}} = S) ->
    {Run, Rest} = lists:splitwith(fun(C) -> element(1, C) =:= group_del andalso
                                                element(4, C) =:= all end, Cs),
    changes(Rest, regent_duplicate:del_run(Run, S));
changes([C | Rest], S) ->
    changes(Rest, change(C, S)).

put_run([{put, Key, _, _} = C | Rest], Seen, Acc) when not is_map_key(Key, Seen) ->
    put_run(Rest, Seen#{Key => true}, [C | Acc]);
put_run(Rest, _Seen, Acc) ->
    {lists:reverse(Acc), Rest}.

%% @private
-spec change(regent_proto:change(), #st{}) -> #st{}.
change(Change, S) ->
    case {table_of(Change), maps:get(keys, S#st.opts)} of
        {names, unique} -> name_change(Change, S);
        {groups, duplicate} -> regent_duplicate:change(Change, S);
        {meta, _} -> regent_meta:change(Change, S);
        _ -> S % the other kind's table: not this registry's
    end.

table_of(C) when element(1, C) =:= put; element(1, C) =:= del;
                 element(1, C) =:= del_purge -> names;
table_of(C) when element(1, C) =:= meta_put; element(1, C) =:= meta_del -> meta;
table_of(_) -> groups.

name_change({put, _, _, _} = Put, S) ->
    puts([Put], S);
name_change({del, Key}, #st{reg = Tab} = S) ->
    Name = regent_name:decode(Key),
    case ets:lookup(Tab, Name) of
        [{_, Old, OldValue}] ->
            true = ets:delete(Tab, Name),
            untrack(Old, Key, regent_events:told({unregister, Name, Old, OldValue}, S));
        [] ->
            S
    end;
name_change({del_purge, Key}, #st{reg = Tab} = S) ->
    %% Our node was seen down (a partition) while this owner lived on:
    %% claim the name back; if another live process got it meanwhile, the
    %% conflict policy decides.
    Name = regent_name:decode(Key),
    Row = ets:lookup(Tab, Name),
    S1 = name_change({del, Key}, S),
    case Row of
        [{_, Pid, Meta}] when node(Pid) =:= node() ->
            case is_process_alive(Pid) of
                true -> regent_merge:claim({Name, Pid, Meta}, S1);
                false -> S1
            end;
        _ ->
            S1
    end.

%% Puts of distinct names: one insert, then each one's monitors and events.
puts(Run, S) ->
    insert_puts(Run, fun ets:lookup/2, S).

%% puts/2 into a mirror that had none of these names before: no lookups.
fresh_puts(Run, S) ->
    insert_puts(Run, fun(_Tab, _Name) -> [] end, S).

insert_puts(Run, OldRows, #st{reg = Tab} = S) ->
    Rows = [{Key, regent_name:decode(Key), regent_name:decode(P), meta(M)}
            || {put, Key, P, M} <- Run],
    Olds = [OldRows(Tab, Name) || {_, Name, _, _} <- Rows],
    true = ets:insert(Tab, [{Name, Pid, Value} || {_, Name, Pid, Value} <- Rows]),
    lists:foldl(fun put_done/2, S, lists:zip(Rows, Olds)).

put_done({{Key, Name, Pid, Value}, Old}, S) ->
    S1 = case Old of
             [{_, Pid, _}] ->
                 regent_events:told({update, Name, Pid, Value}, S);
             [{_, OldPid, OldValue}] ->
                 S0 = regent_events:told({unregister, Name, OldPid, OldValue}, S),
                 regent_events:told({register, Name, Pid, Value}, untrack(OldPid, Key, S0));
             [] ->
                 regent_events:told({register, Name, Pid, Value}, S)
         end,
    track(Pid, Key, S1).

meta(<<>>) -> undefined;
meta(Bin) -> binary_to_term(Bin).

%% @private
%% Local owners are monitored by this member; remote ones by theirs.
-spec track(pid(), binary(), #st{}) -> #st{}.
track(Pid, Key, S) when node(Pid) =:= node() ->
    Owned = S#st.owned,
    case maps:find(Pid, Owned) of
        {ok, {MRef, Keys}} ->
            S#st{owned = Owned#{Pid := {MRef, Keys#{Key => true}}}};
        error ->
            MRef = erlang:monitor(process, Pid),
            S#st{owned = Owned#{Pid => {MRef, #{Key => true}}}}
    end;
track(_Pid, _Key, S) ->
    S.

%% @private
-spec untrack(pid(), binary(), #st{}) -> #st{}.
untrack(Pid, Key, S) ->
    Owned = S#st.owned,
    case maps:find(Pid, Owned) of
        {ok, {MRef, #{Key := _} = Keys}} when map_size(Keys) =:= 1 ->
            erlang:demonitor(MRef, [flush]),
            S#st{owned = maps:remove(Pid, Owned)};
        {ok, {MRef, Keys}} ->
            S#st{owned = Owned#{Pid := {MRef, maps:remove(Key, Keys)}}};
        error ->
            S
    end.

%% @private
-spec owner_down(reference(), pid(), #st{}) -> #st{}.
owner_down(MRef, Pid, S) ->
    case {maps:take(Pid, S#st.owned), maps:take(Pid, S#st.watched)} of
        {{{MRef, Keys}, Owned}, _} ->
            unregister_keys(Pid, Keys, S#st{owned = Owned});
        {_, {{MRef, Keys}, Watched}} ->
            unregister_keys(Pid, Keys, S#st{watched = Watched});
        _ ->
            S
    end.

unregister_keys(Pid, Keys, S) ->
    PidBin = regent_name:encode_pid(Pid),
    Unregister = case maps:get(keys, S#st.opts) of
                     unique -> fun(Key) -> {unregister_if_owner, {Key, PidBin}} end;
                     duplicate -> fun(Key) -> {group_del, {Key, PidBin, all, <<>>}} end
                 end,
    lists:foldl(fun(Key, Acc) ->
                        {Kind, Args} = Unregister(Key),
                        regent_outbox:submit(Kind, Args, internal, infinity, Acc)
                end, S, maps:keys(Keys)).

%% @private
-spec watch_of(atom(), term(), #st{}) -> {binary(), pid()} | undefined.
watch_of(register, {Key, PidBin, _, _}, #st{peers = Peers}) ->
    Pid = regent_name:decode(PidBin),
    case node(Pid) =/= node() andalso maps:get(node(Pid), Peers, #{}) of
        #{up := true, id := Id} when Id =/= 0 -> undefined; % its member watches
        false -> undefined;
        _ -> {Key, Pid}
    end;
watch_of(_, _, _) ->
    undefined.

%% @private
-spec watch(#op{}, atom(), #st{}) -> #st{}.
watch(#op{watch = {Key, Pid}}, ok, #st{watched = W} = S) ->
    case maps:find(Pid, W) of
        {ok, {MRef, Keys}} -> S#st{watched = W#{Pid := {MRef, Keys#{Key => true}}}};
        error -> S#st{watched = W#{Pid => {erlang:monitor(process, Pid), #{Key => true}}}}
    end;
watch(_Op, _Result, S) ->
    S.

%% ---- after a (re)start: the DUMP -----------------------------------------

%% @private
%% The daemon's table (a fresh start, a restart or a snapshot restore)
%% replaces the mirror. Rows are overwritten in place and only missing names
%% are deleted, so readers never see an empty table in between. Live local
%% processes whose names a daemon that started without state lacks claim
%% them again. A daemon that resumed its state, or restored a snapshot, is
%% right to lack a name: the log removed it (an unregister, a purge), and a
%% re-claim would bring back a name its owner or someone else unregistered
%% (found by the nemesis test after a kill -9 of a daemon).
-spec reconcile(#{regent_proto:table() => [regent_proto:row()]}, #st{}) -> #st{}.
reconcile(#{names := Names, groups := Groups, meta := Meta}, #st{subs = Subs} = S0) ->
    %% Subscribers are not told entry by entry: a resync tells them all.
    S1 = regent_meta:reconcile(Meta, S0#st{subs = #{}}),
    S2 = case maps:get(keys, S0#st.opts) of
             unique -> reconcile_names(Names, S1);
             duplicate -> regent_duplicate:reconcile(Groups, S1)
         end,
    regent_events:resync_all(S2#st{subs = Subs}).

reconcile_names(Rows, #st{dump_into = empty, reg = Reg} = S0) ->
    %% The frames before went in as they came (dump_frame/3): an empty
    %% mirror has nothing to drop or re-claim.
    S1 = put_rows(Rows, fun fresh_puts/2, S0),
    ?LOG_INFO("regent ~p: mirror synced with regentd: ~p names, ~p local owners monitored",
              [Reg, ets:info(Reg, size), map_size(S1#st.owned)]),
    S1#st{reclaim_on_dump = false};
reconcile_names(Rows, #st{reg = Tab, owned = Owned0, reclaim_on_dump = MayReclaim} = S0) ->
    [erlang:demonitor(MRef, [flush]) || {MRef, _} <- maps:values(Owned0)],
    Lost = lost_names(Rows, Tab),
    [true = ets:delete(Tab, Name) || {Name, _, _} <- Lost],
    [regent_events:listeners({unregister, Name, Pid, V}, S0) || {Name, Pid, V} <- Lost],
    S1 = put_rows(Rows, fun puts/2, S0#st{owned = #{}}),
    Reclaim = [Row || MayReclaim, {_, Pid, _} = Row <- Lost,
                      node(Pid) =:= node(), is_process_alive(Pid)],
    ?LOG_INFO("regent ~p: mirror synced with regentd: ~p names, ~p dropped, "
                "~p re-claimed, ~p local owners monitored",
                [S0#st.reg, length(Rows), length(Lost) - length(Reclaim),
                 length(Reclaim), map_size(S1#st.owned)]),
    lists:foldl(fun regent_merge:claim/2, S1#st{reclaim_on_dump = false}, Reclaim).

%% @private
%% A DUMP frame other than the last. Into a names mirror that was empty when
%% the DUMP began (a node that joins, a first start) its names go in at once,
%% so the member never holds the whole table as terms: a late joiner of a
%% million names spent most of its join in garbage collections of them
%% (bench scenario 8). Subscribers are not told name by name: the DUMP's end
%% resyncs them (reconcile/2). Other frames wait for the last one.
-spec dump_frame(regent_proto:table(), [regent_proto:row()], #st{}) -> #st{}.
dump_frame(Table, Rows, #st{dump_into = undefined, reg = Tab, owned = Owned} = S) ->
    Into = case maps:get(keys, S#st.opts) =:= unique andalso ets:info(Tab, size) =:= 0
                    andalso map_size(Owned) =:= 0 of
               true -> empty;
               false -> full
           end,
    dump_frame(Table, Rows, S#st{dump_into = Into});
dump_frame(names, Rows, #st{dump_into = empty, subs = Subs} = S) ->
    S1 = put_rows(Rows, fun fresh_puts/2, S#st{subs = #{}}),
    S1#st{subs = Subs};
dump_frame(Table, Rows, S) ->
    S#st{dump = [{Table, Rows} | S#st.dump]}.

%% The mirror's names that the daemon's table lacks. An empty mirror (a
%% node that joins) has none: a late joiner of a million names skipped a map
%% of them all, whose garbage collections were most of its join (bench
%% scenario 8).
lost_names(Rows, Tab) ->
    case ets:info(Tab, size) of
        0 ->
            [];
        _ ->
            Fresh = maps:from_list([{regent_name:decode(K), true} || {K, _, _} <- Rows]),
            [Row || {Name, _, _} = Row <- ets:tab2list(Tab), not is_map_key(Name, Fresh)]
    end.

%% The rows as puts, ?DUMP_CHUNK at a time: one insert per chunk (puts/2 or
%% fresh_puts/2, whose names must be distinct, as a table's are), the
%% events and monitors of each row as one by one.
-define(DUMP_CHUNK, 4096).
put_rows([], _Puts, S) ->
    S;
put_rows(Rows, Puts, S) ->
    {Chunk, Rest} = take(?DUMP_CHUNK, Rows, []),
    put_rows(Rest, Puts, Puts(Chunk, S)).

take(0, Rest, Acc) -> {Acc, Rest};
take(_, [], Acc) -> {Acc, []};
take(N, [{K, P, M} | Rest], Acc) -> take(N - 1, Rest, [{put, K, P, M} | Acc]).

%% @private
-spec synced(#st{}) -> #st{}.
synced(S0) ->
    S1 = regent_meta:start_meta(
           regent_outbox:replies(S0#st.held, S0#st{synced = true, held = [], dump = [],
                                                   dump_into = undefined})),
    S2 = lists:foldl(fun regent_merge:claim/2, S1#st{claims = []},
                     regent_merge:pending_claims(S1)),
    [gen_server:reply(W, ok) || W <- S2#st.waiters],
    regent_peers:hello_all(S2), % the leader's member promotes synced standbys
    regent_outbox:flush(S2#st{waiters = []}).

%% @private
%% regent:await_ready/2: answered at once if synced, else by synced/1.
-spec await_ready(gen_server:from(), #st{}) -> {reply, ok, #st{}} | {noreply, #st{}}.
await_ready(_From, #st{synced = true} = S) ->
    {reply, ok, S};
await_ready(From, S) ->
    {noreply, S#st{waiters = [From | S#st.waiters]}}.

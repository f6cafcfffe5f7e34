%% @doc The mirror of the duplicate-key table, for registries started with
%% `{keys, duplicate}' (process groups, pub/sub).
%%
%% regentd keeps one entry per (key, pid) with the list of values that pid
%% registered under the key (c_src/group.h); the mirror holds one
%% `{Key, Pid, Value}' row per value in the registry's `duplicate_bag', so
%% reads are Registry's. Local owners are monitored as for unique names
%% (regent_mirror:track/3): when one exits, a GROUP_DEL of all its values
%% under each key goes to the log. When a purge removes the entries of a
%% node that was only cut off, its live processes add them back on heal:
%% duplicates never conflict. Writes the mirror's fields `owned' (through
%% regent_mirror) and nothing of its own.
-module(regent_duplicate).

-export([change/2, del_run/2, reconcile/2]).

-include_lib("kernel/include/logger.hrl").
-include("regent_member.hrl").

%% @private
-spec change(regent_proto:change(), #st{}) -> #st{}.
change({group_add, Key, PidBin, ValueBin}, #st{reg = Tab} = S) ->
    Name = regent_name:decode(Key),
    Pid = regent_name:decode(PidBin),
    Value = binary_to_term(ValueBin),
    true = ets:insert(Tab, {Name, Pid, Value}),
    regent_mirror:track(Pid, Key, regent_events:told({register, Name, Pid, Value}, S));
change({group_del, Key, PidBin, Which}, S) ->
    Name = regent_name:decode(Key),
    Pid = regent_name:decode(PidBin),
    Gone = case Which of
               all -> fun(_) -> true end;
               ValueBin -> Value = binary_to_term(ValueBin), fun(V) -> V =:= Value end
           end,
    {_, S1} = remove(Name, Key, Pid, Gone, S),
    S1;
change({group_del_purge, Key, PidBin}, S) ->
    %% Our node was seen down while this process lived on (a partition):
    %% its entries come back, and nobody else can hold them.
    Name = regent_name:decode(Key),
    Pid = regent_name:decode(PidBin),
    {Removed, S1} = remove(Name, Key, Pid, fun(_) -> true end, S),
    case node(Pid) =:= node() andalso is_process_alive(Pid) of
        true -> add_back(Key, Pid, Removed, S1);
        false -> S1
    end.

%% Removes Pid's rows under Name whose value passes Gone; the rows of one
%% key are all looked at, so the cost grows with the size of the group.
remove(Name, Key, Pid, Gone, #st{reg = Tab} = S) ->
    Mine = [Row || {_, P, _} = Row <- ets:lookup(Tab, Name), P =:= Pid],
    {Removed, Kept} = lists:partition(fun({_, _, V}) -> Gone(V) end, Mine),
    %% delete_object removes every copy of a row, and equal values go
    %% together (GROUP_DEL removes all copies of a value).
    [true = ets:delete_object(Tab, Row) || Row <- lists:usort(Removed)],
    {[V || {_, _, V} <- Removed], removed(Name, Key, Pid, Removed, Kept =:= [], S)}.

%% The events of removed rows, and the monitor's bookkeeping when Pid has
%% none left under the key: listeners hear once, when the last goes.
removed(_Name, _Key, _Pid, [], _AllGone, S) ->
    S;
removed(Name, Key, Pid, Removed, AllGone, S) ->
    S1 = lists:foldl(fun({_, _, V}, Acc) ->
                             regent_events:changed({unregister, Name, Pid, V}, Acc)
                     end, S, Removed),
    case AllGone of
        true ->
            {_, _, V} = hd(Removed),
            regent_events:listeners({unregister, Name, Pid, V}, S1),
            regent_mirror:untrack(Pid, Key, S1);
        false ->
            S1
    end.

%% @private
%% A run of GROUP_DEL (all) changes, typically the cleanup of many exited
%% processes committed together: each key's rows are gone through once for
%% all of the run's pids under it, rather than once per pid, which made
%% the death of a whole group quadratic in its size (3.6 s for 10,000
%% members of one key, found by the benchmark).
-spec del_run([regent_proto:change()], #st{}) -> #st{}.
del_run(Run, S) ->
    ByName = lists:foldl(fun({group_del, Key, PidBin, all}, Acc) ->
                                 maps:update_with(Key, fun(Ps) -> [PidBin | Ps] end,
                                                  [PidBin], Acc)
                         end, #{}, Run),
    maps:fold(fun del_pids/3, S, ByName).

del_pids(Key, PidBins, #st{reg = Tab} = S) ->
    Name = regent_name:decode(Key),
    Pids = maps:from_list([{regent_name:decode(P), true} || P <- PidBins]),
    Rows = [Row || {_, P, _} = Row <- ets:lookup(Tab, Name), is_map_key(P, Pids)],
    delete_rows(Tab, Name, Pids, Rows),
    ByPid = lists:foldl(fun({_, P, _} = R, Acc) ->
                                maps:update_with(P, fun(L) -> [R | L] end, [R], Acc)
                        end, #{}, Rows),
    maps:fold(fun(Pid, Removed, Acc) -> removed(Name, Key, Pid, Removed, true, Acc) end,
              S, ByPid).

%% One pass over the key's rows with a match specification when the name
%% can stand in a pattern as itself (no '_' or '$'-atoms in it); row by row
%% otherwise.
delete_rows(Tab, Name, Pids, Rows) ->
    case literal(Name) of
        true ->
            ets:select_delete(Tab, [{{Name, '$1', '_'}, [{is_map_key, '$1', {const, Pids}}],
                                     [true]}]);
        false ->
            [true = ets:delete_object(Tab, Row) || Row <- lists:usort(Rows)]
    end,
    ok.

literal(A) when is_atom(A) ->
    case atom_to_list(A) of
        "_" -> false;
        [$$ | _] -> false;
        _ -> true
    end;
literal(T) when is_tuple(T) -> lists:all(fun literal/1, tuple_to_list(T));
literal([H | T]) -> literal(H) andalso literal(T);
literal(M) when is_map(M) -> literal(maps:to_list(M));
literal(_) -> true.

add_back(Key, Pid, Values, S) ->
    PidBin = regent_name:encode_pid(Pid),
    lists:foldl(fun(V, Acc) ->
                        Args = {Key, PidBin, regent_write:value_bytes(value, V)},
                        regent_outbox:submit(group_add, Args, internal, infinity, Acc)
                end, S, Values).

%% @private
%% The daemon's table replaces the mirror, key by key: a key whose rows did
%% not change is not touched, so readers see no gap there. Live local
%% processes whose entries a daemon that started without state lacks add
%% them back (as regent_mirror:reconcile/2 re-claims names).
-spec reconcile([regent_proto:row()], #st{}) -> #st{}.
reconcile(Entries, #st{reg = Tab, owned = Owned0, reclaim_on_dump = MayReclaim} = S0) ->
    [erlang:demonitor(MRef, [flush]) || {MRef, _} <- maps:values(Owned0)],
    Fresh = group_by_name([{regent_name:decode(K), regent_name:decode(P), V}
                           || {K, P, List} <- Entries, V <- values(List)]),
    Old = group_by_name(ets:tab2list(Tab)),
    [begin
         true = ets:delete(Tab, Name),
         true = ets:insert(Tab, Rows)
     end || {Name, Rows} <- maps:to_list(Fresh), lists:sort(Rows) =/= maps:get(Name, Old, [])],
    [true = ets:delete(Tab, Name) || Name <- maps:keys(Old), not is_map_key(Name, Fresh)],
    S1 = lists:foldl(fun({K, P, _}, Acc) -> regent_mirror:track(regent_name:decode(P), K, Acc) end,
                     S0#st{owned = #{}}, Entries),
    Lost = [Row || MayReclaim, {Name, Pid, _} = Row <- lists:append(maps:values(Old)),
                   node(Pid) =:= node(), is_process_alive(Pid),
                   not lists:keymember(Pid, 2, maps:get(Name, Fresh, []))],
    ?LOG_INFO("regent ~p: mirror synced with regentd: ~p duplicate-key entries, ~p added back",
              [S0#st.reg, ets:info(Tab, size), length(Lost)]),
    lists:foldl(fun({Name, Pid, V}, Acc) ->
                        add_back(regent_write:key(name, Name), Pid, [V], Acc)
                end, S1#st{reclaim_on_dump = false}, Lost).

group_by_name(Rows) ->
    maps:map(fun(_, Rs) -> lists:sort(Rs) end,
             lists:foldl(fun({Name, _, _} = R, Acc) ->
                                 maps:update_with(Name, fun(L) -> [R | L] end, [R], Acc)
                         end, #{}, Rows)).

%% A value list: [u32 len][bytes] per value (c_src/group.h).
values(<<>>) -> [];
values(<<L:32, V:L/binary, Rest/binary>>) -> [binary_to_term(V) | values(Rest)].

%% The history checker of the nemesis test (regent_nemesis): from what the
%% clients saw, what the nemesis did and the tables at the end, it says
%% where regent broke its contract. Pure: records in, violations out.
%%
%% Times are one clock (the controller's monotonic µs). An op is
%%   #{f := register | unregister | read | lookup | kill | incr, name := term(),
%%     pid := pid() (register: the new owner; kill: the victim),
%%     invoke := T, complete := T, result := term() | {error, term()}}
%% and an `{error, _}' result is indeterminate (but for an incr's
%% not_registered and conflict): the op may take effect at any time after
%% its invocation, or never. A risk is a window in which the
%% nemesis may have made the registry purge the names of a node's processes
%% (the node halted, or was cut off from the voters' majority):
%%   #{node := node(), from := T, to := T | infinity}.
%%
%% The checks (docs/testing.md), per name:
%% - two_owners: a `yes' for P2 invoked after a `yes' for P1 completed,
%%   although nothing could have ended P1's ownership before P2's `yes'
%%   completed (P1's kill, an unregister of the name, a purge risk of P1's
%%   node);
%% - stale_read: a consistent read missed an owner that must have held the
%%   name throughout the read;
%% - unknown_pid: a read or lookup returned a pid no registration of that
%%   name could have put there;
%% - resurrected: a consistent read returned an owner after an acknowledged
%%   unregister removed it, with no purge risk that could explain a re-claim;
%% - lost: an acknowledged `yes' whose owner nothing could have ended is not
%%   in a node's final table;
%% - diverged / dead_owner: the final tables differ between nodes, or hold
%%   a dead process;
%% - membership: the leader's configuration at the end misses a live member,
%%   keeps a dead server as a voter, or has other than min(voters, live
%%   members) voters.
%%
%% Counters (a name registered with metadata 0, then only incremented by
%% regent:update_metadata/2 calls recorded as `incr' ops, result `{ok,
%% New}', `{error, not_registered | {conflict, N}}' (no effect) or any
%% other `{error, _}' (indeterminate)), with the final values in
%% `counters => #{Name => #{node() => integer() | undefined}}':
%% - lost_increment: a node's final value is below the number of `{ok, _}'
%%   answers, or below the largest `New' acknowledged;
%% - extra_increment: a node's final value is above the `{ok, _}' answers
%%   plus the indeterminate calls;
%% - duplicate_increment: two calls were answered `{ok, New}' with the same
%%   `New';
%% - stale_read: also an `{error, not_registered}' answered while an owner
%%   held the name throughout the call.
%%
%% Subscriptions (check/4): each subscriber's log, the messages it got in
%% order (`{resync, Index, Entries}', `{event, Index, Event}', then maybe
%% `{member_down, Why}', `{subscribe_failed, Why}', or `{flushed, Applied}'
%% when it was drained after the final tables were taken and after its
%% member had applied the log up to `Applied'). A segment is a resync and
%% the events after it up to the next resync or the end of the log; it
%% covers the indices above the resync's up to its last event's, that last
%% one only partly (the subscriber may have been cut off in the middle of
%% an entry), or, when the log ends in `flushed', fully up to the larger
%% of its last event's index and `Applied'.
%% - missing_resync: an event before the subscription's first resync;
%% - reordered_event: within a segment an event's index is below an
%%   earlier event's or not above the resync's; or two segments covering
%%   an index got its events in different orders;
%% - duplicate_event: within a segment the same (index, event) twice, or
%%   one segment got an event of an index more often than another;
%% - lost_event: a segment covering an index lacks an event of that index
%%   that another segment covering it got;
%% - event_mismatch: an event that does not apply to the table built from
%%   the segment's resync and its events before it (a register of a name
%%   held, an update or unregister of a name not held by that pid, or with
%%   another value for an unregister);
%% - resync_mismatch: a resync's entries at index I differ from the table
%%   of another segment that covers I (its resync's entries plus its events
%%   up to I);
%% - final_mismatch: a drained subscriber's table at the end (names and
%%   pids) differs from its node's final table.
%%
%% Supervised children (`children' in the final state): two_instances and
%% lost_child, in regent_history_sup.
-module(regent_history).

-export([check/3, check/4, describe/1]).

-define(INF, infinity).
%% A purge decided while a cut lasted may commit a little after the heal.
-define(PURGE_GRACE_US, 10000000).

-type time() :: integer() | infinity.
-type op() :: #{f := register | unregister | read | lookup | kill | incr,
                name => term(), pid => pid(), node => node(),
                invoke := integer(), complete := integer(), result := term()}.
-type risk() :: #{node := node(), from := integer(), to := time()}.
-type final() :: #{tables := #{node() => [{term(), pid()}]}, dead := [pid()],
                   membership => #{members := [{term(), atom()}], live := [node()],
                                   voters := pos_integer()},
                   counters => #{term() => #{node() => integer() | undefined}}}.
-type violation() :: {atom(), term(), map()}.
-type event() :: {register | update | unregister, term(), pid(), term()}.
-type sub_msg() :: {resync, non_neg_integer(), [{term(), pid(), term()}]}
                 | {event, non_neg_integer(), event()}
                 | {member_down, term()} | {subscribe_failed, term()}
                 | {flushed, non_neg_integer()}.
-type sub_log() :: #{sub := term(), node => node(), log := [sub_msg()]}.
-export_type([op/0, risk/0, final/0, violation/0, sub_log/0]).

%% @doc check/4 without subscriptions.
-spec check([op()], [risk()], final()) -> [violation()].
check(Ops, Risks, Final) ->
    check(Ops, Risks, Final, []).

%% @doc Every violation found; `[]' if the history keeps the contract.
-spec check([op()], [risk()], final(), [sub_log()]) -> [violation()].
check(Ops, Risks, Final, Subs) ->
    Kills = kill_times(Ops),
    ByName = by_name([Op || #{f := F} = Op <- Ops, F =/= kill]),
    lists:append([check_name(Name, NameOps, Kills, Risks, Final)
                  || {Name, NameOps} <- maps:to_list(ByName)])
        ++ check_final(Final)
        ++ subscriptions(Subs, Final)
        ++ children(Final).

%% Supervised children (regent_history_sup), when the run had them.
children(#{children := #{events := Events} = C}) -> regent_history_sup:check(Events, C);
children(_) -> [].

%% @doc One line per violation, for logs.
-spec describe(violation()) -> iolist().
describe({Kind, Name, Detail}) ->
    io_lib:format("~p on ~p: ~p", [Kind, Name, Detail]).

%% ---- per name ------------------------------------------------------------

check_name(Name, Ops, Kills, Risks, Final) ->
    Unregs = [U || #{f := unregister} = U <- Ops],
    Regs = [R || #{f := register} = R <- Ops],
    %% Acknowledged yes, each with the earliest time its ownership may end.
    Yes = [{R, earliest_end(R, Unregs, Kills, Risks)}
           || #{result := yes} = R <- Regs],
    two_owners(Name, Yes)
        ++ reads(Name, Ops, Regs, Yes, Unregs, Risks)
        ++ lost(Name, Yes, Final)
        ++ counter(Name, [I || #{f := incr} = I <- Ops], Yes, Final).

%% The earliest moment anything may have ended R's ownership: its owner's
%% kill, an unregister that may take effect after R, or a purge risk of the
%% owner's node that overlaps R's life.
earliest_end(#{pid := P, invoke := I}, Unregs, Kills, Risks) ->
    KillT = maps:get(P, Kills, ?INF),
    UnregT = [U0 || #{invoke := U0} = U <- Unregs, effect_until(U) > I],
    RiskT = [max(From, I) || #{node := N, from := From} = W <- Risks,
                             N =:= node(P), risk_until(W) > I],
    lists:min([KillT | UnregT ++ RiskT]).

two_owners(Name, Yes) ->
    [{two_owners, Name, #{first => R1, second => R2, first_may_end => E1}}
     || {#{pid := P1, complete := C1} = R1, E1} <- Yes,
        {#{pid := P2, invoke := I2, complete := C2} = R2, _} <- Yes,
        P1 =/= P2, I2 > C1, not lt(E1, C2)].

reads(Name, Ops, Regs, Yes, Unregs, Risks) ->
    lists:append(
      [read(Name, Op, Regs, Yes, Unregs, Risks)
       || #{f := F, result := V} = Op <- Ops, F =:= read orelse F =:= lookup,
          not is_error(V)]).

%% Lookups are local reads, so only consistent reads are held to the
%% stale and resurrected checks.
read(Name, #{f := read} = Op, Regs, Yes, Unregs, Risks) ->
    unknown_pid(Name, Op, Regs) ++ stale_read(Name, Op, Yes)
        ++ resurrected(Name, Op, Yes, Unregs, Risks);
read(Name, #{f := lookup} = Op, Regs, _Yes, _Unregs, _Risks) ->
    unknown_pid(Name, Op, Regs).

%% A pid read back must come from a registration of this name that was not
%% refused and started before the read ended.
unknown_pid(_Name, #{result := undefined}, _Regs) ->
    [];
unknown_pid(Name, #{result := V, complete := C} = Op, Regs) ->
    case [R || #{pid := P, invoke := I, result := Res} = R <- Regs,
               P =:= V, I < C, Res =/= no] of
        [] -> [{unknown_pid, Name, #{read => Op}}];
        _ -> []
    end.

%% An owner that held the name from before the read began until after it
%% ended must be what the read returned.
stale_read(Name, #{result := V, invoke := I, complete := C} = Op, Yes) ->
    [{stale_read, Name, #{read => Op, must_see => R, may_end => E}}
     || {#{pid := P, complete := RC} = R, E} <- Yes,
        RC < I, not lt(E, C), P =/= V].

%% An owner removed by an acknowledged unregister (invoked after its `yes')
%% before the read began cannot be read back, unless its node was at risk
%% of a purge, after which a member re-claims what it held.
resurrected(_Name, #{result := undefined}, _Yes, _Unregs, _Risks) ->
    [];
resurrected(Name, #{result := V, invoke := I} = Op, Yes, Unregs, Risks) ->
    [{resurrected, Name, #{read => Op, registered => R, unregistered => U}}
     || {#{pid := P, complete := RC} = R, _} <- Yes, P =:= V,
        #{invoke := UI, complete := UC, result := ok} = U <- Unregs,
        UI > RC, UC < I,
        not lists:any(fun(#{node := N} = W) ->
                              N =:= node(P) andalso maps:get(from, W) < I
                                  andalso risk_until(W) > RC
                      end, Risks)].

%% Acknowledged and never possibly ended: it must be in every final table.
lost(Name, Yes, #{tables := Tables}) ->
    [{lost, Name, #{registered => R, node => Node, found => found(Name, Rows)}}
     || {#{pid := P} = R, ?INF} <- Yes,
        {Node, Rows} <- maps:to_list(Tables),
        found(Name, Rows) =/= P].

found(Name, Rows) ->
    case lists:keyfind(Name, 1, Rows) of
        {_, Pid} -> Pid;
        false -> undefined
    end.

%% ---- counters ----------------------------------------------------------------

counter(_Name, [], _Yes, _Final) ->
    [];
counter(Name, Incrs, Yes, Final) ->
    Acks = [New || #{result := {ok, New}} <- Incrs],
    Indet = length([I || #{result := R} = I <- Incrs, indeterminate_incr(R)]),
    Ok = length(Acks),
    MaxAck = lists:max([0 | Acks]),
    Values = maps:get(Name, maps:get(counters, Final, #{}), #{}),
    Bounds = #{acknowledged => Ok, indeterminate => Indet, max_acknowledged => MaxAck},
    [{lost_increment, Name, Bounds#{node => N, value => V}}
     || {N, V} <- lists:sort(maps:to_list(Values)),
        Ok > 0 orelse is_integer(V),
        not is_integer(V) orelse V < Ok orelse V < MaxAck]
        ++ [{extra_increment, Name, Bounds#{node => N, value => V}}
            || {N, V} <- lists:sort(maps:to_list(Values)),
               is_integer(V), V > Ok + Indet]
        ++ duplicate_acks(Name, lists:sort([{New, I} || #{result := {ok, New}} = I <- Incrs]))
        %% The name's owner could not have lost it: not_registered is a
        %% consistent read that missed it.
        ++ [{stale_read, Name, #{update => I, must_see => R, may_end => E}}
            || #{result := {error, not_registered}, invoke := II, complete := IC} = I <- Incrs,
               {#{complete := RC} = R, E} <- Yes, RC < II, not lt(E, IC)].

duplicate_acks(Name, [{New, A}, {New, B} | Rest]) ->
    [{duplicate_increment, Name, #{new => New, first => A, second => B}}
     | duplicate_acks(Name, [{New, B} | Rest])];
duplicate_acks(Name, [_ | Rest]) ->
    duplicate_acks(Name, Rest);
duplicate_acks(_Name, []) ->
    [].

%% Neither written for sure ({ok, _}) nor surely not (not_registered, or a
%% conflict on every attempt): an exception, e.g. regent_unavailable or a
%% timeout.
indeterminate_incr({ok, _}) -> false;
indeterminate_incr({error, not_registered}) -> false;
indeterminate_incr({error, {conflict, N}}) when is_integer(N) -> false;
indeterminate_incr(_) -> true.

%% ---- subscriptions -------------------------------------------------------------

subscriptions([], _Final) ->
    [];
subscriptions(Subs, Final) ->
    {Segs, Orphans} = lists:foldl(fun(Sub, {SAcc, OAcc}) ->
                                          {Ss, Os} = segments(Sub),
                                          {SAcc ++ Ss, OAcc ++ Os}
                                  end, {[], []}, Subs),
    Checked = [{Seg, seg_order(Seg)} || Seg <- Segs],
    Resyncs = [{R, Es, Id} || #{r := R, entries := Es, id := Id} <- Segs],
    Orphans
        ++ lists:append([Vs || {_, Vs} <- Checked])
        %% A segment that is out of order says nothing sure about the
        %% table it builds.
        ++ lists:append([seg_state(Seg, Resyncs, Final) || {Seg, []} <- Checked])
        ++ by_index(Segs).

%% A log cut into segments, each a map: id, sub, node, r (the resync's
%% index), entries, events ([{Index, Event}] in arrival order), last (the
%% highest index it covers: its events', or the applied index it was
%% drained at if that is higher), complete (the log ends in `flushed'
%% after it: last is fully covered) and by_index (Index => its events in
%% order).
segments(#{sub := Sub, log := Log} = L) ->
    Node = maps:get(node, L, undefined),
    Complete = case lists:last([none | Log]) of
                   {flushed, Applied} -> Applied;
                   _ -> false
               end,
    split(Log, Sub, Node, Complete, 0, undefined, [], []).

split([{resync, R, Es} | Rest], Sub, Node, Complete, N, Cur, Segs, Orph) ->
    New = #{id => {Sub, N + 1}, sub => Sub, node => Node, r => R, entries => Es, events => []},
    split(Rest, Sub, Node, Complete, N + 1, New, close(Cur, false, Segs), Orph);
split([{event, I, E} | Rest], Sub, Node, Complete, N, undefined, Segs, Orph) ->
    V = {missing_resync, key(E), #{sub => Sub, index => I, event => E}},
    split(Rest, Sub, Node, Complete, N, undefined, Segs, [V | Orph]);
split([{event, I, E} | Rest], Sub, Node, Complete, N, #{events := Evs} = Cur, Segs, Orph) ->
    split(Rest, Sub, Node, Complete, N, Cur#{events := [{I, E} | Evs]}, Segs, Orph);
split([_ | Rest], Sub, Node, Complete, N, Cur, Segs, Orph) ->
    split(Rest, Sub, Node, Complete, N, Cur, Segs, Orph);
split([], _Sub, _Node, Complete, _N, Cur, Segs, Orph) ->
    {lists:reverse(close(Cur, Complete, Segs)), lists:reverse(Orph)}.

close(undefined, _Complete, Segs) ->
    Segs;
close(#{r := R, events := Rev} = Seg, Complete, Segs) ->
    Evs = lists:reverse(Rev),
    ByIndex = lists:foldl(fun({I, E}, Acc) ->
                                  maps:update_with(I, fun(L) -> [E | L] end, [E], Acc)
                          end, #{}, Rev),
    Last = lists:max([R | [I || {I, _} <- Evs]]),
    [Seg#{events := Evs, by_index => ByIndex, complete => Complete =/= false,
          last => case Complete of false -> Last; Applied -> max(Last, Applied) end} | Segs].

%% Within a segment: indices never go down, none at or below the resync's,
%% no (index, event) twice.
seg_order(#{r := R, events := Evs, sub := Sub}) ->
    {_, _, Vs} =
        lists:foldl(
          fun({I, E} = IE, {Prev, Seen, Acc}) ->
                  Order = if I =< R ->
                                  [{reordered_event, key(E), #{sub => Sub, index => I, event => E,
                                                               not_above_resync => R}}];
                             I < Prev ->
                                  [{reordered_event, key(E), #{sub => Sub, index => I, event => E,
                                                               after_index => Prev}}];
                             true -> []
                          end,
                  Dup = [{duplicate_event, key(E), #{sub => Sub, index => I, event => E}}
                         || is_map_key(IE, Seen)],
                  {max(Prev, I), Seen#{IE => true}, Dup ++ Order ++ Acc}
          end, {R, #{}, []}, Evs),
    lists:reverse(Vs).

%% The table a segment builds, event by event from its resync's entries:
%% each event must apply to it; where the segment fully covers another
%% segment's resync index, the table must be that resync's entries; a
%% drained subscriber's table must end as its node's final table.
seg_state(#{id := Id, r := R, last := Last, complete := Complete, entries := Es,
            events := Evs} = Seg, Resyncs, Final) ->
    Points = lists:sort([P || {R1, _, Id1} = P <- Resyncs, Id1 =/= Id,
                              (R1 =:= R andalso Id1 > Id) orelse (R1 > R andalso R1 < Last)
                                  orelse (R1 > R andalso R1 =:= Last andalso Complete)]),
    Table = maps:from_list([{K, {P, V}} || {K, P, V} <- Es]),
    replay(Evs, Table, Points, Seg, Final).

replay([{I, E} | Rest], Table, [{R1, _, _} = P | Points], Seg, Final) when R1 < I ->
    point(P, Table, Seg) ++ replay([{I, E} | Rest], Table, Points, Seg, Final);
replay([{I, E} | Rest], Table, Points, #{sub := Sub} = Seg, Final) ->
    case apply_event(E, Table) of
        {ok, Table1} ->
            replay(Rest, Table1, Points, Seg, Final);
        error ->
            %% The table is unknown from here on.
            [{event_mismatch, key(E), #{sub => Sub, index => I, event => E,
                                        held => maps:get(key(E), Table, none)}}]
    end;
replay([], Table, Points, #{sub := Sub, node := Node, complete := Complete} = Seg, Final) ->
    lists:append([point(P, Table, Seg) || P <- Points])
        ++ case Complete andalso maps:find(Node, maps:get(tables, Final, #{})) of
               {ok, Rows} ->
                   Mine = lists:sort([{K, P} || {K, {P, _}} <- maps:to_list(Table)]),
                   [{final_mismatch, all, #{sub => Sub, node => Node, subscriber => Mine,
                                            table => lists:sort(Rows)}}
                    || Mine =/= lists:sort(Rows)];
               _ ->
                   []
           end.

point({R1, Es1, Id1}, Table, #{id := Id}) ->
    Mine = lists:sort([{K, P, V} || {K, {P, V}} <- maps:to_list(Table)]),
    case lists:sort(Es1) of
        Mine -> [];
        Theirs -> [{resync_mismatch, all, #{index => R1, resync_of => Id1, entries => Theirs,
                                            table_of => Id, table => Mine}}]
    end.

apply_event({register, K, P, V}, Table) ->
    case is_map_key(K, Table) of
        true -> error;
        false -> {ok, Table#{K => {P, V}}}
    end;
apply_event({update, K, P, V}, Table) ->
    case Table of
        #{K := {P, _}} -> {ok, Table#{K := {P, V}}};
        _ -> error
    end;
apply_event({unregister, K, P, V}, Table) ->
    case Table of
        #{K := {P, V}} -> {ok, maps:remove(K, Table)};
        _ -> error
    end;
apply_event(_, _Table) ->
    error.

%% Across segments: every segment that covers an index got the same events
%% for it, in the same order; one that covers the index only partly (its
%% last, unless drained) got a prefix of them.
by_index(Segs) ->
    Indices = lists:usort(lists:append([maps:keys(B) || #{by_index := B} <- Segs])),
    Spans = [{R, Last, Complete, Seg} || #{r := R, last := Last, complete := Complete} = Seg <- Segs,
                                         Last > R],
    lists:append([index(I, [{Seg, Full} || {R, Last, Complete, Seg} <- Spans,
                                           R < I, I =< Last,
                                           Full <- [I < Last orelse Complete]])
                  || I <- Indices]).

index(_I, [_]) ->
    [];
index(I, Covering) ->
    Seqs = [{maps:get(I, B, []), Full, Sub} || {#{by_index := B, sub := Sub}, Full} <- Covering],
    Fulls = [Seq || {Seq, true, _} <- Seqs],
    Ref = case Fulls of
              [] -> longest([Seq || {Seq, _, _} <- Seqs]);
              _ -> most_common(Fulls)
          end,
    RefSubs = [Sub || {Seq, _, Sub} <- Seqs, Seq =:= Ref],
    lists:append([differ(I, Seq, Full, Ref, Sub, RefSubs) || {Seq, Full, Sub} <- Seqs, Seq =/= Ref]).

%% Seq (of Sub) against the reference sequence Ref at index I.
differ(I, Seq, false, Ref, Sub, RefSubs) ->
    Prefix = lists:sublist(Ref, length(Seq)),
    case Seq =:= Prefix of
        true -> [];
        false when length(Seq) > length(Ref) -> differ(I, Seq, true, Ref, Sub, RefSubs);
        false -> differ(I, Seq, true, Prefix, Sub, RefSubs)
    end;
differ(I, Seq, true, Ref, Sub, RefSubs) ->
    Detail = #{index => I, sub => Sub, got => Seq, others => RefSubs, they_got => Ref},
    case lists:sort(Seq) =:= lists:sort(Ref) of
        true ->
            [{reordered_event, key(hd(Seq)), Detail}];
        false ->
            [{case lists:member(E, Ref) of true -> duplicate_event; false -> lost_event end,
              key(E), Detail#{event => E, missing_from => RefSubs}} || E <- Seq -- Ref]
                ++ [{case lists:member(E, Seq) of true -> duplicate_event; false -> lost_event end,
                     key(E), Detail#{event => E, missing_from => [Sub]}} || E <- Ref -- Seq]
    end.

most_common(Seqs) ->
    Counts = lists:foldl(fun(S, Acc) -> maps:update_with(S, fun(C) -> C + 1 end, 1, Acc) end,
                         #{}, Seqs),
    {_, Best} = lists:max([{C, S} || {S, C} <- maps:to_list(Counts)]),
    Best.

longest(Seqs) ->
    {_, Best} = lists:max([{length(S), S} || S <- Seqs]),
    Best.

key({_, K, _, _}) -> K;
key(_) -> unknown.

%% ---- the final state -------------------------------------------------------

check_final(#{tables := Tables, dead := Dead} = Final) ->
    Sorted = [{N, lists:sort(Rows)} || {N, Rows} <- maps:to_list(Tables)],
    Diverged = case lists:usort([Rows || {_, Rows} <- Sorted]) of
                   [] -> [];
                   [_] -> [];
                   _ -> [{diverged, all, maps:from_list(Sorted)}]
               end,
    Diverged ++ [{dead_owner, Name, #{node => N, pid => P}}
                 || {N, Rows} <- Sorted, {Name, P} <- Rows, lists:member(P, Dead)]
        ++ membership(Final).

%% After the last heal the leader's configuration holds every live member,
%% no dead server votes, and there are min(voters, live members) voters.
%% Members are as regent:get_members/1 gives them: {{Node, Reg}, Role} for a
%% server whose member it knows, {{raft_id, Id}, Role} for one it does not.
membership(#{membership := #{members := Ms, live := Live, voters := Want}}) ->
    InConfig = [N || {{N, _}, _} <- Ms, is_atom(N)],
    Missing = Live -- InConfig,
    DeadVoters = [M || {M, voter} <- Ms, not is_live(M, Live)],
    Voters = length([V || {_, voter} = V <- Ms]),
    Expected = min(Want, length(Live)),
    Wrong = Missing =/= [] orelse DeadVoters =/= [] orelse Voters =/= Expected,
    [{membership, all, #{missing => Missing, dead_voters => DeadVoters,
                         voters => Voters, expected_voters => Expected,
                         members => Ms}} || Wrong];
membership(_) ->
    [].

is_live({N, _}, Live) when is_atom(N) -> lists:member(N, Live);
is_live(_, _) -> false.

%% ---- helpers --------------------------------------------------------------

kill_times(Ops) ->
    lists:foldl(fun(#{f := kill, pid := P, invoke := I}, Acc) ->
                        maps:update_with(P, fun(T) -> min(T, I) end, I, Acc);
                   (_, Acc) -> Acc
                end, #{}, Ops).

by_name(Ops) ->
    lists:foldl(fun(#{name := N} = Op, Acc) ->
                        maps:update_with(N, fun(L) -> [Op | L] end, [Op], Acc)
                end, #{}, Ops).

%% Until when an op may still take effect.
effect_until(#{result := R, complete := C}) ->
    case is_error(R) of
        true -> ?INF;
        false -> C
    end.

risk_until(#{to := ?INF}) -> ?INF;
risk_until(#{to := T}) -> T + ?PURGE_GRACE_US.

is_error({error, _}) -> true;
is_error(_) -> false.

%% Strictly less, with infinity above every integer.
lt(_, ?INF) -> true;
lt(?INF, _) -> false;
lt(A, B) -> A < B.

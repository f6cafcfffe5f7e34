%% A linearizability checker for the nemesis's histories (issue 17): a
%% Wing–Gong search with Lowe's memoisation (as Knossos and Porcupine do),
%% name by name, over a model of a register with an owner. Pure: ops in,
%% verdicts out. Complete for what it models, where regent_history's rules
%% are sound but not complete.
%%
%% Ops are regent_history's (`#{f, name, pid, node, invoke, complete,
%% result}'). Per name, the model's state is `{Owner, Dead, Meta}':
%%   - register(P): `yes' when there is no owner, P owns it already, or the
%%     owner is dead (regent replaces a dead holder); then P owns it.
%%     `no' when another pid owns it;
%%   - unregister: `ok', and nobody owns it;
%%   - read (whereis_name_consistent): the owner; `undefined' also for a
%%     dead owner on the reading node (the member filters its own dead);
%%   - incr (update_metadata/2 on the counter): `{ok, Meta + 1}' while
%%     owned; `{error, not_registered}' when not; `{error, {conflict, _}}'
%%     changes nothing;
%%   - kill(P) at its time: the owner, if P, is dead from then on.
%% An op whose result is any other `{error, _}' is indeterminate: it takes
%% effect once at any point after its invocation, or never (as Jepsen's
%% `info'). So do two kinds of internal step, which no client calls:
%% the cleanup of a killed owner (after its kill), and, for each purge risk
%% of a node (regent_history's risks), the purge of a pid of that node and
%% its later re-claim.
%%
%% The search gives up on a name after ?BUDGET states or ?BUDGET_MS ms,
%% which counts as `unknown', not as a violation; check/2 reports which.
-module(regent_linearizable).

-export([check/2, check_name/3]).

-define(INF, infinity).
-define(INF_US, 1 bsl 62).
-define(BUDGET, 200000).
-define(BUDGET_MS, 2000).
%% As regent_history: a purge decided during a cut may commit this long
%% after the heal.
-define(PURGE_GRACE_US, 10000000).

%% @doc `{Violations, #{names, unknown, ms}}' over every name's history.
-spec check([map()], [map()]) -> {[regent_history:violation()], map()}.
check(Ops, Risks) ->
    T0 = erlang:monotonic_time(millisecond),
    Kills = [K || #{f := kill} = K <- Ops],
    ByName = lists:foldl(fun(#{f := F, name := N} = Op, Acc) when F =/= lookup, F =/= kill ->
                                 maps:update_with(N, fun(L) -> [Op | L] end, [Op], Acc);
                            (_, Acc) -> Acc
                         end, #{}, Ops),
    Verdicts = [{Name, check_name(NameOps, Kills, Risks)} || {Name, NameOps} <- maps:to_list(ByName)],
    Violations = [{not_linearizable, Name, Why} || {Name, {violation, Why}} <- Verdicts],
    Unknown = [Name || {Name, unknown} <- Verdicts],
    {Violations, #{names => length(Verdicts), unknown => Unknown,
                   ms => erlang:monotonic_time(millisecond) - T0}}.

%% @doc One name's history: `ok', `{violation, Info}' or `unknown'.
-spec check_name([map()], [map()], [map()]) -> ok | {violation, map()} | unknown.
check_name(NameOps, Kills, Risks) ->
    %% Only a pid whose register was not refused can have owned the name.
    Regs = [R || #{f := register, result := Res} = R <- NameOps, Res =/= no],
    Internal = internal_ops(Regs, Kills, Risks),
    All = lists:keysort(1, [{invoke(Op), Op} || Op <- NameOps ++ Internal, not no_op(Op)]),
    Ops = list_to_tuple([prepare(Op) || {_, Op} <- All]),
    N = tuple_size(Ops),
    Determinate = gb_sets:from_list([{C, I} || I <- lists:seq(1, N),
                                               {_, C, _} <- [element(I, Ops)], C =/= ?INF]),
    erase(lin_deepest),
    %% First with indeterminate ops tried only where needed (fast); a
    %% failure there is searched again trying every one (exhaustive), so
    %% that only a history no order explains is a violation.
    case search_mode(lazy, Ops, Determinate) of
        false ->
            case search_mode(full, Ops, Determinate) of
                false ->
                    {Count, Op} = get(lin_deepest),
                    erase(lin_deepest),
                    {violation, #{ops => N, linearized => Count, stuck_at => Op}};
                Other -> Other
            end;
        Other -> Other
    end.

search_mode(Mode, Ops, Determinate) ->
    put(lin_mode, Mode),
    put(lin_budget, ?BUDGET),
    put(lin_deadline, erlang:monotonic_time(millisecond) + ?BUDGET_MS),
    put(lin_seen, #{}),
    try search(Ops, lists:seq(1, tuple_size(Ops)), Determinate,
               {undefined, false, undefined, undefined}, 0, -?INF_US) of
        true -> ok;
        false -> false
    catch throw:budget -> unknown
    after
        erase(lin_budget), erase(lin_seen), erase(lin_deadline), erase(lin_mode)
    end.

invoke(#{invoke := I}) -> I.

%% Ops that constrain nothing: a read without an answer, a conflict.
no_op(#{f := read, result := R}) -> not (R =:= undefined orelse is_pid(R));
no_op(#{f := incr, result := {error, {conflict, _}}}) -> true;
no_op(_) -> false.

%% {Invoke, Complete (infinity: indeterminate), Op}
prepare(#{f := F, result := R, invoke := I, complete := C} = Op) ->
    Indeterminate = F =:= cleanup orelse F =:= purge orelse F =:= reclaim orelse
        indeterminate(F, R),
    {I, case Indeterminate of true -> ?INF; false -> C end, Op}.

indeterminate(register, R) -> R =/= yes andalso R =/= no;
indeterminate(unregister, R) -> R =/= ok;
indeterminate(read, R) -> not (R =:= undefined orelse is_pid(R));
indeterminate(incr, {ok, _}) -> false;
indeterminate(incr, {error, not_registered}) -> false;
indeterminate(incr, {error, {conflict, _}}) -> false;
indeterminate(incr, _) -> true;
indeterminate(kill, _) -> false.

%% A kill of a pid that may have owned this name makes it dead at its
%% time, and its cleanup may follow at any time. A purge risk of its node
%% may purge it, and its member may re-claim it after: both within the
%% risk's window and the grace after it (regent_history's), and only for a
%% pid registered before that window closed and not killed before it
%% opened.
internal_ops(Regs, Kills, Risks) ->
    Pids = lists:usort([P || #{pid := P} <- Regs]),
    KilledAt = maps:from_list([{P, T} || #{pid := P, invoke := T} <- Kills]),
    RegAt = lists:foldl(fun(#{pid := P, invoke := T}, Acc) ->
                                maps:update_with(P, fun(T0) -> min(T0, T) end, T, Acc)
                        end, #{}, Regs),
    [Op || P <- Pids, is_map_key(P, KilledAt), T <- [maps:get(P, KilledAt)],
           Op <- [#{f => kill, pid => P, invoke => T, complete => T, result => ok},
                  #{f => cleanup, pid => P, invoke => T, complete => ?INF, result => ok}]]
        ++ [Op || #{node := N, from := From, to := To} <- Risks, P <- Pids, node(P) =:= N,
                  Until <- [case To of ?INF -> ?INF; _ -> To + ?PURGE_GRACE_US end],
                  maps:get(P, RegAt) =< Until, maps:get(P, KilledAt, ?INF) > From,
                  Op <- [#{f => purge, pid => P, invoke => From, complete => ?INF, result => ok,
                           deadline => Until},
                         #{f => reclaim, pid => P, invoke => From, complete => ?INF, result => ok,
                           deadline => Until}]].

%% Wing–Gong: linearise next any op invoked before the earliest completion
%% among the determinate ops left; memoise (ops done, state). Done is a
%% bitmask of op indices. Frontier: the latest invocation among the ops
%% linearised so far (what comes next cannot be earlier), a function of
%% Done, so not part of the key.
search(Ops, Left0, Determinate, State, Done, Frontier) ->
    case gb_sets:is_empty(Determinate) of
        true -> true; % what is left is indeterminate: it may never have happened
        false ->
            Key = {Done, State},
            Seen = get(lin_seen),
            case is_map_key(Key, Seen) of
                true -> false;
                false ->
                    put(lin_seen, Seen#{Key => true}),
                    Budget = get(lin_budget) - 1,
                    Budget < 0 andalso throw(budget),
                    Budget rem 1024 =:= 0 andalso
                        erlang:monotonic_time(millisecond) > get(lin_deadline) andalso throw(budget),
                    put(lin_budget, Budget),
                    {MinC, MinI} = gb_sets:smallest(Determinate),
                    deepest(tuple_size(Ops) - gb_sets:size(Determinate), element(MinI, Ops)),
                    {Left, Cands} = candidates(Ops, Left0, MinC, Frontier),
                    try_each(Ops, Left, Determinate, State, Done, Frontier, Cands)
            end
    end.

%% Determinate ops, by completion. An indeterminate op is tried only when
%% it is needed: when it makes a ready determinate op possible that is not
%% possible now (or brings a counter closer to an increment's answer). It
%% may always take effect later instead, and in this model a determinate op
%% that is possible either way leaves the same state either way, so this
%% loses no linearisation; it keeps failing branches from trying every
%% subset of the indeterminate ops.
%% An internal step whose window closed before the frontier can no longer
%% happen: it leaves the ops left.
candidates(Ops, Left, MinC, Frontier) ->
    {Ready0, Rest} = lists:splitwith(fun(I) -> element(1, element(I, Ops)) =< MinC end, Left),
    Ready = [I || I <- Ready0, maps:get(deadline, element(3, element(I, Ops)), ?INF) >= Frontier],
    {Det, Indet} = lists:partition(fun(I) -> element(2, element(I, Ops)) =/= ?INF end, Ready),
    {Ready ++ Rest,
     {[I || {_, I} <- lists:sort([{element(2, element(I, Ops)), I} || I <- Det])], Indet}}.

try_each(Ops, Left, Det, State, Done, Frontier, {DetCands, IndetCands}) ->
    try_list(Ops, Left, Det, State, Done, Frontier, DetCands)
        orelse try_list(Ops, Left, Det, State, Done, Frontier,
                        [I || I <- IndetCands,
                              get(lin_mode) =:= full orelse
                                  needed(I, IndetCands, DetCands, Ops, State)]).

%% Needed: it helps a ready determinate op at once, or it makes possible
%% another indeterminate op that then does (an unregister that took effect
%% lets a write that took effect take the name, which a read then sees).
needed(I, IndetCands, DetCands, Ops, State) ->
    helps(element(I, Ops), DetCands, Ops, State) orelse
        case step(element(3, element(I, Ops)), State) of
            {ok, State} -> false;
            {ok, S2} ->
                lists:any(fun(J) ->
                                  {_, _, JOp} = element(J, Ops),
                                  J =/= I andalso step(JOp, State) =:= {ok, State} andalso
                                      helps(element(J, Ops), DetCands, Ops, S2)
                          end, IndetCands);
            error -> false
        end.

try_list(_Ops, _Left, _Det, _State, _Done, _Frontier, []) ->
    false;
try_list(Ops, Left, Det, State, Done, Frontier, [I | Rest]) ->
    {Inv, C, Op} = element(I, Ops),
    Found = case step(Op, State) of
                {ok, State} when C =:= ?INF -> false; % an indeterminate op that changes nothing
                {ok, S2} ->
                    Det2 = case C of ?INF -> Det; _ -> gb_sets:delete({C, I}, Det) end,
                    search(Ops, lists:delete(I, Left), Det2, S2, Done bor (1 bsl I),
                           max(Frontier, Inv));
                error -> false
            end,
    Found orelse try_list(Ops, Left, Det, State, Done, Frontier, Rest).

helps({_, _, Op}, DetCands, Ops, State) ->
    case step(Op, State) of
        {ok, State} -> false; % changes nothing
        {ok, S2} ->
            lists:any(fun(D) ->
                              {_, _, DOp} = element(D, Ops),
                              step(DOp, State) =:= error andalso
                                  (step(DOp, S2) =/= error orelse closer(Op, DOp, State))
                      end, DetCands);
        error -> false
    end.

%% An increment that took effect brings the counter closer to a larger
%% acknowledged value.
closer(#{f := incr}, #{f := incr, result := {ok, New}}, {_, _, Meta, _}) ->
    is_integer(Meta) andalso New > Meta + 1;
closer(_, _, _) ->
    false.

deepest(Count, {_, _, Op}) ->
    case get(lin_deepest) of
        {Best, _} when Best >= Count -> ok;
        _ -> put(lin_deepest, {Count, maps:without([node], Op)})
    end.

%% The model. State: {Owner, Dead, Meta, Purged}.
step(#{f := register, pid := P, result := R}, {Owner, Dead, Meta, _} = S) ->
    CanTake = Owner =:= undefined orelse Owner =:= P orelse Dead,
    Taken = {P, false, case Owner of P -> Meta; _ -> 0 end, undefined},
    case R of
        yes when CanTake -> {ok, Taken};
        yes -> error;
        no when Owner =/= undefined, Owner =/= P -> {ok, S};
        no -> error;
        _ when CanTake -> {ok, Taken}; % indeterminate, taking effect
        _ -> {ok, S}
    end;
step(#{f := unregister}, _S) ->
    {ok, {undefined, false, undefined, undefined}};
step(#{f := read, result := R, node := Node}, {Owner, Dead, _, _} = S) ->
    case R of
        Owner -> {ok, S};
        undefined when Dead, node(Owner) =:= Node -> {ok, S}; % the member hides its own dead
        _ -> error
    end;
step(#{f := incr, result := R}, {Owner, Dead, Meta, Purged} = S) ->
    case R of
        {ok, New} when Owner =/= undefined, is_integer(Meta), New =:= Meta + 1 ->
            {ok, {Owner, Dead, New, Purged}};
        {ok, _} -> error;
        {error, not_registered} when Owner =:= undefined -> {ok, S};
        {error, not_registered} -> error;
        {error, {conflict, _}} -> {ok, S};
        _ when Owner =/= undefined, is_integer(Meta) -> {ok, {Owner, Dead, Meta + 1, Purged}};
        _ -> {ok, S}
    end;
step(#{f := kill, pid := P}, {P, _, Meta, Purged}) ->
    {ok, {P, true, Meta, Purged}};
step(#{f := kill}, S) ->
    {ok, S};
step(#{f := cleanup, pid := P}, {P, true, _, _}) ->
    {ok, {undefined, false, undefined, undefined}};
step(#{f := purge, pid := P}, {P, _, _, _}) ->
    {ok, {undefined, false, undefined, P}};
step(#{f := reclaim, pid := P}, {undefined, _, _, P}) ->
    {ok, {P, false, undefined, undefined}};
step(_Internal, S) ->
    {ok, S}.

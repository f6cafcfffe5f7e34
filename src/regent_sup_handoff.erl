%% @doc Moving a running child to another node on purpose, with its
%% state: on a graceful leave (regent_sup:stop/1) and, with
%% `redistribute => active', to balance a node that joined.
%%
%% A move never runs two instances. Its steps, each a compare-and-set:
%%   1. the mover marks the record `status => handoff, to => Target';
%%   2. the node running the child asks the instance for its state (a
%%      child started with `handoff => true' gets the call
%%      `'$regent_handoff'' and answers `{handoff, State}' as it stops;
%%      any other is shut down as terminate_child does), and waits for it
%%      to be gone;
%%   3. that node moves the record to Target (a new incarnation) with the
%%      state in it;
%%   4. Target starts the child; its init reads the state with
%%      regent_sup:handoff_state/2, and the state leaves the record once
%%      the instance runs.
%% A crash or node death on the way leaves a record that the usual rules
%% restart (fresh state): a handoff record counts as its node's child.
-module(regent_sup_handoff).

-export([local/3, handed/4, leave/2, leave_check/1, redistribute/1, started/3, reroute/3]).

-include("regent_sup.hrl").
-include_lib("kernel/include/logger.hrl").

-define(ASK_MS, 5000).
-define(STATE_MAX, 60000).
%% A record is registry metadata: 64 KiB at most, spec and state together.
-define(RECORD_MAX, 65536).
-define(IN_FLIGHT, 4).

%% @private Step 2: Rec says `handoff' and names this node.
-spec local(term(), map(), #s{}) -> #s{}.
local(Id, _Rec, #s{handing = H} = S) when is_map_key(Id, H) ->
    S;
local(Id, #{inc := I} = Rec, #s{running = Running, local_sup = LSup} = S) ->
    Server = self(),
    case maps:find(Id, Running) of
        {ok, {I, Pid, MRef}} ->
            Ask = maps:get(handoff_opt, Rec, false),
            _ = proc_lib:spawn_link(fun() -> Server ! {handed, Id, I, ask(Ask, Pid, LSup, {Id, I})} end),
            S#s{running = maps:remove(Id, Running), stopping = (S#s.stopping)#{MRef => Id},
                handing = (S#s.handing)#{Id => true}};
        _ ->
            %% Nothing runs here (it crashed, or this node was fenced): the
            %% child moves without state.
            move(Id, Rec, none, S)
    end.

ask(Ask, Pid, LSup, LocalId) ->
    State = case Ask of
                true ->
                    try gen_server:call(Pid, '$regent_handoff', ?ASK_MS) of
                        {handoff, St} -> storable(St);
                        _ -> none
                    catch exit:_ -> none % it stopped, or does not answer: fresh state
                    end;
                false -> none
            end,
    _ = supervisor:terminate_child(LSup, LocalId), % gone before the record moves
    State.

%% The state travels in the log: plain data within the metadata limit.
storable(St) ->
    Bin = term_to_binary(St),
    try regent_sup_spec:plain(St) of
        ok when byte_size(Bin) =< ?STATE_MAX -> {ok, St};
        _ -> ?LOG_WARNING("regent_sup: handoff state of ~p bytes dropped", [byte_size(Bin)]), none
    catch error:{badarg, Why} ->
            ?LOG_WARNING("regent_sup: handoff state dropped: ~p", [Why]), none
    end.

%% @private Step 3: the instance is gone; the record moves with State.
-spec handed(term(), pos_integer(), {ok, term()} | none, #s{}) -> #s{}.
handed(Id, I, State, #s{reg = Reg, sup = Sup} = S0) ->
    S = S0#s{handing = maps:remove(Id, S0#s.handing)},
    Me = node(),
    case regent_sup_store:child(Reg, Sup, Id) of
        #{node := Me, status := handoff, inc := I} = Rec -> move(Id, Rec, State, S);
        _ -> regent_sup_run:consider(Id, S)
    end.

move(Id, #{to := To, inc := I} = Rec, State, #s{reg = Reg, sup = Sup} = S) ->
    Live = regent_sup_place:live_nodes(Reg, Sup),
    Target = case is_map_key(To, Live) of
                 true -> {ok, To};
                 false -> regent_sup_place:choose(least_loaded, Id, maps:keys(Live), [node()],
                                                  regent_sup_place:loads(S#s.opts))
             end,
    case Target of
        {ok, N} ->
            Base = maps:without([to, handoff],
                                Rec#{node := N, epoch := maps:get(N, Live), inc := I + 1,
                                     status := run, why := auto, tried := []}),
            regent_sup_run:write(Id, Rec, with_state(Id, Base, State), none, S);
        {error, _} ->
            %% Nowhere to go: a new incarnation here, as after a fence (not
            %% a restart: it did not fail).
            E = case S#s.epoch of undefined -> maps:get(epoch, Rec); Mine -> Mine end,
            New = maps:without([to, handoff], Rec#{status := run, inc := I + 1, epoch := E,
                                                   why := auto, tried := []}),
            regent_sup_run:write(Id, Rec, with_state(Id, New, State), none, S)
    end.

with_state(_Id, Rec, none) ->
    Rec;
with_state(Id, Rec, {ok, St}) ->
    New = Rec#{handoff => St},
    case byte_size(term_to_binary(New, [deterministic])) =< ?RECORD_MAX of
        true -> New;
        false ->
            ?LOG_WARNING("regent_sup: handoff state of ~p dropped: the record would pass 64 KiB",
                         [Id]),
            Rec
    end.

%% @private Step 4, on Target: the instance runs; the state leaves the log.
-spec started(term(), map(), #s{}) -> #s{}.
started(Id, #{handoff := _} = Rec, S) ->
    regent_sup_run:write(Id, Rec, maps:remove(handoff, Rec), none, S);
started(_Id, _Rec, S) ->
    S.

%% @private regent_sup:stop/1: every child of this node moves elsewhere,
%% with its state; From hears when none is left here (or after a bound).
-spec leave(gen_server:from(), #s{}) -> #s{}.
leave(From, #s{reg = Reg, sup = Sup, opts = #{lease := L}} = S0) ->
    case maps:keys(regent_sup_place:live_nodes(Reg, Sup)) -- [node()] of
        [] ->
            gen_server:reply(From, ok), % no other node: the children stop here
            S0;
        _ ->
            erlang:send_after(5 * L, self(), leave_timeout),
            Mine = [{Id, Rec} || {Id, #{node := N, status := run} = Rec}
                                     <- regent_sup_store:children(Reg, Sup), N =:= node()],
            {S, _} = lists:foldl(fun({Id, Rec}, {Acc, Loads}) -> mark(Id, Rec, Acc, Loads) end,
                                 {S0#s{leaving = From}, regent_sup_place:loads(S0#s.opts)}, Mine),
            leave_check(S)
    end.

%% @private While this node leaves, a child placed here (a start, a move)
%% goes on to another node at once.
-spec reroute(term(), map(), #s{}) -> #s{}.
reroute(Id, Rec, S) ->
    {S1, _} = mark(Id, Rec, S, regent_sup_place:loads(S#s.opts)),
    S1.

%% Marks one child of this node for handoff to another node: its hash node
%% if placed by hash (so that redistribution does not move it again), else
%% the least loaded, counting the choices made so far.
mark(Id, #{placement := P} = Rec, #s{reg = Reg, sup = Sup} = S, Loads) ->
    Others = maps:keys(regent_sup_place:live_nodes(Reg, Sup)) -- [node()],
    Rule = case regent_sup_place:rule(P, S#s.opts) of hash -> hash; _ -> least_loaded end,
    case regent_sup_place:choose(Rule, Id, Others, [], Loads) of
        {ok, To} ->
            {regent_sup_run:write(Id, Rec, Rec#{status := handoff, to => To}, none, S),
             maps:update_with(To, fun(C) -> C + 1 end, 1, Loads)};
        {error, _} ->
            {S, Loads}
    end.

%% @private Replies to a leave once no child is this node's.
-spec leave_check(#s{}) -> #s{}.
leave_check(#s{leaving = undefined} = S) ->
    S;
leave_check(#s{leaving = From, nodes = Nodes} = S) ->
    case lists:member(node(), maps:values(Nodes)) of
        true -> S;
        false -> gen_server:reply(From, ok), S#s{leaving = undefined}
    end.

%% @private `redistribute => active', on the coordinator: while some live
%% node has at least two children more than another, a few children of
%% the most loaded move to the least loaded, with handoff. Children placed
%% by `hash' move to their hash node; pinned ones (`local', `{node, N}',
%% a function) stay.
-spec redistribute(#s{}) -> #s{}.
redistribute(#s{opts = #{redistribute := active}, reg = Reg, sup = Sup} = S) ->
    Recs = regent_sup_store:children(Reg, Sup),
    InFlight = length([x || {_, #{status := handoff}} <- Recs]),
    Live = maps:keys(regent_sup_place:live_nodes(Reg, Sup)),
    case InFlight >= ?IN_FLIGHT orelse length(Live) < 2 of
        true -> S;
        false -> lists:foldl(fun({Id, Rec, To}, Acc) ->
                                     regent_sup_run:write(Id, Rec, Rec#{status := handoff, to => To},
                                                          none, Acc)
                             end, S, moves(Recs, Live, ?IN_FLIGHT - InFlight, S))
    end;
redistribute(S) ->
    S.

moves(Recs, Live, Room, S) ->
    Running = [{Id, Rec} || {Id, #{status := run} = Rec} <- Recs, not is_map_key(Id, S#s.writing)],
    Hash = [{Id, Rec, To} || {Id, #{placement := P, node := N} = Rec} <- Running,
                             regent_sup_place:rule(P, S#s.opts) =:= hash,
                             {ok, To} <- [regent_sup_place:choose(hash, Id, Live, [], #{})],
                             To =/= N],
    lists:sublist(Hash ++ balance(Running, Live, S), Room).

balance(Running, Live, S) ->
    Loads = maps:merge(maps:from_list([{N, 0} || N <- Live]),
                       maps:with(Live, regent_sup_place:loads(S#s.opts))),
    {MaxN, Max} = lists:last(lists:keysort(2, maps:to_list(Loads))),
    {MinN, Min} = hd(lists:keysort(2, maps:to_list(Loads))),
    Movable = [{Id, Rec, MinN} || {Id, #{placement := P, node := N} = Rec} <- Running,
                                  N =:= MaxN, regent_sup_place:rule(P, S#s.opts) =:= least_loaded],
    lists:sublist(Movable, max(0, (Max - Min) div 2)).


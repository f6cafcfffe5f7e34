%% @doc The coordinator of a distributed supervisor: revokes the lease of
%% a node that stopped renewing it and moves that node's children to live
%% nodes. Every node runs this check; the one that acts is the node with
%% the smallest name among itself and the nodes it sees whose lease record
%% changed within their lease (a node cut off from raft but still
%% connected stops counting once its renewals stop). Two coordinators at
%% once (around a partition) are harmless: every decision is a
%% compare-and-set on the record it decides on.
%%
%% Timing (docs/supervision.md): every node notes the monotonic time at
%% which it first saw each lease record at its value. That is after the
%% renewal that wrote it was sent, so the holder's own lease ends before
%% that time + Lease (clock rates assumed equal within the margin). A
%% coordinator revokes only when the value has not changed for Lease +
%% margin, by a compare-and-set on that very value; Lease is the holder's,
%% from its record.
-module(regent_sup_coord).

-export([tick/1, revoked/3, moved/2]).

-include("regent_sup.hrl").
-include_lib("kernel/include/logger.hrl").

-define(WRITERS, 16).

%% @private One check; the server calls it every lease/10 ms.
-spec tick(#s{}) -> #s{}.
tick(#s{reg = Reg, sup = Sup} = S0) ->
    Leases = regent_sup_store:leases(Reg, Sup),
    S = observe(Leases, S0),
    case coordinator(S) of
        false -> S;
        true -> regent_sup_handoff:redistribute(orphans(Leases, expire(S)))
    end.

%% The first time each live value was seen here.
observe(Leases, #s{seen = Seen0} = S) ->
    Now = regent_sup_lease:now_ms(),
    Seen = maps:from_list(
             [{N, case maps:find(N, Seen0) of
                      {ok, {V, T}} -> {V, T};
                      _ -> {V, Now}
                  end} || {N, {E, _, _} = V} <- Leases, is_integer(E), N =/= node()]),
    S#s{seen = Seen}.

coordinator(#s{seen = Seen} = S) ->
    Now = regent_sup_lease:now_ms(),
    Connected = nodes(),
    Fresh = [N || {N, {{_, _, L}, T}} <- maps:to_list(Seen), Now - T =< L,
                  lists:member(N, Connected)],
    regent_sup_lease:valid(S) andalso lists:min([node() | Fresh]) =:= node().

expire(#s{seen = Seen, opts = #{lease_margin := M}} = S) ->
    Now = regent_sup_lease:now_ms(),
    Expired = [{N, V} || {N, {{_, _, L} = V, T}} <- maps:to_list(Seen), Now - T > L + M,
                         not is_map_key(N, S#s.revoking)],
    lists:foldl(fun revoke/2, S, Expired).

revoke({N, {E, _, _} = V}, #s{reg = Reg, sup = Sup} = S) ->
    ?LOG_WARNING("regent_sup ~p: ~p has not renewed its lease: revoking it", [Sup, N]),
    Server = self(),
    Key = regent_sup_store:lease_key(Sup, N),
    _ = proc_lib:spawn_link(
          fun() ->
                  Res = regent_sup_store:try_cas(Reg, Key, V, {revoked, E}),
                  Server ! {revoked, N, Res}
          end),
    S#s{revoking = (S#s.revoking)#{N => true}}.

%% @private The answer of a revocation: the node's children move at once.
-spec revoked(node(), term(), #s{}) -> #s{}.
revoked(N, _Res, #s{reg = Reg, sup = Sup} = S) ->
    S1 = S#s{revoking = maps:remove(N, S#s.revoking), seen = maps:remove(N, S#s.seen)},
    orphans(regent_sup_store:leases(Reg, Sup), S1).

%% Children whose node has no live lease go to live nodes: the targets
%% are chosen here, counting each choice, so that a thousand children do
%% not all go to the node that was least loaded before the first.
orphans(Leases, #s{nodes = Nodes, moving = Moving, reg = Reg, sup = Sup} = S) ->
    Held = maps:from_list([{N, E} || {N, {E, _, _}} <- Leases, is_integer(E)]),
    Ids = [Id || {Id, N} <- maps:to_list(Nodes), not is_map_key(N, Held),
                 not is_map_key(Id, Moving)],
    case Ids of
        [] -> S;
        _ ->
            Live = regent_sup_place:live_nodes(Reg, Sup),
            {Plan, _} = lists:mapfoldl(fun(Id, Loads) -> plan(Id, Live, Loads, S) end,
                                       maps:from_list(ets:tab2list(S#s.load_tab)), Ids),
            Planned = [P || P <- Plan, P =/= skip],
            spawn_writers(Planned, S),
            S#s{moving = maps:merge(Moving, maps:from_list([{Id, true} || {Id, _, _} <- Planned]))}
    end.

plan(Id, Live, Loads, #s{reg = Reg, sup = Sup} = S) ->
    case regent_sup_store:child(Reg, Sup, Id) of
        #{spec := #{restart := temporary}} = Rec -> {{Id, Rec, delete}, Loads};
        #{placement := Rule} = Rec ->
            case regent_sup_place:choose(regent_sup_place:rule(Rule, S#s.opts), Id, maps:keys(Live),
                                         [], Loads) of
                {ok, N} ->
                    %% A handoff cut short by the node's end: fresh state.
                    New = maps:without([to, handoff],
                                       Rec#{node := N, epoch := maps:get(N, Live), status := run,
                                            inc := maps:get(inc, Rec) + 1, why := auto,
                                            tried := []}),
                    {{Id, Rec, New}, maps:update_with(N, fun(C) -> C + 1 end, 1, Loads)};
                {error, _} -> {skip, Loads}
            end;
        undefined -> {skip, Loads}
    end.

spawn_writers([], _S) ->
    ok;
spawn_writers(Plan, #s{reg = Reg, sup = Sup}) ->
    Server = self(),
    Chunks = chunks(Plan, ?WRITERS),
    [proc_lib:spawn_link(
       fun() ->
               [regent_sup_store:try_cas(Reg, regent_sup_store:child_key(Sup, Id), Rec, New)
                || {Id, Rec, New} <- Chunk],
               Server ! {moved, [Id || {Id, _, _} <- Chunk]}
       end) || Chunk <- Chunks],
    ok.

chunks(L, N) ->
    Size = max(1, (length(L) + N - 1) div N),
    chunk(L, Size).

chunk([], _) -> [];
chunk(L, Size) when length(L) =< Size -> [L];
chunk(L, Size) ->
    {H, T} = lists:split(Size, L),
    [H | chunk(T, Size)].

%% @private Writers are done with these children; a failed move is tried
%% again on the next tick, from the record as it then is.
-spec moved([term()], #s{}) -> #s{}.
moved(Ids, #s{moving = Moving} = S) ->
    S#s{moving = maps:without(Ids, Moving)}.

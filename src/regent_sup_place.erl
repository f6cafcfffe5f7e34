%% @doc Where a child of a distributed supervisor runs: among the live
%% nodes (a node whose supervisor holds a lease and that this node is
%% connected to), by the child's placement rule.
%%   - `least_loaded' (default): fewest children, ties broken at random so
%%     that concurrent callers spread out;
%%   - `hash': rendezvous hashing of the child's id over the live nodes, so
%%     that a change of members moves only the children it must;
%%   - `local': the calling node; `{node, N}': N;
%%   - `{M, F}' or a fun of arity 2 (a supervisor option only): called
%%     with the id and the live nodes, returns one of them.
-module(regent_sup_place).

-export([live_nodes/2, choose/5, rule/2, loads/1]).

%% @private The rule a child's placement stands for: `default' is the
%% supervisor's (Opts: the supervisor's options).
-spec rule(term(), map()) -> term().
rule(default, #{placement := P}) -> P;
rule(P, _) -> P.

%% @private Children per node, as the supervisor's server counts them
%% (its load table, read in any process).
-spec loads(map()) -> #{node() => non_neg_integer()}.
loads(#{load_tab := Tab}) -> maps:from_list(ets:tab2list(Tab)).

%% @private Nodes whose lease is live and that this node sees, with their
%% epochs.
-spec live_nodes(regent:registry(), atom()) -> #{node() => pos_integer()}.
live_nodes(Reg, Sup) ->
    Seen = [node() | nodes()],
    maps:from_list([{N, E} || {N, {E, _, _}} <- regent_sup_store:leases(Reg, Sup),
                              is_integer(E), lists:member(N, Seen)]).

%% @private A node for child Id: `{ok, Node}' or `{error, Why}'. Exclude:
%% nodes already tried. Loads: children per node.
-spec choose(term(), term(), [node()], [node()], #{node() => non_neg_integer()}) ->
          {ok, node()} | {error, term()}.
choose(Rule, Id, Live0, Exclude, Loads) ->
    case lists:sort(Live0 -- Exclude) of
        [] -> {error, no_node_available};
        Live -> pick(Rule, Id, Live, Loads)
    end.

pick(least_loaded, _Id, Live, Loads) ->
    Ranked = [{maps:get(N, Loads, 0), rand:uniform(), N} || N <- Live],
    {_, _, N} = lists:min(Ranked),
    {ok, N};
pick(hash, Id, Live, _Loads) ->
    {_, N} = lists:max([{erlang:phash2({Id, N}), N} || N <- Live]),
    {ok, N};
pick(local, Id, Live, Loads) ->
    pick({node, node()}, Id, Live, Loads);
pick({node, N}, _Id, Live, _Loads) ->
    case lists:member(N, Live) of
        true -> {ok, N};
        false -> {error, {node_not_available, N}}
    end;
pick({M, F}, Id, Live, _Loads) ->
    checked(M:F(Id, Live), Live);
pick(Fun, Id, Live, _Loads) when is_function(Fun, 2) ->
    checked(Fun(Id, Live), Live).

checked(N, Live) ->
    case lists:member(N, Live) of
        true -> {ok, N};
        false -> {error, {placement_returned, N}}
    end.

%% The checker's rules for distributed supervision (regent_sup): pure,
%% events in, violations out. Times are the controller's monotonic µs.
%%
%% Events: `#{f := child_up | child_down, name := Id, pid := Pid, node :=
%% Node, time := T}' as the controller's observer saw them (an instance
%% reports itself at init; the observer monitors it). An instance ends at
%% its child_down, or earlier when its node was halted (`halts', [{Node,
%% T}]): a halted node's processes die with it, whenever the nodedown
%% arrives. Final: `#{ids := [Id], heal := T, bound := Us, halts := ...}'.
%%
%% - two_instances: two instances of one child alive at the same moment;
%% - lost_child: a child with no instance alive at the end that started
%%   by heal + bound (it was not running again within the bound).
-module(regent_history_sup).

-export([check/2]).

-define(INF, infinity).

-spec check([map()], map() | undefined) -> [regent_history:violation()].
check(_Events, undefined) ->
    [];
check(Events, #{ids := Ids, heal := Heal, bound := Bound} = Final) ->
    Halts = maps:get(halts, Final, []),
    Inst = instances(Events, Halts),
    lists:append([two_instances(Id, [I || {Id2, _, _, _} = I <- Inst, Id2 =:= Id]) ++
                      lost_child(Id, [I || {Id2, _, _, _} = I <- Inst, Id2 =:= Id], Heal + Bound)
                  || Id <- lists:usort(Ids ++ [Id || {Id, _, _, _} <- Inst])]).

%% [{Id, Pid, Up, End}]
instances(Events, Halts) ->
    Downs = maps:from_list([{P, T} || #{f := child_down, pid := P, time := T} <- Events]),
    [{Id, P, Up, lists:min([maps:get(P, Downs, ?INF) | halted(N, Up, Halts)])}
     || #{f := child_up, name := Id, pid := P, node := N, time := Up} <- Events].

halted(N, Up, Halts) ->
    [T || {N2, T} <- Halts, N2 =:= N, T >= Up].

two_instances(Id, Inst) ->
    Sorted = lists:keysort(3, Inst),
    [{two_instances, Id, #{first => P1, second => P2, overlap_us => overlap(E1, U2)}}
     || {I1, {_, P1, _U1, E1}} <- lists:enumerate(Sorted),
        {I2, {_, P2, U2, _}} <- lists:enumerate(Sorted),
        I2 > I1, later(E1, U2)].

later(?INF, _) -> true;
later(E, U) -> E > U.

overlap(?INF, _) -> infinity;
overlap(E, U) -> E - U.

lost_child(Id, Inst, By) ->
    case [I || {_, _, Up, ?INF} = I <- Inst, Up =< By] of
        [] -> [{lost_child, Id, #{instances => [{P, Up, End} || {_, P, Up, End} <- Inst],
                                  by => By}}];
        _ -> []
    end.

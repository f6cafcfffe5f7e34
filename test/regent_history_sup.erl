%% The checker's rules for distributed supervision (regent_sup): pure,
%% events in, violations out. Times are the controller's monotonic µs.
%%
%% Events: `#{f := child_up | child_down, name := Id, pid := Pid, node :=
%% Node, time := T}' as the controller's observer saw them (an instance
%% reports itself at init; the observer monitors it). An instance ends at
%% its child_down, or earlier when its node was halted (`halts', [{Node,
%% T}]): a halted node's processes die with it, whenever the nodedown
%% arrives. Final: `#{ids := [Id], heal := T, bound := Us, halts := ...,
%% pauses := [{Node, From, To}]}' (pauses optional).
%%
%% - two_instances: two instances of one child alive at the same moment,
%%   except the one overlap the design allows (docs/supervision.md, what
%%   the argument assumes): the first instance's VM was paused (SIGSTOP)
%%   when the second started, and the first died within ?RESUME_US of the
%%   VM resuming (its node fences it at its next check). One that lives on
%%   longer after the resume is still a violation;
%% - lost_child: a child with no instance alive at the end that started
%%   by heal + bound (it was not running again within the bound).
-module(regent_history_sup).

-export([check/2]).

-define(INF, infinity).
%% How soon after a paused VM resumes its node must have killed the
%% instances whose lease it lost meanwhile.
-define(RESUME_US, 1000000).

-spec check([map()], map() | undefined) -> [regent_history:violation()].
check(_Events, undefined) ->
    [];
check(Events, #{ids := Ids, heal := Heal, bound := Bound} = Final) ->
    Halts = maps:get(halts, Final, []),
    Pauses = maps:get(pauses, Final, []),
    Inst = instances(Events, Halts),
    lists:append([two_instances(Id, [I || {Id2, _, _, _, _} = I <- Inst, Id2 =:= Id], Pauses) ++
                      lost_child(Id, [{Id2, P, U, E} || {Id2, P, U, E, _} <- Inst, Id2 =:= Id],
                                 Heal + Bound)
                  || Id <- lists:usort(Ids ++ [Id || {Id, _, _, _, _} <- Inst])]).

%% [{Id, Pid, Up, End, Node}]
instances(Events, Halts) ->
    Downs = maps:from_list([{P, T} || #{f := child_down, pid := P, time := T} <- Events]),
    [{Id, P, Up, lists:min([maps:get(P, Downs, ?INF) | halted(N, Up, Halts)]), N}
     || #{f := child_up, name := Id, pid := P, node := N, time := Up} <- Events].

halted(N, Up, Halts) ->
    [T || {N2, T} <- Halts, N2 =:= N, T >= Up].

two_instances(Id, Inst, Pauses) ->
    Sorted = lists:keysort(3, Inst),
    [{two_instances, Id, #{first => P1, second => P2, overlap_us => overlap(E1, U2)}}
     || {I1, {_, P1, _U1, E1, N1}} <- lists:enumerate(Sorted),
        {I2, {_, P2, U2, _, _}} <- lists:enumerate(Sorted),
        I2 > I1, later(E1, U2), not paused_then_fenced(N1, U2, E1, Pauses)].

%% The first instance's VM was paused when the second started, and the
%% first died within ?RESUME_US of the resume.
paused_then_fenced(_N, _U2, ?INF, _Pauses) ->
    false;
paused_then_fenced(N, U2, E1, Pauses) ->
    lists:any(fun({N2, From, To}) ->
                      N2 =:= N andalso is_integer(To) andalso From =< U2 andalso U2 =< To
                          andalso E1 =< To + ?RESUME_US
              end, Pauses).

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

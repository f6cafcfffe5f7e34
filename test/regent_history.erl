%% The history checker of the nemesis test (regent_nemesis): from what the
%% clients saw, what the nemesis did and the tables at the end, it says
%% where regent broke its contract. Pure: records in, violations out.
%%
%% Times are one clock (the controller's monotonic µs). An op is
%%   #{f := register | unregister | read | lookup | kill, name := term(),
%%     pid := pid() (register: the new owner; kill: the victim),
%%     invoke := T, complete := T, result := term() | {error, term()}}
%% and an `{error, _}' result is indeterminate: the op may take effect at
%% any time after its invocation, or never. A risk is a window in which the
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
-module(regent_history).

-export([check/3, describe/1]).

-define(INF, infinity).
%% A purge decided while a cut lasted may commit a little after the heal.
-define(PURGE_GRACE_US, 10000000).

-type time() :: integer() | infinity.
-type op() :: #{f := register | unregister | read | lookup | kill,
                name => term(), pid => pid(), node => node(),
                invoke := integer(), complete := integer(), result := term()}.
-type risk() :: #{node := node(), from := integer(), to := time()}.
-type final() :: #{tables := #{node() => [{term(), pid()}]}, dead := [pid()],
                   membership => #{members := [{term(), atom()}], live := [node()],
                                   voters := pos_integer()}}.
-type violation() :: {atom(), term(), map()}.
-export_type([op/0, risk/0, final/0, violation/0]).

%% @doc Every violation found; `[]' if the history keeps the contract.
-spec check([op()], [risk()], final()) -> [violation()].
check(Ops, Risks, Final) ->
    Kills = kill_times(Ops),
    ByName = by_name([Op || #{f := F} = Op <- Ops, F =/= kill]),
    lists:append([check_name(Name, NameOps, Kills, Risks, Final)
                  || {Name, NameOps} <- maps:to_list(ByName)])
        ++ check_final(Final).

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
        ++ lost(Name, Yes, Final).

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

%% @doc A node's lease on running children, and fencing
%% (docs/supervision.md, "At most once").
%%
%% The lease is the record `{Epoch, Seq, Lease}' under `{'$regent_sup',
%% Sup, lease, node()}' (Lease: this node's `lease' option, so that a
%% coordinator configured otherwise still waits long enough). The server
%% renews it every lease/3 ms by a compare-and-set `{Epoch, Seq, Lease}' ->
%% `{Epoch, Seq + 1, Lease}' through the log; a
%% renewal sent at monotonic time T that commits extends the lease to T +
%% lease. When that time passes without a newer commit, the node has had
%% no contact with a leader for `lease' ms: it kills its children at once
%% (fencing) and must take a new epoch before it runs any again.
%%
%% A coordinator that has seen the same value for Lease + margin ms sets it
%% to `{revoked, Epoch}' by the same compare-and-set, so a
%% renewal and a revocation cannot both commit; the renewal that loses
%% tells the node it was revoked, and it fences at once.
-module(regent_sup_lease).

-export([acquire/1, renew/1, result/5, fence_check/1, check/1, valid/1, release/1, now_ms/0,
         keep_renewing/1, stop_renewing/2]).

-include("regent_sup.hrl").
-include_lib("kernel/include/logger.hrl").

%% @private
-spec now_ms() -> integer().
now_ms() -> erlang:monotonic_time(millisecond).

%% @private True while this node may run children.
-spec valid(#s{}) -> boolean().
valid(#s{epoch = E, lease_until = Until}) ->
    E =/= undefined andalso now_ms() < Until.

%% @private A new epoch: after the node's own record, whatever it is.
-spec acquire(#s{}) -> #s{}.
acquire(#s{lease_busy = true} = S) ->
    S;
acquire(#s{reg = Reg, sup = Sup, opts = #{lease := L}} = S) ->
    {Expect, New} = case regent_sup_store:lease(Reg, Sup, node()) of
                        undefined -> {absent, {1, 0, L}};
                        {revoked, E} = Cur -> {Cur, {E + 1, 0, L}};
                        {E, _, _} = Cur -> {Cur, {E + 1, 0, L}}
                    end,
    write(acquire, Expect, New, S).

%% @private The next renewal, unless one is in flight or there is no epoch.
-spec renew(#s{}) -> #s{}.
renew(#s{lease_busy = true} = S) ->
    S;
renew(#s{epoch = undefined} = S) ->
    acquire(S);
renew(#s{epoch = E, seq = Q, opts = #{lease := L}} = S) ->
    write(renew, {E, Q, L}, {E, Q + 1, L}, S).

write(Kind, Expect, New, #s{reg = Reg, sup = Sup} = S) ->
    Server = self(),
    Sent = now_ms(),
    Key = regent_sup_store:lease_key(Sup, node()),
    _ = proc_lib:spawn_link(
          fun() ->
                  Res = regent_sup_store:try_cas(Reg, Key, Expect, New),
                  Server ! {lease_result, Kind, Sent, New, Res}
          end),
    S#s{lease_busy = true}.

%% @private The answer to an acquire or a renewal.
-spec result(acquire | renew, integer(), term(), term(), #s{}) -> #s{}.
result(Kind, Sent, {E, Q, _}, ok, #s{opts = #{lease := Lease}} = S0) ->
    S = S0#s{lease_busy = false, seq = Q},
    S1 = case Kind of
             acquire -> S#s{epoch = E, started = #{}, lease_until = Sent + Lease};
             renew -> S#s{lease_until = max(S#s.lease_until, Sent + Lease)}
         end,
    schedule(arm_fence(S1));
result(renew, _Sent, _New, {conflict, {E, Q, _}}, #s{epoch = E, seq = Mine} = S) when Q > Mine ->
    %% A renewal answered `unavailable' committed after all: only this node
    %% writes its own epoch's values, so the lease is still ours.
    self() ! renew,
    S#s{lease_busy = false, seq = Q};
result(renew, _Sent, _New, {conflict, Now}, #s{sup = Sup} = S) ->
    ?LOG_WARNING("regent_sup ~p: lease of ~p is ~p: fencing", [Sup, node(), Now]),
    acquire(fence(S#s{lease_busy = false}));
result(acquire, _Sent, _New, {conflict, _}, S) ->
    erlang:send_after(50, self(), renew), % the mirror catches up first
    S#s{lease_busy = false};
result(_Kind, _Sent, _New, unavailable, S) ->
    schedule(S#s{lease_busy = false}).

schedule(#s{opts = #{lease := Lease}} = S) ->
    erlang:send_after(Lease div 3, self(), renew),
    S.

arm_fence(#s{fence_timer = T, lease_until = Until} = S) ->
    _ = T =/= undefined andalso erlang:cancel_timer(T),
    S#s{fence_timer = erlang:send_after(max(0, Until - now_ms()), self(), fence_check)}.

%% @private The fence timer: the lease ran out unless renewed meanwhile.
-spec fence_check(#s{}) -> #s{}.
fence_check(#s{epoch = undefined} = S) ->
    S#s{fence_timer = undefined};
fence_check(#s{sup = Sup} = S) ->
    case valid(S) of
        true -> arm_fence(S);
        false ->
            ?LOG_WARNING("regent_sup ~p: no leader contact for a lease on ~p: fencing",
                         [Sup, node()]),
            fence(S#s{fence_timer = undefined})
    end.

%% @private Before each message the server handles: the fence must not
%% wait behind a long mailbox for its timer message.
-spec check(#s{}) -> #s{}.
check(#s{epoch = undefined} = S) ->
    S;
check(#s{lease_until = Until} = S) ->
    case now_ms() >= Until of
        true -> fence_check(S);
        false -> S
    end.

%% Kills every local instance now: a shutdown that waited would run past
%% the lease. The epoch goes; its children come back under the next one.
fence(S) ->
    regent_sup_run:kill_all(S#s{epoch = undefined, lease_until = 0}).

%% @private A clean stop: the lease is given up, so that a coordinator
%% reassigns the children at once instead of after lease + margin.
-spec release(#s{}) -> ok.
release(#s{epoch = undefined}) ->
    ok;
release(#s{reg = Reg, sup = Sup, epoch = E, seq = Q, opts = #{lease := L}}) ->
    Key = regent_sup_store:lease_key(Sup, node()),
    try regent_sup_store:cas(Reg, Key, {E, Q, L}, {revoked, E}) of
        _ -> ok
    catch exit:_ -> ok % the registry is gone or has no quorum: the lease runs out
    end.

%% @private While a clean stop waits for the instances to shut down (each
%% with its own shutdown time, which may pass the lease), a process keeps
%% the lease renewed, and kills the instances if the lease runs out after
%% all. `none' without an epoch.
-spec keep_renewing(#s{}) -> pid() | none.
keep_renewing(#s{epoch = undefined}) ->
    none;
keep_renewing(#s{reg = Reg, sup = Sup, epoch = E, seq = Q, lease_until = Until,
                 opts = #{lease := L}, running = Running}) ->
    Pids = [Pid || {_, Pid, _} <- maps:values(Running)],
    Key = regent_sup_store:lease_key(Sup, node()),
    %% Till: the lease's end (`infinity' once the instances are killed).
    Renew = fun Loop(Seq, Till, Next) ->
                    Now = now_ms(),
                    Till1 = case Now >= Till of
                                true -> [exit(P, kill) || P <- Pids], infinity;
                                false -> Till
                            end,
                    receive {stop, From} -> From ! {renewed_to, self(), Seq}
                    after max(0, min(Next, Till1) - Now) ->
                            case now_ms() >= Next of
                                false -> Loop(Seq, Till1, Next);
                                true ->
                                    Sent = now_ms(),
                                    case renew_once(Reg, Key, E, Seq, L) of
                                        {ok, Seq1} when Till1 =:= infinity -> Loop(Seq1, infinity, Sent + L div 3);
                                        {ok, Seq1} -> Loop(Seq1, Sent + L, Sent + L div 3);
                                        {adopt, Seq1} -> Loop(Seq1, Till1, Sent);
                                        failed -> Loop(Seq, Till1, Sent + L div 3)
                                    end
                            end
                    end
            end,
    spawn_link(fun() -> Renew(Q, Until, now_ms()) end).

%% The server's last renewal may land after it handed over: its seq is
%% adopted, and the next renewal goes at once.
renew_once(Reg, Key, E, Seq, L) ->
    try regent_sup_store:cas(Reg, Key, {E, Seq, L}, {E, Seq + 1, L}) of
        ok -> {ok, Seq + 1};
        {conflict, {E, Q, L}} when Q > Seq -> {adopt, Q};
        {conflict, _} -> failed
    catch exit:_ -> failed
    end.

%% @private The seq the renewer got to, for release/1.
-spec stop_renewing(pid() | none, #s{}) -> #s{}.
stop_renewing(none, S) ->
    S;
stop_renewing(Pid, S) ->
    Pid ! {stop, self()},
    receive {renewed_to, Pid, Seq} -> S#s{seq = Seq} end.

%% @doc Merging clusters, and claims under the conflict policy.
%%
%% When a peer's hello shows a running cluster we are not part of,
%% maybe_merge/3 decides whether this member dissolves into it: our cluster
%% removed us, has had no leader for a while, or is the smaller one. Names
%% that our live processes held before (in a cluster we left, through a
%% daemon that lost its state, across a partition that purged them) are
%% claimed again (claim/2); the committed holder keeps a name, and the
%% option `conflict' says what happens to the claimant (claim_answered/5).
%%
%% Owns the fields `claims' and `left_out_since'. Called by regent_peers
%% (hellos), regent_mirror (re-claims after a DUMP or a del_purge, pending
%% claims once synced) and regent_outbox (a claim's answer).
-module(regent_merge).

-export([maybe_merge/3, claim/2, claim_answered/5, pending_claims/1]).

-include_lib("kernel/include/logger.hrl").
-include("regent_member.hrl").

-define(LEADERLESS_MS, 1500).
%% How long our leader must keep leaving us out of its members before we
%% believe it removed us.
-define(LEFT_OUT_MS, 1000).

%% @private
%% Called when a peer's hello shows a running cluster with a leader that we
%% are not part of. We go over to it if our cluster removed us (it shares
%% servers with theirs), if ours has had no leader for a while, or if ours
%% is smaller (tie: the lower leader id dissolves).
-spec maybe_merge(node(), map(), #st{}) -> #st{}.
maybe_merge(Node, #{phase := running, leader_node := LN, leader_id := TheirLeader,
                    members := TheirIds, synced := true},
            #st{phase = running, daemon_id = Me, leader_id = MyLeader,
                members = Ms} = S) when LN =/= undefined, TheirLeader =/= 0,
                                        Me =/= 0, TheirLeader =/= MyLeader ->
    MyIds = [Id || {Id, _, _} <- Ms],
    Removed = lists:any(fun(Id) -> lists:member(Id, TheirIds) end, MyIds),
    Leaderless = MyLeader =:= 0 andalso
        ?NOW_MS() - S#st.leaderless_since > ?LEADERLESS_MS,
    Smaller = {length(TheirIds), TheirLeader} > {length(MyIds), MyLeader},
    case lists:member(Me, TheirIds) of
        true -> S;
        false when Removed; Leaderless; Smaller ->
            ?LOG_NOTICE("regent ~p: joining the cluster led from ~p (seen via ~p)",
                        [S#st.reg, LN, Node]),
            regent_leave:dissolve({join, LN}, S);
        false -> S
    end;
%% Our own leader's hello leaves us out: it removed our server while we
%% were cut off (a standby never campaigns, so it would wait for that
%% leader forever). One hello can be older than our join, so we ask again
%% and go only if the leader still leaves us out a while later.
maybe_merge(Node, #{phase := running, leader_node := Node, leader_id := Leader,
                    members := TheirIds, synced := true},
            #st{phase = running, daemon_id = Me, leader_id = Leader} = S)
  when Leader =/= 0, Me =/= 0 ->
    case {lists:member(Me, TheirIds), S#st.left_out_since} of
        {true, _} ->
            S#st{left_out_since = 0};
        {false, 0} ->
            erlang:send_after(?LEFT_OUT_MS, self(), {ask_leader, Node}),
            S#st{left_out_since = ?NOW_MS()};
        {false, Since} ->
            case ?NOW_MS() - Since >= ?LEFT_OUT_MS of
                true ->
                    ?LOG_NOTICE("regent ~p: the leader on ~p removed this member; "
                                "joining again", [S#st.reg, Node]),
                    regent_leave:dissolve({join, Node}, S#st{left_out_since = 0});
                false ->
                    S
            end
    end;
maybe_merge(_Node, _Info, S) ->
    S.

%% ---- claims and the conflict policy --------------------------------------

%% @private
%% Names our live processes held in the cluster we left, which the new
%% table gives to someone else (names it lacks are re-claimed by reconcile).
-spec pending_claims(#st{}) -> [{term(), pid(), term()}].
pending_claims(#st{claims = Claims, reg = Tab}) ->
    [C || {Name, Pid, _} = C <- Claims, is_process_alive(Pid),
          case ets:lookup(Tab, Name) of
              [{_, Pid, _}] -> false;
              [] -> false;
              [_] -> true
          end].

%% @private
%% Registers Name for a live local Pid that held it before (through a
%% daemon that lost its state, a partition, or a cluster we left); the
%% answer goes to claim_answered/5.
-spec claim({term(), pid(), term()}, #st{}) -> #st{}.
claim({Name, Pid, Meta}, S) ->
    {ok, Key} = regent_name:encode(Name),
    MetaBin = case Meta of undefined -> <<>>; _ -> term_to_binary(Meta) end,
    regent_outbox:submit(register, {Key, regent_name:encode_pid(Pid), MetaBin, <<>>},
                         {claim, Name, Pid}, infinity, S).

%% @private
%% The conflict policy (option `conflict'): the committed holder keeps the
%% name; the claimant is killed (`kill', the default), told (`notify'), or a
%% `{resolve, Fun}' as in global picks: Fun(Name, Claimant, Holder) returns
%% the pid to keep (it may kill or tell the other itself) or `none'.
-spec claim_answered(term(), pid(), atom(), binary(), #st{}) -> term().
claim_answered(Name, Pid, ok, _, #st{reg = Reg}) ->
    ?LOG_INFO("regent ~p: ~p re-claimed ~p", [Reg, Pid, Name]);
claim_answered(Name, Pid, no, HolderBin, #st{reg = Reg, opts = Opts}) ->
    Holder = regent_name:decode(HolderBin),
    ?LOG_WARNING("regent ~p: conflict on ~p: ~p claims it, ~p holds it",
                 [Reg, Name, Pid, Holder]),
    regent_telemetry:execute([conflict], #{count => 1},
                             #{registry => Reg, name => Name, claimant => Pid,
                               holder => Holder, policy => maps:get(conflict, Opts)}),
    case maps:get(conflict, Opts) of
        kill ->
            exit(Pid, {regent_conflict, Name, Holder});
        notify ->
            Pid ! {regent_conflict, Name, Holder};
        {resolve, Fun} ->
            resolved(Reg, Name, Pid, Holder, Fun(Name, Pid, Holder))
    end;
claim_answered(Name, Pid, Result, _, #st{reg = Reg}) ->
    ?LOG_WARNING("regent ~p: claim of ~p for ~p answered ~p",
                 [Reg, Name, Pid, Result]).

%% A resolve function's choice is written like any registration (by a
%% process of its own, so the member never waits for itself); a write that
%% could not be made (no quorum, or the member full) is said in the log.
resolved(Reg, Name, Claimant, Holder, Claimant) ->
    spawn(fun() ->
                  {ok, Key} = regent_name:encode(Name),
                  resolve_written(Reg, Name, Claimant,
                                  gen_server:call(Reg, {write, register,
                                                        {Key, regent_name:encode_pid(Claimant), <<>>,
                                                         regent_name:encode_pid(Holder)}}, infinity))
          end);
resolved(Reg, Name, _Claimant, Holder, none) ->
    spawn(fun() ->
                  {ok, Key} = regent_name:encode(Name),
                  resolve_written(Reg, Name, none,
                                  gen_server:call(Reg, {write, unregister_if_owner,
                                                        {Key, regent_name:encode_pid(Holder)}}, infinity))
          end);
resolved(_Reg, _Name, _Claimant, _Holder, _Keep) ->
    ok.

resolve_written(Reg, Name, Choice, {error, Why}) ->
    ?LOG_WARNING("regent ~p: the conflict policy chose ~p for ~p, but writing it failed (~p); "
                 "the name stays with its holder", [Reg, Choice, Name, Why]);
resolve_written(_Reg, _Name, _Choice, _Answer) ->
    ok.

%% @doc The server of a distributed supervisor on one node, registered
%% under the supervisor's name: it holds the node's lease
%% (regent_sup_lease), runs the node's share of the children
%% (regent_sup_run) and checks other nodes' leases (regent_sup_coord). It
%% hears of every change to the supervisor's records from the registry's
%% member (notify/3), and rescans them all every lease/3 ms, so that a
%% missed message only delays.
-module(regent_sup_server).
-behaviour(gen_server).

-export([start_link/1, notify/3]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-include("regent_sup.hrl").

%% @private
-spec start_link(map()) -> {ok, pid()} | {error, term()}.
start_link(#{name := Sup} = Opts) ->
    gen_server:start_link({local, Sup}, ?MODULE, Opts, []).

%% @private From regent_meta, in the member: one of Sup's records changed.
-spec notify(atom(), child | lease, term()) -> ok.
notify(Sup, Kind, X) ->
    case whereis(Sup) of
        undefined -> ok;
        Pid -> Pid ! {regent_sup, Kind, X}, ok
    end.

%% @private
-spec init(map()) -> {ok, #s{}}.
init(#{name := Sup, registry := Reg, load_tab := Tab, token_tab := Tok} = Opts) ->
    process_flag(trap_exit, true), % terminate/2 stops the instances, gives the lease back
    true = ets:delete_all_objects(Tok), % a restarted server has no instances
    S = #s{sup = Sup, reg = Reg, opts = Opts, load_tab = Tab},
    self() ! find_local_sup, % the parent answers once its init is done
    self() ! renew,
    erlang:send_after(tick_ms(S), self(), tick),
    erlang:send_after(rescan_ms(S), self(), rescan),
    {ok, S}.

tick_ms(#s{opts = #{lease := L}}) -> max(20, L div 10).
rescan_ms(#s{opts = #{lease := L}}) -> max(50, L div 3).

%% @private
-spec handle_call(term(), gen_server:from(), #s{}) -> {reply, term(), #s{}} | {noreply, #s{}}.
handle_call(Msg, From, S) ->
    call(Msg, From, regent_sup_lease:check(S)).

call({await, Id, I}, From, S) ->
    {noreply, regent_sup_run:await(Id, I, From, S)};
call({await_stop, Id}, From, S) ->
    {noreply, regent_sup_run:await_stop(Id, From, S)};
call(leave, From, S) ->
    {noreply, regent_sup_handoff:leave(From, S)};
call(epoch, _From, #s{epoch = E} = S) ->
    {reply, E, S};
call(Other, _From, S) ->
    {reply, {error, {unknown_call, Other}}, S}.

%% @private
-spec handle_cast(term(), #s{}) -> {noreply, #s{}}.
handle_cast(_Msg, S) ->
    {noreply, S}.

%% @private
-spec handle_info(term(), #s{}) -> {noreply, #s{}} | {stop, term(), #s{}}.
handle_info(Msg, S) ->
    case info(Msg, regent_sup_lease:check(S)) of
        {noreply, S1} -> {noreply, regent_sup_handoff:leave_check(S1)};
        Stop -> Stop
    end.

info({regent_sup, child, Id}, S) ->
    {noreply, regent_sup_run:consider(Id, S)};
info({regent_sup, lease, _Node}, S) ->
    {noreply, S};
info(find_local_sup, S) ->
    [Parent | _] = get('$ancestors'),
    [LSup] = [P || {local, P, supervisor, _} <- supervisor:which_children(Parent)],
    {noreply, S#s{local_sup = LSup}};
info(renew, S) ->
    {noreply, regent_sup_lease:renew(S)};
info({lease_result, Kind, Sent, New, Res}, #s{epoch = Old} = S) ->
    S1 = regent_sup_lease:result(Kind, Sent, New, Res, S),
    {noreply, case S1#s.epoch of
                  Old -> S1;
                  _ -> regent_sup_run:rescan(S1) % a new epoch: resume this node's children
              end};
info(fence_check, S) ->
    {noreply, regent_sup_lease:fence_check(S)};
info(tick, S) ->
    erlang:send_after(tick_ms(S), self(), tick),
    {noreply, regent_sup_coord:tick(S)};
info(rescan, S) ->
    erlang:send_after(rescan_ms(S), self(), rescan),
    {noreply, regent_sup_run:rescan(S)};
info({consider, Id}, S) ->
    {noreply, regent_sup_run:consider(Id, S)};
info({started, Id, I, Result}, S) ->
    {noreply, regent_sup_run:started(Id, I, Result, S)};
info({start_timeout, Id, I}, S) ->
    {noreply, regent_sup_run:start_timeout(Id, I, S)};
info({written, Id, Res}, S) ->
    {noreply, regent_sup_run:written(Id, Res, S)};
info({revoked, N, Res}, S) ->
    {noreply, regent_sup_coord:revoked(N, Res, S)};
info({moved, Ids}, S) ->
    {noreply, regent_sup_coord:moved(Ids, S)};
info({'DOWN', MRef, process, Pid, Reason}, S) ->
    {noreply, regent_sup_run:down(MRef, Pid, Reason, S)};
info({'EXIT', _Worker, normal}, S) ->
    {noreply, S};
info({handed, Id, I, State}, S) ->
    {noreply, regent_sup_handoff:handed(Id, I, State, S)};
info(leave_timeout, #s{leaving = undefined} = S) ->
    {noreply, S};
info(leave_timeout, #s{leaving = From} = S) ->
    gen_server:reply(From, ok), % some children did not move: they restart elsewhere
    {noreply, S#s{leaving = undefined}};
info({instance, Id, I, Pid}, S) ->
    {noreply, regent_sup_run:instance(Id, I, Pid, S)};
info({'EXIT', _From, Reason}, S) ->
    {stop, Reason, S}.

%% @private
%% The local instances stop first (the lease kept renewed meanwhile), then
%% the lease goes, so that a coordinator moves them at once instead of
%% after lease + margin.
-spec terminate(term(), #s{}) -> ok.
terminate(_Reason, #s{local_sup = LSup} = S) ->
    Renewer = regent_sup_lease:keep_renewing(S),
    stop_instances(LSup),
    regent_sup_lease:release(regent_sup_lease:stop_renewing(Renewer, S)).

stop_instances(undefined) ->
    ok;
stop_instances(LSup) ->
    try supervisor:which_children(LSup) of
        Children -> [supervisor:terminate_child(LSup, Id) || {Id, _, _, _} <- Children], ok
    catch exit:_ -> ok % the local supervisor is gone, and its instances with it
    end.

%% @doc The local instances of a distributed supervisor's children: a
%% child runs here while its record says this node, this node's epoch, and
%% `run', and the lease is valid. Each instance is started once per
%% incarnation (`inc'); every restart, move or resume is a new incarnation
%% committed to the log first, so `{Epoch, Inc}' is a fencing token.
%%
%% Starts, stops and record writes run in short-lived processes, so that
%% the server (and its lease renewals) never waits on a child's init or
%% on the log.
-module(regent_sup_run).

-export([consider/2, rescan/1, started/4, start_timeout/3, down/4, written/3,
         kill_all/1, await/4, await_stop/3, instance/4, write/5]).
%% write/5: regent_sup_handoff moves records with it.

-include("regent_sup.hrl").
-include_lib("kernel/include/logger.hrl").

%% @private Brings the local instance of Id in line with its record.
-spec consider(term(), #s{}) -> #s{}.
consider(Id, #s{reg = Reg, sup = Sup} = S0) ->
    Rec = regent_sup_store:child(Reg, Sup, Id),
    S = track(Id, Rec, S0),
    Me = node(),
    case Rec of
        #{node := Me, status := run} when S#s.leaving =/= undefined ->
            regent_sup_handoff:reroute(Id, Rec, S);
        #{node := Me, status := run} -> mine(Id, Rec, S);
        #{node := Me, status := handoff} -> regent_sup_handoff:local(Id, Rec, S);
        #{node := Other} when Other =/= Me ->
            stop_local(Id, reply_waiters(Id, maps:get(inc, Rec), {moved, Other}, S));
        _ -> stop_local(Id, S)
    end.

mine(Id, #{epoch := E, inc := I} = Rec, #s{epoch = E} = S) ->
    Valid = regent_sup_lease:valid(S),
    case {maps:find(Id, S#s.running), maps:find(Id, S#s.starting)} of
        {{ok, {I, _, _}}, _} -> S;
        {{ok, {_Old, _, _}}, _} -> stop_local(Id, S); % an older one goes first
        {_, {ok, _}} -> S;
        {error, error} when not Valid -> S;
        {error, error} ->
            case maps:find(Id, S#s.started) of
                {ok, I} -> again(Id, Rec, S);
                _ -> start(Id, Rec, S)
            end
    end;
mine(Id, #{epoch := E} = Rec, #s{epoch = Mine} = S) when is_integer(Mine), E < Mine ->
    %% Assigned to an earlier epoch of this node: its instance is gone.
    case regent_sup_lease:valid(S) of
        true -> exited(Id, Rec, resumed, S);
        false -> S
    end;
mine(_Id, _Rec, S) ->
    S.

%% Ran in this epoch and is not running: the decision on its exit was not
%% written (a conflict, no quorum); it is made again.
again(Id, Rec, S) ->
    Reason = case maps:find(Id, S#s.outcome) of
                 {ok, {_, {exited, R}}} -> R;
                 _ -> killed
             end,
    exited(Id, Rec, Reason, S).

%% @private Every record: the load table, and each child of this node.
-spec rescan(#s{}) -> #s{}.
rescan(#s{reg = Reg, sup = Sup, load_tab = Tab} = S) ->
    Recs = regent_sup_store:children(Reg, Sup),
    Nodes = maps:from_list([{Id, N} || {Id, #{node := N, status := St}} <- Recs, St =/= stopped]),
    Counts = maps:fold(fun(_, N, Acc) -> maps:update_with(N, fun(C) -> C + 1 end, 1, Acc) end,
                       #{}, Nodes),
    %% Replaced in place: a caller reading it meanwhile never sees it empty.
    true = ets:insert(Tab, maps:to_list(Counts)),
    [true = ets:delete(Tab, N) || {N, _} <- ets:tab2list(Tab), not is_map_key(N, Counts)],
    Local = [Id || {Id, #{node := N}} <- Recs, N =:= node()],
    Ids = lists:usort(Local ++ maps:keys(S#s.running) ++ maps:keys(S#s.waiters)),
    lists:foldl(fun consider/2, S#s{nodes = Nodes}, Ids).

track(Id, Rec, #s{nodes = Nodes, load_tab = Tab} = S) ->
    Old = maps:get(Id, Nodes, undefined),
    New = case Rec of
              #{node := N, status := St} when St =/= stopped -> N;
              _ -> undefined
          end,
    case Old =:= New of
        true -> S;
        false ->
            _ = Old =/= undefined andalso ets:update_counter(Tab, Old, -1, {Old, 1}),
            _ = New =/= undefined andalso ets:update_counter(Tab, New, 1, {New, 0}),
            S#s{nodes = case New of
                            undefined -> maps:remove(Id, Nodes);
                            _ -> Nodes#{Id => New}
                        end}
    end.

start(Id, #{inc := I, epoch := E, spec := Spec, tags := Tags},
      #s{local_sup = LSup, reg = Reg, sup = Sup, opts = #{start_timeout := T, token_tab := Tok}} = S) ->
    Server = self(),
    true = ets:insert(Tok, {Id, {E, I}}), % token/2 in the instance: its own incarnation
    Ctx = #{server => Server, local_sup => LSup, reg => Reg, sup => Sup, id => Id, inc => I,
            tags => Tags},
    _ = proc_lib:spawn_link(fun() -> Server ! {started, Id, I, do_start(Ctx, Spec)} end),
    TRef = erlang:send_after(T, self(), {start_timeout, Id, I}),
    S#s{starting = (S#s.starting)#{Id => {I, TRef, undefined, E}}, started = (S#s.started)#{Id => I}}.

do_start(#{local_sup := LSup, id := Id, inc := I} = Ctx, #{start := {M, _, _}} = Spec) ->
    case code:ensure_loaded(M) of
        {module, M} ->
            Local = maps:remove(significant, Spec#{id := {Id, I}, restart := temporary}),
            registered(supervisor:start_child(LSup, Local), Ctx);
        {error, _} ->
            {module_missing, M}
    end.

%% The instance takes the child's id as its name in the registry, with the
%% tags as its value; a live holder that is not ours keeps it.
registered({ok, undefined}, _Ctx) ->
    ignore; % how supervisor reports a start that returned ignore
registered({ok, Pid, _Info}, Ctx) ->
    registered({ok, Pid}, Ctx);
registered({ok, Pid}, #{server := Server, local_sup := LSup, id := Id, inc := I,
                        tags := Tags} = Ctx) ->
    Server ! {instance, Id, I, Pid}, % a fence from now on kills it
    Value = regent_write:value_bytes(value, Tags),
    try claim(Ctx, Pid, Value) of
        yes -> {ok, Pid};
        {no, Holder} ->
            _ = supervisor:terminate_child(LSup, {Id, I}),
            {error, {already_registered, Holder}}
    catch exit:{W, _} = Why when W =:= regent_unavailable; W =:= regent_overloaded ->
            _ = supervisor:terminate_child(LSup, {Id, I}),
            {error, Why}
    end;
registered({error, {Reason, Child}}, _Ctx) when element(1, Child) =:= child ->
    {error, Reason}; % supervisor's {Reason, #child{}}: the caller gets Reason, as from DynamicSupervisor
registered({error, _} = Error, _Ctx) ->
    Error;
registered(ignore, _Ctx) ->
    ignore.

%% The child's id as its name. A holder on a node whose lease was revoked
%% (or never held) is an instance that node has fenced, even if no
%% nodedown has purged its names yet (a real partition takes
%% net_ticktime): the name is taken from it.
claim(#{reg := Reg, sup := Sup, id := Id}, Pid, Value) ->
    case regent_register:register_name({Reg, Id}, Pid, Value) of
        yes -> yes;
        no ->
            Holder = regent:whereis_name({Reg, Id}),
            Fenced = is_pid(Holder) andalso node(Holder) =/= node() andalso
                case regent_sup_store:lease(Reg, Sup, node(Holder)) of
                    {revoked, _} -> true;
                    _ -> false % a live lease, or a node that never ran this supervisor
                end,
            case Fenced of
                true ->
                    Key = regent_write:key({Reg, Id}),
                    Args = {Key, regent_name:encode_pid(Pid), Value, regent_name:encode_pid(Holder)},
                    case regent_write:write({Reg, Id}, register, Args) of
                        yes -> yes;
                        {no, H} -> {no, H}
                    end;
                false -> {no, Holder}
            end
    end.

%% @private The answer of a start.
-spec started(term(), pos_integer(), term(), #s{}) -> #s{}.
started(Id, I, Result, #s{starting = Starting, epoch = Epoch} = S0) ->
    case maps:find(Id, Starting) of
        {ok, {I, TRef, _, E}} when E =/= Epoch ->
            %% Fenced while it started (and maybe a new epoch since): it
            %% must not live a moment longer.
            _ = erlang:cancel_timer(TRef),
            kill_result(Result),
            true = ets:delete(maps:get(token_tab, S0#s.opts), Id),
            S0#s{starting = maps:remove(Id, Starting)};
        {ok, {I, TRef, _, _}} ->
            _ = erlang:cancel_timer(TRef),
            outcome(Id, I, Result, S0#s{starting = maps:remove(Id, Starting)});
        _ -> % timed out already: nobody keeps it
            stop_pid(Result, S0)
    end.

%% @private
-spec start_timeout(term(), pos_integer(), #s{}) -> #s{}.
start_timeout(Id, I, #s{starting = Starting} = S) ->
    case maps:find(Id, Starting) of
        {ok, {I, _, _, _}} -> outcome(Id, I, {error, start_timeout}, S#s{starting = maps:remove(Id, Starting)});
        _ -> S
    end.

outcome(Id, I, Result, #s{reg = Reg, sup = Sup, opts = #{token_tab := Tok}} = S) ->
    Rec = regent_sup_store:child(Reg, Sup, Id),
    _ = is_tuple(Result) andalso element(1, Result) =:= ok orelse ets:delete(Tok, Id), % no instance here
    Current = is_map(Rec) andalso maps:get(inc, Rec) =:= I andalso maps:get(node, Rec) =:= node()
        andalso maps:get(status, Rec) =:= run andalso regent_sup_lease:valid(S),
    case {Result, Current} of
        {{ok, Pid}, true} ->
            MRef = erlang:monitor(process, Pid),
            S1 = S#s{running = (S#s.running)#{Id => {I, Pid, MRef}}},
            regent_sup_handoff:started(Id, Rec, reply_waiters(Id, I, {ok, Pid}, S1));
        {{ok, _}, false} -> stop_pid(Result, S); % killed at once if fenced (instance/4)
        {_, false} -> S;
        {{module_missing, M}, true} -> move(Id, Rec, M, S);
        {_, true} -> failed(Id, Rec, Result, S)
    end.

%% An instance nobody keeps (it started too late, or for a record that
%% moved on): its supervisor stops it as it would on terminate_child.
stop_pid({ok, Pid}, #s{local_sup = LSup} = S) ->
    MRef = erlang:monitor(process, Pid),
    _ = proc_lib:spawn_link(fun() -> stop_instance(LSup, Pid) end),
    S#s{stopping = (S#s.stopping)#{MRef => none}};
stop_pid(_, S) ->
    S.

%% A start that failed: the first start of start_child/2 leaves nothing
%% in the log; restart_child/2 leaves the child stopped; a restart counts
%% as an exit.
failed(Id, #{why := initial} = Rec, Result, S) ->
    write(Id, Rec, delete, error_reply(Result), S);
failed(Id, #{why := manual} = Rec, Result, S) ->
    write(Id, Rec, Rec#{status := stopped}, error_reply(Result), S);
failed(Id, Rec, Result, S) ->
    exited(Id, Rec, {start_failed, Result}, S).

error_reply(ignore) -> ignore;
error_reply({error, _} = E) -> E.

%% The chosen node lacks the child's module: another one, a bounded number
%% of times, then the start fails.
move(Id, #{tried := Tried, placement := Rule} = Rec, M, #s{reg = Reg, sup = Sup} = S) ->
    Live = regent_sup_place:live_nodes(Reg, Sup),
    Tried1 = [node() | Tried],
    Place = case length(Tried1) >= 3 of
                true -> {error, tried_enough};
                false -> regent_sup_place:choose(regent_sup_place:rule(Rule, S#s.opts), Id,
                                                 maps:keys(Live), Tried1,
                                                 regent_sup_place:loads(S#s.opts))
            end,
    case Place of
        {ok, N} ->
            New = Rec#{node := N, epoch := maps:get(N, Live), tried := Tried1},
            write(Id, Rec, New, {moved, N}, S);
        {error, _} ->
            failed(Id, Rec, {error, {module_missing, M, Tried1}}, S)
    end.


%% @private A local instance ended: the restart decision, as OTP's for a
%% dynamic child, written to the log (a new incarnation, or the record
%% goes when the child is given up or is not to be restarted).
-spec down(reference(), pid(), term(), #s{}) -> #s{}.
down(MRef, _Pid, Reason, #s{stopping = Stopping} = S) when is_map_key(MRef, Stopping) ->
    Id = maps:get(MRef, Stopping),
    _ = Reason,
    after_stop(Id, S#s{stopping = maps:remove(MRef, Stopping)});
down(MRef, _Pid, Reason, #s{running = Running, reg = Reg, sup = Sup} = S) ->
    case [{Id, I} || {Id, {I, _, M}} <- maps:to_list(Running), M =:= MRef] of
        [{Id, I}] ->
            S1 = S#s{running = maps:remove(Id, Running),
                     outcome = (S#s.outcome)#{Id => {I, {exited, Reason}}}},
            case regent_sup_store:child(Reg, Sup, Id) of
                #{inc := I, node := N, status := run} = Rec when N =:= node() ->
                    after_stop(Id, exited(Id, Rec, Reason, S1));
                _ -> after_stop(Id, consider(Id, S1))
            end;
        [] -> S
    end.

after_stop(none, S) -> S;
after_stop(Id, #s{stop_waiters = W, opts = #{token_tab := Tok}} = S) ->
    case is_map_key(Id, S#s.running) orelse is_map_key(Id, S#s.starting) of
        true -> S;
        false ->
            true = ets:delete(Tok, Id),
            [gen_server:reply(From, ok) || From <- maps:get(Id, W, [])],
            consider_if_idle(Id, S#s{stop_waiters = maps:remove(Id, W)})
    end.

consider_if_idle(Id, S) ->
    case is_map_key(Id, S#s.writing) of
        true -> S;
        false -> consider(Id, S)
    end.

exited(Id, #{spec := #{restart := R}} = Rec, Reason, S) ->
    Normal = Reason =:= normal orelse Reason =:= shutdown orelse
        (is_tuple(Reason) andalso element(1, Reason) =:= shutdown),
    case R =:= temporary orelse (R =:= transient andalso Normal) of
        true -> write(Id, Rec, delete, none, S);
        false -> restart(Id, Rec, Reason, S)
    end.

restart(Id, Rec, resumed, #s{epoch = E} = S) ->
    write(Id, Rec, Rec#{epoch := E, inc := maps:get(inc, Rec) + 1, why := auto, tried := []}, none, S);
restart(Id, #{restarts := Rs, max_restarts := MaxR, max_seconds := MaxS} = Rec, Reason,
        #s{sup = Sup} = S) ->
    Now = erlang:system_time(millisecond),
    Recent = [T || T <- Rs, Now - T < MaxS * 1000],
    case length(Recent) >= MaxR of
        true ->
            ?LOG_ERROR("regent_sup ~p: child ~p gave up after ~p restarts in ~p s: ~p",
                       [Sup, Id, MaxR, MaxS, Reason]),
            write(Id, Rec, delete, none, S);
        false ->
            New = Rec#{inc := maps:get(inc, Rec) + 1, restarts := [Now | Recent], why := auto,
                       tried := []},
            write(Id, Rec, New, none, S)
    end.

%% @private A compare-and-set of Id's record from Rec, once at a time per
%% child; Reply goes to the waiters if it commits.
-spec write(term(), map(), map() | delete, term(), #s{}) -> #s{}.
write(Id, Rec, New, Reply, #s{writing = Writing} = S) when is_map_key(Id, Writing) ->
    _ = {Rec, New, Reply},
    S;
write(Id, Rec, New, Reply, #s{reg = Reg, sup = Sup, writing = Writing} = S) ->
    Server = self(),
    Key = regent_sup_store:child_key(Sup, Id),
    _ = proc_lib:spawn_link(
          fun() ->
                  Res = try regent_sup_store:try_cas(Reg, Key, Rec, New)
                        catch error:{badarg, Why} -> {badarg, Why} % e.g. a record over 64 KiB
                        end,
                  Server ! {written, Id, {Res, maps:get(inc, Rec), Reply}}
          end),
    S#s{writing = Writing#{Id => true}}.

%% @private The answer of write/5.
-spec written(term(), term(), #s{}) -> #s{}.
written(Id, {Res, I, Reply}, #s{writing = Writing} = S0) ->
    S = S0#s{writing = maps:remove(Id, Writing)},
    case {Res, Reply} of
        {ok, none} -> consider(Id, S);
        {ok, _} -> consider(Id, reply_waiters(Id, I, Reply, S#s{outcome = (S#s.outcome)#{Id => {I, Reply}}}));
        {unavailable, _} -> erlang:send_after(100, self(), {consider, Id}), S;
        {{badarg, Why}, _} ->
            ?LOG_ERROR("regent_sup ~p: the record of child ~p could not be written: ~p",
                       [S#s.sup, Id, Why]),
            S;
        {{conflict, _}, _} -> consider(Id, S)
    end.

reply_waiters(Id, I, Reply, #s{waiters = W} = S) ->
    {Now, Later} = lists:partition(fun({WI, _}) -> WI =< I end, maps:get(Id, W, [])),
    [gen_server:reply(From, Reply) || {_, From} <- Now],
    S#s{waiters = case Later of [] -> maps:remove(Id, W); _ -> W#{Id => Later} end}.

%% @private A caller waits for incarnation I of Id to start here.
-spec await(term(), pos_integer(), gen_server:from(), #s{}) -> #s{}.
await(Id, I, From, #s{running = Running, outcome = Outcome, waiters = W} = S) ->
    case {maps:find(Id, Running), maps:find(Id, Outcome)} of
        {{ok, {RI, Pid, _}}, _} when RI >= I -> gen_server:reply(From, {ok, Pid}), S;
        {_, {ok, {OI, Reply}}} when OI >= I, element(1, Reply) =/= exited ->
            gen_server:reply(From, Reply), S;
        _ -> consider(Id, S#s{waiters = W#{Id => [{I, From} | maps:get(Id, W, [])]}})
    end.

%% @private A caller waits until Id has no instance here.
-spec await_stop(term(), gen_server:from(), #s{}) -> #s{}.
await_stop(Id, From, #s{stop_waiters = W} = S) ->
    S1 = consider(Id, S),
    case is_map_key(Id, S1#s.running) orelse is_map_key(Id, S1#s.starting) of
        true -> S1#s{stop_waiters = W#{Id => [From | maps:get(Id, W, [])]}};
        false -> gen_server:reply(From, ok), S1
    end.

stop_instance(LSup, Pid) ->
    case [Id || {Id, P, _, _} <- supervisor:which_children(LSup), P =:= Pid] of
        [Id] -> supervisor:terminate_child(LSup, Id);
        [] -> ok
    end.

stop_local(Id, #s{running = Running, local_sup = LSup} = S) ->
    case maps:find(Id, Running) of
        {ok, {I, _Pid, MRef}} ->
            _ = proc_lib:spawn_link(fun() -> supervisor:terminate_child(LSup, {Id, I}) end),
            S#s{running = maps:remove(Id, Running), stopping = (S#s.stopping)#{MRef => Id}};
        error -> S
    end.

%% @private Fencing: every instance is killed now, those still being
%% registered too (those still in init: as soon as it returns,
%% instance/4).
-spec kill_all(#s{}) -> #s{}.
kill_all(#s{running = Running, starting = Starting} = S) ->
    Stopping = maps:fold(fun(Id, {_, Pid, MRef}, Acc) -> exit(Pid, kill), Acc#{MRef => Id} end,
                         S#s.stopping, Running),
    [exit(Pid, kill) || {_, _, Pid, _} <- maps:values(Starting), is_pid(Pid)],
    S#s{running = #{}, stopping = Stopping, started = #{}}.

%% @private A starting instance's init returned: its pid, before its name
%% is claimed. Without a valid lease it is killed at once.
-spec instance(term(), pos_integer(), pid(), #s{}) -> #s{}.
instance(Id, I, Pid, #s{starting = Starting, epoch = Epoch} = S) ->
    case maps:find(Id, Starting) of
        {ok, {I, TRef, _, Epoch}} ->
            regent_sup_lease:valid(S) orelse exit(Pid, kill),
            S#s{starting = Starting#{Id => {I, TRef, Pid, Epoch}}};
        _ -> % fenced since it began, or not ours any more
            exit(Pid, kill),
            S
    end.

kill_result({ok, Pid}) when is_pid(Pid) -> exit(Pid, kill);
kill_result(_) -> ok.

%% @doc The member: one per registry per node.
%%
%% It owns regentd (a port program) and the registry's ETS mirror, which
%% serves `regent:whereis_name/1' in the caller's process. Writes arrive as
%% calls; each becomes an op with a ref, is batched with every other op that
%% arrived meanwhile (one OPS frame per pass through the mailbox) and is
%% answered when regentd applies it: the daemon streams every applied change
%% (mirrored into ETS first) and then the replies, so a caller that got `yes'
%% already sees its name in ETS.
%%
%% The member monitors the registered pids that live on its node and turns
%% their exits into unregister-if-still-owner ops.
%%
%% If regentd dies, the member keeps serving reads from ETS, restarts it on
%% the same data dir, waits for its DUMP (the recovered table), reconciles:
%% ETS rebuilt from the dump, dead local owners unregistered (their monitors
%% fire at once), names of live local processes that the daemon lost
%% re-claimed, unanswered ops sent again. docs/architecture.md has the story.
-module(regent_member).
-behaviour(gen_server).

-export([start_link/2]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-include_lib("kernel/include/logger.hrl").

-define(TICK_MS, 50).
-define(RETRY_MS, 20).
-define(MAX_RESTARTS, 10).
-define(RESTART_WINDOW_MS, 10000).
-define(FRAME_BYTES, 4 * 1024 * 1024).

-record(op, {from :: gen_server:from() | internal,
             kind :: register | unregister | unregister_if_owner | set_meta | read,
             bin :: binary(),
             deadline :: integer() | infinity}).

-record(st, {reg :: atom(),
             opts :: map(),
             dir :: file:filename(),
             port :: port() | undefined,
             daemon_id = 0 :: non_neg_integer(),
             raft_port = 0 :: inet:port_number(),
             synced = false :: boolean(),
             status = #{} :: map(),
             pending = #{} :: #{pos_integer() => #op{}},
             outbox = [] :: [pos_integer()],
             flush_queued = false :: boolean(),
             held = [] :: [regent_proto:reply()],
             dump = [] :: [[regent_proto:row()]],
             owned = #{} :: #{pid() => {reference(), #{binary() => true}}},
             waiters = [] :: [gen_server:from()],
             status_waiters = [] :: [gen_server:from()],
             restarts = [] :: [integer()],
             daemon_starts = 0 :: non_neg_integer(),
             tick = false :: boolean()}).

%% @private
-spec start_link(atom(), map()) -> gen_server:start_ret().
start_link(Reg, Opts) ->
    gen_server:start_link({local, Reg}, ?MODULE, {Reg, Opts}, []).

%% ---- gen_server callbacks ------------------------------------------------

%% @private
-spec init({atom(), map()}) -> {ok, #st{}}.
init({Reg, Opts}) ->
    process_flag(trap_exit, true),
    Reg = ets:new(Reg, [named_table, set, protected, {read_concurrency, true}]),
    Dir = data_dir(Reg, Opts),
    S = #st{reg = Reg, opts = Opts, dir = Dir},
    {ok, start_daemon(S)}.

%% @private
-spec handle_call(term(), gen_server:from(), #st{}) ->
          {reply, term(), #st{}} | {noreply, #st{}}.
handle_call({write, Kind, Args}, From, S) ->
    Deadline = now_ms() + maps:get(register_timeout, S#st.opts),
    {noreply, submit(Kind, Args, From, Deadline, S)};
handle_call(status, From, #st{port = Port} = S) when is_port(Port) ->
    %% Fresh numbers from the daemon (it only pushes role/leader changes).
    S#st.status_waiters =:= [] andalso
        port_command(Port, regent_proto:status_request()),
    {noreply, S#st{status_waiters = [From | S#st.status_waiters]}};
handle_call(status, _From, S) ->
    {reply, status_map(S), S};
handle_call(await_ready, _From, #st{synced = true} = S) ->
    {reply, ok, S};
handle_call(await_ready, From, S) ->
    {noreply, S#st{waiters = [From | S#st.waiters]}};
handle_call(Other, _From, S) ->
    {reply, {error, {unknown_call, Other}}, S}.

%% @private
-spec handle_cast(term(), #st{}) -> {noreply, #st{}}.
handle_cast(_Msg, S) ->
    {noreply, S}.

%% @private
-spec handle_info(term(), #st{}) -> {noreply, #st{}} | {stop, term(), #st{}}.
handle_info({Port, {data, Frame}}, #st{port = Port} = S) ->
    {noreply, handle_event(regent_proto:decode(Frame), S)};
handle_info({Port, {exit_status, Code}}, #st{port = Port} = S) ->
    daemon_died(Code, S);
handle_info({'EXIT', Port, Reason}, #st{port = Port} = S) ->
    %% The port closed without an exit status (e.g. a write failed with
    %% epipe); regentd sees its stdin close and exits by itself.
    daemon_died({port_closed, Reason}, S);
handle_info({'EXIT', Port, _}, S) when is_port(Port) ->
    {noreply, S}; % a previous daemon's port
handle_info(flush, S) ->
    {noreply, flush(S#st{flush_queued = false})};
handle_info(tick, S) ->
    {noreply, tick(S#st{tick = false})};
handle_info({'DOWN', MRef, process, Pid, _Why}, S) ->
    {noreply, owner_down(MRef, Pid, S)};
handle_info(_Msg, S) ->
    {noreply, S}.

%% @private
-spec terminate(term(), #st{}) -> ok.
terminate(Reason, #st{port = Port, dir = Dir}) ->
    is_port(Port) andalso stop_daemon(Port),
    %% A deliberate stop ends this member's raft state, like a member that
    %% leaves its cluster; after a crash the restarted member resumes it.
    case graceful(Reason) of
        true -> ok = file:del_dir_r(Dir);
        false -> ok
    end.

graceful(normal) -> true;
graceful(shutdown) -> true;
graceful({shutdown, _}) -> true;
graceful(_) -> false.

%% regentd stops raft cleanly on STOP (or on EOF) and exits.
stop_daemon(Port) ->
    true = port_command(Port, regent_proto:stop()),
    receive
        {Port, {exit_status, _}} -> ok
    after 5000 ->
            port_close(Port)
    end.

%% ---- the daemon ----------------------------------------------------------

start_daemon(#st{opts = Opts, dir = Dir} = S) ->
    await_previous_daemon(Dir),
    Exe = maps:get(daemon, Opts),
    Port = open_port({spawn_executable, Exe},
                     [{packet, 4}, binary, exit_status, use_stdio, {args, []}]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    ok = file:write_file(filename:join(Dir, "daemon.pid"), integer_to_list(OsPid)),
    Start = #{id => 0, bootstrap => true,
              data_dir => unicode:characters_to_binary(Dir),
              bind_host => maps:get(bind_host, Opts),
              port_range => maps:get(port_range, Opts),
              secret => maps:get(secret, Opts)},
    true = port_command(Port, regent_proto:start(Start)),
    [gen_server:reply(W, status_map(S#st{port = undefined}))
     || W <- S#st.status_waiters],
    S#st{port = Port, synced = false, status = #{}, dump = [], held = [],
         status_waiters = [],
         daemon_starts = S#st.daemon_starts + 1}.

%% A member that crashed left its daemon shutting down (it sees EOF); two
%% daemons must never share a data dir, so wait for it, then insist.
await_previous_daemon(Dir) ->
    case file:read_file(filename:join(Dir, "daemon.pid")) of
        {ok, Bin} ->
            Proc = "/proc/" ++ binary_to_list(Bin),
            Gone = fun() -> not filelib:is_dir(Proc) end,
            case poll(Gone, 5000) of
                ok -> ok;
                timeout -> os:cmd("kill -9 " ++ binary_to_list(Bin)), poll(Gone, 1000)
            end;
        {error, enoent} ->
            ok
    end.

poll(Done, Ms) when Ms =< 0 ->
    case Done() of true -> ok; false -> timeout end;
poll(Done, Ms) ->
    case Done() of
        true -> ok;
        false -> timer:sleep(10), poll(Done, Ms - 10)
    end.

daemon_died(Code, #st{reg = Reg} = S0) ->
    Now = now_ms(),
    Recent = [T || T <- S0#st.restarts, Now - T < ?RESTART_WINDOW_MS],
    ?LOG_WARNING("regent ~p: regentd exited with status ~p; ~p ops pending; "
                 "restarting it (reads keep being served)",
                 [Reg, Code, map_size(S0#st.pending)]),
    case length(Recent) >= ?MAX_RESTARTS of
        true ->
            {stop, {regentd_restart_limit, Code}, S0#st{port = undefined}};
        false ->
            %% Everything not answered goes again to the next daemon; ops
            %% that did commit are answered from its log replay instead.
            %% The outbox is kept newest first.
            Outbox = lists:reverse(lists:sort(maps:keys(S0#st.pending))),
            S = S0#st{port = undefined, restarts = [Now | Recent],
                      outbox = Outbox},
            {noreply, start_daemon(S)}
    end.

handle_event({started, Id, RaftPort, Resumed}, #st{reg = Reg} = S) ->
    ?LOG_INFO("regent ~p: regentd started, raft id ~.16b, raft port ~p, ~s",
              [Reg, Id, RaftPort,
               case Resumed of true -> "resumed its state"; false -> "fresh" end]),
    S#st{daemon_id = Id, raft_port = RaftPort};
handle_event({status, Status}, S0) ->
    S = S0#st{status = Status, status_waiters = []},
    [gen_server:reply(W, status_map(S)) || W <- S0#st.status_waiters],
    S;
handle_event({applied, Changes, Replies}, #st{synced = true} = S) ->
    replies(Replies, lists:foldl(fun change/2, S, Changes));
handle_event({applied, [], Replies}, #st{synced = false} = S) ->
    %% Replayed entries while recovering: answer after the dump is in ETS.
    S#st{held = S#st.held ++ Replies};
handle_event({replies, Replies}, S) ->
    replies(Replies, S);
handle_event({dump, false, Rows}, S) ->
    S#st{dump = [Rows | S#st.dump]};
handle_event({dump, true, Rows}, S) ->
    synced(reconcile(lists:append(lists:reverse([Rows | S#st.dump])), S));
handle_event({error, Msg}, #st{reg = Reg} = S) ->
    ?LOG_ERROR("regent ~p: regentd reported: ~ts", [Reg, Msg]),
    S.

synced(S0) ->
    S1 = replies(S0#st.held, S0#st{synced = true, held = [], dump = []}),
    [gen_server:reply(W, ok) || W <- S1#st.waiters],
    flush(S1#st{waiters = []}).

%% ---- ops ----------------------------------------------------------------

%% Refs are unique in this BEAM, not just in this member: a member that is
%% restarted after a crash resumes its daemon's log, whose replayed replies
%% carry the previous incarnation's refs.
submit(Kind, Args, From, Deadline, S) ->
    Ref = erlang:unique_integer([positive, monotonic]),
    Op = #op{from = From, kind = Kind, bin = encode_op(Kind, Ref, Args),
             deadline = Deadline},
    queue_flush(arm_tick(S#st{pending = maps:put(Ref, Op, S#st.pending),
                              outbox = [Ref | S#st.outbox]})).

encode_op(register, Ref, {Key, Pid, Meta, Replace}) ->
    regent_proto:op_register(Ref, Key, Pid, Meta, Replace);
encode_op(unregister, Ref, Key) ->
    regent_proto:op_unregister(Ref, Key);
encode_op(unregister_if_owner, Ref, {Key, Pid}) ->
    regent_proto:op_unregister_if_owner(Ref, Key, Pid);
encode_op(set_meta, Ref, {Key, Meta}) ->
    regent_proto:op_set_meta(Ref, Key, Meta);
encode_op(read, Ref, Key) ->
    regent_proto:op_read(Ref, Key).

%% One flush per pass through the mailbox: every op that arrives before the
%% `flush' message is processed travels in the same frame (and, usually,
%% the same raft entry).
queue_flush(#st{flush_queued = true} = S) ->
    S;
queue_flush(S) ->
    self() ! flush,
    S#st{flush_queued = true}.

flush(#st{outbox = []} = S) ->
    S;
flush(#st{synced = false} = S) ->
    S; % sent once the daemon is ready
flush(#st{port = Port, outbox = Outbox, pending = Pending} = S) ->
    Ops = [Op#op.bin || Ref <- lists:reverse(Outbox),
                        {ok, Op} <- [maps:find(Ref, Pending)]],
    [true = port_command(Port, regent_proto:ops(Chunk)) || Chunk <- chunks(Ops)],
    S#st{outbox = []}.

%% Frames of at most ~?FRAME_BYTES (regentd refuses frames over 64 MiB).
chunks([]) ->
    [];
chunks(Ops) ->
    chunks(Ops, 0, [], []).

chunks([], _, Cur, Acc) ->
    lists:reverse([lists:reverse(Cur) | Acc]);
chunks([Op | Rest], Size, Cur, Acc) when Cur =/= [],
                                         Size + byte_size(Op) > ?FRAME_BYTES ->
    chunks(Rest, byte_size(Op), [Op], [lists:reverse(Cur) | Acc]);
chunks([Op | Rest], Size, Cur, Acc) ->
    chunks(Rest, Size + byte_size(Op), [Op | Cur], Acc).

replies(Replies, S) ->
    lists:foldl(fun reply/2, S, Replies).

reply({Ref, Result, Payload}, S) ->
    case maps:take(Ref, S#st.pending) of
        error ->
            S; % answered already (a retried op that committed twice)
        {Op, Pending} when Result =:= retry ->
            %% Not committed (no leader yet, leadership lost): again shortly.
            erlang:send_after(?RETRY_MS, self(), flush),
            S#st{pending = maps:put(Ref, Op, Pending),
                 outbox = [Ref | S#st.outbox]};
        {Op, Pending} ->
            answer(Op, Result, Payload, S),
            S#st{pending = Pending}
    end.

answer(#op{from = internal}, ok, _, _S) ->
    ok;
answer(#op{from = internal, kind = Kind}, Result, _, #st{reg = Reg}) ->
    %% Only a re-claim after the daemon lost state can be refused.
    ?LOG_WARNING("regent ~p: internal ~p answered ~p", [Reg, Kind, Result]);
answer(#op{from = From}, bad, _, _S) ->
    gen_server:reply(From, {error, bad_request});
answer(#op{from = From, kind = register}, Result, _, _S) ->
    gen_server:reply(From, case Result of ok -> yes; no -> no end);
answer(#op{from = From, kind = set_meta}, not_found, _, _S) ->
    gen_server:reply(From, {error, not_registered});
answer(#op{from = From, kind = read}, ok, <<>>, _S) ->
    gen_server:reply(From, undefined);
answer(#op{from = From, kind = read}, ok, PidBin, _S) ->
    %% As whereis_name/1: a local owner that has exited reads as gone.
    Pid = regent_name:decode(PidBin),
    Alive = node(Pid) =/= node() orelse is_process_alive(Pid),
    gen_server:reply(From, case Alive of true -> Pid; false -> undefined end);
answer(#op{from = From}, ok, _, _S) ->
    gen_server:reply(From, ok).

%% Periodic while ops are pending: callers whose deadline passed get
%% {error, unavailable} (regent exits with regent_unavailable for them).
arm_tick(#st{tick = true} = S) ->
    S;
arm_tick(S) ->
    erlang:send_after(?TICK_MS, self(), tick),
    S#st{tick = true}.

tick(#st{pending = Pending} = S) ->
    Now = now_ms(),
    Expired = [Ref || {Ref, #op{deadline = D}} <- maps:to_list(Pending),
                      D =/= infinity, D =< Now],
    [gen_server:reply(From, {error, unavailable})
     || Ref <- Expired, #op{from = From} <- [maps:get(Ref, Pending)]],
    S1 = S#st{pending = maps:without(Expired, Pending),
              outbox = S#st.outbox -- Expired},
    case map_size(S1#st.pending) of
        0 -> S1;
        _ -> arm_tick(S1)
    end.

%% ---- the mirror and the monitors -----------------------------------------

change({put, Key, PidBin, MetaBin}, #st{reg = Tab} = S) ->
    Name = regent_name:decode(Key),
    Pid = regent_name:decode(PidBin),
    S1 = case ets:lookup(Tab, Name) of
             [{_, Old, _}] when Old =/= Pid -> untrack(Old, Key, S);
             _ -> S
         end,
    true = ets:insert(Tab, {Name, Pid, meta(MetaBin)}),
    track(Pid, Key, S1);
change({del, Key}, #st{reg = Tab} = S) ->
    Name = regent_name:decode(Key),
    case ets:lookup(Tab, Name) of
        [{_, Old, _}] ->
            true = ets:delete(Tab, Name),
            untrack(Old, Key, S);
        [] ->
            S
    end.

meta(<<>>) -> undefined;
meta(Bin) -> binary_to_term(Bin).

%% Local owners are monitored by this member; remote ones by theirs.
track(Pid, Key, S) when node(Pid) =:= node() ->
    Owned = S#st.owned,
    case maps:find(Pid, Owned) of
        {ok, {MRef, Keys}} ->
            S#st{owned = Owned#{Pid := {MRef, Keys#{Key => true}}}};
        error ->
            MRef = erlang:monitor(process, Pid),
            S#st{owned = Owned#{Pid => {MRef, #{Key => true}}}}
    end;
track(_Pid, _Key, S) ->
    S.

untrack(Pid, Key, S) ->
    Owned = S#st.owned,
    case maps:find(Pid, Owned) of
        {ok, {MRef, #{Key := _} = Keys}} when map_size(Keys) =:= 1 ->
            erlang:demonitor(MRef, [flush]),
            S#st{owned = maps:remove(Pid, Owned)};
        {ok, {MRef, Keys}} ->
            S#st{owned = Owned#{Pid := {MRef, maps:remove(Key, Keys)}}};
        error ->
            S
    end.

owner_down(MRef, Pid, S) ->
    case maps:take(Pid, S#st.owned) of
        {{MRef, Keys}, Owned} ->
            PidBin = regent_name:encode_pid(Pid),
            lists:foldl(
              fun(Key, Acc) ->
                      submit(unregister_if_owner, {Key, PidBin}, internal,
                             infinity, Acc)
              end, S#st{owned = Owned}, maps:keys(Keys));
        _ ->
            S
    end.

%% The daemon's table (a fresh start, a restart or a snapshot restore)
%% replaces the mirror. Rows are overwritten in place and only missing names
%% are deleted, so readers never see an empty table in between. Live local
%% processes whose names the daemon no longer has claim them again.
reconcile(Rows, #st{reg = Tab, owned = Owned0} = S0) ->
    [erlang:demonitor(MRef, [flush]) || {MRef, _} <- maps:values(Owned0)],
    Fresh = maps:from_list([{regent_name:decode(K), {K, P, M}}
                            || {K, P, M} <- Rows]),
    Lost = [Row || {Name, _, _} = Row <- ets:tab2list(Tab),
                   not is_map_key(Name, Fresh)],
    [true = ets:delete(Tab, Name) || {Name, _, _} <- Lost],
    S1 = lists:foldl(fun({K, P, M}, Acc) -> change({put, K, P, M}, Acc) end,
                     S0#st{owned = #{}}, Rows),
    Reclaim = [Row || {_, Pid, _} = Row <- Lost,
                      node(Pid) =:= node(), is_process_alive(Pid)],
    ?LOG_NOTICE("regent ~p: mirror synced with regentd: ~p names, ~p dropped, "
                "~p re-claimed, ~p local owners monitored",
                [S0#st.reg, length(Rows), length(Lost) - length(Reclaim),
                 length(Reclaim), map_size(S1#st.owned)]),
    lists:foldl(fun reclaim/2, S1, Reclaim).

reclaim({Name, Pid, Meta}, S) ->
    {ok, Key} = regent_name:encode(Name),
    MetaBin = case Meta of undefined -> <<>>; _ -> term_to_binary(Meta) end,
    submit(register, {Key, regent_name:encode_pid(Pid), MetaBin, <<>>},
           internal, infinity, S).

%% ---- status and set-up ---------------------------------------------------

status_map(#st{reg = Reg, status = St, port = Port} = S) ->
    Leader = case maps:get(leader_id, St, 0) of
                 0 -> undefined;
                 Id when Id =:= S#st.daemon_id -> {node(), Reg};
                 Id -> {raft_id, Id} % other members: mapped by clustering
             end,
    Applied = maps:get(applied, St, 0),
    OsPid = case Port of
                undefined -> undefined;
                _ -> element(2, erlang:port_info(Port, os_pid))
            end,
    #{registry => Reg,
      member => {node(), Reg},
      role => maps:get(raft_state, St, unavailable),
      leader => Leader,
      epoch => maps:get(term, St, 0),
      applied_index => Applied,
      commit_index => maps:get(commit, St, 0),
      lag => max(0, maps:get(commit, St, 0) - Applied),
      ready => S#st.synced,
      names => ets:info(Reg, size),
      pending_ops => map_size(S#st.pending),
      daemon => #{os_pid => OsPid, raft_id => S#st.daemon_id,
                  raft_port => S#st.raft_port,
                  starts => S#st.daemon_starts, data_dir => S#st.dir}}.

%% <base>/<node>-<os pid>/<registry>: a new BEAM incarnation never resumes
%% an older one's raft state (it must join under a fresh id), while a
%% restarted daemon or member in this BEAM does. Directories of BEAMs that
%% are gone (no /proc/<pid>: Linux) are removed.
data_dir(Reg, Opts) ->
    Base = maps:get(data_dir, Opts),
    Self = atom_to_list(node()) ++ "-" ++ os:getpid(),
    ok = filelib:ensure_path(Base),
    remove_stale(Base, Self),
    Dir = filename:join([Base, Self, atom_to_list(Reg)]),
    ok = filelib:ensure_path(Dir),
    Dir.

remove_stale(Base, Self) ->
    {ok, Entries} = file:list_dir(Base),
    [remove_dir(filename:join(Base, E)) || E <- Entries, E =/= Self, stale(E)],
    ok.

%% Someone else's leftovers (another user's, in a shared /dev/shm) may not be
%% ours to delete: say so and go on.
remove_dir(Dir) ->
    case file:del_dir_r(Dir) of
        ok -> ok;
        {error, Why} -> ?LOG_WARNING("regent: cannot remove stale ~ts: ~p", [Dir, Why])
    end.

stale(Entry) ->
    case string:split(Entry, "-", trailing) of
        [_Node, OsPid] ->
            case string:to_integer(OsPid) of
                {N, []} when N > 0 ->
                    not filelib:is_dir("/proc/" ++ integer_to_list(N));
                _ ->
                    false
            end;
        _ ->
            false
    end.

now_ms() ->
    erlang:monotonic_time(millisecond).

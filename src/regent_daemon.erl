%% @doc regentd, the member's port program: starting it (on the member's
%% data dir, once a previous daemon there is gone), stopping it, restarting
%% it when it dies, telling it that the member runs; and the frames it
%% sends, which handle_event/2 hands to the concern that handles each:
%%
%%   STARTED  here; then regent_discovery joins, or regent_leave rejoins
%%   STATUS   regent_status, then regent_peers:leader_seen/2
%%   MEMBERS  regent_membership (plan), regent_discovery (joined, address)
%%   CHANGED  regent_membership
%%   APPLIED  regent_mirror (the changes first), then regent_outbox (replies)
%%   REPLIES  regent_outbox
%%   DUMP     regent_mirror
%%   ERROR    logged here
%%
%% A daemon that exits is restarted on the same data dir: its unanswered ops
%% go again, and its DUMP rebuilds the mirror. Past ?MAX_RESTARTS exits in
%% ?RESTART_WINDOW_MS the member stops, for its supervisor to restart it. A
%% daemon that lost its raft state while in a cluster rejoins it under a
%% fresh id (regent_leave:dissolve/2).
%%
%% Owns the fields `port', `daemon_id', `raft_port', `restarts' and
%% `daemon_starts'; start_daemon/2 also resets the fields of one daemon's
%% life (src/regent_member.hrl). Called by regent_member (port messages,
%% `alive', terminate/2, regent_fault's block_raft call), regent_discovery
%% (the first start) and regent_leave (a dissolve).
-module(regent_daemon).

-export([command/2]).
-export([start_daemon/2, stop_daemon/1, daemon_died/2, handle_event/2,
         alive/1, block_raft/2]).

-include_lib("kernel/include/logger.hrl").
-include("regent_member.hrl").

-define(MAX_RESTARTS, 10).
-define(RESTART_WINDOW_MS, 10000).

%% @private
-spec start_daemon(#st{}, boolean()) -> #st{}.
start_daemon(S, Bootstrap) ->
    start_daemon(S#st{phase = case Bootstrap of true -> running; false -> joining end}).

start_daemon(#st{opts = Opts, dir = Dir, phase = Phase} = S) ->
    await_previous_daemon(Dir),
    Exe = maps:get(daemon, Opts),
    Port = open_port({spawn_executable, Exe},
                     [{packet, 4}, binary, exit_status, use_stdio, {args, []}]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    %% The dir may have been deleted under us (by hand, or a sweep while no
    %% daemon held it): regentd starts afresh in a new one (its STARTED says
    %% it did not resume), so only the pid record needs the dir here.
    ok = filelib:ensure_path(Dir),
    ok = file:write_file(filename:join(Dir, "daemon.pid"), integer_to_list(OsPid)),
    %% A daemon that finds no raft state bootstraps a one-node cluster,
    %% unless this member was in a cluster of several: then its STARTED
    %% (not resumed) makes the member join that cluster again instead.
    Start = #{id => 0, bootstrap => Phase =/= joining andalso length(S#st.members) =< 1,
              data_dir => unicode:characters_to_binary(Dir),
              bind_host => maps:get(bind_host, Opts),
              port_range => maps:get(port_range, Opts),
              secret => maps:get(secret, Opts),
              snapshot => {maps:get(snapshot_threshold, Opts),
                           maps:get(snapshot_trailing, Opts)},
              tls => maps:get(tls, Opts)},
    true = port_command(Port, regent_proto:start(Start)),
    [gen_server:reply(W, regent_status:status_map(S#st{port = undefined}))
     || W <- S#st.status_waiters],
    S#st{port = Port, synced = false, status = #{}, dump = [], dump_into = undefined, held = [],
         status_waiters = [], leader_id = 0, change_busy = false, changes = #{},
         leaderless_since = ?NOW_MS(),
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

%% @private
%% regentd stops raft cleanly on STOP (or on EOF) and exits. The port may
%% have closed meanwhile (the daemon died): then there is nothing to stop.
-spec stop_daemon(port()) -> ok.
stop_daemon(Port) ->
    OsPid = case erlang:port_info(Port, os_pid) of
                {os_pid, P} -> P;
                undefined -> undefined
            end,
    try port_command(Port, regent_proto:stop())
    catch error:badarg -> ok
    end,
    receive
        {Port, {exit_status, _}} -> ok
    after 5000 ->
            %% A daemon that does not stop must not outlive us on the dir
            %% (the next one would find the dir locked).
            ?LOG_WARNING("regentd (os pid ~p) did not stop within 5 s; killing it", [OsPid]),
            try port_close(Port)
            catch error:badarg -> ok
            end,
            is_integer(OsPid) andalso os:cmd("kill -9 " ++ integer_to_list(OsPid)),
            ok
    end.

%% @private
%% Sends a frame to the daemon. A port that has just closed (its exit
%% message is on its way, behind a timer's or a flush's) takes nothing:
%% false, and the exit is handled when it arrives; the ops it did not take
%% go again to the next daemon (requeue_all).
-spec command(port() | undefined, iodata()) -> boolean().
command(Port, Frame) when is_port(Port) ->
    try port_command(Port, Frame)
    catch error:badarg -> false
    end;
command(undefined, _Frame) ->
    false.

%% @private
%% Every ?ALIVE_MS (init/1 arms the first).
-spec alive(#st{}) -> #st{}.
alive(#st{port = Port} = S) ->
    command(Port, regent_proto:alive()),
    erlang:send_after(?ALIVE_MS, self(), alive),
    S.

%% @private
%% regent_fault:cut_raft/2,3 and heal_raft/1 (tests): the BLOCK frame cuts
%% the raft links with the members on the given nodes.
-spec block_raft([{node(), in | out | both}], #st{}) -> {ok, non_neg_integer()}.
block_raft(Cuts, #st{port = Port} = S) ->
    Blocks = [{Id, Dir} || {N, Dir} <- Cuts,
                           #{id := Id} <- [maps:get(N, S#st.peers, #{})], Id =/= 0],
    command(Port, regent_proto:block(Blocks)),
    {ok, length(Blocks)}.

%% ---- when it dies --------------------------------------------------------

%% @private
-spec daemon_died(term(), #st{}) -> {noreply, #st{}} | {stop, term(), #st{}}.
daemon_died(Code, #st{reg = Reg} = S0) ->
    Now = ?NOW_MS(),
    Recent = [T || T <- S0#st.restarts, Now - T < ?RESTART_WINDOW_MS],
    ?LOG_WARNING("regent ~p: regentd exited with status ~p; ~p ops pending; "
                 "restarting it (reads keep being served)",
                 [Reg, Code, map_size(S0#st.pending)]),
    regent_telemetry:execute([daemon, restart], #{pending => map_size(S0#st.pending)},
                             #{registry => Reg, exit_status => Code}),
    Code =:= 127 orelse Code =:= 126 andalso
        ?LOG_ERROR("regent ~p: ~ts could not run (exit status ~p): is a shared library "
                   "missing? `ldd` on it says; `make setup` installs libraft and libuv",
                   [Reg, maps:get(daemon, S0#st.opts), Code]),
    case length(Recent) >= ?MAX_RESTARTS of
        true ->
            %% The member stops with this reason: its supervisor sees the
            %% exit and restarts it (with a fresh daemon) as its own
            %% intensity allows; callers get regent_not_running meanwhile.
            ?LOG_ERROR("regent ~p: regentd exited ~p times in ~p s (last status ~p); "
                       "the registry on this node stops, with reason "
                       "{regentd_restart_limit, ~p}, for its supervisor to restart",
                       [Reg, length(Recent) + 1, ?RESTART_WINDOW_MS div 1000, Code, Code]),
            {stop, {regentd_restart_limit, Code}, S0#st{port = undefined}};
        false ->
            %% Everything not answered goes again to the next daemon; ops
            %% that did commit are answered from its log replay instead.
            S = S0#st{port = undefined, restarts = [Now | Recent]},
            %% Everything not answered goes again to the next daemon; ops
            %% that did commit are answered from its log replay instead.
            {noreply, start_daemon(regent_outbox:requeue_all(S))}
    end.

%% ---- frames in -----------------------------------------------------------

%% @private
-spec handle_event(regent_proto:event(), #st{}) -> #st{}.
handle_event({started, Id, RaftPort, Resumed}, #st{reg = Reg} = S) ->
    ?LOG_INFO("regent ~p: regentd started, raft id ~.16b, raft port ~p, ~s",
              [Reg, Id, RaftPort,
               case Resumed of true -> "resumed its state"; false -> "fresh" end]),
    S1 = S#st{daemon_id = Id, raft_port = RaftPort, reclaim_on_dump = not Resumed},
    case S1#st.phase of
        joining ->
            regent_peers:hello_all(S1),
            regent_discovery:ask_to_join(S1);
        running when not Resumed, length(S1#st.members) > 1 ->
            %% We were in a cluster, but the daemon found no state (its dir
            %% was deleted, or swept while no daemon held it): it must not
            %% stay a server with no configuration beside that cluster.
            %% Join the cluster again instead.
            ?LOG_WARNING("regent ~p: regentd lost its raft state on restart; joining again",
                         [Reg]),
            regent_leave:dissolve({join, regent_peers:leader_node_known(S1)}, S1);
        _ ->
            regent_peers:hello_all(S1),
            S1
    end;
handle_event({status, Status}, S) ->
    regent_peers:leader_seen(maps:get(leader_id, Status), regent_status:received(Status, S));
handle_event({members, Members}, S) ->
    Members =:= S#st.members orelse
        regent_telemetry:execute([membership, change], #{members => length(Members)},
                                 #{registry => S#st.reg, members => Members}),
    regent_discovery:address_check(
      regent_discovery:joined(regent_membership:plan(S#st{members = Members})));
handle_event({changed, Ref, Status}, S) ->
    regent_membership:change_done(Ref, Status, S);
handle_event({applied, Index, Changes, Replies}, #st{synced = true} = S) ->
    regent_outbox:replies(Replies, regent_mirror:changes(Changes, S#st{applied_index = Index}));
handle_event({applied, _Index, [], Replies}, #st{synced = false} = S) ->
    %% Replayed entries while recovering: answer after the dump is in ETS.
    S#st{held = S#st.held ++ Replies};
handle_event({replies, Replies}, S) ->
    regent_outbox:daemon_replies(Replies, S);
handle_event({dump, false, Table, _Index, Rows}, S) ->
    regent_mirror:dump_frame(Table, Rows, S);
handle_event({dump, true, Table, Index, Rows}, S) ->
    Frames = lists:reverse([{Table, Rows} | S#st.dump]),
    Tables = maps:from_list([{T, lists:append([R || {T1, R} <- Frames, T1 =:= T])}
                             || T <- [names, groups, meta]]),
    regent_mirror:synced(regent_mirror:reconcile(Tables, S#st{applied_index = Index}));
handle_event({error, Msg}, #st{reg = Reg} = S) ->
    ?LOG_ERROR("regent ~p: regentd reported: ~ts", [Reg, Msg]),
    S.

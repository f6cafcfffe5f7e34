%% @doc The member's status: the map `regent:status/1' returns (and
%% `get_leader/1', `get_epoch/1', `get_members/1', `ready/1' read), and the
%% health of the daemon's raft log.
%%
%% Owns the fields `status' (the daemon's last STATUS frame) and
%% `status_waiters' (status calls waiting for a fresh frame). Called by
%% regent_member (the status call, its timeout), regent_daemon (a STATUS
%% frame; a new daemon answers the waiters) and regent_peers (hellos carry
%% healthy/1: the leader's member promotes only healthy synced standbys).
-module(regent_status).

-export([call/2, timed_out/1, received/2, status_map/1, healthy/1]).

-include_lib("kernel/include/logger.hrl").
-include("regent_member.hrl").

%% @private
-spec call(gen_server:from(), #st{}) -> {reply, map(), #st{}} | {noreply, #st{}}.
call(From, #st{port = Port} = S) when is_port(Port) ->
    %% Fresh numbers from the daemon (it only pushes role/leader changes);
    %% a daemon that does not answer soon gets the last known view.
    %% The timer answers with the last view if the daemon does not (or the
    %% port has just closed and took nothing).
    S#st.status_waiters =:= [] andalso
        begin
            regent_daemon:command(Port, regent_proto:status_request()),
            erlang:send_after(500, self(), status_timeout)
        end,
    {noreply, S#st{status_waiters = [From | S#st.status_waiters]}};
call(_From, S) ->
    {reply, status_map(S), S}.

%% @private
%% No STATUS came within 500 ms of the request: the last known view.
-spec timed_out(#st{}) -> #st{}.
timed_out(#st{status_waiters = Ws} = S) ->
    [gen_server:reply(W, status_map(S)) || W <- Ws],
    S#st{status_waiters = []}.

%% @private
%% A STATUS frame from the daemon; regent_daemon hands its leader id on to
%% regent_peers:leader_seen/2.
-spec received(map(), #st{}) -> #st{}.
received(Status, S0) ->
    io_error_changed(maps:get(io_error, S0#st.status, 0), maps:get(io_error, Status), S0),
    S1 = S0#st{status = Status, status_waiters = []},
    [gen_server:reply(W, status_map(S1)) || W <- S0#st.status_waiters],
    S1.

%% @private
-spec status_map(#st{}) -> map().
status_map(#st{reg = Reg, status = St, port = Port} = S) ->
    Leader = case regent_peers:node_of(maps:get(leader_id, St, 0), S) of
                 undefined -> undefined;
                 LeaderNode -> {LeaderNode, Reg}
             end,
    Applied = maps:get(applied, St, 0),
    OsPid = case is_port(Port) andalso erlang:port_info(Port, os_pid) of
                {os_pid, P} -> P;
                _ -> undefined % none, or it has just closed
            end,
    #{registry => Reg,
      member => {node(), Reg},
      role => maps:get(raft_state, St, unavailable),
      leader => Leader,
      epoch => maps:get(term, St, 0),
      applied_index => Applied,
      commit_index => maps:get(commit, St, 0),
      lag => max(0, maps:get(commit, St, 0) - Applied),
      ready => healthy(S),
      error => health_error(S),
      phase => S#st.phase,
      members => [{regent_peers:member_id(Id, S), Role} || {Id, Role, _} <- S#st.members],
      names => ets:info(Reg, size),
      pending_ops => map_size(S#st.pending),
      daemon => #{os_pid => OsPid, raft_id => S#st.daemon_id,
                  rss => maps:get(rss, St, 0),
                  raft_port => S#st.raft_port,
                  starts => S#st.daemon_starts, data_dir => S#st.dir}}.

%% @private
%% Ready: the mirror holds the daemon's table and the daemon can persist
%% what it replicates. A daemon whose log writes fail (a full disk) goes on
%% applying committed entries from memory, but it is not a healthy replica.
-spec healthy(#st{}) -> boolean().
healthy(#st{synced = Synced, status = St}) ->
    Synced andalso maps:get(io_error, St, 0) =:= 0.

health_error(#st{status = St}) ->
    case maps:get(io_error, St, 0) of
        0 -> undefined;
        16#FFFF -> raft_log_write_stalled; % RG_IO_STALLED, c_src/proto.h
        Code -> {raft_log_write_failed, Code}
    end.

io_error_changed(Same, Same, _S) ->
    ok;
io_error_changed(0, Code, #st{reg = Reg, dir = Dir}) ->
    ?LOG_WARNING("regent ~p: regentd cannot write its raft log in ~ts (libraft error ~p, "
                 "e.g. the disk is full); this member reports not ready until it can",
                 [Reg, Dir, Code]);
io_error_changed(_, 0, #st{reg = Reg}) ->
    ?LOG_NOTICE("regent ~p: regentd writes its raft log again", [Reg]);
io_error_changed(_, _, _S) ->
    ok.

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
%%
%% Clustering (docs/cluster.md): members of one registry find each other over
%% Erlang distribution (hello messages to `{Registry, Node}'); a member with
%% nobody to ask bootstraps a one-node cluster, the others join through the
%% leader's member, which makes the raft membership changes. Writes go to the
%% leader: the member whose daemon leads submits them, the others forward
%% them to it; every daemon applies every entry and the daemon that asked
%% answers its callers. The leader's member also keeps the membership in
%% shape (dead servers removed, standbys promoted up to `voters') and purges
%% the names of nodes that go down.
-module(regent_member).
-behaviour(gen_server).

-export([start_link/2]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
%% Not yet moved to the concern modules that call them.
-export([node_of/2, member_id/2, send_peer/3, hello_all/1, is_leader/1,
         leader_node_known/1, peer_seen/3, start_daemon/2, stop_daemon/1]).

-include_lib("kernel/include/logger.hrl").

-define(MAX_RESTARTS, 10).
-define(RESTART_WINDOW_MS, 10000).

-include("regent_member.hrl").

-define(LEADERLESS_MS, 1500).

-define(DISCOVER_MS, 200).
-define(UNMAPPED_GRACE_MS, 3000).
%% How long our leader must keep leaving us out of its members before we
%% believe it removed us.
-define(LEFT_OUT_MS, 1000).

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
    Dir = regent_data_dir:data_dir(Reg, Opts),
    ok = net_kernel:monitor_nodes(true),
    erlang:send_after(?ALIVE_MS, self(), alive),
    S = #st{reg = Reg, opts = Opts, dir = Dir, leaderless_since = now_ms()},
    Resuming = filelib:is_regular(filename:join(Dir, "regent.id")),
    case Resuming orelse nodes() =:= [] of
        true ->
            %% Our own raft state to resume, or nobody to ask: start now.
            hello_all(S),
            {ok, start_daemon(S, true)};
        false ->
            {ok, discover(S#st{phase = discovering})}
    end.

%% @private
-spec handle_call(term(), gen_server:from(), #st{}) ->
          {reply, term(), #st{}} | {noreply, #st{}}.
handle_call({write, Kind, Args}, From, S) ->
    Deadline = now_ms() + maps:get(register_timeout, S#st.opts),
    {noreply, regent_outbox:submit(Kind, Args, From, Deadline, S)};
handle_call(status, From, S) ->
    regent_status:call(From, S);
handle_call(recover, _From, S) ->
    {reply, ok, regent_leave:dissolve(bootstrap, S)};
handle_call({block_raft, Cuts}, _From, #st{port = Port} = S) ->
    Blocks = [{Id, Dir} || {N, Dir} <- Cuts,
                           #{id := Id} <- [maps:get(N, S#st.peers, #{})], Id =/= 0],
    is_port(Port) andalso port_command(Port, regent_proto:block(Blocks)),
    {reply, {ok, length(Blocks)}, S};
%% regent_fault:take_leadership/1 (tests): ask the leader to hand over.
handle_call(take_leadership, _From, S) ->
    {reply, regent_membership:take_leadership(S), S};
handle_call(await_ready, From, S) ->
    regent_mirror:await_ready(From, S);
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
    {noreply, regent_outbox:flush(S#st{flush_queued = false})};
handle_info(tick, S) ->
    {noreply, regent_outbox:tick(S#st{tick = false})};
handle_info(alive, #st{port = Port} = S) ->
    is_port(Port) andalso port_command(Port, regent_proto:alive()),
    erlang:send_after(?ALIVE_MS, self(), alive),
    {noreply, S};
handle_info(status_timeout, S) ->
    {noreply, regent_status:timed_out(S)};
handle_info({'DOWN', MRef, process, Pid, _Why}, S) ->
    {noreply, regent_mirror:owner_down(MRef, Pid, S)};
handle_info(Msg, S) when element(1, Msg) =:= nodeup; element(1, Msg) =:= nodedown;
                         element(1, Msg) =:= discover; element(1, Msg) =:= join_retry;
                         element(1, Msg) =:= plan; element(1, Msg) =:= down_settled;
                         element(1, Msg) =:= ask_leader ->
    {noreply, cluster_event(Msg, S)};
handle_info({regent, Msg}, S) ->
    {noreply, peer_message(Msg, S)};
handle_info(_Msg, S) ->
    {noreply, S}.

%% @private
-spec terminate(term(), #st{}) -> ok.
terminate(Reason, #st{port = Port, dir = Dir} = S) ->
    Live = is_port(Port) andalso erlang:port_info(Port) =/= undefined,
    graceful(Reason) andalso Live andalso regent_leave:leave(S),
    Live andalso stop_daemon(Port),
    %% A deliberate stop ends this member's raft state, like a member that
    %% leaves its cluster; after a crash the restarted member resumes it.
    graceful(Reason) andalso regent_data_dir:remove_dir(Dir),
    ok.

graceful(normal) -> true;
graceful(shutdown) -> true;
graceful({shutdown, _}) -> true;
graceful(_) -> false.

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

%% ---- the daemon ----------------------------------------------------------

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
    Start = #{id => 0, bootstrap => Phase =/= joining,
              data_dir => unicode:characters_to_binary(Dir),
              bind_host => maps:get(bind_host, Opts),
              port_range => maps:get(port_range, Opts),
              secret => maps:get(secret, Opts),
              snapshot => {maps:get(snapshot_threshold, Opts),
                           maps:get(snapshot_trailing, Opts)}},
    true = port_command(Port, regent_proto:start(Start)),
    [gen_server:reply(W, regent_status:status_map(S#st{port = undefined}))
     || W <- S#st.status_waiters],
    S#st{port = Port, synced = false, status = #{}, dump = [], held = [],
         status_waiters = [], leader_id = 0, change_busy = false, changes = #{},
         leaderless_since = now_ms(),
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
            {noreply, restart_daemon(S)}
    end.

%% Everything not answered goes again to the next daemon; ops that did
%% commit are answered from its log replay instead. A daemon whose raft
%% state is gone (the dir was deleted) must not bootstrap a cluster of its
%% own beside the one it was in: this member leaves that cluster's raft
%% state behind and joins it again under a fresh id, claiming its names.
restart_daemon(#st{dir = Dir, members = Ms, phase = running} = S)
  when length(Ms) > 1 ->
    case filelib:is_regular(filename:join(Dir, "regent.id")) of
        true ->
            start_daemon(regent_outbox:requeue_all(S));
        false ->
            ?LOG_WARNING("regent ~p: the raft state in ~ts is gone", [S#st.reg, Dir]),
            regent_leave:dissolve({join, leader_node_known(S)}, S)
    end;
restart_daemon(S) ->
    start_daemon(regent_outbox:requeue_all(S)).

handle_event({started, Id, RaftPort, Resumed}, #st{reg = Reg} = S) ->
    ?LOG_INFO("regent ~p: regentd started, raft id ~.16b, raft port ~p, ~s",
              [Reg, Id, RaftPort,
               case Resumed of true -> "resumed its state"; false -> "fresh" end]),
    S1 = S#st{daemon_id = Id, raft_port = RaftPort, reclaim_on_dump = not Resumed},
    case S1#st.phase of
        joining ->
            hello_all(S1),
            ask_to_join(S1);
        running when not Resumed, length(S1#st.members) > 1 ->
            %% We were in a cluster, but the daemon found no state (its dir
            %% went between our check and its lock): it bootstrapped alone.
            %% Join the cluster again instead.
            ?LOG_WARNING("regent ~p: regentd lost its raft state on restart; joining again",
                         [Reg]),
            regent_leave:dissolve({join, leader_node_known(S1)}, S1);
        _ ->
            hello_all(S1),
            S1
    end;
handle_event({status, Status}, S) ->
    leader_seen(maps:get(leader_id, Status), regent_status:received(Status, S));
handle_event({members, Members}, S) ->
    address_check(joined(regent_membership:plan(S#st{members = Members})));
handle_event({changed, Ref, Status}, S) ->
    regent_membership:change_done(Ref, Status, S);
handle_event({applied, Changes, Replies}, #st{synced = true} = S) ->
    regent_outbox:replies(Replies, lists:foldl(fun regent_mirror:change/2, S, Changes));
handle_event({applied, [], Replies}, #st{synced = false} = S) ->
    %% Replayed entries while recovering: answer after the dump is in ETS.
    S#st{held = S#st.held ++ Replies};
handle_event({replies, Replies}, S) ->
    regent_outbox:daemon_replies(Replies, S);
handle_event({dump, false, Rows}, S) ->
    S#st{dump = [Rows | S#st.dump]};
handle_event({dump, true, Rows}, S) ->
    regent_mirror:synced(
      regent_mirror:reconcile(lists:append(lists:reverse([Rows | S#st.dump])), S));
handle_event({error, Msg}, #st{reg = Reg} = S) ->
    ?LOG_ERROR("regent ~p: regentd reported: ~ts", [Reg, Msg]),
    S.

%% A restarted daemon whose raft port was taken meanwhile had to bind
%% another (c_src/node.c, bind_old_port): the configuration still has the
%% old address, where nobody answers for it, so it would stay cut off for
%% good. Under a fresh id it joins again with its new address (the leader
%% removes the old id as unclaimed); alone, it re-forms with its names.
address_check(#st{phase = running, daemon_id = Me, members = Ms} = S) when Me =/= 0 ->
    case lists:keyfind(Me, 1, Ms) of
        {Me, _, Address} when Address =/= <<>> ->
            case own_address(S) of
                Address ->
                    S;
                Now ->
                    ?LOG_WARNING("regent ~p: the configuration has this member at ~ts, "
                                 "but its raft port is now ~ts; joining again",
                                 [S#st.reg, Address, Now]),
                    case [Id || {Id, _, _} <- Ms, Id =/= Me] of
                        [] -> regent_leave:dissolve(bootstrap, S);
                        _ -> regent_leave:dissolve({join, leader_node_known(S)}, S)
                    end
            end;
        _ ->
            S
    end;
address_check(S) ->
    S.

own_address(#st{opts = Opts, raft_port = Port}) ->
    <<(maps:get(bind_host, Opts))/binary, ":", (integer_to_binary(Port))/binary>>.

%% ---- helpers -------------------------------------------------------------

now_ms() ->
    erlang:monotonic_time(millisecond).

%% ---- clustering -----------------------------------------------------------

%% @private
%% Messages between members of one registry travel as {regent, Msg} to the
%% locally registered name of the member on the other node.
-spec send_peer(node(), term(), #st{}) -> ok.
send_peer(Node, Msg, #st{reg = Reg}) ->
    erlang:send({Reg, Node}, {regent, Msg}, [noconnect]),
    ok.

%% @private
-spec hello_all(#st{}) -> ok.
hello_all(S) ->
    [send_peer(N, {hello, self(), node(), info(S)}, S) || N <- nodes()],
    ok.

info(#st{phase = Phase, daemon_id = Id, leader_id = Leader, members = Ms,
         synced = Synced} = S) ->
    #{phase => Phase, id => Id, leader_id => Leader,
      leader_node => node_of(Leader, S),
      members => [I || {I, _, _} <- Ms], synced => Synced andalso regent_status:healthy(S)}.

%% @private
%% The node whose member runs the daemon with raft id Id.
-spec node_of(non_neg_integer(), #st{}) -> node() | undefined.
node_of(0, _S) ->
    undefined;
node_of(Id, #st{daemon_id = Id}) ->
    node();
node_of(Id, #st{peers = Peers}) ->
    case [N || {N, #{id := I, up := true}} <- maps:to_list(Peers), I =:= Id] of
        [N | _] -> N;
        [] -> undefined
    end.

%% @private
-spec member_id(non_neg_integer(), #st{}) -> {node(), atom()} | {raft_id, non_neg_integer()}.
member_id(Id, #st{reg = Reg} = S) ->
    case node_of(Id, S) of
        undefined -> {raft_id, Id};
        N -> {N, Reg}
    end.

%% @private
-spec is_leader(#st{}) -> boolean().
is_leader(#st{leader_id = L, daemon_id = Me}) ->
    L =/= 0 andalso L =:= Me.

peer_message({hello, Pid, Node, Info}, S) ->
    Pid ! {regent, {hello_ack, node(), info(S)}},
    heard_of(Node, Info, S);
peer_message({hello_ack, Node, Info}, S) ->
    heard_of(Node, Info, S);
peer_message({fwd, From, Origin, Ops}, S) ->
    regent_outbox:forwarded(From, Origin, Ops, S);
peer_message({replies, Replies}, S) ->
    regent_outbox:replies(Replies, S);
peer_message({join, _From, _Node, _Id, _Address} = Request, S) ->
    regent_membership:request(Request, S);
peer_message({joined, _Id}, S) ->
    S; % the MEMBERS frame says the rest
peer_message(join_retry, S) ->
    join_later(?JOIN_RETRY_MS div 4, S);
peer_message({leave, _From, _Id} = Request, S) ->
    regent_membership:request(Request, S);
peer_message({left, _}, S) ->
    S;
peer_message({transfer_to, _Id} = Request, S) ->
    regent_membership:request(Request, S);
peer_message({gone, Node, Id}, #st{peers = Peers} = S) ->
    Old = maps:get(Node, Peers, #{}),
    regent_membership:plan(S#st{peers = Peers#{Node => Old#{id => Id, up => false}}});
peer_message(_Other, S) ->
    S.

%% A member's view: record it, let the leader plan, merge if it is another
%% cluster, and send ops that were waiting to know where the leader is.
heard_of(Node, Info, S0) ->
    S = regent_merge:maybe_merge(Node, Info, regent_membership:plan(peer_seen(Node, Info, S0))),
    case S#st.outbox of
        [] -> S;
        _ -> regent_outbox:queue_flush(S)
    end.

%% @private
-spec peer_seen(node(), map(), #st{}) -> #st{}.
peer_seen(Node, Info, #st{peers = Peers} = S) ->
    Old = maps:get(Node, Peers, #{}),
    S#st{peers = Peers#{Node => maps:merge(Old, Info#{up => true})}}.

cluster_event({nodeup, Node}, S) ->
    send_peer(Node, {hello, self(), node(), info(S)}, S),
    S;
cluster_event({nodedown, Node}, #st{peers = Peers} = S0) ->
    S = case maps:find(Node, Peers) of
            {ok, P} -> S0#st{peers = Peers#{Node := P#{up => false, down_at => now_ms()}}};
            error -> S0
        end,
    %% Armed on every member, not only on the one that leads now: the
    %% leader may die with the node, and the next one is elected within the
    %% wait (a leader's kill -9 left its server a voter for ever).
    erlang:send_after(?DOWN_SETTLE_MS, self(), {down_settled, Node}),
    S;
cluster_event({down_settled, Node}, S) ->
    case is_leader(S) andalso not lists:member(Node, nodes()) of
        true -> regent_membership:leader_lost_node(Node, S);
        false -> S
    end;
cluster_event({discover}, #st{phase = discovering} = S) ->
    decide(S);
cluster_event({join_retry}, #st{phase = joining} = S) ->
    ask_to_join(S#st{join_timer = undefined});
cluster_event({join_retry}, S) ->
    S#st{join_timer = undefined};
cluster_event({plan}, S) ->
    regent_membership:plan(S#st{plan_timer = undefined});
cluster_event({ask_leader, Node}, S) ->
    send_peer(Node, {hello, self(), node(), info(S)}, S),
    S;
cluster_event(_, S) ->
    S.

discover(S) ->
    hello_all(S),
    erlang:send_after(?DISCOVER_MS, self(), {discover}),
    S.

%% After a round of hellos: join an existing cluster (the biggest), or, when
%% every member we know is still looking too, let the lowest node bootstrap
%% and the others join it on a later round.
decide(#st{peers = Peers, discover_rounds = Rounds} = S) ->
    Up = [{N, P} || {N, #{up := true} = P} <- maps:to_list(Peers)],
    Clusters = [{-length(maps:get(members, P, [])), N, P} || {N, P} <- Up,
                                                maps:get(phase, P, x) =:= running,
                                                maps:get(leader_node, P, undefined) =/= undefined],
    Looking = [N || {N, P} <- Up, maps:get(phase, P, x) =:= discovering],
    case lists:sort(Clusters) of
        [{_, _, P} | _] ->
            start_daemon(S#st{join_target = maps:get(leader_node, P)}, false);
        [] when Looking =:= []; Rounds >= 20 ->
            start_daemon(S, true);
        [] ->
            case node() < lists:min(Looking) of
                true -> start_daemon(S, true);
                false -> discover(S#st{discover_rounds = Rounds + 1})
            end
    end.

%% Joining: our fresh daemon (no configuration) asks the leader's member to
%% add it; retried until our id shows up in a MEMBERS frame.
ask_to_join(#st{daemon_id = 0} = S) ->
    S; % when STARTED arrives
ask_to_join(#st{phase = joining} = S) ->
    Target = case leader_node_known(S) of
                 undefined -> S#st.join_target;
                 N -> N
             end,
    Target =/= undefined andalso
        send_peer(Target, {join, self(), node(), S#st.daemon_id, own_address(S)}, S),
    hello_all(S),
    join_later(?JOIN_RETRY_MS, S);
ask_to_join(S) ->
    S.

%% (Re)arms the one join timer to fire in Ms.
join_later(Ms, #st{join_timer = T} = S) ->
    is_reference(T) andalso erlang:cancel_timer(T),
    S#st{join_timer = erlang:send_after(Ms, self(), {join_retry})}.

%% @private
-spec leader_node_known(#st{}) -> node() | undefined.
leader_node_known(#st{peers = Peers} = S) ->
    case node_of(S#st.leader_id, S) of
        undefined ->
            case [L || {_, #{up := true, leader_node := L}} <- maps:to_list(Peers),
                       L =/= undefined] of
                [L | _] -> L;
                [] -> undefined
            end;
        N ->
            N
    end.

joined(#st{phase = joining, daemon_id = Me, members = Ms} = S) ->
    case lists:keymember(Me, 1, Ms) of
        true -> S#st{phase = running};
        false -> S
    end;
joined(S) ->
    S.

%% A new leader (or the first one): writes waiting for it go (again). When
%% we become the leader, nodes that went down meanwhile are purged.
leader_seen(Leader, #st{leader_id = Leader} = S) ->
    S;
leader_seen(Leader, S0) ->
    S = regent_outbox:requeue_all(S0#st{leader_id = Leader, leader_since = now_ms(),
                          leaderless_since = case Leader of 0 -> now_ms(); _ -> 0 end}),
    S1 = case is_leader(S) andalso regent_membership:dist_majority(S) of
             true -> regent_membership:plan(regent_membership:purge_absent_nodes(S));
             false -> S
         end,
    hello_all(S1),
    regent_outbox:queue_flush(S1).

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
%%
%% This module is the gen_server: each callback hands over to the module of
%% the concern at hand, and all of them work on the one state record of
%% src/regent_member.hrl (which says who owns which field). The concerns,
%% in the order a write flows (docs/architecture.md has the module map):
%% regent_outbox (ops, batching, deadlines, re-drive), regent_daemon (the
%% port program and the frames it sends), regent_mirror (ETS, monitors,
%% reconciling after a DUMP), regent_status (status/1, health),
%% regent_peers (the other members, the leader), regent_discovery (finding
%% and joining a cluster), regent_membership (the leader's plan),
%% regent_merge (merging clusters, claims, the conflict policy),
%% regent_leave (leaving, dissolving) and regent_data_dir.
-module(regent_member).
-behaviour(gen_server).

%% API
-export([start_link/2]).

%% gen_server callbacks
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-include("regent_member.hrl").

%%%===================================================================
%%% API
%%%===================================================================

%% @private
-spec start_link(atom(), map()) -> gen_server:start_ret().
start_link(Reg, Opts) ->
    gen_server:start_link({local, Reg}, ?MODULE, {Reg, Opts}, []).

%%%===================================================================
%%% gen_server callbacks
%%%===================================================================

%% @private
-spec init({atom(), map()}) -> {ok, #st{}}.
init({Reg, Opts}) ->
    process_flag(trap_exit, true),
    regent_telemetry:refresh(),
    %% Rows are {Key, Pid, Value} in both kinds, so Registry's match
    %% specifications run on the table as it is (regent_read).
    Type = case maps:get(keys, Opts) of unique -> set; duplicate -> duplicate_bag end,
    Compressed = [compressed || maps:get(compressed, Opts)],
    Reg = ets:new(Reg, [named_table, Type, protected, {read_concurrency, true}
                        | Compressed]),
    Dir = regent_data_dir:data_dir(Reg, Opts),
    ok = net_kernel:monitor_nodes(true),
    erlang:send_after(?ALIVE_MS, self(), alive),
    erlang:send_after(?REFRESH_MS, self(), {refresh}),
    S = #st{reg = Reg, opts = Opts, dir = Dir, leaderless_since = ?NOW_MS()},
    {ok, regent_discovery:start(regent_meta:init(S))}.

%% @private
-spec handle_call(term(), gen_server:from(), #st{}) ->
          {reply, term(), #st{}} | {noreply, #st{}}.
handle_call({write, Kind, Args} = Call, From, S) ->
    case lists:member(Kind, ?CALLER_WRITES) of
        true -> write(Kind, Args, From, S);
        false -> {reply, {error, {unknown_call, Call}}, S}
    end;
handle_call(status, From, S) ->
    regent_status:call(From, S);
handle_call(recover, _From, S) ->
    {reply, ok, regent_leave:dissolve(bootstrap, S)};
handle_call({block_raft, Cuts}, _From, S) ->
    {reply, regent_daemon:block_raft(Cuts, S), S};
%% regent_fault:take_leadership/1 (tests): ask the leader to hand over.
handle_call(take_leadership, _From, S) ->
    {reply, regent_membership:take_leadership(S), S};
handle_call({subscribe, Pid, Filter, MaxQueue}, _From, S) ->
    {Ref, S1} = regent_events:subscribe(Pid, Filter, MaxQueue, S),
    {reply, {ok, Ref}, S1};
handle_call({unsubscribe, Ref, Pid}, _From, S) ->
    {reply, ok, regent_events:unsubscribe(Ref, Pid, S)};
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
    {noreply, regent_daemon:handle_event(regent_proto:decode(Frame), S)};
handle_info({Port, {exit_status, Code}}, #st{port = Port} = S) ->
    regent_daemon:daemon_died(Code, S);
handle_info({'EXIT', Port, Reason}, #st{port = Port} = S) ->
    %% The port closed without an exit status (e.g. a write failed with
    %% epipe); regentd sees its stdin close and exits by itself.
    regent_daemon:daemon_died({port_closed, Reason}, S);
handle_info({'EXIT', Port, _}, S) when is_port(Port) ->
    {noreply, S}; % a previous daemon's port
handle_info(flush, S) ->
    {noreply, regent_outbox:flush(S#st{flush_queued = false})};
handle_info(tick, S) ->
    {noreply, regent_outbox:tick(S#st{tick = false})};
handle_info(alive, S) ->
    {noreply, regent_daemon:alive(S)};
handle_info(status_timeout, S) ->
    {noreply, regent_status:timed_out(S)};
handle_info({'DOWN', MRef, process, Pid, _Why}, S) ->
    case regent_events:subscriber_down(MRef, Pid, S) of
        {true, S1} -> {noreply, S1};
        false -> {noreply, regent_mirror:owner_down(MRef, Pid, S)}
    end;
handle_info(lag_check, S) ->
    {noreply, regent_events:lag_check(S)};
handle_info(Msg, S) when element(1, Msg) =:= nodeup; element(1, Msg) =:= nodedown;
                         element(1, Msg) =:= discover; element(1, Msg) =:= join_retry;
                         element(1, Msg) =:= plan; element(1, Msg) =:= down_settled;
                         element(1, Msg) =:= ask_leader; element(1, Msg) =:= refresh ->
    {noreply, regent_peers:cluster_event(Msg, S)};
handle_info({regent, Msg}, S) ->
    {noreply, regent_peers:peer_message(Msg, S)};
handle_info(_Msg, S) ->
    {noreply, S}.

%% @private
-spec terminate(term(), #st{}) -> ok.
terminate(Reason, #st{port = Port, dir = Dir} = S) ->
    Live = is_port(Port) andalso erlang:port_info(Port) =/= undefined,
    graceful(Reason) andalso Live andalso regent_leave:leave(S),
    Live andalso regent_daemon:stop_daemon(Port),
    %% A deliberate stop ends this member's raft state, like a member that
    %% leaves its cluster; after a crash the restarted member resumes it.
    graceful(Reason) andalso regent_data_dir:remove_dir(Dir),
    regent_meta:terminate(S),
    ok.

%%%===================================================================
%%% Internal functions
%%%===================================================================

%% A caller's write joins the outbox unless `max_pending_writes' of them
%% already wait there: beyond that bound the caller is told at once
%% (regent_overloaded), so that a burst bigger than the log can take grows
%% neither the member's memory nor every caller's wait without limit.
%% The member's own ops (unregisters of exited owners, purges, claims) are
%% never refused: they are bounded by the names it holds.
write(Kind, _Args, _From, #st{pending = Pending, opts = #{max_pending_writes := Max}} = S)
  when map_size(Pending) >= Max ->
    regent_telemetry:execute([overloaded], #{count => 1},
                             #{registry => S#st.reg, kind => Kind}),
    {reply, {error, overloaded}, S};
write(Kind, Args, From, S) ->
    Deadline = ?NOW_MS() + maps:get(register_timeout, S#st.opts),
    {noreply, regent_outbox:submit(Kind, Args, From, Deadline, S)}.

graceful(normal) -> true;
graceful(shutdown) -> true;
graceful({shutdown, _}) -> true;
graceful(_) -> false.

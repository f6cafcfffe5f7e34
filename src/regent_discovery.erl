%% @doc Discovery and joining: how a member finds its cluster.
%%
%% At start, a member with raft state of its own to resume, or with nobody
%% to ask, starts its daemon at once (start/1); the others say hello for a
%% few rounds, then join the biggest running cluster they heard of or, when
%% everybody is still looking, the lowest node bootstraps and the others
%% join it (decide/1). A joining member's fresh daemon asks the leader's
%% member to add it until its id shows up in a MEMBERS frame
%% (ask_to_join/1, joined/1). A member whose raft port changed across a
%% restart joins again under a fresh id (address_check/1).
%%
%% Owns the fields `phase', `discover_rounds', `join_target' and
%% `join_timer'. Called by regent_member (init/1), regent_daemon (STARTED
%% and MEMBERS frames) and regent_peers (the {discover} and {join_retry}
%% timers, a leader that cannot add us yet).
-module(regent_discovery).

-export([start/1, decide/1, ask_to_join/1, join_later/2, joined/1, address_check/1]).

-include_lib("kernel/include/logger.hrl").
-include("regent_member.hrl").

-define(DISCOVER_MS, 200).

%% @private
%% At start (regent_member:init/1).
-spec start(#st{}) -> #st{}.
start(#st{dir = Dir} = S) ->
    Resuming = filelib:is_regular(filename:join(Dir, "regent.id")),
    case Resuming orelse nodes() =:= [] of
        true ->
            %% Our own raft state to resume, or nobody to ask: start now.
            regent_peers:hello_all(S),
            regent_daemon:start_daemon(S, true);
        false ->
            discover(S#st{phase = discovering})
    end.

discover(S) ->
    regent_peers:hello_all(S),
    erlang:send_after(?DISCOVER_MS, self(), {discover}),
    S.

%% @private
%% After a round of hellos: join an existing cluster (the biggest), or, when
%% every member we know is still looking too, let the lowest node bootstrap
%% and the others join it on a later round.
-spec decide(#st{}) -> #st{}.
decide(#st{peers = Peers, discover_rounds = Rounds} = S) ->
    Up = [{N, P} || {N, #{up := true} = P} <- maps:to_list(Peers)],
    Clusters = [{-length(maps:get(members, P, [])), N, P} || {N, P} <- Up,
                                                maps:get(phase, P, x) =:= running,
                                                maps:get(leader_node, P, undefined) =/= undefined],
    Looking = [N || {N, P} <- Up, maps:get(phase, P, x) =:= discovering],
    case lists:sort(Clusters) of
        [{_, _, P} | _] ->
            regent_daemon:start_daemon(S#st{join_target = maps:get(leader_node, P)}, false);
        [] when Looking =:= []; Rounds >= 20 ->
            regent_daemon:start_daemon(S, true);
        [] ->
            case node() < lists:min(Looking) of
                true -> regent_daemon:start_daemon(S, true);
                false -> discover(S#st{discover_rounds = Rounds + 1})
            end
    end.

%% ---- joining -------------------------------------------------------------

%% @private
%% Joining: our fresh daemon (no configuration) asks the leader's member to
%% add it; retried until our id shows up in a MEMBERS frame.
-spec ask_to_join(#st{}) -> #st{}.
ask_to_join(#st{daemon_id = 0} = S) ->
    S; % when STARTED arrives
ask_to_join(#st{phase = joining} = S) ->
    Target = case regent_peers:leader_node_known(S) of
                 undefined -> S#st.join_target;
                 N -> N
             end,
    Target =/= undefined andalso
        regent_peers:send_peer(Target, {join, self(), node(), S#st.daemon_id,
                                        own_address(S)}, S),
    regent_peers:hello_all(S),
    join_later(?JOIN_RETRY_MS, S);
ask_to_join(S) ->
    S.

%% @private
%% (Re)arms the one join timer to fire in Ms.
-spec join_later(non_neg_integer(), #st{}) -> #st{}.
join_later(Ms, #st{join_timer = T} = S) ->
    is_reference(T) andalso erlang:cancel_timer(T),
    S#st{join_timer = erlang:send_after(Ms, self(), {join_retry})}.

%% @private
-spec joined(#st{}) -> #st{}.
joined(#st{phase = joining, daemon_id = Me, members = Ms} = S) ->
    case lists:keymember(Me, 1, Ms) of
        true -> S#st{phase = running};
        false -> S
    end;
joined(S) ->
    S.

%% @private
%% A restarted daemon whose raft port was taken meanwhile had to bind
%% another (c_src/node_start.c, bind_old_port): the configuration still has the
%% old address, where nobody answers for it, so it would stay cut off for
%% good. Under a fresh id it joins again with its new address (the leader
%% removes the old id as unclaimed); alone, it re-forms with its names.
-spec address_check(#st{}) -> #st{}.
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
                        _ -> regent_leave:dissolve({join, regent_peers:leader_node_known(S)}, S)
                    end
            end;
        _ ->
            S
    end;
address_check(S) ->
    S.

own_address(#st{opts = Opts, raft_port = Port}) ->
    <<(maps:get(bind_host, Opts))/binary, ":", (integer_to_binary(Port))/binary>>.

%% Supervised children in the nemesis test (regent_nemesis): every node
%% runs a regent_sup; children are started at the beginning; an observer
%% on the controller records each instance's start and end, for
%% regent_history_sup's two_instances and lost_child rules.
-module(regent_nemesis_sup).

-export([start_on/2, start_observer/1, start_children/3, await_children/3, final/3,
         start_remote/2]).

-define(SUP, nemesis_sup).
-define(LEASE, 1000).
-define(MARGIN, 300).
%% After the heal: a halted node's children run again within lease +
%% margin, plus the start; the rest is room for a loaded machine.
-define(BOUND_US, (?LEASE + ?MARGIN + 5000) * 1000).

%% On each of Nodes: a regent_sup on the registry, unlinked.
start_on(Reg, Nodes) ->
    [ok = erpc:call(N, ?MODULE, start_remote, [Reg, node()]) || N <- Nodes],
    ok.

%% @private On a peer.
start_remote(Reg, _Controller) ->
    {ok, Pid} = regent_sup:start_link(#{name => ?SUP, registry => Reg, lease => ?LEASE,
                                        lease_margin => ?MARGIN}),
    unlink(Pid),
    ok.

%% The observer, registered as regent_sup_observer (regent_sup_child tells
%% it of each instance): logs `{child, Event}' into Log.
start_observer(Log) ->
    Now = fun() -> erlang:monotonic_time(microsecond) end,
    Loop = fun Loop() ->
                   receive
                       {child_up, Id, Pid, Node} ->
                           monitor(process, Pid),
                           ets:insert(Log, {child, #{f => child_up, name => Id, pid => Pid,
                                                     node => Node, time => Now()}}),
                           Loop();
                       {'DOWN', _, process, Pid, _} ->
                           ets:insert(Log, {child, #{f => child_down, pid => Pid,
                                                     time => Now()}}),
                           Loop()
                   end
           end,
    Pid = spawn(Loop),
    true = register(regent_sup_observer, Pid),
    Pid.

%% K permanent children, started from the nodes in turn.
start_children(Nodes, K, Ids) ->
    [{ok, _} = erpc:call(lists:nth(1 + I rem length(Nodes), Nodes), regent_sup, start_child,
                         [?SUP, regent_sup_child:spec(Id, node())], 30000)
     || {I, Id} <- lists:zip(lists:seq(1, K), Ids)],
    ok.

%% After the final heal: waits (at most the bound) until every child has
%% a live instance, as the nodes see it.
await_children(Nodes, Ids, HealUs) ->
    Deadline = HealUs + ?BOUND_US,
    Running = fun() ->
                      lists:all(fun(Id) ->
                                        P = erpc:call(hd(Nodes), regent_sup, get_pid, [?SUP, Id]),
                                        is_pid(P) andalso erpc:call(node(P), erlang,
                                                                    is_process_alive, [P])
                                end, Ids)
              end,
    poll(Running, Deadline).

poll(F, Deadline) ->
    case catch F() of
        true -> ok;
        _ ->
            case erlang:monotonic_time(microsecond) > Deadline of
                true -> timeout;
                false -> timer:sleep(50), poll(F, Deadline)
            end
    end.

%% The children part of the final state.
final(Ids, HealUs, Halts) ->
    #{ids => Ids, heal => HealUs, bound => ?BOUND_US, halts => Halts}.

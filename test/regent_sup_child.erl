%% A child for the distributed supervisor's tests: tells the observer
%% (registered as regent_sup_observer on the test node, named in the spec:
%% a spec may not hold a pid) when each instance starts, and behaves as its
%% mode says.
-module(regent_sup_child).
-behaviour(gen_server).

-export([spec/2, spec/3, start_link/3]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

spec(Id, Observer) ->
    spec(Id, Observer, ok).

spec(Id, Observer, Mode) ->
    #{id => Id, start => {?MODULE, start_link, [Id, Observer, Mode]}}.

start_link(Id, Observer, Mode) ->
    case Mode of
        {error, Why} -> {error, Why};
        ignore -> ignore;
        raise -> error(raised_in_start);
        _ -> gen_server:start_link(?MODULE, {Id, Observer, Mode}, [])
    end.

init({Id, Observer, Mode}) ->
    {regent_sup_observer, Observer} ! {child_up, Id, self(), node()},
    State = case Mode of
                {stateful, Sup} ->
                    {S0, From} = case regent_sup:handoff_state(Sup, Id) of
                                     {ok, S} -> {S, handoff};
                                     none -> {0, fresh}
                                 end,
                    {regent_sup_observer, Observer} ! {child_state, Id, self(), From, S0},
                    S0;
                _ -> Id
            end,
    case Mode of
        {crash_after, Ms} -> erlang:send_after(Ms, self(), crash);
        {stop_after, Ms} -> erlang:send_after(Ms, self(), stop);
        _ -> ok
    end,
    {ok, State}.

handle_call(ping, _From, St) -> {reply, {pong, St}, St};
handle_call(bump, _From, N) -> {reply, N + 1, N + 1};
handle_call('$regent_handoff', _From, St) -> {stop, normal, {handoff, St}, St};
handle_call(stop, _From, St) -> {stop, normal, ok, St}.

handle_cast(_, Id) -> {noreply, Id}.

handle_info(crash, _Id) -> exit(crashed);
handle_info(stop, Id) -> {stop, normal, Id}.

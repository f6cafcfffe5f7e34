%% The demo's worker: a named counter.
-module(demo_counter).
-behaviour(gen_server).
-export([start/1, init/1, handle_call/3, handle_cast/2]).

%% Started unlinked so that the demo can kill one without dying with it; an
%% already registered name answers {error, {already_started, Pid}}.
start(Name) ->
    case gen_server:start({via, regent, {demo_reg, Name}}, ?MODULE, Name, []) of
        {ok, Pid} -> {ok, Pid};
        {error, {already_started, Pid}} -> {error, {already_started, Pid}}
    end.

init(Name) -> {ok, {Name, 0}}.

handle_call(hit, _From, {Name, N}) -> {reply, {Name, N + 1}, {Name, N + 1}}.
handle_cast(_Msg, S) -> {noreply, S}.

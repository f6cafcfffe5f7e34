%% A gen_server for the tests: answers `ping', keeps a value set by casts.
-module(regent_echo_server).
-behaviour(gen_server).
-export([init/1, handle_call/3, handle_cast/2]).

init(Value) -> {ok, Value}.

handle_call(ping, _From, V) -> {reply, pong, V};
handle_call(get, _From, V) -> {reply, V, V};
handle_call(self, _From, V) -> {reply, self(), V}.

handle_cast({set, V}, _) -> {noreply, V}.

%% A gen_event handler for the tests: remembers the events it saw.
-module(regent_echo_handler).
-behaviour(gen_event).
-export([init/1, handle_event/2, handle_call/2]).

init([]) -> {ok, []}.
handle_event(E, Seen) -> {ok, [E | Seen]}.
handle_call(seen, Seen) -> {ok, lists:reverse(Seen), Seen}.

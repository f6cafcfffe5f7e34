%% A gen_statem for the tests: toggles between off and on.
-module(regent_echo_statem).
-behaviour(gen_statem).
-export([init/1, callback_mode/0, handle_event/4]).

callback_mode() -> handle_event_function.
init([]) -> {ok, off, 0}.

handle_event({call, From}, state, S, N) -> {keep_state_and_data, [{reply, From, {S, N}}]};
handle_event(cast, flip, off, N) -> {next_state, on, N + 1};
handle_event(cast, flip, on, N) -> {next_state, off, N + 1}.

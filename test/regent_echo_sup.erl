%% A supervisor whose child registers through the via tuple.
-module(regent_echo_sup).
-behaviour(supervisor).
-export([init/1]).

init({Reg, Name}) ->
    Child = #{id => echo,
              start => {gen_server, start_link,
                        [{via, regent, {Reg, Name}}, regent_echo_server, child, []]}},
    {ok, {#{strategy => one_for_one, intensity => 10, period => 1}, [Child]}}.

%% Benchmark adapter: regent.
-module(bench_regent).
-behaviour(bench_registry).
-export([label/0, scope/0, start/1, stop/0, register_name/2, unregister_name/1,
         whereis_name/1, count/0, await/1, start_nowait/0]).
-export([start_with/1]).  % bench_regent_plain: the same with other options

-define(REG, bench_reg).

label() -> "regent".
scope() -> cluster.

start(_Nodes) ->
    start_with([]).

start_with(Extra) ->
    {ok, _} = application:ensure_all_started(crypto),
    {ok, Pid} = regent:start_link(?REG, [{register_timeout, 30000} | Extra]),
    unlink(Pid),
    ok = regent:await_ready(?REG, 30000).

%% The cluster has formed when every node sees all of them.
await(N) ->
    wait(fun() -> length(regent:get_members(?REG)) =:= N andalso
                      regent:get_leader(?REG) =/= undefined andalso
                      regent:ready(?REG) end).

%% For the late-join row: start the member and return at once.
start_nowait() ->
    {ok, _} = application:ensure_all_started(crypto),
    {ok, Pid} = regent:start_link(?REG, [{register_timeout, 600000}]),
    unlink(Pid),
    ok.

stop() ->
    case whereis(?REG) of
        undefined -> ok;
        Pid -> gen_server:stop(Pid, normal, 30000)
    end.

register_name(Name, Pid) -> regent:register_name({?REG, Name}, Pid).
unregister_name(Name) -> regent:unregister_name({?REG, Name}).
whereis_name(Name) -> regent:whereis_name({?REG, Name}).
count() -> regent:count(?REG).

wait(F) ->
    case catch F() of
        true -> ok;
        _ -> timer:sleep(10), wait(F)
    end.

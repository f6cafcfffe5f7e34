%% Benchmark adapter: Elixir's Registry (unique keys, local only). Written in
%% Erlang against 'Elixir.Registry' so the benchmark needs no Mix project.
%% Registry only registers the calling process, so here the caller owns the
%% names it registers (the Pid argument is not used); regent and global
%% register a separate owner process per name.
-module(bench_elixir_registry).
-behaviour(bench_registry).
-export([label/0, scope/0, start/1, stop/0, register_name/2, unregister_name/1,
         whereis_name/1, count/0, available/0]).

-define(REG, 'Elixir.BenchRegistry').

label() -> "Elixir Registry".
scope() -> local.

%% Elixir's ebin must be on the code path (the Makefile adds it when
%% `elixir' is installed).
available() ->
    case code:ensure_loaded('Elixir.Registry') of
        {module, _} -> true;
        {error, E} -> {false, io_lib:format("Elixir's Registry does not load (~p): "
                                            "is elixir installed?", [E])}
    end.

start(_Nodes) ->
    {ok, _} = application:ensure_all_started(elixir),
    {ok, Pid} = 'Elixir.Registry':start_link([{keys, unique}, {name, ?REG},
                                              {partitions, erlang:system_info(schedulers)}]),
    unlink(Pid),
    ok.

stop() ->
    case whereis(?REG) of
        undefined -> ok;
        Pid -> exit(Pid, shutdown), wait_gone(Pid)
    end.

register_name(Name, _Pid) -> 'Elixir.Registry':register_name({?REG, Name}, self()).
unregister_name(Name) -> 'Elixir.Registry':unregister_name({?REG, Name}), ok.
whereis_name(Name) -> 'Elixir.Registry':whereis_name({?REG, Name}).
count() -> 'Elixir.Registry':count(?REG).

wait_gone(Pid) ->
    case is_process_alive(Pid) of
        true -> timer:sleep(5), wait_gone(Pid);
        false -> ok
    end.

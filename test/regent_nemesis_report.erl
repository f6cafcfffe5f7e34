%% What a nemesis run (regent_nemesis:run/1) found, as lines of text: the
%% Common Test suite prints them with ct:pal, the hosts runner
%% (regent_hosts_run) on standard output.
-module(regent_nemesis_report).

-export([lines/1, write_history/2]).

%% @doc The run's summary, one string per line.
-spec lines(map()) -> [string()].
lines(#{seed := Seed, ops := Ops, faults := Faults0, violations := V, quiet := Quiet} = R) ->
    %% The faults injected (not the heals, nor the resumes of paused VMs).
    Faults = [F || {F, _} <- Faults0, element(1, F) =/= resume],
    #{names := LinNames, unknown := LinUnknown, ms := LinMs} = maps:get(linearizability, R),
    Final = maps:get(final, maps:get(history, R)),
    Ups = [E || #{f := child_up} = E <- maps:get(events, maps:get(children, Final))],
    Moved = length(lists:usort([{Id, N} || #{name := Id, node := N} <- Ups]))
        - length(lists:usort([Id || #{name := Id} <- Ups])),
    [f("seed ~p (~p): ~p ops, ~p faults, quiet: ~p, ~p violations (checked in ~p ms)",
       [Seed, maps:get(mode, R, loopback), Ops, length(Faults), Quiet, length(V),
        maps:get(check_ms, R)]),
     f("subscriptions: ~p", [maps:get(subscriptions, R)]),
     f("increments: ~p", [maps:get(increments, R)]),
     f("faults: ~p", [Faults]),
     f("linearizability: ~p names searched in ~p ms, ~p undecided within the budget: ~p",
       [LinNames, LinMs, length(LinUnknown), LinUnknown]),
     f("supervised children: ~p instances started, ~p on another node than the "
       "child's first; all running again after the heal: ~p",
       [length(Ups), Moved, maps:get(children, R)])]
        ++ [f("NOT QUIET (~p: no single cluster 30 s after a heal, or no single "
              "table 60 s after the last); views: ~p", [Quiet, maps:get(views, R)])
            || Quiet =/= ok]
        ++ [f("VIOLATION ~s", [regent_history:describe(X)]) || X <- lists:sublist(V, 20)].

%% @doc Writes the run's history (text and binary) into Dir when it had a
%% violation; returns the file written, or none.
-spec write_history(map(), file:filename()) -> none | file:filename().
write_history(#{violations := []}, _Dir) ->
    none;
write_history(#{seed := Seed, history := H}, Dir) ->
    File = filename:join(Dir, "history-" ++ integer_to_list(Seed) ++ ".term"),
    ok = file:write_file(File, io_lib:format("~p.~n", [H])),
    ok = file:write_file(File ++ ".bin", term_to_binary(H)),
    File.

f(Fmt, Args) -> lists:flatten(io_lib:format(Fmt, Args)).

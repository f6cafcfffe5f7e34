%% `make demo': regent on its embedded defaults, on one node, in one minute.
%% Starts a registry, registers gen_servers under string names, calls them by
%% name, kills one and shows its name gone, then kills the engine (regentd)
%% and shows the registry carrying on.
-module(demo).
-export([main/0]).

main() ->
    logger:set_primary_config(level, warning),
    {ok, _} = application:ensure_all_started(crypto),
    say("Starting registry demo_reg (regentd + raft log under /dev/shm)"),
    {ok, _} = regent:start_link(demo_reg),
    ok = regent:await_ready(demo_reg),
    St = regent:status(demo_reg),
    say("  ready: role ~p, epoch ~p, regentd os pid ~p",
        [maps:get(role, St), maps:get(epoch, St),
         maps:get(os_pid, maps:get(daemon, St))]),
    Names = ["alice", "bob", "carol", "dave", "erin"],
    say("Registering ~p gen_servers by name", [length(Names)]),
    [begin
         {ok, Pid} = demo_counter:start(N),
         say("  ~-6s -> ~p", [N, Pid])
     end || N <- Names],
    say("Calling them through {via, regent, {demo_reg, Name}}"),
    [say("  call ~-6s -> ~p", [N, gen_server:call({via, regent, {demo_reg, N}}, hit)])
     || N <- Names],
    Bob = regent:whereis_name({demo_reg, "bob"}),
    say("A second \"bob\": ~p", [demo_counter:start("bob")]),
    say("Killing bob (~p)", [Bob]),
    exit(Bob, kill),
    wait(fun() -> regent:count(demo_reg) =:= 4 end),
    say("  whereis bob -> ~p; ~p names left: ~p",
        [regent:whereis_name({demo_reg, "bob"}), regent:count(demo_reg),
         lists:sort(regent:select(demo_reg, [{{'$1', '_', '_'}, [], ['$1']}]))]),
    OsPid = maps:get(os_pid, maps:get(daemon, regent:status(demo_reg))),
    say("kill -9 regentd (os pid ~p): reads go on, the member restarts it", [OsPid]),
    os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    say("  meanwhile whereis alice -> ~p", [regent:whereis_name({demo_reg, "alice"})]),
    {ok, _} = demo_counter:start("frank"),
    St2 = regent:status(demo_reg),
    say("  new regentd os pid ~p; frank registered: ~p; consistent read of carol: ~p",
        [maps:get(os_pid, maps:get(daemon, St2)),
         is_pid(regent:whereis_name({demo_reg, "frank"})),
         regent:whereis_name_consistent({demo_reg, "carol"})]),
    say("  call frank -> ~p", [gen_server:call({via, regent, {demo_reg, "frank"}}, hit)]),
    say("Done: ~p names registered.", [regent:count(demo_reg)]).

say(Fmt) -> say(Fmt, []).
say(Fmt, Args) -> io:format(Fmt ++ "~n", Args).

wait(F) ->
    case F() of
        true -> ok;
        false -> timer:sleep(2), wait(F)
    end.

%% `make demo': a regent cluster of three local BEAM nodes (OTP's peer), each
%% running its own regentd on the embedded defaults. It registers gen_servers
%% by string names, calls them by name from other nodes, kills one and shows
%% its name gone everywhere, then kills the raft leader's node and shows the
%% registry carrying on.
-module(demo).
-export([main/0, start_registry/0]).

-define(REG, demo_reg).

main() ->
    logger:set_primary_config(level, error),
    {ok, _} = application:ensure_all_started(crypto),
    say("Starting three nodes, each with registry ~p", [?REG]),
    Paths = lists:append([["-pa", P] || P <- code:get_path(),
                                        string:find(P, code:lib_dir()) =:= nomatch]),
    Nodes = [begin
                 {ok, _Peer, Node} =
                     peer:start(#{name => Name,
                                  args => ["-setcookie", atom_to_list(erlang:get_cookie()) | Paths]}),
                 ok = erpc:call(Node, ?MODULE, start_registry, []),
                 Node
             end || Name <- [demo_a, demo_b, demo_c]],
    wait(fun() -> lists:all(fun(N) -> length(members(N)) =:= 3 andalso ready(N) end, Nodes) end),
    [A, B, C] = Nodes,
    {Leader, _} = erpc:call(A, regent, get_leader, [?REG]),
    say("  members: ~p", [[{N, Role} || {{N, _}, Role} <- members(A)]]),
    say("  leader: ~p, epoch ~p", [Leader, erpc:call(A, regent, get_epoch, [?REG])]),
    Names = [{"alice", A}, {"bob", B}, {"carol", C}, {"dave", A}, {"erin", B}],
    say("Registering ~p gen_servers by name on different nodes", [length(Names)]),
    [begin
         {ok, Pid} = erpc:call(Node, demo_counter, start, [Name]),
         say("  ~-6s -> ~p on ~p", [Name, Pid, Node])
     end || {Name, Node} <- Names],
    say("Calling each one by name from node ~p", [C]),
    [say("  call ~-6s -> ~p", [N, erpc:call(C, gen_server, call,
                                             [{via, regent, {?REG, N}}, hit])])
     || {N, _} <- Names],
    say("A second \"bob\" on ~p: ~p", [C, erpc:call(C, demo_counter, start, ["bob"])]),
    Bob = erpc:call(A, regent, whereis_name, [{?REG, "bob"}]),
    say("Killing bob (~p)", [Bob]),
    exit(Bob, kill),
    wait(fun() -> [where(N, "bob") || N <- Nodes] =:= [undefined, undefined, undefined] end),
    say("  whereis bob on every node -> ~p", [[where(N, "bob") || N <- Nodes]]),
    [S1, S2] = Nodes -- [Leader],
    say("Halting the leader's node ~p (names on it: ~p)",
        [Leader, [N || {N, Node} <- Names, Node =:= Leader, N =/= "bob"]]),
    T0 = erlang:monotonic_time(millisecond),
    erlang:monitor_node(Leader, true),
    erpc:cast(Leader, erlang, halt, []),
    receive {nodedown, Leader} -> ok end,
    wait(fun() -> registered_again(S1) end),
    T1 = erlang:monotonic_time(millisecond),
    {NewLeader, _} = erpc:call(S1, regent, get_leader, [?REG]),
    say("  new leader ~p (epoch ~p); a registration succeeded again ~p ms after the halt",
        [NewLeader, erpc:call(S1, regent, get_epoch, [?REG]), T1 - T0]),
    wait(fun() -> lists:sort(names(S2)) =:= lists:sort(names(S1)) end),
    say("  names left on ~p: ~p", [S2, lists:sort(names(S2))]),
    say("  call carol from ~p -> ~p",
        [S2, catch erpc:call(S2, gen_server, call, [{via, regent, {?REG, "carol"}}, hit])]),
    say("Done."),
    [catch erpc:call(N, erlang, halt, []) || N <- [S1, S2]],
    ok.

%% On each node: start the registry, not linked to the rpc that asked.
start_registry() ->
    {ok, _} = application:ensure_all_started(crypto),
    {ok, Pid} = regent:start_link(?REG),
    unlink(Pid),
    ok.

registered_again(Node) ->
    {ok, P} = erpc:call(Node, demo_counter, start, ["frank"]),
    is_pid(P).

members(N) -> erpc:call(N, regent, get_members, [?REG]).
ready(N) -> erpc:call(N, regent, ready, [?REG]).
where(N, Name) -> erpc:call(N, regent, whereis_name, [{?REG, Name}]).
names(N) -> erpc:call(N, regent, select, [?REG, [{{'$1', '_', '_'}, [], ['$1']}]]).

say(Fmt) -> say(Fmt, []).
say(Fmt, Args) -> io:format(Fmt ++ "~n", Args).

wait(F) ->
    case catch F() of
        true -> ok;
        _ -> timer:sleep(20), wait(F)
    end.

%% The distributed supervisor (regent_sup) on three real peer nodes, each
%% with its own regentd: starting from any node, placement, the OTP
%% lifecycle, restart decisions, bad input, a node halted, a node cut off
%% from raft (fencing) and a supervisor stopped cleanly. An observer on
%% the test node hears every instance start and monitors it, and checks
%% that no two instances of one child were ever alive at once.
-module(regent_sup_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([start_from_any_node/1, singleton_race/1, placement/1, lifecycle/1,
         restart_types/1, crash_loop_given_up/1, bad_input/1, module_missing/1,
         node_halted/1, raft_cut_fences/1, graceful_stop_moves/1, leave_hands_off/1,
         redistribute_active/1]).
-export([observer/1, start_sup_remote/2, start_sup_only/1, remote_module/0, last_node/2]).

-define(REG, sup_reg).
-define(SUP, sup_test).
-define(LEASE, 1000).
-define(MARGIN, 300).

suite() -> [{timetrap, {minutes, 3}}].

all() ->
    [start_from_any_node, singleton_race, placement, lifecycle, restart_types,
     crash_loop_given_up, bad_input, module_missing, node_halted, raft_cut_fences,
     graceful_stop_moves, leave_hands_off, redistribute_active].

init_per_suite(Config) ->
    ok = regent_test_lib:start_distribution(),
    [{daemon, regent_test_lib:daemon()} | Config].

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    Obs = spawn(?MODULE, observer, [#{}]),
    true = register(regent_sup_observer, Obs),
    [{observer, Obs} | Config].

end_per_testcase(_Case, Config) ->
    Obs = ?config(observer, Config),
    Result = overlaps(Obs),
    exit(Obs, kill),
    regent_test_lib:stop_peers(),
    %% Every case: never two live instances of one child.
    case Result of
        [] -> ok;
        Overlaps -> {fail, {two_instances, Overlaps}}
    end.

%% ---- cluster ---------------------------------------------------------------

cluster(Config) ->
    cluster(Config, 3, []).

cluster(Config, N, Extra) ->
    Nodes = regent_test_lib:peers(N, Extra),
    regent_test_lib:mesh(Nodes),
    [ok = erpc:call(Node, ?MODULE, start_sup_remote,
                    [?config(daemon, Config), #{}]) || Node <- Nodes],
    regent_test_lib:await_cluster(?REG, Nodes, N),
    %% Every supervisor holds a lease, as every node sees.
    regent_test_lib:wait_until(
      fun() -> lists:all(fun(Node) -> length(live(Node)) =:= N end, Nodes) end, 10000),
    Nodes.

%% On a peer: the registry and the supervisor, unlinked from the rpc.
start_sup_remote(Daemon, SupOpts) ->
    ok = regent_test_lib:start_remote(?REG, [{daemon, Daemon}]),
    start_sup_only(SupOpts).

start_sup_only(SupOpts) ->
    Opts = maps:merge(#{name => ?SUP, registry => ?REG, lease => ?LEASE,
                        lease_margin => ?MARGIN}, SupOpts),
    {ok, Pid} = regent_sup:start_link(Opts),
    unlink(Pid),
    ok.

live(Node) ->
    maps:keys(erpc:call(Node, regent_sup_place, live_nodes, [?REG, ?SUP])).

call(Node, F, Args) ->
    erpc:call(Node, regent_sup, F, [?SUP | Args]).

spec(_Config, Id) ->
    regent_sup_child:spec(Id, node()).

spec(_Config, Id, Mode) ->
    regent_sup_child:spec(Id, node(), Mode).

wait_until(F) -> regent_test_lib:wait_until(F, 10000).

%% ---- cases -----------------------------------------------------------------

%% start_child from each node: the child runs once, its id names it on
%% every node, and every node lists the same children.
start_from_any_node(Config) ->
    Nodes = [A, B, C] = cluster(Config),
    Pids = [begin
                {ok, P} = call(N, start_child, [spec(Config, {job, N})]),
                P
            end || N <- Nodes],
    [wait_until(fun() -> erpc:call(N, regent, whereis_name, [{?REG, {job, M}}]) =:= P end)
     || N <- Nodes, {M, P} <- lists:zip(Nodes, Pids)],
    {error, {already_started, Pa}} = call(B, start_child, [spec(Config, {job, A})]),
    Pa = hd(Pids),
    {pong, {job, A}} = gen_server:call(Pa, ping),
    Which = fun(N) -> lists:sort(call(N, which_children, [])) end,
    wait_until(fun() -> Which(A) =:= Which(B) andalso Which(B) =:= Which(C) end),
    ?assertEqual(lists:sort([{{job, N}, P, worker, [regent_sup_child]}
                             || {N, P} <- lists:zip(Nodes, Pids)]), Which(C)),
    ?assertEqual([{specs, 3}, {active, 3}, {supervisors, 0}, {workers, 3}],
                 call(C, count_children, [])),
    ?assertEqual(3, length(ups(Config))),
    %% The ProcessHub view: node, pid, tags, token.
    {ok, Pt} = call(A, start_child, [spec(Config, tagged), [{tags, [blue]}]]),
    wait_until(fun() -> [{Pt, [blue]}] =:= erpc:call(B, regent, lookup, [?REG, tagged]) end),
    [#{node := Nt, pid := Pt, tags := [blue], inc := 1, epoch := E}] =
        [C1 || #{id := tagged} = C1 <- call(B, children, [])],
    wait_until(fun() -> {E, 1} =:= call(C, token, [tagged]) end),
    [{tagged, Pt}] = [L || {tagged, _} = L <- call(Nt, local_children, [])],
    Pt = call(B, get_pid, [tagged]),
    ok.

%% find_or_start from every node at once, many callers each: one instance,
%% every caller has its pid.
singleton_race(Config) ->
    Nodes = cluster(Config),
    Self = self(),
    Callers = [spawn(fun() ->
                             Self ! {got, erpc:call(N, regent_sup, find_or_start,
                                                    [?SUP, spec(Config, the_one)])}
                     end) || N <- Nodes, _ <- lists:seq(1, 10)],
    Got = [receive {got, R} -> R after 20000 -> error(no_answer) end || _ <- Callers],
    [{ok, Pid}] = lists:usort(Got),
    ?assert(is_pid(Pid)),
    ?assertEqual([Pid], [P || {up, the_one, P, _} <- ups(Config)]),
    ok.

%% Every placement rule.
placement(Config) ->
    [A, B, C] = Nodes = cluster(Config),
    {ok, P1} = call(B, start_child, [spec(Config, loc), [{placement, local}]]),
    B = node(P1),
    {ok, P2} = call(A, start_child, [spec(Config, pinned), [{placement, {node, C}}]]),
    C = node(P2),
    {error, {node_not_available, nowhere@nohost}} =
        call(A, start_child, [spec(Config, lost), [{placement, {node, nowhere@nohost}}]]),
    undefined = call(A, token, [lost]), % nothing stays in the log
    %% hash: the same node from any caller, the highest rendezvous hash.
    Expect = fun(Id) -> element(2, lists:max([{erlang:phash2({Id, N}), N} || N <- Nodes])) end,
    [begin
         {ok, P} = call(lists:nth(1 + I rem 3, Nodes), start_child,
                        [spec(Config, {h, I}), [{placement, hash}]]),
         ?assertEqual(Expect({h, I}), node(P))
     end || I <- lists:seq(1, 9)],
    %% least_loaded: 30 more from one caller spread evenly.
    [{ok, _} = call(A, start_child, [spec(Config, {l, I})]) || I <- lists:seq(1, 30)],
    Counts = [length(erpc:call(N, regent_sup, local_children, [?SUP])) || N <- Nodes],
    ?assert(lists:max(Counts) - lists:min(Counts) =< 2),
    %% {M, F}: called with the id and the live nodes.
    {ok, P3} = call(C, start_child, [spec(Config, mf), [{placement, {?MODULE, last_node}}]]),
    ?assertEqual(lists:last(lists:sort(Nodes)), node(P3)),
    ok.

%% A placement function: the last of the live nodes.
last_node(_Id, Nodes) ->
    lists:last(lists:sort(Nodes)).

%% terminate_child, restart_child, delete_child, with OTP's results.
lifecycle(Config) ->
    [A, B, _C] = cluster(Config),
    {ok, P1} = call(A, start_child, [spec(Config, life)]),
    Ref = monitor(process, P1),
    ok = call(B, terminate_child, [life]),
    receive {'DOWN', Ref, process, P1, shutdown} -> ok after 5000 -> error(not_stopped) end,
    %% Another node's mirror follows the log a moment later.
    wait_until(fun() -> [{life, undefined, worker, [regent_sup_child]}] =:= call(A, which_children, []) end),
    {error, already_present} = call(B, start_child, [spec(Config, life)]),
    {error, not_found} = call(A, delete_child, [tagless]),
    {ok, P2} = call(B, restart_child, [life]),
    ?assert(P2 =/= P1),
    {error, running} = call(A, restart_child, [life]),
    {error, running} = call(A, delete_child, [life]),
    ok = call(A, terminate_child, [P2]), % by pid, as DynamicSupervisor
    ok = call(A, delete_child, [life]),
    wait_until(fun() -> [] =:= call(B, which_children, []) end),
    {error, not_found} = call(A, terminate_child, [life]),
    {error, not_found} = call(A, restart_child, [life]),
    %% A temporary child's spec goes with it.
    {ok, _} = call(A, start_child, [(spec(Config, temp))#{restart => temporary}]),
    ok = call(B, terminate_child, [temp]),
    wait_until(fun() -> [] =:= call(A, which_children, []) end),
    ok.

%% permanent: restarted whatever the reason (a new incarnation); transient:
%% not after a normal exit; temporary: never.
restart_types(Config) ->
    [A, B, _] = cluster(Config),
    {ok, P1} = call(A, start_child, [spec(Config, perm)]),
    wait_until(fun() -> {_, 1} = call(B, token, [perm]), true end),
    exit(P1, kill),
    wait_until(fun() -> is_pid(call(B, get_pid, [perm])) andalso call(B, get_pid, [perm]) =/= P1 end),
    wait_until(fun() -> {_, 2} = call(B, token, [perm]), true end),
    {ok, T1} = call(A, start_child, [(spec(Config, trans))#{restart => transient}]),
    exit(T1, kill),
    wait_until(fun() -> is_pid(call(B, get_pid, [trans])) andalso call(B, get_pid, [trans]) =/= T1 end),
    ok = gen_server:call(call(B, get_pid, [trans]), stop), % a normal exit
    wait_until(fun() -> call(B, token, [trans]) =:= undefined end),
    {ok, Tp} = call(A, start_child, [(spec(Config, tmp))#{restart => temporary}]),
    exit(Tp, kill),
    wait_until(fun() -> call(B, token, [tmp]) =:= undefined end),
    wait_until(fun() -> [perm] =:= [Id || {Id, _, _, _} <- call(A, which_children, [])] end),
    ok.

%% A child that crashes in a loop is given up after max_restarts in
%% max_seconds, and its record goes from the log.
crash_loop_given_up(Config) ->
    [A, _, _] = cluster(Config),
    {ok, _} = call(A, start_child, [spec(Config, loop, {crash_after, 10}),
                                    [{max_restarts, 2}, {max_seconds, 30}]]),
    wait_until(fun() -> call(A, token, [loop]) =:= undefined end),
    ?assertEqual(3, length([x || {up, loop, _, _} <- ups(Config)])),
    ok.

%% What a caller gets for bad input, and that the log keeps nothing of it.
bad_input(Config) ->
    [A, _, _] = cluster(Config),
    Bad = fun(Spec) ->
                  try call(A, start_child, [Spec]) of R -> {returned, R}
                  catch error:{exception, {badarg, Why}, _} -> {badarg, Why}
                  end
          end,
    {badarg, {invalid_child_spec, 42}} = Bad(42),
    {badarg, {invalid_child_spec, {not_a_module, []}}} = Bad(not_a_module), % no child_spec/1
    {badarg, {invalid_child_spec, _}} = Bad(#{id => x, start => {m, f, not_a_list}}),
    {badarg, {invalid_child_spec, _}} = Bad(#{id => x, start => {m, f, []}, restart => sometimes}),
    {badarg, {not_plain_data, _}} = Bad(#{id => x, start => {m, f, [fun() -> ok end]}}),
    {badarg, {not_plain_data, _}} = Bad(#{id => x, start => {m, f, [self()]}}),
    {badarg, {unknown_option, {colour, red}}} =
        try call(A, start_child, [spec(Config, x), [{colour, red}]])
        catch error:{exception, {badarg, W}, _} -> {badarg, W}
        end,
    {error, nope} = call(A, start_child, [spec(Config, e1, {error, nope})]),
    ignore = call(A, start_child, [spec(Config, e2, ignore)]),
    {error, _} = call(A, start_child, [spec(Config, e3, raise)]),
    wait_until(fun() -> [] =:= call(A, which_children, []) end),
    %% A supervisor that is not running here, and a bad option at start.
    {'EXIT', {noproc, {regent_sup, no_such_sup}}} =
        erpc:call(A, fun() -> catch regent_sup:start_child(no_such_sup, spec(Config, y)) end),
    {'EXIT', {{badarg, {lease, -1}}, _}} =
        erpc:call(A, fun() -> catch regent_sup:start_link(#{name => s2, registry => ?REG,
                                                             lease => -1}) end),
    ok.

%% A module that only one node has: the start moves to another node until
%% one has it (at most three nodes tried), else fails with module_missing.
module_missing(Config) ->
    [A, B, C] = Nodes = cluster(Config),
    {Mod, Bin} = remote_module(),
    {module, Mod} = erpc:call(C, code, load_binary, [Mod, "regent_sup_only_here.erl", Bin]),
    %% An id whose hash puts it first on a node without the module.
    Order = fun(Id) -> [N || {_, N} <- lists:reverse(lists:sort([{erlang:phash2({Id, N}), N}
                                                                  || N <- Nodes]))] end,
    [Id | _] = [I || I <- lists:seq(1, 100), hd(Order(I)) =/= C],
    Spec = #{id => Id, start => {Mod, start_link, []}},
    {ok, P} = call(A, start_child, [Spec, [{placement, hash}]]),
    C = node(P),
    Missing = #{id => nowhere, start => {regent_sup_no_such_module, start_link, []}},
    {error, {module_missing, regent_sup_no_such_module, Tried}} =
        call(B, start_child, [Missing]),
    ?assertEqual(lists:sort(Nodes), lists:sort(Tried)),
    wait_until(fun() -> undefined =:= call(B, token, [nowhere]) end),
    ok.

%% A module compiled here and loaded on one peer only.
remote_module() ->
    Src = "-module(regent_sup_only_here).\n-export([start_link/0]).\n"
          "start_link() -> {ok, spawn_link(fun() -> receive stop -> ok end end)}.\n",
    {ok, Tokens, _} = erl_scan:string(Src),
    Forms = [begin {ok, F} = erl_parse:parse_form(Ts), F end || Ts <- split_forms(Tokens, [])],
    {ok, Mod, Bin} = compile:forms(Forms),
    {Mod, Bin}.

split_forms([], []) -> [];
split_forms([{dot, _} = D | Rest], Acc) -> [lists:reverse([D | Acc]) | split_forms(Rest, [])];
split_forms([T | Rest], Acc) -> split_forms(Rest, [T | Acc]).

%% A node halted with children on it: each of them runs again on a
%% survivor within lease + margin + a second.
node_halted(Config) ->
    [A, B, C] = cluster(Config),
    [{ok, _} = call(A, start_child, [spec(Config, {n, I})]) || I <- lists:seq(1, 30)],
    OnC = [Id || {Id, _} <- erpc:call(C, regent_sup, local_children, [?SUP])],
    ?assert(length(OnC) >= 5),
    T0 = erlang:monotonic_time(millisecond),
    erpc:cast(C, erlang, halt, []),
    Moved = fun() ->
                    lists:all(fun(Id) ->
                                      P = call(A, get_pid, [Id]),
                                      is_pid(P) andalso lists:member(node(P), [A, B])
                              end, OnC)
            end,
    regent_test_lib:wait_until(Moved, ?LEASE + ?MARGIN + 5000),
    Took = erlang:monotonic_time(millisecond) - T0,
    ct:pal("~p children of a halted node ran again on the survivors after ~p ms",
           [length(OnC), Took]),
    ?assert(Took =< ?LEASE + ?MARGIN + 1000),
    [{specs, 30}, {active, 30} | _] = call(B, count_children, []),
    ok.

%% A node whose raft links are cut (distribution stays up) kills its
%% children within its lease; only then, after lease + margin, do they
%% start elsewhere, each with a higher incarnation. The cut node has the
%% smallest name, so the others must stop deferring to it as coordinator.
%% After the heal the node takes a new epoch and runs children again.
raft_cut_fences(Config) ->
    [A, B, C] = Nodes = cluster(Config),
    %% The smallest name: every node's coordinator until its renewals stop.
    Cut = lists:min(Nodes),
    [X, Y] = Nodes -- [Cut],
    [{ok, _} = call(X, start_child, [spec(Config, {f, I})]) || I <- lists:seq(1, 12)],
    OnCut = [{Id, P} || {Id, P} <- erpc:call(Cut, regent_sup, local_children, [?SUP])],
    ?assert(length(OnCut) >= 2),
    Tokens = maps:from_list([{Id, call(X, token, [Id])} || {Id, _} <- OnCut]),
    Refs = [monitor(process, P) || {_, P} <- OnCut],
    T0 = erlang:monotonic_time(millisecond),
    {ok, _} = erpc:call(Cut, regent_fault, cut_raft, [?REG, [X, Y]]),
    [{ok, _} = erpc:call(N, regent_fault, cut_raft, [?REG, [Cut]]) || N <- [X, Y]],
    [receive {'DOWN', R, process, _, killed} -> ok after ?LEASE + 2000 -> error(not_fenced) end
     || R <- Refs],
    Fenced = erlang:monotonic_time(millisecond) - T0,
    ?assert(Fenced =< ?LEASE + 200),
    wait_until(fun() ->
                       lists:all(fun({Id, _}) ->
                                         P = call(X, get_pid, [Id]),
                                         is_pid(P) andalso node(P) =/= Cut
                                 end, OnCut)
               end),
    [begin
         {E0, I0} = maps:get(Id, Tokens),
         wait_until(fun() -> {_, I1} = call(Y, token, [Id]), I1 > I0 end),
         ?assert(is_integer(E0))
     end || {Id, _} <- OnCut],
    ct:pal("cut at 0 ms; fenced by ~p ms", [Fenced]),
    [{ok, 0} = erpc:call(N, regent_fault, heal_raft, [?REG]) || N <- Nodes],
    wait_until(fun() -> lists:member(Cut, live(X)) end),
    {ok, P} = call(X, start_child, [spec(Config, after_heal), [{placement, {node, Cut}}]]),
    Cut = node(P),
    _ = {A, B, C},
    ok.

%% A supervisor stopped cleanly gives its lease back: its children move
%% at once, well before a lease would run out.
graceful_stop_moves(Config) ->
    [A, B, C] = cluster(Config),
    [{ok, _} = call(A, start_child, [spec(Config, {g, I})]) || I <- lists:seq(1, 9)],
    OnC = [Id || {Id, _} <- erpc:call(C, regent_sup, local_children, [?SUP])],
    T0 = erlang:monotonic_time(millisecond),
    ok = erpc:call(C, regent_sup, stop, [?SUP]),
    wait_until(fun() ->
                       lists:all(fun(Id) ->
                                         P = call(A, get_pid, [Id]),
                                         is_pid(P) andalso node(P) =/= C
                                 end, OnC)
               end),
    Took = erlang:monotonic_time(millisecond) - T0,
    ct:pal("~p children moved ~p ms after a clean stop", [length(OnC), Took]),
    ?assert(Took < ?LEASE),
    _ = B,
    ok.

%% regent_sup:stop/1 on a node: its children move to the others, a child
%% started with handoff => true with the state its instance handed over,
%% the others with fresh state; never two instances.
leave_hands_off(Config) ->
    [A, B, C] = cluster(Config),
    Stateful = fun(Id) -> regent_sup_child:spec(Id, node(), {stateful, ?SUP}) end,
    {ok, P} = call(A, start_child, [Stateful(counter), [{placement, {node, C}}, {handoff, true}]]),
    {ok, Q} = call(A, start_child, [Stateful(plain), [{placement, {node, C}}]]),
    3 = lists:last([gen_server:call(P, bump) || _ <- lists:seq(1, 3)]),
    1 = gen_server:call(Q, bump),
    ok = erpc:call(C, regent_sup, stop, [?SUP]),
    Moved = fun(Id) -> P2 = call(A, get_pid, [Id]), is_pid(P2) andalso node(P2) =/= C end,
    wait_until(fun() -> Moved(counter) andalso Moved(plain) end),
    {pong, 3} = gen_server:call(call(B, get_pid, [counter]), ping),
    {pong, 0} = gen_server:call(call(B, get_pid, [plain]), ping),
    States = get(?config(observer, Config), states),
    [{fresh, 0}, {handoff, 3}] = [{F, S} || {counter, _, F, S} <- States],
    [{fresh, 0}, {fresh, 0}] = [{F, S} || {plain, _, F, S} <- States],
    %% The state left the log once the new instance ran.
    wait_until(fun() -> none =:= erpc:call(B, regent_sup, handoff_state, [?SUP, counter]) end),
    ok.

%% redistribute => active: a node that joins takes children from the
%% others, a few at a time, with handoff, until the loads differ by at most
%% one.
redistribute_active(Config) ->
    Nodes = [A, B, C] = regent_test_lib:peers(3, []),
    regent_test_lib:mesh(Nodes),
    [ok = erpc:call(N, regent_test_lib, start_remote, [?REG, [{daemon, ?config(daemon, Config)}]])
     || N <- Nodes],
    regent_test_lib:await_cluster(?REG, Nodes, 3),
    [ok = erpc:call(N, ?MODULE, start_sup_only, [#{redistribute => active}]) || N <- [A, B]],
    wait_until(fun() -> length(live(A)) =:= 2 end),
    [{ok, _} = call(A, start_child, [regent_sup_child:spec({r, I}, node(), {stateful, ?SUP}),
                                     [{handoff, true}]]) || I <- lists:seq(1, 12)],
    [1 = gen_server:call(call(A, get_pid, [{r, I}]), bump) || I <- lists:seq(1, 12)],
    ok = erpc:call(C, ?MODULE, start_sup_only, [#{redistribute => active}]),
    Local = fun(N) -> length(erpc:call(N, regent_sup, local_children, [?SUP])) end,
    wait_until(fun() ->
                       Ls = [Local(N) || N <- Nodes],
                       lists:sum(Ls) =:= 12 andalso lists:max(Ls) - lists:min(Ls) =< 1
               end),
    ct:pal("after the join: ~p", [[Local(N) || N <- Nodes]]),
    %% Every moved child carried its state.
    Handed = [S || {{r, _}, _, handoff, S} <- get(?config(observer, Config), states)],
    ?assert(length(Handed) >= 4),
    ?assertEqual([1], lists:usort(Handed)),
    ok.

%% ---- the observer ------------------------------------------------------------

%% Hears every instance start, monitors it, and remembers overlaps: an
%% instance that started while another of the same id was alive.
observer(#{} = St) ->
    receive
        {child_up, Id, Pid, Node} ->
            monitor(process, Pid),
            Live = maps:get({live, Id}, St, []),
            Over = [{Id, Pid, Other} || Other <- Live],
            observer(St#{{live, Id} => [Pid | Live],
                         ups => [{up, Id, Pid, Node} | maps:get(ups, St, [])],
                         overlaps => Over ++ maps:get(overlaps, St, [])});
        {child_state, Id, Pid, From, S} ->
            observer(St#{states => [{Id, Pid, From, S} | maps:get(states, St, [])]});
        {'DOWN', _, process, Pid, _} ->
            observer(maps:map(fun({live, _}, L) -> L -- [Pid]; (_, V) -> V end, St));
        {get, From, Key} ->
            From ! {Key, lists:reverse(maps:get(Key, St, []))},
            observer(St)
    end.

ups(Config) ->
    get(?config(observer, Config), ups).

overlaps(Obs) ->
    get(Obs, overlaps).

get(Obs, Key) ->
    Obs ! {get, self(), Key},
    receive {Key, V} -> V after 5000 -> error(observer_silent) end.

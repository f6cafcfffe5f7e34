%% `make bench': regent measured side by side with OTP's global and pg and
%% Elixir's Registry in one run, on one machine. Each scenario runs every
%% adapter that implements its contract (names or groups, bench_registry)
%% for ROUNDS rounds (default 3) on fresh nodes (OTP peer, loopback) and
%% reports the median with min–max. Prints the table, writes
%% bench/results/latest.md, a data file and, with gnuplot,
%% bench/results/latest.png.
%%
%% `make bench-smoke' (smoke/0): every scenario at the sizes of smoke_sizes/0
%% (dozens to hundreds of names), 1 round, every adapter that loads; fails
%% (halt(1)) if a scenario crashes or a row has no value for regent. Writes
%% to _build/bench-smoke, never bench/results.
%%
%% Environment: BENCH_ROUNDS (3), BENCH_SCENARIOS (e.g. "1,2,9": a subset),
%% BENCH_ADAPTERS (extra adapter modules, comma separated), BENCH_ONLY (run
%% only these adapters: a developer's quick look; the table then lacks the
%% others), BENCH_REPLAY
%% (render the table and chart again from results/latest.raw).
-module(regent_bench).
-export([main/0, smoke/0]).
%% Run on peer nodes through erpc.
-export([bulk_round/1]).
%% For regent_bench_sup (scenario 13).
-export([measure/4, row/5, on_cluster/3, usec/1, wait/2, k/1, fmt/2]).
-export([idle/0, register_all/2, registrar/3, register_timed/2, watcher/3, count_until/3,
         spawn_idle/1, kill_all/1, race_register/3, rss_kb/0, daemon_os_pid/0,
         ets_bytes/0, join_chain/3, join_all/3, group_reads/3, pong/0]).

-define(ADAPTERS, [bench_regent, bench_regent_plain, bench_global, bench_elixir_registry,
                   bench_pg]).
%% The smoke run gives up (halt(1)) after this long rather than hang `make test'.
-define(SMOKE_DEADLINE_MS, 180000).

%% The sizes of a full run; see bench/README.md for what each row measures.
full_sizes() ->
    #{single_node => [10000, 100000],   % 1: names per run
      lookups => 1000000,               % 1: whereis_name calls per reader
      follower => 10000,                % 2: names
      callers => 100,                   % 3: concurrent callers
      caller_names => 20000,            % 3: names in all
      caller_names_global => 2000,      % 3: names in all, global (seconds per thousand)
      convergence => 200,               % 4: names, one at a time
      race => 1000,                     % 5: names both nodes register
      cleanup => 10000,                 % 6: names
      memory => 100000,                 % 8: names, every adapter
      memory_regent => 1000000,         % 8: names, regent only
      late_join => 1000000,             % 8: names in the cluster a node joins
      engine_frames => 200,             % 9: OPS frames
      engine_per_frame => 1000,         % 9: registrations per frame
      group_join => 10000,              % 10, 11: members joining one group, one at a time
      group_sizes => [1, 100, 10000],   % 10, 11: members of the groups read
      group_reads => 100000,            % 10, 11: lookups (and dispatches) per group, at most
      group_read_entries => 10000000,   % 10, 11: ... fewer for big groups: entries read in all
      bulk => 10000,                    % 12: names in one register_many
      sup_children => 10000,            % 13: children started, 3 nodes
      sup_halt => 1000,                 % 13: children on the node that halts
      floor_trips => 20000}.            % 14: round trips per floor

%% The same scenarios, just large enough to run every code path.
smoke_sizes() ->
    #{single_node => [50, 200], lookups => 20000, follower => 50, callers => 10,
      caller_names => 200, caller_names_global => 100, convergence => 10, race => 50,
      cleanup => 100, memory => 200, memory_regent => 1000, late_join => 500,
      engine_frames => 4, engine_per_frame => 50, group_join => 50,
      group_sizes => [1, 10, 100], group_reads => 1000, group_read_entries => 10000,
      bulk => 200, sup_children => 100, sup_halt => 30, floor_trips => 500}.

main() ->
    setup(),
    Rounds = list_to_integer(os:getenv("BENCH_ROUNDS", "3")),
    Adapters = adapters(),
    io:format("regent benchmark: ~p rounds, adapters ~p~n~s~n~n",
              [Rounds, [A:label() || A <- Adapters], machine()]),
    {Rows, Failed} =
        case os:getenv("BENCH_REPLAY") of
            false ->
                {R, F} = run_scenarios(Adapters, Rounds, full_sizes()),
                %% The samples first: a rendering bug must not cost a run.
                ok = filelib:ensure_path("bench/results"),
                ok = file:write_file("bench/results/latest.raw", term_to_binary(R)),
                {R, F};
            _ ->
                {ok, Raw} = file:read_file("bench/results/latest.raw"),
                {binary_to_term(Raw), []}
        end,
    Table = table(Rows, Adapters),
    io:format("~n~ts~n", [Table]),
    write_results("bench/results", Table, Rows, Adapters),
    Failed =:= [] orelse begin
                             io:format("~nscenarios that crashed (missing above): ~p~n", [Failed]),
                             halt(1)
                         end,
    ok.

smoke() ->
    setup(),
    T0 = erlang:monotonic_time(millisecond),
    Main = self(),
    Watchdog = spawn(fun() ->
                             Ref = monitor(process, Main),
                             receive {'DOWN', Ref, _, _, _} -> ok
                             after ?SMOKE_DEADLINE_MS ->
                                     io:format("~nbench smoke: FAILED, still running after ~p s~n",
                                               [?SMOKE_DEADLINE_MS div 1000]),
                                     halt(1)
                             end
                     end),
    Adapters = adapters(),
    io:format("regent benchmark, smoke run: 1 round, tiny sizes, adapters ~p~n",
              [[A:label() || A <- Adapters]]),
    {Rows, Failed} = run_scenarios(Adapters, 1, smoke_sizes()),
    Table = table(Rows, Adapters),
    io:format("~n~ts~n", [Table]),
    write_results("_build/bench-smoke", Table, Rows, Adapters),
    Empty = [{Scen, Metric} || {Scen, Metric, _, _, Samples} <- Rows,
                               not has_values(maps:get("regent", Samples, []))],
    Secs = (erlang:monotonic_time(millisecond) - T0) / 1000,
    exit(Watchdog, kill),
    case {Failed, Empty} of
        {[], []} ->
            io:format("bench smoke: ok, ~p rows, all with a value for regent (~.1f s)~n",
                      [length(Rows), Secs]);
        _ ->
            [io:format("bench smoke: scenario ~p crashed: ~p~n", [Id, Why]) || {Id, Why} <- Failed],
            [io:format("bench smoke: no value for regent in row \"~ts\" / \"~ts\"~n", [S, M])
             || {S, M} <- Empty],
            io:format("bench smoke: FAILED (~.1f s)~n", [Secs]),
            halt(1)
    end.

has_values(Samples) ->
    Samples =/= [] andalso lists:all(fun is_number/1, Samples).

setup() ->
    logger:set_primary_config(level, error),
    {ok, _} = application:ensure_all_started(crypto),
    ok.

%% The built-in adapters and BENCH_ADAPTERS, less those whose code does not
%% load here (said why, not fatal).
adapters() ->
    Only = case os:getenv("BENCH_ONLY") of
               false -> all;
               L -> [list_to_atom(A) || A <- string:lexemes(L, ",")]
           end,
    [A || A <- ?ADAPTERS ++ extra_adapters(), Only =:= all orelse lists:member(A, Only),
          available(A)].

available(A) ->
    Why = case code:ensure_loaded(A) of
              {module, A} ->
                  case erlang:function_exported(A, available, 0) of
                      true -> A:available();
                      false -> true
                  end;
              {error, E} -> {false, fmt("module ~p: ~p", [A, E])}
          end,
    Why =:= true orelse io:format("adapter ~p skipped: ~ts~n", [A, element(2, Why)]),
    Why =:= true.

%% Each scenario in turn, with the adapters that implement its contract;
%% one that crashes is reported and the others still run, so a long run
%% still writes its table.
run_scenarios(Adapters, Rounds, Sizes) ->
    Wanted = wanted_scenarios(),
    Results = [run_scenario({Id, Fun}, [A || A <- Adapters, implements(A, Contract)], Rounds, Sizes)
               || {Id, Contract, Fun} <- scenarios(),
                  Wanted =:= all orelse lists:member(Id, Wanted)],
    {lists:append([R || {ok, R} <- Results]), [F || {failed, F} <- Results]}.

%% The two contracts of bench_registry, known by one callback each.
implements(A, names) -> erlang:function_exported(A, register_name, 2);
implements(A, groups) -> erlang:function_exported(A, group_join, 2);
implements(A, supervision) -> erlang:function_exported(A, sup_start_child, 1);
implements(_A, none) -> true.

extra_adapters() ->
    [list_to_atom(A) || A <- string:lexemes(os:getenv("BENCH_ADAPTERS", ""), ",")].

wanted_scenarios() ->
    case os:getenv("BENCH_SCENARIOS") of
        false -> all;
        S -> [list_to_integer(X) || X <- string:lexemes(S, ",")]
    end.

%% {Id, the contract its adapters implement (none: regentd alone), Fun}.
scenarios() ->
    [{1, names, fun single_node/3}, {2, names, fun one_caller_on_follower/3},
     {3, names, fun hundred_callers/3}, {4, names, fun convergence/3},
     {5, names, fun race/3}, {6, names, fun cleanup/3}, {7, names, fun failover/3},
     {8, names, fun memory/3}, {9, none, fun engine_alone/3},
     {10, groups, fun groups_one_node/3}, {11, groups, fun groups_three_nodes/3},
     {12, names, fun bulk/3}, {13, supervision, fun regent_bench_sup:scenario/3},
     {14, none, fun floors/3}].

run_scenario({Id, Fun}, Adapters, Rounds, Sizes) ->
    io:format("scenario ~p...", [Id]),
    T0 = erlang:monotonic_time(millisecond),
    try Fun(Adapters, Rounds, Sizes) of
        [] -> io:format(" no rows~n"), {failed, {Id, no_rows}};
        Rows -> io:format(" ~.1f s~n", [(erlang:monotonic_time(millisecond) - T0) / 1000]),
                {ok, Rows}
    catch
        C:E:St ->
            io:format("scenario ~p crashed: ~p:~p~n  ~p~n", [Id, C, E, St]),
            %% What a crash on this node may have left running.
            [catch A:Stop() || A <- Adapters, Stop <- [stop, group_stop]],
            {failed, {Id, {C, E}}}
    end.

%% A row: {Scenario, Metric, Unit, Better, #{Label => [Sample]}}.
row(Scenario, Metric, Unit, Better, Samples) ->
    {Scenario, Metric, Unit, Better, Samples}.

%% Runs Measure(Adapter) Rounds times for each adapter that applies; Measure
%% returns a map Metric => value (or skip).
measure(Adapters, Rounds, Applies, Measure) ->
    Results = [{A:label(), [Measure(A) || _ <- lists:seq(1, Rounds)]}
               || A <- Adapters, Applies(A)],
    Metrics = lists:usort(lists:append([maps:keys(M) || {_, Ms} <- Results, M <- Ms])),
    [{Metric, maps:from_list([{L, [maps:get(Metric, M) || M <- Ms, is_map_key(Metric, M)]}
                              || {L, Ms} <- Results])}
     || Metric <- Metrics].

cluster_only(A) -> A:scope() =:= cluster.

%% How many names an adapter can take within a run. global's registration
%% slows as its table grows: measured here, ~80/s past 90k names on one
%% node (a 100k run took over 15 minutes), so it sits out the 100k rows.
max_names(A) ->
    case erlang:function_exported(A, max_names, 0) of
        true -> A:max_names();
        false -> infinity
    end.
regent_only(A) -> A =:= bench_regent.

%% ---- 1. one node -------------------------------------------------------------

%% Sizes: the first with {user, I} names, the second with binary names.
single_node(Adapters, Rounds, #{single_node := [N1, N2], lookups := Lookups}) ->
    lists:append([single_node(N, NameFun, Lookups, Adapters, Rounds)
                  || {N, NameFun} <- [{N1, fun(I) -> {user, I} end},
                                      {N2, fun(I) -> <<"user-", (integer_to_binary(I))/binary>> end}]]).

single_node(N, NameFun, Lookups, Adapters, Rounds) ->
    Label = fmt("1. one node, ~s names", [k(N)]),
    Res = measure(Adapters, Rounds, fun(A) -> N =< max_names(A) end,
                  fun(A) ->
                          A:start([node()]),
                          Names = [NameFun(I) || I <- lists:seq(1, N)],
                          Pids = spawn_idle(N),
                          Pairs = lists:zip(Names, Pids),
                          Treg = usec(fun() -> [yes = A:register_name(Nm, P) || {Nm, P} <- Pairs] end),
                          T = list_to_tuple(Names),
                          R1 = lookup_ns(A, T, 1, Lookups),
                          R2 = lookup_ns(A, T, 2, Lookups),
                          Tun = usec(fun() -> [A:unregister_name(Nm) || Nm <- Names] end),
                          kill_all(Pids),
                          A:stop(),
                          #{reg => N * 1.0e6 / Treg, w1 => R1, w2 => R2,
                            unreg => N * 1.0e6 / Tun}
                  end),
    [row(Label, metric_name(M), unit(M), better(M), V) || {M, V} <- Res].

metric_name(reg) -> "register, one caller";
metric_name(w1) -> "whereis_name, 1 reader";
metric_name(w2) -> "whereis_name, 2 readers (each)";
metric_name(unreg) -> "unregister, one caller".
unit(reg) -> "ops/s"; unit(unreg) -> "ops/s"; unit(_) -> "ns/op".
better(reg) -> higher; better(unreg) -> higher; better(_) -> lower.

%% M lookups of existing names in each of Readers processes at once; ns per
%% lookup as each reader sees it.
lookup_ns(A, Names, Readers, M) ->
    N = tuple_size(Names),
    Self = self(),
    Ps = [spawn_link(fun() ->
                             receive go -> ok end,
                             T0 = erlang:monotonic_time(nanosecond),
                             lookups(A, Names, N, M),
                             Self ! {done, self(), erlang:monotonic_time(nanosecond) - T0}
                     end) || _ <- lists:seq(1, Readers)],
    [P ! go || P <- Ps],
    Ts = [receive {done, P, T} -> T end || P <- Ps],
    lists:max(Ts) / M.

lookups(_A, _Names, _N, 0) -> ok;
lookups(A, Names, N, I) ->
    _ = A:whereis_name(element(I rem N + 1, Names)),
    lookups(A, Names, N, I - 1).

%% ---- 12. bulk operations (regent only: the peers have none) ------------------

%% One register_many and one unregister_many of N names: on one node, and
%% from a follower of three.
bulk(Adapters, Rounds, #{bulk := N}) ->
    One = measure(Adapters, Rounds, fun regent_only/1,
                  fun(A) ->
                          A:start([node()]),
                          try bulk_round(N) after A:stop() end
                  end),
    Three = measure(Adapters, Rounds, fun regent_only/1,
                    fun(A) ->
                            with_cluster(A, 3, fun(Nodes) ->
                                erpc:call(follower(A, Nodes), ?MODULE, bulk_round, [N], infinity)
                            end)
                    end),
    [row(fmt("12. ~s, ~s names in one call", [Where, k(N)]), What, "ms", lower, V)
     || {Where, Res} <- [{"one node", One}, {"3 nodes, on a follower", Three}],
        {M, V} <- Res,
        What <- [case M of reg -> "register_many"; unreg -> "unregister_many" end]].

%% On the caller's node: ms for one register_many and one unregister_many.
bulk_round(N) ->
    Owner = spawn(fun idle/0),
    Names = [{bulk, I} || I <- lists:seq(1, N)],
    Treg = usec(fun() -> N = length([yes || yes <- regent:register_many(bench_reg, Owner, Names)]) end),
    Tun = usec(fun() -> ok = regent:unregister_many(bench_reg, Names) end),
    exit(Owner, kill),
    #{reg => Treg / 1000, unreg => Tun / 1000}.

%% ---- 2. three nodes, one caller on a follower ---------------------------------

one_caller_on_follower(Adapters, Rounds, #{follower := N}) ->
    Res = measure(Adapters, Rounds, fun cluster_only/1,
                  fun(A) ->
                          with_cluster(A, 3, fun(Nodes) ->
                              Caller = follower(A, Nodes),
                              Lat = erpc:call(Caller, ?MODULE, register_timed, [A, N], infinity),
                              Sorted = lists:sort(Lat),
                              #{rate => N * 1.0e6 / lists:sum(Lat),
                                p50 => pct(Sorted, 50), p99 => pct(Sorted, 99)}
                          end)
                  end),
    [row(fmt("2. 3 nodes, one caller on a follower, ~s names", [k(N)]), M1, U, B, V)
     || {M, V} <- Res,
        {M1, U, B} <- [case M of
                          rate -> {"register", "ops/s", higher};
                          p50 -> {"latency p50", "µs", lower};
                          p99 -> {"latency p99", "µs", lower}
                      end]].

%% On the caller's node: registers N names one after the other; µs each.
register_timed(A, N) ->
    [begin
         P = spawn(fun idle/0),
         T0 = erlang:monotonic_time(microsecond),
         yes = A:register_name({f, I}, P),
         erlang:monotonic_time(microsecond) - T0
     end || I <- lists:seq(1, N)].

%% ---- 3. three nodes, 100 callers ------------------------------------------------

hundred_callers(Adapters, Rounds, #{callers := Callers} = Sizes) ->
    Res = measure(Adapters, Rounds, fun cluster_only/1,
                  fun(A) ->
                          %% global takes seconds per thousand: fewer names.
                          N = case A of
                                  bench_global -> maps:get(caller_names_global, Sizes);
                                  _ -> maps:get(caller_names, Sizes)
                              end,
                          with_cluster(A, 3, fun(Nodes) ->
                              #{rate => N * 1.0e6 / callers(A, Nodes, Callers, N)}
                          end)
                  end),
    [row(fmt("3. 3 nodes, ~p concurrent callers", [Callers]), "register (total)", "ops/s", higher, V)
     || {_, V} <- Res].

%% Callers spread over Nodes register N names in all; µs for all of them.
callers(A, Nodes, Callers, N) ->
    Per = N div Callers,
    Self = self(),
    Jobs = [{lists:nth(C rem length(Nodes) + 1, Nodes), C} || C <- lists:seq(1, Callers)],
    T0 = erlang:monotonic_time(microsecond),
    [spawn_link(fun() ->
                        ok = erpc:call(Node, ?MODULE, register_all,
                                       [A, [{{c, C, I}, none} || I <- lists:seq(1, Per)]], infinity),
                        Self ! done
                end) || {Node, C} <- Jobs],
    [receive done -> ok end || _ <- Jobs],
    erlang:monotonic_time(microsecond) - T0.

%% On a node: registers the names for fresh idle processes (none) or Pids.
register_all(A, Pairs) ->
    [yes = A:register_name(Name, case P of none -> spawn(fun idle/0); _ -> P end)
     || {Name, P} <- Pairs],
    ok.

%% ---- 4. convergence -------------------------------------------------------------

convergence(Adapters, Rounds, #{convergence := N}) ->
    Res = measure(Adapters, Rounds, fun cluster_only/1,
                  fun(A) ->
                          with_cluster(A, 3, fun([NA, _, NC]) ->
                              Lat = lists:sort([converge_once(A, NA, NC, I) || I <- lists:seq(1, N)]),
                              #{p50 => pct(Lat, 50), p99 => pct(Lat, 99)}
                          end)
                  end),
    [row("4. convergence: yes on A until C sees it", M1, "µs", lower, V)
     || {M, V} <- Res, M1 <- [case M of p50 -> "p50"; p99 -> "p99" end]].

%% A watcher on C spins on whereis; the registration on A notes the OS time
%% of its yes; both clocks are this machine's.
converge_once(A, NA, NC, I) ->
    Name = {conv, I},
    Self = self(),
    W = erlang:spawn(NC, ?MODULE, watcher, [A, Name, Self]),
    receive {watching, W} -> ok end,
    P = erlang:spawn(NA, ?MODULE, idle, []),
    yes = erpc:call(NA, A, register_name, [Name, P]),
    Tyes = receive {yes_at, _} -> 0 after 0 -> os:system_time(microsecond) end,
    receive {seen, W, Tseen} -> max(0, Tseen - Tyes) end.

watcher(A, Name, To) ->
    To ! {watching, self()},
    spin(A, Name, To).

spin(A, Name, To) ->
    case A:whereis_name(Name) of
        undefined -> spin(A, Name, To);
        _ -> To ! {seen, self(), os:system_time(microsecond)}
    end.

%% ---- 5. race ------------------------------------------------------------------------

race(Adapters, Rounds, #{race := N}) ->
    Res = measure(Adapters, Rounds, fun cluster_only/1,
                  fun(A) ->
                          with_cluster(A, 3, fun([NA, NB, NC]) ->
                              Self = self(),
                              T0 = erlang:monotonic_time(microsecond),
                              [spawn_link(fun() ->
                                                  Self ! {answers, Nd,
                                                          erpc:call(Nd, ?MODULE, race_register, [A, N, x], infinity)}
                                          end) || Nd <- [NA, NB]],
                              [As, Bs] = [receive {answers, Nd, R} -> R end || Nd <- [NA, NB]],
                              Double = length([I || {I, yes} <- As, lists:member({I, yes}, Bs)]),
                              settle(A, [NA, NB, NC], N),
                              T1 = erlang:monotonic_time(microsecond),
                              #{double => Double, settle => (T1 - T0) / 1000}
                          end)
                  end),
    [row(fmt("5. race: 2 nodes register the same ~s names", [thousands(N)]), M1, U, lower, V)
     || {M, V} <- Res,
        {M1, U} <- [case M of double -> {"double yes", "names"}; settle -> {"settled after", "ms"} end]].

race_register(A, N, _) ->
    [{I, A:register_name({race, I}, spawn(fun idle/0))} || I <- lists:seq(1, N)].

%% Every node names the same live owner for every name.
settle(A, Nodes, N) ->
    wait(fun() ->
                 Views = [erpc:call(Nd, fun() -> [A:whereis_name({race, I}) || I <- lists:seq(1, N)] end)
                          || Nd <- Nodes],
                 length(lists:usort(Views)) =:= 1 andalso
                     not lists:member(undefined, hd(Views))
         end).

%% ---- 6. cleanup -----------------------------------------------------------------------

cleanup(Adapters, Rounds, #{cleanup := N}) ->
    Res = measure(Adapters, Rounds, fun cluster_only/1,
                  fun(A) ->
                          Deaths = with_cluster(A, 3, fun([NA, _, NC]) ->
                              Pids = erpc:call(NA, ?MODULE, spawn_idle, [N]),
                              load(A, NA, [{{d, I}, P} || {I, P} <- lists:zip(lists:seq(1, N), Pids)]),
                              wait(fun() -> erpc:call(NC, A, count, []) >= N end),
                              T0 = erlang:monotonic_time(microsecond),
                              erpc:call(NA, ?MODULE, kill_all, [Pids]),
                              ok = erpc:call(NC, ?MODULE, count_until, [A, 0, 120000], infinity),
                              (erlang:monotonic_time(microsecond) - T0) / 1000
                          end),
                          Down = with_cluster(A, 3, fun([NA, NB, _]) ->
                              Pids = erpc:call(NB, ?MODULE, spawn_idle, [N]),
                              load(A, NB, [{{d, I}, P} || {I, P} <- lists:zip(lists:seq(1, N), Pids)]),
                              wait(fun() -> erpc:call(NA, A, count, []) >= N end),
                              erlang:monitor_node(NB, true),
                              T0 = erlang:monotonic_time(microsecond),
                              erpc:cast(NB, erlang, halt, []),
                              ok = erpc:call(NA, ?MODULE, count_until, [A, 0, 120000], infinity),
                              (erlang:monotonic_time(microsecond) - T0) / 1000
                          end),
                          #{deaths => Deaths, down => Down}
                  end),
    [row(fmt("6. cleanup (~s names)", [k(N)]), M1, "ms", lower, V)
     || {M, V} <- Res,
        M1 <- [case M of deaths -> fmt("~s deaths on A, until C sees none", [k(N)]);
                   down -> "node B halts, until A sees none" end]].

%% Registers Pairs on Node with 100 registrar processes (loading, not
%% measured). The registrars stay alive until unload/1: for registries that
%% only register the caller (Elixir's Registry) they own the names.
load(A, Node, Pairs) ->
    Chunks = chunk(Pairs, max(1, length(Pairs) div 100)),
    Self = self(),
    Registrars = [erlang:spawn(Node, ?MODULE, registrar, [A, C, Self]) || C <- Chunks],
    [receive {loaded, R} -> ok end || R <- Registrars],
    Registrars.

registrar(A, Pairs, To) ->
    ok = register_all(A, Pairs),
    To ! {loaded, self()},
    idle().

unload(Registrars) ->
    [exit(R, kill) || R <- Registrars],
    ok.

count_until(A, Target, Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    count_until_(A, Target, Deadline).

count_until_(A, Target, Deadline) ->
    case A:count() =< Target of
        true -> ok;
        false ->
            erlang:monotonic_time(millisecond) > Deadline andalso error(timeout),
            erlang:yield(),
            count_until_(A, Target, Deadline)
    end.

%% ---- 7. failover -----------------------------------------------------------------------

failover(Adapters, Rounds, _Sizes) ->
    Res = measure(Adapters, Rounds, fun cluster_only/1,
                  fun(A) ->
                          with_cluster(A, 3, fun(Nodes) ->
                              Victim = leader_node(A, Nodes),
                              [Survivor | _] = Nodes -- [Victim],
                              erlang:monitor_node(Victim, true),
                              T0 = erlang:monotonic_time(microsecond),
                              erpc:cast(Victim, erlang, halt, []),
                              receive {nodedown, Victim} -> ok end,
                              wait(fun() ->
                                           P = erlang:spawn(Survivor, ?MODULE, idle, []),
                                           erpc:call(Survivor, A, register_name,
                                                     [{after_failover, erlang:unique_integer()}, P]) =:= yes
                                   end),
                              #{failover => (erlang:monotonic_time(microsecond) - T0) / 1000}
                          end)
                  end),
    [row("7. the leader's node halts, until a registration succeeds", "failover", "ms", lower, V)
     || {_, V} <- Res].

%% ---- 8. memory --------------------------------------------------------------------------

memory(Adapters, Rounds, #{memory := NAll, memory_regent := NRegent, late_join := NJoin}) ->
    Per = [{N, measure(Adapters, 1, fun(A) -> Applies(A) andalso N =< max_names(A) end,
                       fun(A) -> #{bytes => bytes_per_name(A, N)} end)}
           || {N, Applies} <- [{NAll, fun(_) -> true end}, {NRegent, fun regent_only/1}]],
    Join = measure(Adapters, max(1, Rounds div 3), fun regent_only/1,
                   fun(A) -> #{join => late_join_ms(A, NJoin)} end),
    [row("8. memory per name per node", fmt("~s names", [k(N)]), "B/name", lower, V)
     || {N, Res} <- Per, {_, V} <- Res]
        ++ [row(fmt("8. a late node joins a cluster holding ~s names", [k(NJoin)]),
                "until ready, all names", "ms", lower, V)
            || {_, V} <- Join].

%% ETS plus the daemon's RSS (regent) on a node that registered nothing
%% itself, per name.
bytes_per_name(A, N) ->
    Nodes = case A:scope() of local -> [node()]; cluster -> mesh(peers(3)) end,
    try
        start_on(A, Nodes),
        Obs = lists:last(Nodes),
        E0 = erpc:call(Obs, ?MODULE, ets_bytes, []),
        R0 = erpc:call(Obs, ?MODULE, rss_kb, []),
        Loader = hd(Nodes),
        Pids = erpc:call(Loader, ?MODULE, spawn_idle, [N]),
        Rs = load(A, Loader, [{{m, I}, P} || {I, P} <- lists:zip(lists:seq(1, N), Pids)]),
        wait(fun() -> erpc:call(Obs, A, count, []) >= N end),
        E1 = erpc:call(Obs, ?MODULE, ets_bytes, []),
        R1 = erpc:call(Obs, ?MODULE, rss_kb, []),
        unload(Rs),
        erpc:call(Loader, ?MODULE, kill_all, [Pids]),
        (E1 - E0 + (R1 - R0) * 1024) / N
    after
        stop_on(A, Nodes)
    end.

ets_bytes() ->
    erlang:memory(ets).

%% The daemon's resident memory (regent), 0 for registries without one.
rss_kb() ->
    case daemon_os_pid() of
        undefined -> 0;
        OsPid ->
            {ok, Status} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/status"),
            [Line] = [L || L <- binary:split(Status, <<"\n">>, [global]),
                           binary:match(L, <<"VmRSS:">>) =/= nomatch],
            [_, Kb | _] = string:lexemes(binary_to_list(Line), " \t"),
            list_to_integer(Kb)
    end.

daemon_os_pid() ->
    case whereis(bench_reg) of
        undefined -> undefined;
        _ -> maps:get(os_pid, maps:get(daemon, regent:status(bench_reg)))
    end.

late_join_ms(A, N) ->
    [NA, NB, NC] = Nodes = mesh(peers(3)),
    try
        start_on(A, [NA, NB]),
        Pids = erpc:call(NA, ?MODULE, spawn_idle, [N]),
        load(A, NA, [{{j, I}, P} || {I, P} <- lists:zip(lists:seq(1, N), Pids)]),
        wait(fun() -> erpc:call(NB, A, count, []) >= N end),
        T0 = erlang:monotonic_time(microsecond),
        ok = erpc:call(NC, bench_regent, start_nowait, []),
        wait(fun() -> erpc:call(NC, A, count, []) >= N end, 600000),
        (erlang:monotonic_time(microsecond) - T0) / 1000
    after
        stop_on(A, Nodes)
    end.

%% ---- 9. the engine alone -------------------------------------------------------------

%% regentd driven through its port by this process, without a member:
%% 200 OPS frames of 1,000 registrations (full_sizes/0) sent at once, timed
%% until the last reply. The ceiling that the Erlang side must not hide.
engine_alone(_Adapters, Rounds, #{engine_frames := Frames, engine_per_frame := PerFrame}) ->
    Samples = [engine_round(Frames, PerFrame) || _ <- lists:seq(1, Rounds)],
    [row(fmt("9. regentd alone, pipelined batches of ~s", [thousands(PerFrame)]),
         "register", "ops/s", higher, #{"regent" => Samples})].

%% The START frame is the one a member sends, from regent's own option
%% defaults (regent:options/1), with this run's data directory.
engine_round(Frames, PerFrame) ->
    Opts = regent:options([{secret, <<"bench">>}]),
    Exe = maps:get(daemon, Opts),
    Dir = filename:join(["/dev/shm", "regent-bench-" ++ os:getpid(),
                         integer_to_list(erlang:unique_integer([positive]))]),
    ok = filelib:ensure_path(Dir),
    Port = open_port({spawn_executable, Exe}, [{packet, 4}, binary, exit_status, use_stdio]),
    true = port_command(Port, regent_proto:start(#{id => 0, bootstrap => true,
        data_dir => list_to_binary(Dir),
        bind_host => maps:get(bind_host, Opts),
        port_range => maps:get(port_range, Opts),
        secret => maps:get(secret, Opts),
        snapshot => {maps:get(snapshot_threshold, Opts), maps:get(snapshot_trailing, Opts)},
        tls => maps:get(tls, Opts)})),
    until_dump(Port),
    Pid = regent_name:encode_pid(self()),
    Ops = [[regent_proto:op_register(F * PerFrame + I, element(2, regent_name:encode({e, F, I})),
                                     Pid, <<>>, <<>>)
            || I <- lists:seq(1, PerFrame)] || F <- lists:seq(0, Frames - 1)],
    T0 = erlang:monotonic_time(microsecond),
    [true = port_command(Port, regent_proto:ops(O)) || O <- Ops],
    count_replies(Port, Frames * PerFrame),
    T = erlang:monotonic_time(microsecond) - T0,
    port_close(Port),
    file:del_dir_r(Dir),
    Frames * PerFrame * 1.0e6 / T.

%% ---- 14. floors -------------------------------------------------------------------------

%% What one hop of the write path costs on this machine with nothing else
%% done: the floor under any design that crosses it (bench/floor.c for the
%% C side). A write on one node crosses a port round trip and, on tmpfs, a
%% thread-pool hop; a write from a follower two distribution hops, two
%% port round trips and a raft round trip between daemons.
floors(_Adapters, Rounds, #{floor_trips := N}) ->
    Exe = filename:join(filename:dirname(code:which(?MODULE)), "floor"),
    C = fun(Mode) -> fun() -> c_floor(Exe, Mode, N) end end,
    Floors = [{"pipe round trip, two processes", C("pipe")},
              {"loopback TCP round trip, two processes", C("tcp")},
              {"libuv thread-pool hop", C("pool")},
              {"BEAM port round trip (an echo program)", fun() -> port_floor(Exe, N) end},
              {"Erlang distribution round trip, two nodes", fun() -> dist_floor(N) end}],
    [row("14. floors: one hop with nothing done", Metric, "µs", lower,
         #{"regent" => [F() || _ <- lists:seq(1, Rounds)]})
     || {Metric, F} <- Floors].

c_floor(Exe, Mode, N) ->
    Out = os:cmd(Exe ++ " " ++ Mode ++ " " ++ integer_to_list(N)),
    case string:to_float(string:trim(Out)) of
        {Us, _} when is_float(Us) -> Us;
        _ -> error({floor_failed, Mode, Out})
    end.

port_floor(Exe, N) ->
    Port = open_port({spawn_executable, Exe}, [{args, ["echo"]}, {packet, 4}, binary]),
    Frame = <<0:256>>,
    Trip = fun() -> true = port_command(Port, Frame), receive {Port, {data, _}} -> ok end end,
    [Trip() || _ <- lists:seq(1, 1000)],
    T0 = erlang:monotonic_time(nanosecond),
    [Trip() || _ <- lists:seq(1, N)],
    T = erlang:monotonic_time(nanosecond) - T0,
    port_close(Port),
    T / N / 1000.

dist_floor(N) ->
    on_cluster(1, fun(_) -> ok end,
               fun([Node]) ->
                       Echo = spawn(Node, ?MODULE, pong, []),
                       Trip = fun() -> Echo ! {self(), ping}, receive pong -> ok end end,
                       [Trip() || _ <- lists:seq(1, 1000)],
                       T0 = erlang:monotonic_time(nanosecond),
                       [Trip() || _ <- lists:seq(1, N)],
                       (erlang:monotonic_time(nanosecond) - T0) / N / 1000
               end).

pong() ->
    receive {From, ping} -> From ! pong, pong() end.

until_dump(Port) ->
    receive
        {Port, {data, F}} ->
            %% One DUMP frame per table (names, groups, metadata); the
            %% last one says so.
            case regent_proto:decode(F) of
                {dump, true, _Table, _Index, _Rows} -> ok;
                _ -> until_dump(Port)
            end
    after 10000 -> error(no_dump)
    end.

count_replies(_Port, N) when N =< 0 -> ok;
count_replies(Port, N) ->
    receive
        {Port, {data, F}} ->
            case regent_proto:decode(F) of
                {applied, _Index, _, Rs} -> count_replies(Port, N - length(Rs));
                _ -> count_replies(Port, N)
            end
    after 30000 -> error({replies_missing, N})
    end.

%% ---- 10, 11. groups: duplicate keys ----------------------------------------------------

%% 10: one node. Joins one at a time, then lookup and dispatch on groups of
%% each size, all on this node. Every adapter with groups (pg too: its
%% scope works alone).
groups_one_node(Adapters, Rounds, Sizes) ->
    Res = measure(Adapters, Rounds, fun(_) -> true end,
                  fun(A) ->
                          ok = A:group_start([node()]),
                          try groups_round(A, [node()], node(), node(), Sizes)
                          after A:group_stop()
                          end
                  end),
    group_rows("10. groups (duplicate keys), one node", one_node, Res, Sizes).

%% 11: three nodes. Joins on a follower (the last node for registries
%% without a leader); the groups read have their members spread over the
%% three nodes and are read on the first.
groups_three_nodes(Adapters, Rounds, Sizes) ->
    Res = measure(Adapters, Rounds, fun cluster_only/1,
                  fun(A) ->
                          with_groups(A, 3, fun(Nodes) ->
                              groups_round(A, Nodes, group_follower(A, Nodes), hd(Nodes), Sizes)
                          end)
                  end),
    group_rows("11. groups (duplicate keys), 3 nodes", three_nodes, Res, Sizes).

%% One round on a running registry: the join rate on JoinNode, then each
%% group of group_sizes loaded over Nodes and read on ReadNode. Every node
%% must see a group whole before the next step, so that no node is still
%% applying joins (on the same 2 cores) while the reads are timed. The
%% members are killed at the end, before the registry stops.
groups_round(A, Nodes, JoinNode, ReadNode, #{group_join := N, group_sizes := Ss} = Sizes) ->
    {Rate, Joined} = erpc:call(JoinNode, ?MODULE, join_chain, [A, joined, N], infinity),
    await_group(A, Nodes, joined, N),
    Reads = [{S, group_read(A, Nodes, ReadNode, S, Sizes)} || S <- Ss],
    [kill_all(Ps) || Ps <- [Joined | [Ps || {_, {_, Ps}} <- Reads]]],
    maps:from_list([{join, Rate} | [{{Op, S}, Ns} || {S, {PerOp, _}} <- Reads,
                                                     {Op, Ns} <- maps:to_list(PerOp)]]).

%% On the joining node: N members join Group one at a time, each when the
%% one before it has joined and woken it, the last waking this process.
%% That is one caller registering in a loop, except that each member joins
%% itself, as these registries register the caller; the members are
%% spawned before the clock starts, so the rate is of joins plus one
%% message hand-off each. {joins/s, members}.
join_chain(A, Group, N) ->
    in_fresh(fun() ->
                     Chain = lists:foldl(fun(I, [Next | _] = Acc) ->
                                                 [spawn_link(fun() -> chain_member(A, Group, I, Next) end)
                                                  | Acc]
                                         end, [self()], lists:seq(N, 1, -1)),
                     T = usec(fun() -> hd(Chain) ! go, receive go -> ok end end),
                     {N * 1.0e6 / T, lists:droplast(Chain)}
             end).

chain_member(A, Group, I, Next) ->
    receive go -> ok end,
    ok = A:group_join(Group, I),
    Next ! go,
    idle().

%% Members of group {g, S}, spread evenly over Nodes, until every node
%% sees all of them; then lookup and dispatch on ReadNode.
%% {#{Op => ns}, members}.
group_read(A, Nodes, ReadNode, S, Sizes) ->
    Group = {g, S},
    Pids = lists:append([erpc:call(Nd, ?MODULE, join_all, [A, Group, C], infinity)
                         || {Nd, C} <- spread(S, Nodes), C > 0]),
    await_group(A, Nodes, Group, S),
    {erpc:call(ReadNode, ?MODULE, group_reads, [A, Group, read_calls(S, Sizes)], infinity), Pids}.

await_group(A, Nodes, Group, S) ->
    wait(fun() -> lists:all(fun(Nd) -> erpc:call(Nd, A, group_count, [Group]) =:= S end, Nodes) end).

%% S members over Nodes, the first nodes taking one more when it does not
%% divide.
spread(S, Nodes) ->
    K = length(Nodes),
    lists:zip(Nodes, [S div K + min(1, max(0, S rem K - I + 1)) || I <- lists:seq(1, K)]).

%% Reads per group: group_reads, fewer for big groups so that each row
%% reads about group_read_entries entries, at least 10 calls.
read_calls(S, #{group_reads := Calls, group_read_entries := Entries}) ->
    max(10, min(Calls, Entries div S)).

%% On a node: Count members join Group, 100 at a time (loading, not
%% measured; bounded so that thousands of writes are not queued at once).
%% They stay members until killed.
join_all(A, Group, Count) ->
    in_fresh(fun() ->
                     lists:append([join_wave(A, Group, Is) || Is <- chunk(lists:seq(1, Count), 100)])
             end).

join_wave(A, Group, Is) ->
    Self = self(),
    Ps = [spawn_link(fun() -> ok = A:group_join(Group, I), Self ! {joined, self()}, idle() end)
          || I <- Is],
    [receive {joined, P} -> ok end || P <- Ps],
    Ps.

%% On the reading node, in a fresh process so that its heap holds nothing
%% else: Calls lookups, then Calls dispatches with a fun that only counts
%% the entries, so that both time the registry's read path. ns per call.
group_reads(A, Group, Calls) ->
    in_fresh(fun() ->
                     Count = fun(Es) -> length(Es) end,
                     #{lookup => ns_per_call(fun() -> A:group_lookup(Group) end, Calls),
                       dispatch => ns_per_call(fun() -> A:group_dispatch(Group, Count) end, Calls)}
             end).

ns_per_call(F, Calls) ->
    T0 = erlang:monotonic_time(nanosecond),
    repeat(F, Calls),
    (erlang:monotonic_time(nanosecond) - T0) / Calls.

repeat(_F, 0) -> ok;
repeat(F, I) -> _ = F(), repeat(F, I - 1).

%% Rows in a fixed order: the join rate, then lookups, then dispatches by
%% group size.
group_rows(Scen, Where, Res, #{group_join := N, group_sizes := Ss}) ->
    [row(Scen, group_metric(M, Where, N), group_unit(M), group_better(M), V)
     || M <- [join | [{Op, S} || Op <- [lookup, dispatch], S <- Ss]],
        {_, V} <- [lists:keyfind(M, 1, Res)]].

group_metric(join, one_node, N) -> fmt("join, ~s members one at a time", [k(N)]);
group_metric(join, three_nodes, N) -> fmt("join on a follower, ~s members one at a time", [k(N)]);
group_metric({Op, S}, one_node, _) -> fmt("~s, ~s", [Op, members(S)]);
group_metric({Op, S}, three_nodes, _) -> fmt("~s on one node, ~s over 3 nodes", [Op, members(S)]).

members(1) -> "1 member";
members(S) -> k(S) ++ " members".

group_unit(join) -> "ops/s";
group_unit(_) -> "ns/op".
group_better(join) -> higher;
group_better(_) -> lower.

%% ---- nodes ------------------------------------------------------------------------------

peers(N) ->
    Paths = lists:append([["-pa", P] || P <- code:get_path(),
                                        string:find(P, code:lib_dir()) =:= nomatch]),
    %% +P: the memory rows spawn a million owner processes. Warnings (global
    %% disconnecting from a halted node) would only interleave with the output.
    Args = ["+P", "2000000", "-kernel", "logger_level", "error",
            "-setcookie", atom_to_list(erlang:get_cookie()) | Paths],
    %% Started side by side (peer:start/1 does not link them to the starter).
    Self = self(),
    Starters = [spawn(fun() ->
                              Self ! {peer, self(), catch peer:start(#{name => peer:random_name(bench),
                                                                       args => Args})}
                      end) || _ <- lists:seq(1, N)],
    [receive {peer, S, Started} -> {ok, _Peer, Node} = Started, Node end || S <- Starters].

%% Every peer connected to every other and global synchronised before a
%% scenario starts, so that no registry is measured on a half-formed mesh.
mesh(Nodes) ->
    [true = erpc:call(N, net_kernel, connect_node, [M]) || N <- Nodes, M <- Nodes, N =/= M],
    [ok = erpc:call(N, global, sync, [], 60000) || N <- Nodes],
    Nodes.

start_on(A, Nodes) ->
    [ok = erpc:call(Nd, A, start, [Nodes], 60000) || Nd <- Nodes],
    is_regent(A) andalso
        [ok = erpc:call(Nd, bench_regent, await, [length(Nodes)], 60000) || Nd <- Nodes],
    ok.

%% A local registry stops (scenario 8 starts it on this node); peers halt.
stop_on(A, [Node]) when Node =:= node() ->
    A:stop();
stop_on(_A, Nodes) ->
    halt_nodes(Nodes).

halt_nodes(Nodes) ->
    [catch erpc:call(Nd, erlang, halt, [], 5000) || Nd <- Nodes],
    ok.

with_cluster(A, N, Fun) ->
    on_cluster(N, fun(Nodes) -> start_on(A, Nodes) end, Fun).

%% with_cluster/3 for the registry of the groups.
with_groups(A, N, Fun) ->
    on_cluster(N, fun(Nodes) -> group_start_on(A, Nodes) end, Fun).

on_cluster(N, Start, Fun) ->
    Nodes = mesh(peers(N)),
    try
        Start(Nodes),
        Fun(Nodes)
    after
        halt_nodes(Nodes)
    end.

group_start_on(A, Nodes) ->
    [ok = erpc:call(Nd, A, group_start, [Nodes], 60000) || Nd <- Nodes],
    is_regent(A) andalso
        [ok = erpc:call(Nd, bench_regent, group_await, [length(Nodes)], 60000) || Nd <- Nodes],
    ok.

follower(A, Nodes) ->
    case is_regent(A) of
        true ->
            {L, _} = erpc:call(hd(Nodes), regent, get_leader, [bench_reg]),
            hd(Nodes -- [L]);
        false ->
            lists:last(Nodes)
    end.

leader_node(A, Nodes) ->
    case is_regent(A) of
        true ->
            {L, _} = erpc:call(hd(Nodes), regent, get_leader, [bench_reg]),
            L;
        false ->
            hd(Nodes)
    end.

%% A node that is not the group registry's leader (regent), or the last.
group_follower(A, Nodes) ->
    case is_regent(A) of
        true ->
            {L, _} = erpc:call(hd(Nodes), regent, get_leader, [bench_regent:group_registry()]),
            hd(Nodes -- [L]);
        false ->
            lists:last(Nodes)
    end.

%% regent's adapters: TLS on (the default) and off.
is_regent(A) -> A =:= bench_regent orelse A =:= bench_regent_plain.

%% ---- helpers ----------------------------------------------------------------------------

idle() ->
    receive stop -> ok end.

%% F() in a new process, its result returned (its errors raised) here.
%% Processes it links to outlive it: it exits normally.
in_fresh(F) ->
    Self = self(),
    Tag = make_ref(),
    {Pid, Mon} = spawn_monitor(fun() -> Self ! {Tag, F()} end),
    receive
        {'DOWN', Mon, process, Pid, Why} ->
            receive {Tag, Result} -> Result
            after 0 -> error({in_fresh, Why})
            end
    end.

spawn_idle(N) ->
    [spawn(fun idle/0) || _ <- lists:seq(1, N)].

kill_all(Pids) ->
    [exit(P, kill) || P <- Pids],
    ok.

usec(F) ->
    T0 = erlang:monotonic_time(microsecond),
    F(),
    max(1, erlang:monotonic_time(microsecond) - T0).

pct(Sorted, P) ->
    lists:nth(max(1, round(length(Sorted) * P / 100)), Sorted).

chunk([], _) -> [];
chunk(L, N) when length(L) =< N -> [L];
chunk(L, N) -> {H, T} = lists:split(N, L), [H | chunk(T, N)].

wait(F) ->
    wait(F, 300000).

%% Polls F until it returns true; gives up (error) after Ms.
wait(F, Ms) ->
    wait_(F, erlang:monotonic_time(millisecond) + Ms).

wait_(F, Deadline) ->
    case catch F() of
        true -> ok;
        _ ->
            erlang:monotonic_time(millisecond) > Deadline andalso error(wait_timeout),
            timer:sleep(5),
            wait_(F, Deadline)
    end.

%% 10000 -> "10k", 1000000 -> "1M", 50 -> "50".
k(N) when N >= 1000000, N rem 1000000 =:= 0 -> integer_to_list(N div 1000000) ++ "M";
k(N) when N >= 1000, N rem 1000 =:= 0 -> integer_to_list(N div 1000) ++ "k";
k(N) -> integer_to_list(N).

%% 1000 -> "1,000".
thousands(N) when N >= 1000 -> thousands(N div 1000) ++ fmt(",~3..0B", [N rem 1000]);
thousands(N) -> integer_to_list(N).

fmt(F, A) -> lists:flatten(io_lib:format(F, A)).

machine() ->
    Cpu = case file:read_file("/proc/cpuinfo") of
              {ok, B} ->
                  case re:run(B, "model name\\s*:\\s*([^\\n]*)", [{capture, all_but_first, list}]) of
                      {match, [M]} -> M;
                      _ -> "?"
                  end;
              _ -> "?"
          end,
    fmt("machine: ~p cores (~s), ~s, OTP ~s, ~s",
        [erlang:system_info(logical_processors), Cpu,
         string:trim(os:cmd("uname -sr")), erlang:system_info(otp_release),
         string:trim(os:cmd(filename:join(code:priv_dir(regent), "regentd") ++ " --version"))]).

%% ---- output -----------------------------------------------------------------------------

summary([]) -> none;
summary(Samples) ->
    S = lists:sort(Samples),
    {lists:nth((length(S) + 1) div 2, S), hd(S), lists:last(S)}.

cell(none) -> "n/a";
cell({Med, Min, Max}) when Min == Max -> num(Med);
cell({Med, Min, Max}) -> num(Med) ++ " (" ++ num(Min) ++ "–" ++ num(Max) ++ ")".

num(X) when is_integer(X) -> integer_to_list(X);
num(X) when X >= 1000 -> integer_to_list(round(X));
num(X) when X >= 10 -> fmt("~.1f", [X]);
num(X) -> fmt("~.2f", [X]).

%% How many times better regent is than Peer in this row (>1: better).
ratio(Better, Values, Peer) ->
    case {maps:get("regent", Values, none), maps:get(Peer, Values, none)} of
        {{R, _, _}, {P, _, _}} when R > 0, P > 0 ->
            X = case Better of higher -> R / P; lower -> P / R end,
            case X >= 10 of
                true -> integer_to_list(round(X)) ++ "×";
                false -> fmt("~.2f×", [X])
            end;
        _ -> ""
    end.

table(Rows, Adapters) ->
    Labels = [A:label() || A <- Adapters],
    Peers = tl(Labels),
    Header = ["scenario", "metric", "unit" | Labels] ++ ["regent vs " ++ P || P <- Peers],
    Lines = [begin
                 Values = maps:map(fun(_, S) -> summary(S) end, Samples),
                 [Scen, Metric, Unit | [cell(maps:get(L, Values, none)) || L <- Labels]]
                     ++ [ratio(Better, Values, P) || P <- Peers]
             end || {Scen, Metric, Unit, Better, Samples} <- Rows],
    md([Header | Lines]).

md([Header | Lines]) ->
    Row = fun(Cells) -> "| " ++ lists:join(" | ", Cells) ++ " |\n" end,
    lists:flatten([Row(Header), Row(["---" || _ <- Header]) | [Row(L) || L <- Lines]]).

write_results(Dir, Table, Rows, Adapters) ->
    ok = filelib:ensure_path(Dir),
    Date = calendar:system_time_to_rfc3339(erlang:system_time(second)),
    ok = file:write_file(filename:join(Dir, "latest.md"),
                         unicode:characters_to_binary(
                           ["# regent benchmark\n\n", Date, "  \n", machine(), "\n\n",
                            "Medians of the rounds, (min–max) when they differ. ",
                            "\"regent vs X\": how many times better regent is than X in that ",
                            "row (above 1: better, below 1: worse). See bench/README.md for ",
                            "what each row measures.\n\n", Table])),
    chart(Dir, Rows, Adapters).

%% Throughput rows as grouped bars (log scale), if gnuplot is installed.
chart(Dir, Rows, Adapters) ->
    Labels = [A:label() || A <- Adapters],
    Ops = [{Scen ++ ": " ++ Metric, Samples} || {Scen, Metric, "ops/s", _, Samples} <- Rows],
    Dat = [[io_lib:format("\"~ts\"", [short(Name)])
            | [io_lib:format(" ~w", [case summary(maps:get(L, S, [])) of
                                        none -> 0; {M, _, _} -> M end])
               || L <- Labels]] ++ "\n"
           || {Name, S} <- Ops],
    ok = file:write_file(filename:join(Dir, "latest.dat"), unicode:characters_to_binary(Dat)),
    Plot = ["set terminal pngcairo size 1200,720 noenhanced\n",
            "set bmargin 14\nset rmargin 4\n",
            "set output '", Dir, "/latest.png'\n",
            "set title 'regent and its peers: throughput (ops/s, log scale, higher is better)'\n",
            "set style data histograms\nset style histogram clustered gap 1\n",
            "set style fill solid 0.8\nset logscale y\nset yrange [1:*]\n",
            "set xtics rotate by -30 font ',9'\nset key outside top center horizontal\nset grid ytics\n",
            "plot ", lists:join(", ", [io_lib:format("'~s/latest.dat' using ~p:xtic(1) title '~s'",
                                                       [Dir, I + 1, L])
                                       || {I, L} <- lists:zip(lists:seq(1, length(Labels)), Labels)]), "\n"],
    ok = file:write_file(filename:join(Dir, "latest.gp"), unicode:characters_to_binary(Plot)),
    case os:find_executable("gnuplot") of
        false -> io:format("gnuplot not found: no chart~n");
        G -> io:format("~s", [os:cmd(G ++ " " ++ Dir ++ "/latest.gp 2>&1")])
    end.

short(Name) ->
    S = lists:foldl(fun({From, To}, Acc) -> string:replace(Acc, From, To, all) end, Name,
                    [{"one node", "1 node"}, {"concurrent ", ""}, {", one caller", ""},
                     {"one caller on a follower", "1 caller"}, {" (total)", ""},
                     {" (duplicate keys)", ""}]),
    lists:foldl(fun({Re, To}, Acc) -> re:replace(Acc, Re, To, [unicode, {return, list}]) end, S,
                [{"pipelined batches of [0-9,]+", "batches"},
                 {", [0-9kM]+ members one at a time", ""}]).

%% Single-node behaviour of regent, end to end: every test goes through the
%% real member, the real regentd (a port program with a raft log on tmpfs)
%% and back into ETS. Set REGENT_TEST_DAEMON to run it against another
%% build of regentd (CI uses the ASan+UBSan one).
-module(regent_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([gen_server_via/1, gen_statem_via/1, gen_event_via/1,
         supervisor_child_via/1, read_your_writes/1, register_semantics/1,
         metadata_and_queries/1, send_via/1, hundred_deaths/1,
         dead_holder_is_replaced/1, canonical_names/1, canonical_bytes/1,
         equal_maps_equal_keys/1, names_through_the_daemon/1, bad_input/1,
         not_running/1, bad_options/1, registry_bad_input/1, daemon_missing/1, no_atoms_per_name/1, independent_registries/1,
         daemon_kill9_recovers/1, unavailable_times_out/1, port_garbage/1,
         port_oversize_frame/1, raft_port_garbage/1, status_and_leader/1,
         member_crash_resumes/1, big_batches_are_split/1,
         daemon_state_lost_reclaims/1, concurrent_writes_share_entries/1,
         stopping_member_callers/1, memory_given_back/1]).

-define(REG, regent_test_reg).

all() ->
    [{group, via}, {group, semantics}, {group, names}, {group, failures}].

groups() ->
    [{via, [], [gen_server_via, gen_statem_via, gen_event_via,
                supervisor_child_via]},
     {semantics, [], [read_your_writes, register_semantics,
                      metadata_and_queries, send_via, hundred_deaths,
                      dead_holder_is_replaced, independent_registries,
                      status_and_leader, no_atoms_per_name,
                      concurrent_writes_share_entries]},
     {names, [], [canonical_names, canonical_bytes, equal_maps_equal_keys,
                  names_through_the_daemon]},
     {failures, [], [bad_input, bad_options, registry_bad_input, daemon_missing, not_running, stopping_member_callers,
                     memory_given_back,
                     daemon_kill9_recovers,
                     unavailable_times_out, member_crash_resumes,
                     daemon_state_lost_reclaims,
                     big_batches_are_split, port_garbage,
                     port_oversize_frame, raft_port_garbage]}].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(crypto),
    Daemon = regent_test_lib:daemon(),
    true = filelib:is_regular(Daemon),
    [{daemon, Daemon} | Config].

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    {ok, Pid} = start_reg(?REG, Config),
    [{member, Pid} | Config].

end_per_testcase(_Case, _Config) ->
    %% Some cases restart the member: stop the one running now.
    case whereis(?REG) of
        undefined -> ok;
        Pid -> stop_reg(Pid)
    end.

start_reg(Reg, Config) ->
    start_reg(Reg, Config, []).

start_reg(Reg, Config, Extra) ->
    {ok, Pid} = regent:start_link(Reg, [{daemon, ?config(daemon, Config)} | Extra]),
    unlink(Pid),
    ok = regent:await_ready(Reg, 10000),
    {ok, Pid}.

stop_reg(Pid) ->
    case is_process_alive(Pid) of
        true -> gen_server:stop(Pid);
        false -> ok
    end.

%% Polls Fun until it returns true, at most Ms milliseconds.
wait_until(Fun, Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    wait_until_(Fun, Deadline).

wait_until_(Fun, Deadline) ->
    case Fun() of
        true -> ok;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> error(timeout_waiting);
                false -> timer:sleep(5), wait_until_(Fun, Deadline)
            end
    end.

idle() ->
    spawn(fun() -> receive stop -> ok end end).

via(Name) -> {via, regent, {?REG, Name}}.

%% ---- via ----------------------------------------------------------------

gen_server_via(_Config) ->
    {ok, Pid} = gen_server:start_link(via(<<"server">>), regent_echo_server, 1, []),
    pong = gen_server:call(via(<<"server">>), ping),
    ok = gen_server:cast(via(<<"server">>), {set, 2}),
    2 = gen_server:call(via(<<"server">>), get),
    ?assertEqual({error, {already_started, Pid}},
                 gen_server:start(via(<<"server">>), regent_echo_server, 1, [])),
    unlink(Pid),
    ok = gen_server:stop(Pid),
    wait_until(fun() -> regent:whereis_name({?REG, <<"server">>}) =:= undefined end, 2000).

gen_statem_via(_Config) ->
    {ok, Pid} = gen_statem:start_link(via({statem, 1}), regent_echo_statem, [], []),
    {off, 0} = gen_statem:call(via({statem, 1}), state),
    ok = gen_statem:cast(via({statem, 1}), flip),
    {on, 1} = gen_statem:call(via({statem, 1}), state),
    Pid = regent:whereis_name({?REG, {statem, 1}}).

gen_event_via(_Config) ->
    {ok, Pid} = gen_event:start_link(via(events)),
    ok = gen_event:add_handler(via(events), regent_echo_handler, []),
    ok = gen_event:notify(via(events), hello),
    ok = gen_event:sync_notify(via(events), world),
    [hello, world] = gen_event:call(via(events), regent_echo_handler, seen),
    Pid = regent:whereis_name({?REG, events}).

supervisor_child_via(_Config) ->
    {ok, Sup} = supervisor:start_link(regent_echo_sup, {?REG, "child"}),
    First = regent:whereis_name({?REG, "child"}),
    true = is_pid(First),
    pong = gen_server:call(via("child"), ping),
    exit(First, kill),
    %% The supervisor restarts the child, which registers the name again
    %% (possibly before the old registration is cleaned: replace-if-dead).
    wait_until(fun() ->
                       case regent:whereis_name({?REG, "child"}) of
                           undefined -> false;
                           P -> P =/= First andalso is_process_alive(P)
                       end
               end, 5000),
    pong = gen_server:call(via("child"), ping),
    unlink(Sup),
    exit(Sup, shutdown).

%% ---- semantics ----------------------------------------------------------

read_your_writes(_Config) ->
    Pid = idle(),
    [begin
         yes = regent:register_name({?REG, {ryw, I}}, Pid),
         Pid = regent:whereis_name({?REG, {ryw, I}}),
         ok = regent:unregister_name({?REG, {ryw, I}}),
         undefined = regent:whereis_name({?REG, {ryw, I}})
     end || I <- lists:seq(1, 200)],
    0 = regent:count(?REG).

register_semantics(_Config) ->
    A = idle(),
    B = idle(),
    yes = regent:register_name({?REG, name}, A),
    yes = regent:register_name({?REG, name}, A),  % same pid again
    no = regent:register_name({?REG, name}, B),   % held by a live pid
    A = regent:whereis_name({?REG, name}),
    A = regent:whereis_name_consistent({?REG, name}),
    undefined = regent:whereis_name_consistent({?REG, other}),
    ok = regent:unregister_name({?REG, name}),
    ok = regent:unregister_name({?REG, name}),    % idempotent
    yes = regent:register_name({?REG, name}, B),
    B = regent:whereis_name({?REG, name}),
    %% Any pid may be registered, not only the caller.
    true = B =/= self().

metadata_and_queries(_Config) ->
    A = idle(),
    yes = regent:register_name({?REG, {svc, 1}}, A, #{role => primary}),
    yes = regent:register_name({?REG, {svc, 2}}, A),
    {ok, #{role := primary}} = regent:get_metadata({?REG, {svc, 1}}),
    {ok, undefined} = regent:get_metadata({?REG, {svc, 2}}),
    {error, not_registered} = regent:get_metadata({?REG, {svc, 3}}),
    ok = regent:set_metadata({?REG, {svc, 2}}, [tag]),
    {ok, [tag]} = regent:get_metadata({?REG, {svc, 2}}),
    {error, not_registered} = regent:set_metadata({?REG, {svc, 3}}, x),
    %% Registering again with the same pid and no metadata keeps it.
    yes = regent:register_name({?REG, {svc, 1}}, A),
    {ok, #{role := primary}} = regent:get_metadata({?REG, {svc, 1}}),
    [{A, #{role := primary}}] = regent:lookup(?REG, {svc, 1}),
    [] = regent:lookup(?REG, {svc, 3}),
    2 = regent:count(?REG),
    Names = lists:sort(regent:select(?REG, [{{{svc, '$1'}, '_', '_'}, [], ['$1']}])),
    [1, 2] = Names.

send_via(_Config) ->
    Self = self(),
    yes = regent:register_name({?REG, me}, Self),
    Self = regent:send({?REG, me}, hello),
    receive hello -> ok after 1000 -> error(no_message) end,
    {'EXIT', {badarg, {{?REG, nobody}, msg}}} = catch regent:send({?REG, nobody}, msg),
    ok.

hundred_deaths(_Config) ->
    Pids = [idle() || _ <- lists:seq(1, 100)],
    [yes = regent:register_name({?REG, {dies, I}}, P)
     || {I, P} <- lists:zip(lists:seq(1, 100), Pids)],
    100 = regent:count(?REG),
    [exit(P, kill) || P <- Pids],
    wait_until(fun() -> regent:count(?REG) =:= 0 end, 5000),
    [undefined = regent:whereis_name({?REG, {dies, I}}) || I <- lists:seq(1, 100)],
    New = idle(),
    yes = regent:register_name({?REG, {dies, 7}}, New),
    New = regent:whereis_name({?REG, {dies, 7}}).

dead_holder_is_replaced(_Config) ->
    [begin
         Old = idle(),
         yes = regent:register_name({?REG, {seat, I}}, Old),
         exit(Old, kill),
         wait_until(fun() -> not is_process_alive(Old) end, 1000),
         %% Whether or not the cleanup has been applied yet: a dead holder
         %% never makes a registration answer `no'.
         New = idle(),
         yes = regent:register_name({?REG, {seat, I}}, New),
         New = regent:whereis_name({?REG, {seat, I}})
     end || I <- lists:seq(1, 20)],
    ok.

independent_registries(Config) ->
    {ok, Other} = start_reg(regent_test_other, Config),
    A = idle(),
    B = idle(),
    yes = regent:register_name({?REG, shared}, A),
    yes = regent:register_name({regent_test_other, shared}, B),
    A = regent:whereis_name({?REG, shared}),
    B = regent:whereis_name({regent_test_other, shared}),
    ok = regent:unregister_name({?REG, shared}),
    B = regent:whereis_name({regent_test_other, shared}),
    stop_reg(Other).

status_and_leader(_Config) ->
    St = regent:status(?REG),
    leader = maps:get(role, St),
    true = maps:get(ready, St),
    Me = {node(), ?REG},
    Me = regent:get_leader(?REG),
    [{Me, voter}] = regent:get_members(?REG),
    true = regent:get_epoch(?REG) >= 1,
    true = regent:ready(?REG),
    Applied = maps:get(applied_index, St),
    yes = regent:register_name({?REG, bump}, idle()),
    true = maps:get(applied_index, regent:status(?REG)) > Applied.

%% Requests that wait together travel together: 400 callers at once take
%% far fewer than 400 log entries.
concurrent_writes_share_entries(_Config) ->
    Before = maps:get(applied_index, regent:status(?REG)),
    Self = self(),
    P = idle(),
    [spawn_link(fun() ->
                        yes = regent:register_name({?REG, {batch, I}}, P),
                        Self ! done
                end) || I <- lists:seq(1, 400)],
    [receive done -> ok after 10000 -> error(stuck) end || _ <- lists:seq(1, 400)],
    Entries = maps:get(applied_index, regent:status(?REG)) - Before,
    ct:log("400 registrations in ~p log entries", [Entries]),
    ?assert(Entries < 200).

no_atoms_per_name(_Config) ->
    P = idle(),
    Before = erlang:system_info(atom_count),
    [yes = regent:register_name({?REG, {<<"user">>, integer_to_binary(I)}}, P)
     || I <- lists:seq(1, 1000)],
    1000 = length(regent:select(?REG, [{{'$1', '_', '_'}, [], ['$1']}])),
    ?assert(erlang:system_info(atom_count) - Before < 10).

%% ---- names --------------------------------------------------------------

sample_names() ->
    Pid = self(),
    [foo, 'with space', 'ünïcödé', '', true,
     <<>>, <<"bin">>, <<1:3>>, <<0:200>>,
     0, 255, 256, -1, 2147483647, 2147483648, -2147483648, -2147483649,
     1 bsl 100, -(1 bsl 100),
     1.5, -0.5, 0.0, 1.0e300,
     {}, {a}, {user, 42}, {a, {b, {c, [d]}}}, erlang:make_tuple(300, x),
     [], [1, 2, 3], "string", [a | b], [[[]]],
     #{}, #{a => 1, b => 2}, maps:from_list([{I, I} || I <- lists:seq(1, 40)]),
     #{{k, 1} => [v], <<"k">> => #{nested => true}},
     Pid, make_ref(), hd(erlang:ports()), {Pid, make_ref()}].

canonical_names(_Config) ->
    [begin
         {ok, Bin} = regent_name:encode(N),
         ?assertEqual(N, regent_name:decode(Bin)),
         ?assert(N =:= regent_name:decode(Bin))
     end || N <- sample_names()],
    %% -0.0 and 0.0 give the same key (they are =:= before OTP 27).
    {ok, Z} = regent_name:encode(0.0),
    {ok, Z} = regent_name:encode(-0.0),
    {error, {unsupported_term, _}} = regent_name:encode(fun() -> ok end),
    {error, name_too_large} = regent_name:encode(binary:copy(<<"x">>, 2000)),
    {error, name_too_deep} = regent_name:encode(lists:foldl(fun(_, A) -> {A} end, x,
                                                            lists:seq(1, 100))).

%% Fixed bytes, independent of this release's term_to_binary defaults (OTP
%% 25 writes atoms as ATOM_EXT and byte lists as STRING_EXT; we never do).
canonical_bytes(_Config) ->
    Cases = [{foo, <<119, 3, "foo">>},
             {{user, 42}, <<104, 2, 119, 4, "user", 97, 42>>},
             {<<"ab">>, <<109, 0, 0, 0, 2, "ab">>},
             {"ab", <<108, 0, 0, 0, 2, 97, $a, 97, $b, 106>>},
             {[a | b], <<108, 0, 0, 0, 1, 119, 1, "a", 119, 1, "b">>},
             {-1, <<98, 255, 255, 255, 255>>},
             {2147483648, <<110, 4, 0, 0, 0, 0, 128>>},
             {1.5, <<70, 1.5:64/float>>},
             {#{b => 1, a => 2}, <<116, 0, 0, 0, 2, 119, 1, "a", 97, 2,
                                   119, 1, "b", 97, 1>>},
             {<<5:3>>, <<77, 0, 0, 0, 1, 3, 2#10100000>>}],
    [?assertEqual({ok, Bytes}, regent_name:encode(Name)) || {Name, Bytes} <- Cases],
    ok.

%% Maps that are =:= but built in different orders (small and hash maps).
equal_maps_equal_keys(_Config) ->
    KVs = [{{k, I}, I} || I <- lists:seq(1, 100)],
    M1 = maps:from_list(KVs),
    M2 = maps:from_list(lists:reverse(KVs)),
    M3 = lists:foldl(fun({K, V}, M) -> M#{K => V} end, #{}, lists:reverse(KVs)),
    true = (M1 =:= M2) andalso (M2 =:= M3),
    {ok, B} = regent_name:encode(M1),
    {ok, B} = regent_name:encode(M2),
    {ok, B} = regent_name:encode(M3),
    {ok, S} = regent_name:encode(#{a => 1, b => 2}),
    {ok, S} = regent_name:encode(#{b => 2, a => 1}).

%% Every sample name is accepted by regentd's checker and found again.
names_through_the_daemon(_Config) ->
    P = idle(),
    Names = sample_names(),
    [yes = regent:register_name({?REG, N}, P) || N <- Names],
    [P = regent:whereis_name({?REG, N}) || N <- Names],
    Count = length(lists:usort([element(2, regent_name:encode(N)) || N <- Names])),
    Count = regent:count(?REG).

%% ---- failures -----------------------------------------------------------

bad_input(_Config) ->
    P = idle(),
    yes = regent:register_name({?REG, kept}, P),
    {'EXIT', {{badarg, {not_a_pid, not_a_pid}}, _}} =
        catch regent:register_name({?REG, n}, not_a_pid),
    {'EXIT', {{badarg, name_too_large}, _}} =
        catch regent:register_name({?REG, binary:copy(<<"x">>, 5000)}, P),
    {'EXIT', {{badarg, name_too_large}, _}} =
        catch regent:register_name({?REG, lists:duplicate(600, 1000)}, P),
    {'EXIT', {{badarg, metadata_too_large}, _}} =
        catch regent:register_name({?REG, n}, P, binary:copy(<<"m">>, 70000)),
    {'EXIT', {{badarg, {unsupported_name_term, _}}, _}} =
        catch regent:register_name({?REG, fun() -> ok end}, P),
    {'EXIT', {{badarg, {not_a_via_name, _}}, _}} = catch regent:whereis_name(oops),
    %% A pid of a node we are not connected to could never be monitored.
    Ghost = ghost_pid('ghost@nowhere'),
    {'EXIT', {{badarg, {pid_of_unconnected_node, Ghost}}, _}} =
        catch regent:register_name({?REG, ghost}, Ghost),
    {'EXIT', {{badarg, metadata_too_large}, _}} =
        catch regent:set_metadata({?REG, kept}, binary:copy(<<"m">>, 70000)),
    %% Nothing changed.
    1 = regent:count(?REG),
    P = regent:whereis_name({?REG, kept}),
    {ok, undefined} = regent:get_metadata({?REG, kept}).

%% Options are checked before anything starts, each with the key at fault.
bad_options(_Config) ->
    Bad = [{voters, 0}, {voters, 8}, {snapshot_threshold, 15},
           {snapshot_threshold, 1 bsl 24 + 1}, {snapshot_threshold, "8192"},
           {snapshot_trailing, -1}, {snapshot_trailing, 1 bsl 24 + 1},
           {bind_host, "localhost"}, {tls, true}, {tls, [{certfile, "c.pem"}]},
           {tls, [{certfile, "c.pem"}, {keyfile, "k.pem"}]}, % verify_peer needs a CA
           {tls, [{certfile, "c.pem"}, {keyfile, "k.pem"}, {verify, maybe}]},
           {tls, [{certfile, "c.pem"}, {keyfile, "k.pem"}, {bogus, 1}]},
           {tls, [{certfile, 42}, {keyfile, "k.pem"}, {verify, verify_none}]},
           %% Registry's options
           {keys, uniq}, {listeners, [<<"name">>]}, {listeners, not_a_list},
           {meta, [{"string key", 1}]}, {meta, [not_a_pair]}, {meta, #{a => 1}},
           {partitions, 0}, {compressed, yes}, {register_timeout, 0},
           {conflict, {resolve, fun(_, _) -> none end}}, {port_range, {2, 1}},
           {max_pending_writes, 0}, {max_pending_writes, infinity}, {reconnect, maybe}],
    [begin
         {'EXIT', {{badarg, {K, _}}, _}} = catch regent:start_link(bad_opts, [{K, V}])
     end || {K, V} <- Bad],
    %% An unknown option is named with its value, in either form.
    {'EXIT', {{badarg, {unknown_option, {bogus, 1}}}, _}} =
        catch regent:start_link(bad_opts, [{bogus, 1}]),
    {'EXIT', {{badarg, {unknown_option, {bogus, 1}}}, _}} =
        catch regent:start_link(bad_opts, #{bogus => 1}),
    {'EXIT', {{badarg, {not_an_option, nope}}, _}} =
        catch regent:start_link(bad_opts, [nope]),
    {'EXIT', {{badarg, {name, missing}}, _}} = catch regent:start_link([{keys, unique}]),
    undefined = whereis(bad_opts),
    %% The raft port's default address is the distribution's: an IPv4
    %% address of this host (what its host name resolves to here, or
    %% 127.0.0.1), the same given explicitly or not.
    {ok, Ifs} = inet:getifaddrs(),
    #{bind_host := Addr} = regent:options([]),
    {ok, Ip} = inet:parse_ipv4strict_address(binary_to_list(Addr)),
    true = lists:member(Ip, [A || {_, Os} <- Ifs, {addr, A} <- Os]),
    #{bind_host := Addr} = regent:options([{bind_host, distribution_address}]),
    #{bind_host := <<"127.0.0.2">>} = regent:options([{bind_host, "127.0.0.2"}]),
    ok.

%% A missing or unrunnable regentd: start_link says which file and how to
%% build it (before: a bare {error, {enoent, ...}}), and nothing starts.
daemon_missing(Config) ->
    {error, {regentd_not_found, "/nonexistent/regentd", enoent, Hint}} =
        regent:start_link(no_daemon, [{daemon, "/nonexistent/regentd"}]),
    {match, _} = re:run(Hint, "make"),
    NotExe = filename:join(?config(priv_dir, Config), "regentd"),
    ok = file:write_file(NotExe, <<"not a program">>),
    ok = file:change_mode(NotExe, 8#644),
    {error, {regentd_not_executable, NotExe, _}} =
        regent:start_link(no_daemon, [{daemon, NotExe}]),
    undefined = whereis(no_daemon),
    ok.

%% Registry's API refuses bad arguments with the argument named, and
%% changes nothing: the wrong kind of registry for the call, values over
%% the limits, match specifications that do not compile.
registry_bad_input(Config) ->
    {ok, D} = start_reg(dup_bad, Config, [{keys, duplicate}]),
    {ok, _} = regent:register(?REG, kept, 1),
    {ok, _} = regent:register(dup_bad, kept, 1),
    Big = binary:copy(<<"v">>, 70000),
    {'EXIT', {{badarg, value_too_large}, _}} = catch regent:register(?REG, k, Big),
    {'EXIT', {{badarg, value_too_large}, _}} = catch regent:register(dup_bad, k, Big),
    {'EXIT', {{badarg, value_too_large}, _}} = catch regent:put_meta(?REG, k, Big),
    {'EXIT', {{badarg, value_too_large}, _}} =
        catch regent:update_value(?REG, kept, fun(_) -> Big end),
    {'EXIT', {{badarg, name_too_large}, _}} =
        catch regent:register(?REG, binary:copy(<<"x">>, 5000), 1),
    {'EXIT', {{badarg, {meta_key, "str"}}, _}} = catch regent:put_meta(?REG, "str", 1),
    {'EXIT', {{badarg, {meta_key, 1}}, _}} = catch regent:meta(?REG, 1),
    {'EXIT', {{badarg, {bad_match_spec, _}}, _}} =
        catch regent:match(?REG, kept, '$1', [{bogus_guard, '$1'}]),
    {'EXIT', {{badarg, {guards, not_a_list}}, _}} =
        catch regent:count_match(?REG, kept, '_', not_a_list),
    {'EXIT', {{badarg, {bad_match_spec, [bad]}}, _}} = catch regent:select(?REG, [bad]),
    {'EXIT', {{badarg, {bad_match_spec, _}}, _}} =
        catch regent:count_select(?REG, [{{'_', '_'}, [], [true]}]),
    {'EXIT', {{badarg, {not_a_pid, x}}, _}} = catch regent:keys(?REG, x),
    {'EXIT', {{badarg, {dispatcher, _}}, _}} = catch regent:dispatch(?REG, kept, not_a_fun),
    %% The wrong kind of registry for the call.
    {'EXIT', {{badarg, {via_not_supported_for_duplicate_registry, dup_bad}}, _}} =
        catch regent:whereis_name({dup_bad, kept}),
    {'EXIT', {{badarg, {not_supported_for_duplicate_registry, register_name}}, _}} =
        catch regent:register_name({dup_bad, x}, self()),
    {'EXIT', {{badarg, {not_supported_for_duplicate_registry, update_value}}, _}} =
        catch regent:update_value(dup_bad, kept, fun(V) -> V end),
    %% A dispatcher that raises: the caller gets it, as with Registry.
    {'EXIT', {boom, _}} = catch regent:dispatch(dup_bad, kept, fun(_) -> error(boom) end),
    %% Calls the member does not know are refused, not crashed on.
    {error, {unknown_call, _}} = gen_server:call(?REG, {write, bogus, x}),
    %% Nothing changed.
    [{_, 1}] = regent:lookup(?REG, kept),
    [{_, 1}] = regent:lookup(dup_bad, kept),
    error = regent:meta(?REG, k),
    gen_server:stop(D),
    ok.

%% A pid of another node, built from the external term format (NEW_PID_EXT).
ghost_pid(Node) ->
    NodeBin = atom_to_binary(Node, utf8),
    binary_to_term(<<131, 88, 119, (byte_size(NodeBin)), NodeBin/binary,
                     1:32, 0:32, 1:32>>).

%% Callers waiting on a member that stops get regent_not_running, as if it
%% had not been there (before: raw {normal, {gen_server, call, ...}} exits).
stopping_member_callers(_Config) ->
    ok = sys:suspend(?REG),
    Self = self(),
    Callers = [spawn_link(fun() ->
                                  R = try regent:register_name({?REG, {waiting, I}}, self())
                                      catch exit:Why -> {exit, Why}
                                      end,
                                  Self ! {self(), R}
                          end) || I <- lists:seq(1, 5)],
    %% Every caller is blocked in its call to the suspended member.
    wait_until(fun() ->
                       {messages, Ms} = process_info(whereis(?REG), messages),
                       5 =:= length([M || {'$gen_call', _, _} = M <- Ms])
               end, 5000),
    ok = gen_server:stop(?REG),
    [{exit, {regent_not_running, ?REG}} = receive {C, R} -> R after 5000 -> timeout end
     || C <- Callers],
    ok.

not_running(_Config) ->
    {'EXIT', {regent_not_running, nope}} = catch regent:whereis_name({nope, x}),
    {'EXIT', {regent_not_running, nope}} = catch regent:register_name({nope, x}, self()),
    {'EXIT', {regent_not_running, nope}} = catch regent:count(nope),
    {'EXIT', {regent_not_running, nope}} = catch regent:status(nope),
    {'EXIT', {{badarg, {not_a_registry_name, "str"}}, _}} =
        catch regent:whereis_name({"str", x}),
    %% gen_server:call through a registry that is not running fails clearly.
    {'EXIT', {{regent_not_running, nope}, {gen_server, call, _}}} =
        catch gen_server:call({via, regent, {nope, x}}, ping),
    ok.

os_pid(Reg) ->
    maps:get(os_pid, maps:get(daemon, regent:status(Reg))).

daemon_kill9_recovers(_Config) ->
    Procs = [{I, idle()} || I <- lists:seq(1, 50)],
    [yes = regent:register_name({?REG, {k, I}}, P) || {I, P} <- Procs],
    OsPid = os_pid(?REG),
    os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    %% Reads keep being served while the daemon is down and restarting.
    [P = regent:whereis_name({?REG, {k, I}}) || {I, P} <- Procs],
    %% While it is down: five owners die, five names are unregistered, and
    %% one registration is asked. The writes wait for the new daemon.
    {Dying, _} = lists:split(5, Procs),
    [exit(P, kill) || {_, P} <- Dying],
    Self = self(),
    Writer = spawn_link(fun() ->
                                [ok = regent:unregister_name({?REG, {k, I}})
                                 || I <- lists:seq(6, 10)],
                                yes = regent:register_name({?REG, late}, Self),
                                Self ! writer_done
                        end),
    receive writer_done -> ok after 10000 -> error({writer_stuck, Writer}) end,
    wait_until(fun() -> regent:count(?REG) =:= 41 end, 5000),
    true = os_pid(?REG) =/= OsPid,
    2 = maps:get(starts, maps:get(daemon, regent:status(?REG))),
    [undefined = regent:whereis_name({?REG, {k, I}}) || I <- lists:seq(1, 10)],
    [P = regent:whereis_name({?REG, {k, I}}) || {I, P} <- Procs, I > 10],
    Self = regent:whereis_name({?REG, late}),
    %% And the recovered table is the daemon's, not just the mirror's.
    [P = regent:whereis_name_consistent({?REG, {k, I}}) || {I, P} <- Procs, I > 10].

unavailable_times_out(Config) ->
    stop_reg(?config(member, Config)),
    {ok, _} = start_reg(?REG, Config, [{register_timeout, 300}]),
    P = idle(),
    yes = regent:register_name({?REG, before}, P),
    OsPid = integer_to_list(os_pid(?REG)),
    os:cmd("kill -STOP " ++ OsPid),
    T0 = erlang:monotonic_time(millisecond),
    {'EXIT', {regent_unavailable, {?REG, during}}} =
        catch regent:register_name({?REG, during}, P),
    Waited = erlang:monotonic_time(millisecond) - T0,
    ?assert(Waited >= 300 andalso Waited < 2000),
    %% Reads are still served.
    P = regent:whereis_name({?REG, before}),
    os:cmd("kill -CONT " ++ OsPid),
    yes = regent:register_name({?REG, after_resume}, P).

%% The daemon dies and its data dir is gone too: the new daemon starts
%% fresh and the member rebuilds the table from its live local owners.
daemon_state_lost_reclaims(_Config) ->
    Procs = [{I, idle()} || I <- lists:seq(1, 30)],
    [yes = regent:register_name({?REG, {r, I}}, P, {meta, I}) || {I, P} <- Procs],
    Dead = idle(),
    yes = regent:register_name({?REG, dead}, Dead),
    Daemon = maps:get(daemon, regent:status(?REG)),
    OsPid = integer_to_list(maps:get(os_pid, Daemon)),
    Dir = maps:get(data_dir, Daemon),
    os:cmd("kill -STOP " ++ OsPid),
    [ok = file:delete(filename:join(Dir, F)) || F <- element(2, file:list_dir(Dir))],
    exit(Dead, kill),
    os:cmd("kill -9 " ++ OsPid),
    wait_until(fun() ->
                       St = regent:status(?REG),
                       maps:get(ready, St) andalso
                           maps:get(starts, maps:get(daemon, St)) =:= 2
               end, 10000),
    %% Re-claimed through the new log, metadata included; the dead one not.
    [P = regent:whereis_name_consistent({?REG, {r, I}}) || {I, P} <- Procs],
    {ok, {meta, 7}} = regent:get_metadata({?REG, {r, 7}}),
    wait_until(fun() -> regent:count(?REG) =:= 30 end, 5000),
    undefined = regent:whereis_name_consistent({?REG, dead}),
    yes = regent:register_name({?REG, after_loss}, idle()).

%% A member killed outright: its supervisor's restart resumes the same raft
%% state. Names of live processes survive, the new member's writes are
%% answered by their own replies (not by replayed replies of the old one).
member_crash_resumes(Config) ->
    Procs = [{I, idle()} || I <- lists:seq(1, 20)],
    [yes = regent:register_name({?REG, {m, I}}, P) || {I, P} <- Procs],
    Old = whereis(?REG),
    exit(Old, kill),
    wait_until(fun() -> whereis(?REG) =:= undefined end, 1000),
    {ok, _} = start_reg(?REG, Config),
    [P = regent:whereis_name({?REG, {m, I}}) || {I, P} <- Procs],
    %% Fresh registrations and reads, more than the old member ever sent.
    New = idle(),
    [yes = regent:register_name({?REG, {n, I}}, New) || I <- lists:seq(1, 30)],
    [New = regent:whereis_name({?REG, {n, I}}) || I <- lists:seq(1, 30)],
    [New = regent:whereis_name_consistent({?REG, {n, I}}) || I <- lists:seq(1, 30)],
    50 = regent:count(?REG),
    %% The restored owners are monitored again.
    {_, P1} = hd(Procs),
    exit(P1, kill),
    wait_until(fun() -> regent:count(?REG) =:= 49 end, 5000).

%% More ops than fit in one port frame: the member splits them.
big_batches_are_split(_Config) ->
    Self = self(),
    Meta = binary:copy(<<"m">>, 60000),
    N = 1200, % ~72 MB of metadata, over the 64 MiB frame limit
    Pids = [spawn_link(fun() ->
                               yes = regent:register_name({?REG, {big, I}}, Self, Meta),
                               Self ! {done, I}
                       end) || I <- lists:seq(1, N)],
    [receive {done, I} -> ok after 60000 -> error({stuck, I}) end || I <- lists:seq(1, N)],
    N = length(Pids),
    N = regent:count(?REG),
    {ok, Meta} = regent:get_metadata({?REG, {big, N}}).

%% regentd driven directly, without a member: garbage frames get ERROR
%% frames, never a crash; the daemon still exits cleanly on EOF.
port_garbage(Config) ->
    Port = open_daemon(Config, [{packet, 4}]),
    Garbage = [<<>>, <<9>>, <<9, 9>>, <<1, 99>>, <<1, 2, 0, 0, 0, 5>>,
               <<1, 1, 0>>, <<1, 2>>],
    [begin
         true = port_command(Port, G),
         {error, _} = recv_frame(Port)
     end || G <- Garbage],
    rand:seed(exsss, {1, 2, 3}),
    [begin
         true = port_command(Port, <<1, (rand:uniform(6)), (rand:bytes(rand:uniform(64)))/binary>>),
         {error, _} = recv_frame(Port)
     end || _ <- lists:seq(1, 300)],
    %% A malformed op after START: a BAD answer for its ref. The dir holds
    %% leftovers of a start that never completed (no regent.id): regentd
    %% clears them and starts fresh.
    Dir = fresh_dir(Config),
    ok = file:write_file(filename:join(Dir, "metadata1"), <<"junk">>),
    true = port_command(Port, regent_proto:start(#{id => 0, bootstrap => true,
        data_dir => list_to_binary(Dir), bind_host => <<"127.0.0.1">>,
        port_range => {0, 0}, secret => <<"s">>, snapshot => {8192, 2048},
        tls => {psk, <<>>, <<>>, <<>>, false}})),
    {started, _, _, false} = recv_frame(Port),
    %% A fresh daemon's DUMP: its three tables, empty.
    {dump, false, names, Index, []} = recv_until(Port, dump),
    {dump, false, groups, Index, []} = recv_until(Port, dump),
    {dump, true, meta, Index, []} = recv_until(Port, dump),
    BadKey = <<107, 0, 2, "ab">>, % STRING_EXT: not canonical
    Op = regent_proto:op_register(7, BadKey, regent_name:encode_pid(self()), <<>>, <<>>),
    true = port_command(Port, regent_proto:ops([Op])),
    {replies, [{_Origin, 7, bad, <<>>}]} = recv_until(Port, replies),
    port_close(Port),
    ok.

%% A length prefix over the 64 MiB limit cannot be resynchronised: regentd
%% says so on stderr and exits (status 1) instead of allocating it.
port_oversize_frame(Config) ->
    Port = open_daemon(Config, []),
    true = port_command(Port, <<255, 255, 255, 255, 1, 2, 3>>),
    receive {Port, {exit_status, 1}} -> ok
    after 5000 -> error(no_exit)
    end.

%% Bytes that are not the transport's handshake: the connection is dropped
%% and the registry carries on.
raft_port_garbage(_Config) ->
    RaftPort = maps:get(raft_port, maps:get(daemon, regent:status(?REG))),
    [begin
         {ok, S} = gen_tcp:connect({127, 0, 0, 1}, RaftPort, [binary, {active, false}]),
         ok = gen_tcp:send(S, Junk),
         {error, closed} = gen_tcp:recv(S, 0, 6000),
         gen_tcp:close(S)
     end || Junk <- [binary:copy(<<"GET / HTTP/1.1\r\n">>, 4),
                     <<16#524547454E540002:64, 0:64, 0:64, 0:128, 3:16, "a:1">>, % id 0
                     <<16#524547454E540002:64, 1:64, 0:64, 0:128, 65535:16>>]], % huge address
    yes = regent:register_name({?REG, still_fine}, idle()),
    true = maps:get(ready, regent:status(?REG)).

open_daemon(Config, PortOpts) ->
    open_port({spawn_executable, ?config(daemon, Config)},
              [binary, exit_status, use_stdio | PortOpts]).

fresh_dir(Config) ->
    Dir = filename:join(?config(priv_dir, Config),
                        "direct-" ++ integer_to_list(erlang:unique_integer([positive]))),
    ok = filelib:ensure_path(Dir),
    Dir.

recv_frame(Port) ->
    receive {Port, {data, F}} -> regent_proto:decode(F)
    after 5000 -> error(no_frame)
    end.

recv_until(Port, Tag) ->
    case recv_frame(Port) of
        Event when element(1, Event) =:= Tag -> Event;
        _ -> recv_until(Port, Tag)
    end.

%% Cycles of mass registrations and deaths leave an empty table: regentd's
%% memory must come back down (before: 6 MB at start, ~50 MB after four
%% cycles of 100k). status/1 reports the daemon's RSS.
memory_given_back(Config) ->
    case lists:suffix("-san", ?config(daemon, Config)) of
        true -> {skip, "ASan's allocator keeps freed memory in quarantine"};
        false -> memory_given_back_(Config)
    end.

memory_given_back_(Config) ->
    stop_reg(whereis(?REG)),
    {ok, _} = start_reg(?REG, Config, [{snapshot_threshold, 64}, {snapshot_trailing, 16}]),
    Rss = fun() -> maps:get(rss, maps:get(daemon, regent:status(?REG))) end,
    Start = Rss(),
    true = Start > 0,
    Meta = binary:copy(<<"m">>, 200),
    [begin
         Pids = [idle() || _ <- lists:seq(1, 20000)],
         Callers = [spawn_link(fun() ->
                                       [yes = regent:register_name({?REG, {cycle, C, I}}, P, Meta)
                                        || {I, P} <- Chunk]
                               end)
                    || Chunk <- chunks(lists:zip(lists:seq(1, 20000), Pids), 500)],
         wait_until(fun() -> regent:count(?REG) =:= 20000 end, 60000),
         [unlink(Cl) || Cl <- Callers],
         [exit(P, kill) || P <- Pids],
         wait_until(fun() -> regent:count(?REG) =:= 0 end, 60000)
     end || C <- lists:seq(1, 4)],
    %% A few more entries so that a snapshot covers the deaths.
    [begin yes = regent:register_name({?REG, {tail, I}}, self()),
           ok = regent:unregister_name({?REG, {tail, I}}) end || I <- lists:seq(1, 200)],
    End = Rss(),
    ct:pal("regentd RSS: ~p KB at start, ~p KB after 4 cycles of 20k", [Start div 1024, End div 1024]),
    true = End - Start < 12 * 1024 * 1024.

chunks([], _) -> [];
chunks(L, N) when length(L) =< N -> [L];
chunks(L, N) -> {H, T} = lists:split(N, L), [H | chunks(T, N)].

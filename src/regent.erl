%% @doc regent: a distributed, consistent process registry for OTP.
%%
%% Register any process under `{via, regent, {Registry, Name}}' and find it by
%% name. Names are any term (atoms, binaries, tuples, ...); no atom is ever
%% created for a name. Registration goes through raft consensus in regentd, a
%% C daemon owned by the registry's member process, so a name has at most one
%% owner; lookups read a local ETS mirror and never leave the caller's
%% process.
%%
%% ```
%% {ok, _} = regent:start_link(my_reg),
%% {ok, Pid} = gen_server:start_link({via, regent, {my_reg, <<"cart-42">>}},
%%                                   cart, [], []),
%% Pid = regent:whereis_name({my_reg, <<"cart-42">>}),
%% ok = gen_server:call({via, regent, {my_reg, <<"cart-42">>}}, checkout).
%% '''
%%
%% Semantics:
%% <ul>
%% <li>`register_name/2,3' answers `no' only when a different live process
%% holds the name; the same pid again is `yes'. Once it returns `yes', a
%% lookup on the same node finds the pid (read-your-writes).</li>
%% <li>When a registered process exits, its name goes away by itself.</li>
%% <li>While regentd cannot commit (it is restarting, or has no leader), a
%% write waits; after `register_timeout' ms (default 5000) the caller exits
%% with `{regent_unavailable, {Registry, Name}}'. It never answers `no' for
%% "unavailable". Like any timeout, that exit leaves the outcome open: the
%% write may still take effect (or have done so). The same exit comes at
%% once for a write this node had sent when its member must leave its
%% cluster to join another (after a partition heals), since sending it again
%% could apply it twice. Reads keep being served from the mirror.</li>
%% <li>Bad arguments raise `{badarg, Why}' and change nothing: a non-pid, a
%% name whose canonical encoding exceeds 1024 bytes or that contains a fun,
%% metadata over 65536 bytes. A registry that is not running makes the
%% caller exit with `{regent_not_running, Registry}'.</li>
%% </ul>
-module(regent).

%% Starting
-export([start_link/1, start_link/2, child_spec/1]).
%% The via contract (global-compatible)
-export([register_name/2, register_name/3, unregister_name/1,
         whereis_name/1, send/2]).
%% Consistent reads, cluster state
-export([whereis_name_consistent/1, get_leader/1, get_epoch/1,
         get_members/1, status/1, ready/1, await_ready/1, await_ready/2,
         recover/1]).
%% Metadata and queries
-export([set_metadata/2, get_metadata/1, lookup/2, count/1, select/2]).
%% Internal: the options a member runs with (bench/regent_bench.erl builds
%% its START frame from them).
-export([options/1]).

-type registry() :: atom().
-type name() :: term().
-type via_name() :: {registry(), name()}.
-type member_id() :: {node(), registry()}.
-type option() :: {data_dir, file:filename()}
                | {register_timeout, pos_integer()}
                | {voters, 1..7}
                | {conflict, kill | notify
                             | {resolve, fun((name(), pid(), pid()) -> pid() | none)}}
                | {bind_host, string() | binary()}
                | {port_range, {inet:port_number(), inet:port_number()}}
                | {secret, iodata()}
                | {snapshot_threshold, 16..16777216}
                | {snapshot_trailing, 0..16777216}
                | {daemon, file:filename()}.
-type options() :: [option()] | #{atom() => term()}.
-export_type([registry/0, name/0, via_name/0, member_id/0, options/0]).

-define(NAME_MAX, 1024).
-define(META_MAX, 65536).

%% ---- starting ------------------------------------------------------------

%% @equiv start_link(Registry, [])
-spec start_link(registry()) -> {ok, pid()} | {error, term()}.
start_link(Reg) ->
    start_link(Reg, []).

%% @doc Starts the member of registry `Registry' on this node, linked to the
%% caller (put it in a supervision tree with {@link child_spec/1}). It is
%% registered locally as `Registry' and owns an ETS table of that name.
%%
%% Options (also read from the `regent' application environment):
%% <ul>
%% <li>`data_dir': where regentd keeps its raft log and snapshots (default
%%   `/dev/shm/regent' when it exists, else the user cache dir).</li>
%% <li>`register_timeout': ms a write may wait for consensus (5000).</li>
%% <li>`voters': how many members vote in raft (3, at most 7); the others
%%   are standbys that replicate the log and serve reads.</li>
%% <li>`conflict': what happens to a live process that held a name on the
%%   side of a partition that lost it to another live process (see
%%   docs/cluster.md): `kill' (default: exit `{regent_conflict, Name,
%%   Winner}'), `notify' (the message `{regent_conflict, Name, Winner}'), or
%%   `{resolve, Fun}' with `Fun(Name, Claimant, Holder) -> Keep | none'.</li>
%% <li>`bind_host', `port_range': address of the raft port
%%   (`"127.0.0.1"', `{0, 0}' = any free port).</li>
%% <li>`secret': the cluster secret (default: derived from the cookie).</li>
%% <li>`snapshot_threshold', `snapshot_trailing': regentd snapshots its
%%   table every `snapshot_threshold' log entries (8192) and keeps the last
%%   `snapshot_trailing' entries (2048) for followers slightly behind. A
%%   snapshot serialises the whole table on the daemon's loop, so lower
%%   values trade more frequent stalls for a shorter log to replay on
%%   restart.</li>
%% <li>`daemon': path of the regentd executable (default: priv/regentd).</li>
%% </ul>
-spec start_link(registry(), options()) -> {ok, pid()} | {error, term()}.
start_link(Reg, Opts) when is_atom(Reg) ->
    regent_member:start_link(Reg, options(Opts));
start_link(Reg, _Opts) ->
    error({badarg, {not_a_registry_name, Reg}}).

%% @doc A child specification for a supervisor: `Registry' or
%% `{Registry, Options}'.
-spec child_spec(registry() | {registry(), options()}) ->
          supervisor:child_spec().
child_spec({Reg, Opts}) ->
    #{id => {regent, Reg},
      start => {regent, start_link, [Reg, Opts]},
      type => worker,
      shutdown => 5000};
child_spec(Reg) when is_atom(Reg) ->
    child_spec({Reg, []}).

%% ---- the via contract ----------------------------------------------------

%% @doc Registers `Pid' under `Name'. `yes', or `no' when another live
%% process holds the name. A new registration has no metadata (`undefined');
%% if `Pid' already holds the name, its metadata is kept.
-spec register_name(via_name(), pid()) -> yes | no.
register_name(ViaName, Pid) ->
    register_meta(ViaName, Pid, <<>>).

%% @doc Registers `Pid' under `Name' with metadata `Meta' (any term, at most
%% 65536 bytes in external format), replacing the metadata if `Pid' already
%% holds the name.
-spec register_name(via_name(), pid(), term()) -> yes | no.
register_name(ViaName, Pid, Meta) ->
    register_meta(ViaName, Pid, meta_bytes(Meta)).

register_meta({Reg, Name} = ViaName, Pid, MetaBin) when is_pid(Pid) ->
    Key = key(ViaName),
    %% A pid of a node we are not connected to could never be monitored,
    %% and would hold its name until a leader change purged it.
    node(Pid) =:= node() orelse lists:member(node(Pid), nodes(connected))
        orelse error({badarg, {pid_of_unconnected_node, Pid}}),
    Replace = dead_local_holder(Reg, Name, Pid),
    write(ViaName, register,
          {Key, regent_name:encode_pid(Pid), MetaBin, Replace});
register_meta(_ViaName, Pid, _MetaBin) ->
    error({badarg, {not_a_pid, Pid}}).

%% The FSM only lets a registration replace a holder that the member says is
%% dead: a local holder that has exited but whose unregister is still on its
%% way. Then `no' would be wrong, and waiting for the cleanup is not needed.
dead_local_holder(Reg, Name, Pid) ->
    case lookup_row(Reg, Name) of
        [{_, Holder, _}] when Holder =/= Pid, node(Holder) =:= node() ->
            case is_process_alive(Holder) of
                true -> <<>>;
                false -> regent_name:encode_pid(Holder)
            end;
        _ ->
            <<>>
    end.

%% @doc Removes `Name', whoever holds it. Once this returns, lookups on this
%% node return `undefined'.
-spec unregister_name(via_name()) -> ok.
unregister_name(ViaName) ->
    write(ViaName, unregister, key(ViaName)).

%% @doc The pid registered under `Name', or `undefined'. A local ETS read:
%% it never blocks and never leaves the caller's process. A local owner that
%% has exited counts as unregistered even before its cleanup is applied (as
%% in Elixir's Registry): `gen:start' looks a name up before registering, so
%% a supervisor restarting a child at once must not see the dead one.
-spec whereis_name(via_name()) -> pid() | undefined.
whereis_name({Reg, Name}) ->
    case live_row(Reg, Name) of
        [{_, Pid, _}] -> Pid;
        [] -> undefined
    end;
whereis_name(Other) ->
    error({badarg, {not_a_via_name, Other}}).

%% @doc Sends `Msg' to the process registered under `Name' and returns its
%% pid; exits with `{badarg, {ViaName, Msg}}' if there is none (as `global').
-spec send(via_name(), term()) -> pid().
send(ViaName, Msg) ->
    case whereis_name(ViaName) of
        undefined -> exit({badarg, {ViaName, Msg}});
        Pid -> Pid ! Msg, Pid
    end.

%% ---- consistent reads and cluster state ----------------------------------

%% @doc The owner of `Name' as of now, linearizable: the read goes through
%% the raft log like a write, so it reflects every write acknowledged
%% anywhere before it began.
-spec whereis_name_consistent(via_name()) -> pid() | undefined.
whereis_name_consistent(ViaName) ->
    write(ViaName, read, key(ViaName)).

%% @doc The member that leads the registry's raft cluster, if known.
-spec get_leader(registry()) -> member_id() | undefined.
get_leader(Reg) ->
    case maps:get(leader, status(Reg)) of
        {_, Reg} = Id -> Id;
        _ -> undefined
    end.

%% @doc The raft term: it grows with every election.
-spec get_epoch(registry()) -> non_neg_integer().
get_epoch(Reg) ->
    maps:get(epoch, status(Reg)).

%% @doc The members of the registry's raft cluster with their roles
%% (`spare' while a member is being added).
-spec get_members(registry()) -> [{member_id() | {raft_id, pos_integer()},
                                   voter | standby | spare}].
get_members(Reg) ->
    maps:get(members, status(Reg)).

%% @doc This member's view: raft role, leader, epoch, applied and commit
%% index, lag, readiness, number of names, the daemon's os pid and restarts.
-spec status(registry()) -> map().
status(Reg) ->
    call(Reg, status, 5000).

%% @doc True when the member serves writes: its daemon has started and the
%% mirror holds the daemon's table.
-spec ready(registry()) -> boolean().
ready(Reg) ->
    maps:get(ready, status(Reg)).

%% @equiv await_ready(Registry, 5000)
-spec await_ready(registry()) -> ok | {error, timeout}.
await_ready(Reg) ->
    await_ready(Reg, 5000).

%% @doc Waits until {@link ready/1} is true, at most `Timeout' ms.
-spec await_ready(registry(), timeout()) -> ok | {error, timeout}.
await_ready(Reg, Timeout) ->
    try call(Reg, await_ready, Timeout)
    catch exit:{timeout, _} -> {error, timeout}
    end.

%% @doc Re-forms the registry around this member after its cluster lost the
%% quorum for good: the member leaves its raft cluster and bootstraps a new
%% one alone, with the names of its live local processes; other members
%% join it as they see it (their own names are claimed under the conflict
%% policy). Writes resume at once on this node.
-spec recover(registry()) -> ok.
recover(Reg) ->
    call(Reg, recover, 30000).

%% ---- metadata and queries ------------------------------------------------

%% @doc Replaces the metadata of a registered name.
-spec set_metadata(via_name(), term()) -> ok | {error, not_registered}.
set_metadata(ViaName, Meta) ->
    write(ViaName, set_meta, {key(ViaName), meta_bytes(Meta)}).

%% @doc The metadata of a registered name (`undefined' when it was
%% registered without any).
-spec get_metadata(via_name()) -> {ok, term()} | {error, not_registered}.
get_metadata({Reg, Name}) ->
    case live_row(Reg, Name) of
        [{_, _, Meta}] -> {ok, Meta};
        [] -> {error, not_registered}
    end.

%% @doc `[{Pid, Meta}]' for `Name', or `[]' (as Elixir's Registry.lookup/2).
-spec lookup(registry(), name()) -> [{pid(), term()}].
lookup(Reg, Name) ->
    [{Pid, Meta} || {_, Pid, Meta} <- live_row(Reg, Name)].

%% @doc The number of names in the table (including, for a moment, names of
%% local processes that have just exited and are being cleaned up).
-spec count(registry()) -> non_neg_integer().
count(Reg) ->
    case ets:info(table(Reg), size) of
        undefined -> exit({regent_not_running, Reg});
        N -> N
    end.

%% @doc Runs an ETS match specification over `{Name, Pid, Meta}' rows, e.g.
%% `regent:select(my_reg, [{{'$1', '$2', '_'}, [], [{{'$1', '$2'}}]}])'.
-spec select(registry(), ets:match_spec()) -> [term()].
select(Reg, MatchSpec) ->
    try ets:select(table(Reg), MatchSpec)
    catch error:badarg ->
            ets:info(Reg) =:= undefined andalso exit({regent_not_running, Reg}),
            error({badarg, {bad_match_spec, MatchSpec}})
    end.

%% ---- internal ------------------------------------------------------------

table(Reg) when is_atom(Reg) -> Reg;
table(Reg) -> error({badarg, {not_a_registry_name, Reg}}).

lookup_row(Reg, Name) ->
    try ets:lookup(table(Reg), Name)
    catch error:badarg -> exit({regent_not_running, Reg})
    end.

%% The row unless its owner is a local process that has exited.
live_row(Reg, Name) ->
    case lookup_row(Reg, Name) of
        [{_, Pid, _}] = Row when node(Pid) =:= node() ->
            case is_process_alive(Pid) of
                true -> Row;
                false -> []
            end;
        Row ->
            Row
    end.

key({Reg, Name}) when is_atom(Reg) ->
    case regent_name:encode(Name) of
        {ok, Key} -> Key;
        {error, {unsupported_term, T}} -> error({badarg, {unsupported_name_term, T}});
        {error, Why} -> error({badarg, Why})
    end;
key(Other) ->
    error({badarg, {not_a_via_name, Other}}).

meta_bytes(Meta) ->
    Bin = term_to_binary(Meta),
    byte_size(Bin) =< ?META_MAX orelse error({badarg, metadata_too_large}),
    Bin.

write({Reg, Name}, Kind, Args) ->
    case call(Reg, {write, Kind, Args}, infinity) of
        {error, unavailable} -> exit({regent_unavailable, {Reg, Name}});
        {error, bad_request} -> error({badarg, {rejected_by_regentd, Name}});
        Answer -> Answer
    end.

%% The member answers every write by its deadline, so calls wait without a
%% timeout of their own. A member that stops (or is gone) while we wait is
%% `regent_not_running', as when it was not there; a crash keeps its reason.
call(Reg, Msg, Timeout) ->
    case whereis(table(Reg)) of
        undefined -> exit({regent_not_running, Reg});
        Pid ->
            try gen_server:call(Pid, Msg, Timeout)
            catch exit:{Why, {gen_server, call, _}} when Why =:= noproc;
                                                        Why =:= normal;
                                                        Why =:= shutdown;
                                                        element(1, Why) =:= shutdown ->
                    exit({regent_not_running, Reg})
            end
    end.

%% @private Opts over the application environment over the defaults,
%% validated: what regent_member runs with.
-spec options(options()) -> #{atom() => term()}.
options(Opts) when is_list(Opts) ->
    options(maps:from_list(Opts));
options(Opts) when is_map(Opts) ->
    Defaults = #{data_dir => default_data_dir(),
                 register_timeout => 5000,
                 voters => 3,
                 conflict => kill,
                 bind_host => <<"127.0.0.1">>,
                 port_range => {0, 0},
                 secret => undefined,
                 snapshot_threshold => 8192,
                 snapshot_trailing => 2048,
                 tls => psk,
                 daemon => filename:join(code:priv_dir(regent), "regentd")},
    Env = maps:with(maps:keys(Defaults), maps:from_list(application:get_all_env(regent))),
    M = maps:merge(maps:merge(Defaults, Env), Opts),
    in_range(voters, M, 1, 7),
    Host = unicode:characters_to_binary(maps:get(bind_host, M)),
    byte_size(Host) =< 63 andalso
        element(1, inet:parse_ipv4strict_address(binary_to_list(Host))) =:= ok
        orelse error({badarg, {bind_host, Host}}),
    in_range(snapshot_threshold, M, 16, 1 bsl 24),
    in_range(snapshot_trailing, M, 0, 1 bsl 24),
    Secret = secret(maps:get(secret, M)),
    byte_size(Secret) >= 1 andalso byte_size(Secret) =< 1024
        orelse error({badarg, {secret, size}}),
    M#{bind_host := Host, secret := Secret, tls := tls(maps:get(tls, M))}.

%% TLS on the raft port: `psk' (the default: a key derived from the cluster
%% secret), `false', or certificates as for TLS distribution. Checked here,
%% in the form the START frame carries: {Mode, CertFile, KeyFile, CaFile,
%% Verify}.
tls(psk) ->
    {psk, <<>>, <<>>, <<>>, false};
tls(false) ->
    {off, <<>>, <<>>, <<>>, false};
tls(Opts) when is_list(Opts) ->
    tls(maps:from_list(Opts));
tls(#{} = Opts) ->
    Known = [certfile, keyfile, cacertfile, verify],
    [error({badarg, {tls, {unknown_option, K}}}) || K <- maps:keys(Opts), not lists:member(K, Known)],
    Verify = case maps:get(verify, Opts, verify_peer) of
                 verify_peer -> true;
                 verify_none -> false;
                 V -> error({badarg, {tls, {verify, V}}})
             end,
    File = fun(K, Required) ->
                   case maps:find(K, Opts) of
                       {ok, F} -> tls_file(K, F);
                       error when Required -> error({badarg, {tls, {missing, K}}});
                       error -> <<>>
                   end
           end,
    {cert, File(certfile, true), File(keyfile, true), File(cacertfile, Verify), Verify};
tls(Other) ->
    error({badarg, {tls, Other}}).

tls_file(K, F) ->
    try unicode:characters_to_binary(F) of
        B when is_binary(B), byte_size(B) > 0, byte_size(B) =< 4096 -> B;
        _ -> error({badarg, {tls, {K, F}}})
    catch error:badarg -> error({badarg, {tls, {K, F}}})
    end.

in_range(Key, M, Min, Max) ->
    V = maps:get(Key, M),
    is_integer(V) andalso V >= Min andalso V =< Max
        orelse error({badarg, {Key, V}}).

default_data_dir() ->
    case filelib:is_dir("/dev/shm") of
        true -> "/dev/shm/regent";
        false -> filename:basedir(user_cache, "regent")
    end.

%% The secret reaches regentd over the port, never argv or the environment.
secret(undefined) ->
    crypto:hash(sha256, ["regent:", atom_to_binary(erlang:get_cookie())]);
secret(Secret) ->
    iolist_to_binary(Secret).

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
%% regent is also a cluster-wide Elixir `Registry': `keys' `unique' or
%% `duplicate', `register/3', `lookup/2', `match/3,4', `dispatch/3,4',
%% `meta/2' and every other function of Registry (Elixir 1.14), with the
%% same results, over the entries of the whole cluster (docs/registry.md).
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
%% <li>A member holds at most `max_pending_writes' (default 65536) callers'
%% writes waiting for the log. A write beyond that bound is refused at once,
%% without effect: the caller exits with `{regent_overloaded, {Registry,
%% Name}}' (and telemetry gets `[regent, overloaded]'). Nothing is dropped
%% silently; retry later, or slow the callers down.</li>
%% <li>Bad arguments raise `{badarg, Why}' and change nothing: a non-pid, a
%% name whose canonical encoding exceeds 1024 bytes or that contains a fun,
%% metadata over 65536 bytes. A registry that is not running makes the
%% caller exit with `{regent_not_running, Registry}'.</li>
%% </ul>
-module(regent).

%% Starting
-export([start_link/1, start_link/2, child_spec/1]).
%% The via contract (global-compatible; `{Registry, Key, Value}' carries a value)
-export([register_name/2, register_name/3, unregister_name/1,
         whereis_name/1, send/2]).
%% Elixir Registry's API, cluster-wide
-export([register/3, unregister/2, lookup/2, match/3, match/4, count/1,
         count_match/3, count_match/4, select/2, count_select/2, keys/2,
         values/3, update_value/3, unregister_match/3, unregister_match/4,
         dispatch/3, dispatch/4, meta/2, put_meta/3, delete_meta/2]).
%% Consistent reads, cluster state
-export([whereis_name_consistent/1, get_leader/1, get_epoch/1,
         get_members/1, status/1, ready/1, await_ready/1, await_ready/2,
         recover/1]).
%% Per-name metadata (regent's own), atomic updates, bulk operations
-export([set_metadata/2, get_metadata/1, update_metadata/2, update_metadata/3,
         register_many/2, register_many/3, unregister_many/2]).
%% Events
-export([subscribe/2, subscribe/3, unsubscribe/2]).
%% Internal: the options a member runs with (bench/regent_bench.erl builds
%% its START frame from them).
-export([options/1]).

-type registry() :: atom().
-type name() :: term().
-type key() :: term().
-type value() :: term().
-type via_name() :: {registry(), name()} | {registry(), name(), value()}.
-type member_id() :: {node(), registry()}.
-type dispatcher() :: fun(([{pid(), value()}]) -> term()) | {module(), atom(), [term()]}.
-type filter() :: all | {key, key()} | {match, ets:match_spec()}.
-type option() :: {keys, unique | duplicate}
                | {listeners, [atom()]}
                | {meta, [{atom() | tuple(), term()}]}
                | {partitions, pos_integer()}
                | {compressed, boolean()}
                | {data_dir, file:filename()}
                | {register_timeout, pos_integer()}
                | {max_pending_writes, pos_integer()}
                | {reconnect, boolean()}
                | {voters, 1..7}
                | {conflict, kill | notify
                             | {resolve, fun((name(), pid(), pid()) -> pid() | none)}}
                | {bind_host, string() | binary() | distribution_address}
                | {port_range, {inet:port_number(), inet:port_number()}}
                | {secret, iodata()}
                | {tls, psk | false | [{atom(), term()}]}
                | {snapshot_threshold, 16..16777216}
                | {snapshot_trailing, 0..16777216}
                | {daemon, file:filename()}.
-type options() :: [option()] | #{atom() => term()}.
-export_type([registry/0, name/0, key/0, value/0, via_name/0, member_id/0,
              options/0, dispatcher/0, filter/0]).

%% ---- starting ------------------------------------------------------------

%% @doc Starts a registry from a proplist or map that names it, as Elixir's
%% `Registry.start_link/1': `regent:start_link([{name, my_reg}, {keys,
%% duplicate}])'.
-spec start_link(registry() | options()) -> {ok, pid()} | {error, term()}.
start_link(Reg) when is_atom(Reg) ->
    start_link(Reg, []);
start_link(Opts) when is_list(Opts) ->
    [error({badarg, {not_an_option, O}}) || O <- Opts, not is_tuple(O) orelse tuple_size(O) =/= 2],
    start_link(maps:from_list(Opts));
start_link(Map) when is_map(Map) ->
    case maps:find(name, Map) of
        {ok, Reg} when is_atom(Reg) -> start_link(Reg, maps:remove(name, Map));
        {ok, Other} -> error({badarg, {name, Other}});
        error -> error({badarg, {name, missing}})
    end;
start_link(Other) ->
    error({badarg, {options, Other}}).

%% @doc Starts the member of registry `Registry' on this node, linked to the
%% caller (put it in a supervision tree with {@link child_spec/1}). It is
%% registered locally as `Registry' and owns an ETS table of that name.
%% Every option is checked first: an unknown one, or a bad value, raises
%% `{badarg, {Option, Value}}' and nothing starts.
%%
%% Options (also read from the `regent' application environment):
%% <ul>
%% <li>`keys': `unique' (the default: a key has at most one owner) or
%%   `duplicate' (a key has any number of `{Pid, Value}' entries: process
%%   groups, pub/sub), as in Elixir's Registry. Every node of a registry
%%   must give the same.</li>
%% <li>`listeners': names of local processes sent `{register, Registry,
%%   Key, Pid, Value}' and `{unregister, Registry, Key, Pid}' for every
%%   change made anywhere in the cluster (docs/registry.md).</li>
%% <li>`meta': `[{Key, Value}]', registry metadata put in the cluster unless
%%   the key has a value there already (see {@link put_meta/3}).</li>
%% <li>`partitions': accepted for Registry's sake and ignored: the mirror
%%   is one ETS table with read concurrency, and writes are ordered by the
%%   raft log. `compressed': the mirror table is compressed.</li>
%% <li>`data_dir': where regentd keeps its raft log and snapshots (default
%%   `/dev/shm/regent' when it exists, else the user cache dir).</li>
%% <li>`register_timeout': ms a write may wait for consensus (5000).</li>
%% <li>`max_pending_writes': how many callers' writes may wait in this
%%   member for the log at once (65536); beyond it a write exits with
%%   `regent_overloaded' at once.</li>
%% <li>`reconnect': whether the member connects again, each second, to the
%%   nodes of its raft peers whose distribution link went down (true). Its
%%   own messages never set links up (they are sent with `noconnect'), so
%%   without this a real partition longer than the net tick time would
%%   leave the two sides apart after it healed. Never when the kernel's
%%   `dist_auto_connect' is `once' or `never'.</li>
%% <li>`voters': how many members vote in raft (3, at most 7); the others
%%   are standbys that replicate the log and serve reads.</li>
%% <li>`conflict': what happens to a live process that held a name on the
%%   side of a partition that lost it to another live process (see
%%   docs/cluster.md): `kill' (default: exit `{regent_conflict, Name,
%%   Winner}'), `notify' (the message `{regent_conflict, Name, Winner}'), or
%%   `{resolve, Fun}' with `Fun(Name, Claimant, Holder) -> Keep | none'.</li>
%% <li>`bind_host', `port_range': address of the raft port, an IPv4
%%   address (default `distribution_address': the address this node's
%%   distribution is reached at, the host part of `-name a@10.0.0.5' or
%%   what it resolves to; 127.0.0.1 on a node that is not distributed) and
%%   its port (`{0, 0}' = any free port; set a range to open in a
%%   firewall). See docs/cluster.md.</li>
%% <li>`secret': the cluster secret (default: derived from the cookie).</li>
%% <li>`tls': TLS 1.3 on the raft port: `psk' (default, a key derived from
%%   the secret), `false', or `[{certfile, F}, {keyfile, F}, {cacertfile, F},
%%   {verify, verify_peer | verify_none}]'.</li>
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
    Options = regent_options:options(Opts),
    case regent_options:daemon_check(maps:get(daemon, Options)) of
        ok -> regent_member:start_link(Reg, Options);
        {error, _} = Error -> Error
    end;
start_link(Reg, _Opts) ->
    error({badarg, {not_a_registry_name, Reg}}).

%% @doc A child specification for a supervisor: `Registry',
%% `{Registry, Options}', or options that name it (`[{name, Registry} | _]').
-spec child_spec(registry() | {registry(), options()} | options()) ->
          supervisor:child_spec().
child_spec({Reg, Opts}) when is_atom(Reg) ->
    #{id => {regent, Reg},
      start => {regent, start_link, [Reg, Opts]},
      type => worker,
      shutdown => 5000};
child_spec(Reg) when is_atom(Reg) ->
    child_spec({Reg, []});
child_spec(Opts) when is_list(Opts) ->
    case proplists:get_value(name, Opts) of
        Reg when is_atom(Reg), Reg =/= undefined ->
            child_spec({Reg, proplists:delete(name, Opts)});
        Other ->
            error({badarg, {name, Other}})
    end.

%% ---- the via contract ----------------------------------------------------

%% @doc Registers `Pid' under `Name'. `yes', or `no' when another live
%% process holds the name. A new registration has no metadata (`undefined');
%% if `Pid' already holds the name, its metadata is kept. With a via name
%% `{Registry, Name, Value}' the registration carries `Value', as Elixir's
%% Registry does. Unique registries only.
-spec register_name(via_name(), pid()) -> yes | no.
register_name({Reg, Name, Value}, Pid) ->
    register_name({Reg, Name}, Pid, Value);
register_name(ViaName, Pid) ->
    regent_register:register_name(ViaName, Pid, <<>>).

%% @doc Registers `Pid' under `Name' with metadata `Meta' (any term, at most
%% 65536 bytes in external format), replacing the metadata if `Pid' already
%% holds the name.
-spec register_name(via_name(), pid(), term()) -> yes | no.
register_name(ViaName, Pid, Meta) ->
    regent_register:register_name(ViaName, Pid, regent_write:value_bytes(metadata, Meta)).

%% @doc Removes `Name', whoever holds it. Once this returns, lookups on this
%% node return `undefined'.
-spec unregister_name(via_name()) -> ok.
unregister_name(ViaName) ->
    regent_register:unregister_name(ViaName).

%% @doc The pid registered under `Name', or `undefined'. A local ETS read:
%% it never blocks and never leaves the caller's process. A local owner that
%% has exited counts as unregistered even before its cleanup is applied (as
%% in Elixir's Registry): `gen:start' looks a name up before registering, so
%% a supervisor restarting a child at once must not see the dead one.
-spec whereis_name(via_name()) -> pid() | undefined.
whereis_name({Reg, Name}) ->
    regent_read:whereis(Reg, Name);
whereis_name({Reg, Name, _Value}) ->
    regent_read:whereis(Reg, Name);
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

%% ---- Elixir Registry's API -----------------------------------------------

%% @doc Registers the calling process under `Key' with `Value', as
%% `Registry.register/3'. In a unique registry: `{ok, Member}' (the
%% registry's member on this node), or `{error, {already_registered, Pid}}'
%% when a live process holds the key anywhere in the cluster, the caller
%% included (a holder that has exited is replaced, even on another node
%% whose cleanup has not committed yet: its node is asked). In a duplicate
%% registry it always adds an entry; one process may hold a key many
%% times. The entry goes when the process exits.
-spec register(registry(), key(), value()) ->
          {ok, pid()} | {error, {already_registered, pid()}}.
register(Reg, Key, Value) ->
    regent_register:register(Reg, Key, Value).

%% @doc Removes every entry of the calling process under `Key', as
%% `Registry.unregister/2'; other processes' entries stay. Always `ok'.
-spec unregister(registry(), key()) -> ok.
unregister(Reg, Key) ->
    regent_register:unregister(Reg, Key).

%% @equiv unregister_match(Registry, Key, Pattern, [])
-spec unregister_match(registry(), key(), term()) -> ok.
unregister_match(Reg, Key, Pattern) ->
    unregister_match(Reg, Key, Pattern, []).

%% @doc Removes the calling process's entries under `Key' whose value
%% matches `Pattern' and `Guards', as `Registry.unregister_match/4'.
-spec unregister_match(registry(), key(), term(), list()) -> ok.
unregister_match(Reg, Key, Pattern, Guards) ->
    regent_register:unregister_match(Reg, Key, Pattern, Guards).

%% @doc `[{Pid, Value}]' under `Key', from the whole cluster, as
%% `Registry.lookup/2': `[]' or one entry in a unique registry, any number
%% in a duplicate one. A local ETS read.
-spec lookup(registry(), key()) -> [{pid(), value()}].
lookup(Reg, Key) ->
    regent_read:lookup(Reg, Key).

%% @equiv match(Registry, Key, Pattern, [])
-spec match(registry(), key(), term()) -> [{pid(), value()}].
match(Reg, Key, Pattern) ->
    regent_read:match(Reg, Key, Pattern, []).

%% @doc `{Pid, Value}' pairs under `Key' whose value matches `Pattern' (an
%% ETS match pattern: `'_'' and `'$1'' variables) and `Guards', as
%% `Registry.match/4'.
-spec match(registry(), key(), term(), list()) -> [{pid(), value()}].
match(Reg, Key, Pattern, Guards) ->
    regent_read:match(Reg, Key, Pattern, Guards).

%% @doc The number of entries (names in a unique registry), constant time.
%% Includes, for a moment, entries of local processes that have just exited
%% and are being cleaned up.
-spec count(registry()) -> non_neg_integer().
count(Reg) ->
    regent_read:count(Reg).

%% @equiv count_match(Registry, Key, Pattern, [])
-spec count_match(registry(), key(), term()) -> non_neg_integer().
count_match(Reg, Key, Pattern) ->
    regent_read:count_match(Reg, Key, Pattern, []).

%% @doc The number of entries {@link match/4} would return.
-spec count_match(registry(), key(), term(), list()) -> non_neg_integer().
count_match(Reg, Key, Pattern, Guards) ->
    regent_read:count_match(Reg, Key, Pattern, Guards).

%% @doc Runs a match specification over `{Key, Pid, Value}' rows, as
%% `Registry.select/2', e.g. `regent:select(my_reg, [{{'$1', '$2', '_'},
%% [], [{{'$1', '$2'}}]}])'.
-spec select(registry(), ets:match_spec()) -> [term()].
select(Reg, Spec) ->
    regent_read:select(Reg, Spec).

%% @doc The number of rows {@link select/2} would select (its bodies must
%% return `true' for the rows to count), as `Registry.count_select/2'.
-spec count_select(registry(), ets:match_spec()) -> non_neg_integer().
count_select(Reg, Spec) ->
    regent_read:count_select(Reg, Spec).

%% @doc The keys `Pid' holds, once per entry, as `Registry.keys/2'. It
%% scans the table.
-spec keys(registry(), pid()) -> [key()].
keys(Reg, Pid) ->
    regent_read:keys(Reg, Pid).

%% @doc The values `Pid' holds under `Key', as `Registry.values/3'.
-spec values(registry(), key(), pid()) -> [value()].
values(Reg, Key, Pid) ->
    regent_read:values(Reg, Key, Pid).

%% @doc Replaces the value of the calling process's registration of `Key'
%% with `Fun(Old)', as `Registry.update_value/3': `{New, Old}', or `error'
%% when the caller does not hold `Key'. The write is checked against the
%% owner by the state machine, so it never changes another process's
%% entry. Unique registries only.
-spec update_value(registry(), key(), fun((value()) -> value())) ->
          {value(), value()} | error.
update_value(Reg, Key, Fun) ->
    regent_update:update_value(Reg, Key, Fun).

%% @equiv dispatch(Registry, Key, Dispatcher, [])
-spec dispatch(registry(), key(), dispatcher()) -> ok.
dispatch(Reg, Key, Dispatcher) ->
    regent_read:dispatch(Reg, Key, Dispatcher, []).

%% @doc Calls `Dispatcher' with every `{Pid, Value}' under `Key' in the
%% cluster, in the caller's process, unless there is none, as
%% `Registry.dispatch/4'. `Dispatcher' is a fun of one argument or
%% `{M, F, A}' (called as `apply(M, F, [Entries | A])'). What it raises
%% reaches the caller. `Opts' (`parallel') is accepted and ignored: there
%% is one partition.
-spec dispatch(registry(), key(), dispatcher(), list()) -> ok.
dispatch(Reg, Key, Dispatcher, Opts) ->
    regent_read:dispatch(Reg, Key, Dispatcher, Opts).

%% @doc The registry metadata under `Key' (an atom or a tuple): `{ok, Value}'
%% or `error', as `Registry.meta/2'. The same on every node.
-spec meta(registry(), atom() | tuple()) -> {ok, term()} | error.
meta(Reg, Key) ->
    regent_read:meta(Reg, Key).

%% @doc Stores registry metadata through the raft log, so every node reads
%% the same value, as `Registry.put_meta/3'. Once this returns, `meta/2'
%% on this node sees it.
-spec put_meta(registry(), atom() | tuple(), term()) -> ok.
put_meta(Reg, Key, Value) when is_atom(Key); is_tuple(Key) ->
    KeyBin = regent_write:key(meta_key, Key),
    regent_read:kind(Reg),
    regent_write:write({Reg, Key}, meta_put,
                       {KeyBin, regent_write:value_bytes(value, Value), always});
put_meta(_Reg, Key, _Value) ->
    error({badarg, {meta_key, Key}}).

%% @doc Deletes registry metadata, cluster-wide, as `Registry.delete_meta/2'.
-spec delete_meta(registry(), atom() | tuple()) -> ok.
delete_meta(Reg, Key) when is_atom(Key); is_tuple(Key) ->
    KeyBin = regent_write:key(meta_key, Key),
    regent_read:kind(Reg),
    regent_write:write({Reg, Key}, meta_del, KeyBin);
delete_meta(_Reg, Key) ->
    error({badarg, {meta_key, Key}}).

%% ---- consistent reads and cluster state ----------------------------------

%% @doc The owner of `Name' as of now, linearizable: the read goes through
%% the raft log like a write, so it reflects every write acknowledged
%% anywhere before it began.
-spec whereis_name_consistent(via_name()) -> pid() | undefined.
whereis_name_consistent(ViaName) ->
    regent_write:via_op(ViaName, whereis_name_consistent, consistent_read, read).

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
    regent_write:call(Reg, status, 5000).

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
    try regent_write:call(Reg, await_ready, Timeout)
    catch exit:{timeout, _} -> {error, timeout}
    end.

%% @doc Re-forms the registry around this member after its cluster lost the
%% quorum for good: the member leaves its raft cluster and bootstraps a new
%% one alone, with the names of its live local processes; other members
%% join it as they see it (their own names are claimed under the conflict
%% policy). Writes resume at once on this node.
-spec recover(registry()) -> ok.
recover(Reg) ->
    regent_write:call(Reg, recover, 30000).

%% ---- per-name metadata ---------------------------------------------------

%% @doc Replaces the metadata of a registered name, whoever calls.
-spec set_metadata(via_name(), term()) -> ok | {error, not_registered}.
set_metadata({Reg, _} = ViaName, Meta) ->
    Key = regent_write:key(ViaName),
    regent_read:unique_only(Reg, set_metadata),
    regent_write:write(ViaName, set_meta, {Key, regent_write:value_bytes(metadata, Meta)});
set_metadata(Other, _Meta) ->
    error({badarg, {not_a_via_name, Other}}).

%% @doc The metadata of a registered name (`undefined' when it was
%% registered without any).
-spec get_metadata(via_name()) -> {ok, term()} | {error, not_registered}.
get_metadata({Reg, Name}) ->
    regent_read:get_metadata(Reg, Name);
get_metadata(Other) ->
    error({badarg, {not_a_via_name, Other}}).

%% @equiv update_metadata(ViaName, Fun, 64)
-spec update_metadata(via_name(), fun((term()) -> term())) ->
          {ok, term()} | {error, not_registered | {conflict, pos_integer()}}.
update_metadata(ViaName, Fun) ->
    regent_update:update_metadata(ViaName, Fun, 64).

%% @doc Replaces the metadata of `Name' with `Fun(Old)', atomically, from
%% any process on any node (ProcessHub's `update/3'): a compare-and-set
%% through the log against the entry's version, tried again with the
%% entry as it is now when another write came first (after a random pause
%% whose range doubles with the conflicts met, up to 128 ms), at most
%% `Attempts' times. `{ok, New}', `{error, not_registered}', or `{error, {conflict,
%% Attempts}}' when every attempt met a concurrent write: an update is
%% never lost silently. `Fun' may run more than once. Unique registries.
-spec update_metadata(via_name(), fun((term()) -> term()), pos_integer()) ->
          {ok, term()} | {error, not_registered | {conflict, pos_integer()}}.
update_metadata(ViaName, Fun, Attempts) ->
    regent_update:update_metadata(ViaName, Fun, Attempts).

%% @doc Registers many names in one log entry: `[{Name, Pid, Meta}]' (Meta
%% `undefined' for none). Answers per name, in order: `yes' or `{no,
%% Holder}', each as `register_name/3' would. Readers see all of the call's
%% new names at once or none. At most 4 MiB of names, pids and metadata
%% (10,000 names take a few milliseconds). Unique registries.
-spec register_many(registry(), [{name(), pid(), term()}]) -> [yes | {no, pid()}].
register_many(Reg, Entries) ->
    regent_bulk:register_many(Reg, Entries).

%% @doc `register_many/2' of `Names' for one pid, without metadata.
-spec register_many(registry(), pid(), [name()]) -> [yes | {no, pid()}].
register_many(Reg, Pid, Names) when is_list(Names) ->
    regent_bulk:register_many(Reg, [{Name, Pid, undefined} || Name <- Names]);
register_many(_Reg, _Pid, Names) ->
    error({badarg, {not_a_list, Names}}).

%% @doc Removes many names, whoever holds them, in one log entry.
-spec unregister_many(registry(), [name()]) -> ok.
unregister_many(Reg, Names) ->
    regent_bulk:unregister_many(Reg, Names).

%% ---- events --------------------------------------------------------------

%% @equiv subscribe(Registry, Filter, [])
-spec subscribe(registry(), filter()) -> {ok, reference()}.
subscribe(Reg, Filter) ->
    subscribe(Reg, Filter, []).

%% @doc Subscribes the calling process to the registry's changes, made
%% anywhere in the cluster, in log order (docs/events.md). `Filter' is
%% `all', `{key, Key}', or `{match, MatchSpec}' over `{Key, Pid, Value}'.
%% The caller first gets `{regent_resync, Ref, Index, Entries}' (the
%% matching entries as of log index `Index'), then `{regent_event, Ref,
%% Index, Event}' per change, `Event' being `{register | update |
%% unregister, Key, Pid, Value}'. Whenever it may have missed changes (its
%% mailbox passed `max_queue' messages, 10,000 by default; the daemon
%% restarted; the node re-synced after a partition) it gets another
%% `regent_resync' and carries on from there. Options: `{max_queue, N}'.
-spec subscribe(registry(), filter(), [{max_queue, pos_integer()}]) -> {ok, reference()}.
subscribe(Reg, Filter, Opts) when is_list(Opts) ->
    regent_events:check_filter(Filter),
    Max = proplists:get_value(max_queue, Opts, 10000),
    is_integer(Max) andalso Max > 0 orelse error({badarg, {max_queue, Max}}),
    [error({badarg, {unknown_option, O}}) || O <- Opts, not is_tuple(O) orelse element(1, O) =/= max_queue],
    regent_read:kind(Reg),
    regent_write:call(Reg, {subscribe, self(), Filter, Max}, 5000);
subscribe(_Reg, _Filter, Opts) ->
    error({badarg, {options, Opts}}).

%% @doc Ends a subscription of the calling process; messages already sent
%% stay in its mailbox.
-spec unsubscribe(registry(), reference()) -> ok.
unsubscribe(Reg, Ref) when is_reference(Ref) ->
    regent_write:call(Reg, {unsubscribe, Ref, self()}, 5000);
unsubscribe(_Reg, Ref) ->
    error({badarg, {not_a_reference, Ref}}).

%% @private Opts over the application environment over the defaults,
%% validated: what regent_member runs with.
-spec options(options()) -> #{atom() => term()}.
options(Opts) ->
    regent_options:options(Opts).

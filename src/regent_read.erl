%% @doc Reads of a registry's mirror, in the caller's process: no message
%% to the member and no network hop. The member owns the tables (the
%% entries in the ETS table named after the registry, its metadata in a
%% second table) and publishes the registry's kind and metadata table in
%% `persistent_term' under `{regent, Registry}' while it runs.
%%
%% Rows are `{Key, Pid, Value}' in both kinds of registry: a `set' for
%% unique keys, a `duplicate_bag' for duplicate keys. So a match
%% specification written for Elixir's Registry (over `{key, pid, value}')
%% runs on the table as it is.
-module(regent_read).

-export([kind/1, whereis/2, lookup/2, entries/2, match/4, count/1,
         count_match/4, select/2, count_select/2, keys/2, values/3,
         dispatch/4, meta/2, get_metadata/2, dead_local_holder/3, unique_only/2]).

%% @private unique | duplicate, or the exit `{regent_not_running, Reg}'.
-spec kind(regent:registry()) -> unique | duplicate.
kind(Reg) ->
    element(1, info(Reg)).

%% @private `{badarg, {not_supported_for_duplicate_registry, Function}}'
%% unless Reg has unique keys.
-spec unique_only(regent:registry(), atom()) -> true.
unique_only(Reg, Function) ->
    kind(Reg) =:= unique
        orelse error({badarg, {not_supported_for_duplicate_registry, Function}}).

info(Reg) when is_atom(Reg) ->
    case persistent_term:get({regent, Reg}, undefined) of
        undefined -> exit({regent_not_running, Reg});
        Info -> Info
    end;
info(Reg) ->
    error({badarg, {not_a_registry_name, Reg}}).

rows(Reg, Key) ->
    try ets:lookup(Reg, Key)
    catch error:badarg -> not_running(Reg)
    end.

not_running(Reg) ->
    info(Reg), % a registry that never ran exits here
    exit({regent_not_running, Reg}).

%% @private The rows under `Key'. In a unique registry a local owner that
%% has exited counts as gone even before its cleanup is applied (as in
%% Elixir's Registry): `gen:start' looks a name up before registering, so
%% a supervisor restarting a child at once must not see the dead one.
-spec entries(regent:registry(), term()) -> [{term(), pid(), term()}].
entries(Reg, Key) ->
    case kind(Reg) of
        unique -> live(rows(Reg, Key));
        duplicate -> rows(Reg, Key)
    end.

live([{_, Pid, _}] = Row) when node(Pid) =:= node() ->
    case is_process_alive(Pid) of
        true -> Row;
        false -> []
    end;
live(Row) ->
    Row.

%% @private
%% The state machine lets a registration replace a holder the caller says
%% is dead: a local holder that has exited but whose unregister is still on
%% its way. Then `no' would be wrong, and waiting for the cleanup is not
%% needed. The canonical pid of such a holder, or `<<>>'.
-spec dead_local_holder(regent:registry(), term(), pid()) -> binary().
dead_local_holder(Reg, Name, Pid) ->
    case ets:lookup(Reg, Name) of
        [{_, Holder, _}] when Holder =/= Pid, node(Holder) =:= node() ->
            case is_process_alive(Holder) of
                true -> <<>>;
                false -> regent_name:encode_pid(Holder)
            end;
        _ ->
            <<>>
    end.

%% @private
-spec whereis(regent:registry(), term()) -> pid() | undefined.
whereis(Reg, Key) ->
    case kind(Reg) of
        unique ->
            case live(rows(Reg, Key)) of
                [{_, Pid, _}] -> Pid;
                [] -> undefined
            end;
        duplicate ->
            error({badarg, {via_not_supported_for_duplicate_registry, Reg}})
    end.

%% @private
-spec lookup(regent:registry(), term()) -> [{pid(), term()}].
lookup(Reg, Key) ->
    [{Pid, Value} || {_, Pid, Value} <- entries(Reg, Key)].

%% @private
-spec get_metadata(regent:registry(), term()) -> {ok, term()} | {error, not_registered}.
get_metadata(Reg, Key) ->
    case whereis_row(Reg, Key) of
        [{_, _, Meta}] -> {ok, Meta};
        [] -> {error, not_registered}
    end.

whereis_row(Reg, Key) ->
    whereis(Reg, Key), % the kind check
    live(rows(Reg, Key)).

%% @private `{Pid, Value}' under `Key' whose value matches `Pattern' and
%% `Guards'. The key's rows are looked up, then the match specification
%% runs over them only: the key is never part of a pattern, so a key that
%% holds '_' or '$1' is still just a key.
-spec match(regent:registry(), term(), term(), list()) -> [{pid(), term()}].
match(Reg, Key, Pattern, Guards) ->
    Spec = [{{'_', '_', Pattern}, guards(Guards),
             [{{{element, 2, '$_'}, {element, 3, '$_'}}}]}],
    ets:match_spec_run(entries(Reg, Key), compile(Spec, {Pattern, Guards})).

%% @private
-spec count_match(regent:registry(), term(), term(), list()) -> non_neg_integer().
count_match(Reg, Key, Pattern, Guards) ->
    Spec = [{{'_', '_', Pattern}, guards(Guards), [true]}],
    length(ets:match_spec_run(entries(Reg, Key), compile(Spec, {Pattern, Guards}))).

guards(Guards) when is_list(Guards) -> Guards;
guards(Guards) -> error({badarg, {guards, Guards}}).

compile(Spec, Given) ->
    try ets:match_spec_compile(Spec)
    catch error:badarg -> error({badarg, {bad_match_spec, Given}})
    end.

%% @private
-spec count(regent:registry()) -> non_neg_integer().
count(Reg) ->
    case ets:info(Reg, size) of
        undefined -> not_running(Reg);
        N -> N
    end.

%% @private A match specification over `{Key, Pid, Value}' rows, checked
%% clause by clause as Elixir's Registry does.
-spec select(regent:registry(), ets:match_spec()) -> [term()].
select(Reg, Spec) ->
    check_spec(Spec),
    try ets:select(Reg, Spec)
    catch error:badarg -> bad_spec(Reg, Spec)
    end.

%% @private
-spec count_select(regent:registry(), ets:match_spec()) -> non_neg_integer().
count_select(Reg, Spec) ->
    check_spec(Spec),
    try ets:select_count(Reg, Spec)
    catch error:badarg -> bad_spec(Reg, Spec)
    end.

check_spec(Spec) when is_list(Spec) ->
    [error({badarg, {bad_match_spec, Spec}})
     || Clause <- Spec, not is_clause(Clause)],
    ok;
check_spec(Spec) ->
    error({badarg, {bad_match_spec, Spec}}).

is_clause({{_, _, _}, Guards, Body}) -> is_list(Guards) andalso is_list(Body);
is_clause(_) -> false.

bad_spec(Reg, Spec) ->
    ets:info(Reg) =:= undefined andalso not_running(Reg),
    error({badarg, {bad_match_spec, Spec}}).

%% @private Every key `Pid' holds, once per entry. A scan of the table.
-spec keys(regent:registry(), pid()) -> [term()].
keys(Reg, Pid) when is_pid(Pid) ->
    kind(Reg),
    try ets:select(Reg, [{{'$1', Pid, '_'}, [], ['$1']}])
    catch error:badarg -> not_running(Reg)
    end;
keys(_Reg, Pid) ->
    error({badarg, {not_a_pid, Pid}}).

%% @private
-spec values(regent:registry(), term(), pid()) -> [term()].
values(Reg, Key, Pid) when is_pid(Pid) ->
    kind(Reg),
    [Value || {_, P, Value} <- rows(Reg, Key), P =:= Pid];
values(_Reg, _Key, Pid) ->
    error({badarg, {not_a_pid, Pid}}).

%% @private Calls the dispatcher with every `{Pid, Value}' under `Key', in
%% the caller's process, if there is any. What the dispatcher raises
%% reaches the caller, as in Registry.
-spec dispatch(regent:registry(), term(), regent:dispatcher(), list()) -> ok.
dispatch(Reg, Key, Dispatcher, Opts) when is_list(Opts) ->
    check_dispatcher(Dispatcher),
    case lookup(Reg, Key) of
        [] -> ok;
        Entries -> run(Dispatcher, Entries)
    end,
    ok;
dispatch(_Reg, _Key, _Dispatcher, Opts) ->
    error({badarg, {options, Opts}}).

check_dispatcher(F) when is_function(F, 1) -> ok;
check_dispatcher({M, F, A}) when is_atom(M), is_atom(F), is_list(A) -> ok;
check_dispatcher(Other) -> error({badarg, {dispatcher, Other}}).

run({M, F, A}, Entries) -> apply(M, F, [Entries | A]);
run(Fun, Entries) -> Fun(Entries).

%% @private
-spec meta(regent:registry(), atom() | tuple()) -> {ok, term()} | error.
meta(Reg, Key) when is_atom(Key); is_tuple(Key) ->
    {_, Tab} = info(Reg),
    try ets:lookup(Tab, Key) of
        [{_, Value}] -> {ok, Value};
        [] -> error
    catch error:badarg -> not_running(Reg)
    end;
meta(_Reg, Key) ->
    error({badarg, {meta_key, Key}}).

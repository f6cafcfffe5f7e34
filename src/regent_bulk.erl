%% @doc regent:register_many/2,3 and unregister_many/2: many names in one
%% op, so in one log entry. The state machine handles each name as its
%% single op would, in order, and answers per name; the member puts the
%% entry's new names into its table with one `ets:insert/2', so no reader
%% sees some of one call's registrations and not the others
%% (regent_mirror:changes/2). Removals are applied one after the other,
%% within one message of the member. ProcessHub's `bulk_insert',
%% `bulk_delete' and `clear_all' map onto these (docs/events.md).
-module(regent_bulk).

-export([register_many/2, unregister_many/2]).

%% An op of a bulk call must fit one raft log entry comfortably.
-define(MANY_BYTES_MAX, 4 * 1024 * 1024).

%% @private `[{Name, Pid, Meta}]' (Meta `undefined' for none): per name,
%% in order, `yes' or `{no, Holder}'. Unique registries.
-spec register_many(regent:registry(), [{term(), pid(), term()}]) ->
          [yes | {no, pid()}].
register_many(_Reg, []) ->
    [];
register_many(Reg, Entries) when is_list(Entries) ->
    regent_read:unique_only(Reg, register_many),
    Items = [item(Reg, E) || E <- Entries],
    size_ok(Items, [K || {K, _, _, _} <- Items]),
    {many, Answers} = regent_write:write({Reg, register_many}, register_many, Items),
    [case A of ok -> yes; {no, H} -> {no, regent_name:decode(H)} end || A <- Answers];
register_many(_Reg, Entries) ->
    error({badarg, {not_a_list, Entries}}).

item(Reg, {Name, Pid, Meta}) when is_pid(Pid) ->
    Key = regent_write:key({Reg, Name}),
    regent_register:connected(Pid),
    MetaBin = case Meta of
                  undefined -> <<>>;
                  _ -> regent_write:value_bytes(metadata, Meta)
              end,
    {Key, regent_name:encode_pid(Pid), MetaBin, regent_read:dead_local_holder(Reg, Name, Pid)};
item(_Reg, Other) ->
    error({badarg, {not_a_name_pid_meta, Other}}).

%% @private Removes the names whoever holds them.
-spec unregister_many(regent:registry(), [term()]) -> ok.
unregister_many(_Reg, []) ->
    ok;
unregister_many(Reg, Names) when is_list(Names) ->
    regent_read:unique_only(Reg, unregister_many),
    Keys = [regent_write:key({Reg, N}) || N <- Names],
    size_ok(Keys, Keys),
    regent_write:write({Reg, unregister_many}, unregister_many, Keys);
unregister_many(_Reg, Names) ->
    error({badarg, {not_a_list, Names}}).

size_ok(Items, Keys) ->
    Bytes = erlang:external_size(Items),
    Bytes =< ?MANY_BYTES_MAX
        orelse error({badarg, {too_large, Bytes, ?MANY_BYTES_MAX}}),
    length(Keys) =< 1 bsl 20 orelse error({badarg, too_many_names}),
    ok.

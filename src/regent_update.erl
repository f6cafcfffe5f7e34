%% @doc regent:update_metadata/2,3: an atomic read-modify-write of a name's
%% metadata from any process on any node, as ProcessHub's `update/3'.
%%
%% The entry is read through the log (READ_ENTRY: holder, version,
%% metadata), `Fun' computes the new metadata in the caller, and a
%% compare-and-set (SET_META_IF_VERSION) writes it only if the name still
%% has that holder at that version. Versions come from the state machine's
%% write counter and are never reused, so a name unregistered and
%% registered again meanwhile is a conflict too. A conflict answers with
%% the entry as it is then, so the next attempt needs no read of its own;
%% after `Attempts' conflicts the caller gets `{error, {conflict,
%% Attempts}}': an update is never lost silently. `Fun' may run more than
%% once; what it raises reaches the caller, and nothing is written then.
-module(regent_update).

-export([update_metadata/3, update_value/3]).

%% @private
-spec update_metadata(regent:via_name(), fun((term()) -> term()), pos_integer()) ->
          {ok, term()} | {error, not_registered | {conflict, pos_integer()}}.
update_metadata({Reg, _} = ViaName, Fun, Attempts) when is_function(Fun, 1),
                                                        is_integer(Attempts), Attempts > 0 ->
    Key = regent_write:key(ViaName),
    regent_read:unique_only(Reg, update_metadata),
    attempt(ViaName, Key, regent_write:write(ViaName, read_entry, Key), Fun, Attempts, Attempts);
update_metadata({_, _}, Fun, _Attempts) when not is_function(Fun, 1) ->
    error({badarg, {not_a_fun1, Fun}});
update_metadata({_, _}, _Fun, Attempts) ->
    error({badarg, {attempts, Attempts}});
update_metadata(Other, _Fun, _Attempts) ->
    error({badarg, {not_a_via_name, Other}}).

attempt(_ViaName, _Key, undefined, _Fun, _Left, _Attempts) ->
    {error, not_registered};
attempt(_ViaName, _Key, _Entry, _Fun, 0, Attempts) ->
    {error, {conflict, Attempts}};
attempt(ViaName, Key, {Pid, Version, MetaBin}, Fun, Left, Attempts) ->
    New = Fun(meta(MetaBin)),
    Args = {Key, Pid, Version, regent_write:value_bytes(metadata, New)},
    case regent_write:write(ViaName, set_meta_if_version, Args) of
        ok -> {ok, New};
        {error, not_registered} -> {error, not_registered};
        {conflict, Now} ->
            backoff(Attempts - Left),
            attempt(ViaName, Key, Now, Fun, Left - 1, Attempts)
    end.

%% After a conflict, a random pause whose range doubles with the conflicts
%% met, up to 128 ms: writers that collide spread out instead of colliding
%% again in step (60 writers on one name all got through in tests).
backoff(Conflicts) ->
    timer:sleep(rand:uniform(1 bsl min(Conflicts, 7)) - 1).

%% @private Registry's update_value/3: the caller's own key; the state
%% machine checks the owner (SET_META_IF_OWNER), so the value never lands
%% on an entry someone else holds by then.
-spec update_value(regent:registry(), term(), fun((term()) -> term())) ->
          {term(), term()} | error.
update_value(Reg, Key, Fun) when is_function(Fun, 1) ->
    KeyBin = regent_write:key({Reg, Key}),
    regent_read:unique_only(Reg, update_value),
    Self = self(),
    case regent_read:lookup(Reg, Key) of
        [{Self, Old}] ->
            New = Fun(Old),
            Args = {KeyBin, regent_name:encode_pid(Self), regent_write:value_bytes(value, New)},
            case regent_write:write({Reg, Key}, set_meta_if_owner, Args) of
                ok -> {New, Old};
                {error, not_registered} -> error
            end;
        _ ->
            error
    end;
update_value(_Reg, _Key, Fun) ->
    error({badarg, {not_a_fun1, Fun}}).

meta(<<>>) -> undefined;
meta(Bin) -> binary_to_term(Bin).

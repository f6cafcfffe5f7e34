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

-export([update_metadata/3]).

%% @private
-spec update_metadata(regent:via_name(), fun((term()) -> term()), pos_integer()) ->
          {ok, term()} | {error, not_registered | {conflict, pos_integer()}}.
update_metadata({Reg, _} = ViaName, Fun, Attempts) when is_function(Fun, 1),
                                                        is_integer(Attempts), Attempts > 0 ->
    Key = regent_write:key(ViaName),
    regent_read:kind(Reg) =:= unique
        orelse error({badarg, {not_supported_for_duplicate_registry, update_metadata}}),
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

meta(<<>>) -> undefined;
meta(Bin) -> binary_to_term(Bin).

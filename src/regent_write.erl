%% @doc Writes from the caller's process to its registry's member: argument
%% encoding, the call, and the member's answers turned into the API's
%% results and exits. Every write goes through the raft log.
-module(regent_write).

-export([key/1, key/2, value_bytes/2, write/3, via_op/4, call/3, member/1]).

-define(META_MAX, 65536).

%% @private The canonical bytes of a name, or `{badarg, Why}'.
-spec key(regent:via_name()) -> binary().
key({Reg, Name}) when is_atom(Reg) ->
    key(name, Name);
key(Other) ->
    error({badarg, {not_a_via_name, Other}}).

%% @private The canonical bytes of `Term' used as `What' (a name, a
%% metadata key), or `{badarg, ...}' naming it.
-spec key(name | meta_key, term()) -> binary().
key(What, Term) ->
    case regent_name:encode(Term) of
        {ok, Key} -> Key;
        {error, {unsupported_term, T}} -> error({badarg, {unsupported_term(What), T}});
        {error, Why} -> error({badarg, Why})
    end.

unsupported_term(name) -> unsupported_name_term;
unsupported_term(meta_key) -> unsupported_meta_key_term.

%% @private A value or metadata as stored: external format, at most 65536
%% bytes. Deterministic, so that the owner can name one of its duplicate
%% entries by its bytes again (regent:unregister_match/4).
-spec value_bytes(metadata | value, term()) -> binary().
value_bytes(What, Value) ->
    Bin = term_to_binary(Value, [deterministic]),
    byte_size(Bin) =< ?META_MAX orelse error({badarg, too_large(What)}),
    Bin.

too_large(metadata) -> metadata_too_large;
too_large(value) -> value_too_large.

%% @private One write through the member: its answer, or the exit that
%% stands for "no answer".
-spec write({regent:registry(), term()}, atom(), term()) -> term().
write({Reg, Name}, Kind, Args) ->
    case call(Reg, {write, Kind, Args}, infinity) of
        {error, unavailable} -> exit({regent_unavailable, {Reg, Name}});
        {error, overloaded} -> exit({regent_overloaded, {Reg, Name}});
        {error, bad_request} -> error({badarg, {rejected_by_regentd, Name}});
        Answer -> Answer
    end.

%% @private One op on one via name of a unique registry (an unregister, a
%% consistent read), in a telemetry span named Event; Function names the
%% API call for `not_supported_for_duplicate_registry'.
-spec via_op(term(), atom(), atom(), atom()) -> term().
via_op({Reg, Name, _Value}, Function, Event, Kind) ->
    via_op({Reg, Name}, Function, Event, Kind);
via_op({Reg, Name} = ViaName, Function, Event, Kind) ->
    Key = key(ViaName),
    regent_read:unique_only(Reg, Function),
    regent_telemetry:span([Event], #{registry => Reg, name => Name},
                          fun() -> write(ViaName, Kind, Key) end);
via_op(Other, _Function, _Event, _Kind) ->
    error({badarg, {not_a_via_name, Other}}).

%% @private The member answers every write by its deadline, so calls wait
%% without a timeout of their own. A member that stops (or is gone) while
%% we wait is `regent_not_running', as when it was not there; a crash keeps
%% its reason.
-spec call(regent:registry(), term(), timeout()) -> term().
call(Reg, Msg, Timeout) ->
    Pid = member(Reg),
    try gen_server:call(Pid, Msg, Timeout)
    catch exit:{Why, {gen_server, call, _}} when Why =:= noproc;
                                                Why =:= normal;
                                                Why =:= shutdown;
                                                element(1, Why) =:= shutdown ->
            exit({regent_not_running, Reg})
    end.

%% @private The member's pid, or the exit `{regent_not_running, Reg}'.
-spec member(regent:registry()) -> pid().
member(Reg) when is_atom(Reg) ->
    case whereis(Reg) of
        undefined -> exit({regent_not_running, Reg});
        Pid -> Pid
    end;
member(Reg) ->
    error({badarg, {not_a_registry_name, Reg}}).

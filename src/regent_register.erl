%% @doc Registering and unregistering, in the caller's process: the via
%% contract's `register_name' and `unregister_name', and Registry's
%% `register/3', `unregister/2' and `unregister_match/3,4'.
%%
%% A registration names the holder it may replace: a local holder that has
%% exited (regent_read:dead_local_holder/3), or, after a refusal, a holder
%% on another node that its node says has exited. Each write is a span of
%% telemetry events (regent_telemetry).
-module(regent_register).

-export([register_name/3, register/3, unregister_name/1, unregister/2,
         unregister_match/4, connected/1]).

%% @private `yes' or `no' for Pid under a via name (MetaBin: `<<>>' for
%% no metadata).
-spec register_name(regent:via_name(), pid(), binary()) -> yes | no.
register_name({Reg, Name} = ViaName, Pid, MetaBin) when is_pid(Pid) ->
    Key = regent_write:key(ViaName),
    regent_read:unique_only(Reg, register_name),
    connected(Pid),
    case claim(Reg, Name, Key, Pid, register, MetaBin) of
        {no, _Holder} -> no;
        yes -> yes
    end;
register_name({_, _} = ViaName, Pid, _MetaBin) ->
    regent_write:key(ViaName),
    error({badarg, {not_a_pid, Pid}});
register_name(Other, _Pid, _MetaBin) ->
    error({badarg, {not_a_via_name, Other}}).

%% @private Registry's register/3: the caller, with a value.
-spec register(regent:registry(), term(), term()) ->
          {ok, pid()} | {error, {already_registered, pid()}}.
register(Reg, Key, Value) ->
    KeyBin = regent_write:key({Reg, Key}),
    ValueBin = regent_write:value_bytes(value, Value),
    case regent_read:kind(Reg) of
        unique ->
            case claim(Reg, Key, KeyBin, self(), register_new, ValueBin) of
                {no, Holder} -> {error, {already_registered, Holder}};
                Answer -> Answer
            end;
        duplicate ->
            Args = {KeyBin, regent_name:encode_pid(self()), ValueBin},
            case regent_write:write({Reg, Key}, group_add, Args) of
                {error, full} -> error({badarg, {values_over_limit, Key}});
                Answer -> Answer
            end
    end.

%% A REGISTER (via names: `yes') or REGISTER_NEW (register/3: `{ok,
%% Member}') of a unique name, or `{no, Holder}'.
claim(Reg, Name, Key, Pid, Kind, MetaBin) ->
    Write = fun(Replace) ->
                    regent_write:write({Reg, Name}, Kind,
                                       {Key, regent_name:encode_pid(Pid), MetaBin, Replace})
            end,
    regent_telemetry:span([register], #{registry => Reg, name => Name},
                          fun() ->
                                  First = Write(regent_read:dead_local_holder(Reg, Name, Pid)),
                                  unless_dead_remote(First, Write)
                          end).

%% A holder on another node that has exited keeps its name until its own
%% member's unregister commits. A registration refused by such a holder is
%% made again, allowed to replace it: a pid that is dead stays dead, so
%% taking its name is safe, and `no' then means a live holder, as it does
%% for local ones. Its node is asked only after a refusal; a node that does
%% not answer within a second counts its process as alive (no is kept).
unless_dead_remote({no, Holder} = No, Write) when node(Holder) =/= node() ->
    case remote_alive(Holder) of
        true -> No;
        false -> Write(regent_name:encode_pid(Holder))
    end;
unless_dead_remote(Answer, _Write) ->
    Answer.

remote_alive(Pid) ->
    try erpc:call(node(Pid), erlang, is_process_alive, [Pid], 1000)
    catch error:{erpc, _} -> true
    end.

%% @private A pid of a node we are not connected to could never be
%% monitored, and would hold its name until a leader change purged it.
-spec connected(pid()) -> true.
connected(Pid) ->
    node(Pid) =:= node() orelse lists:member(node(Pid), nodes(connected))
        orelse error({badarg, {pid_of_unconnected_node, Pid}}).

%% @private The via contract's unregister: whoever holds the name.
-spec unregister_name(regent:via_name()) -> ok.
unregister_name(ViaName) ->
    regent_write:via_op(ViaName, unregister_name, unregister, unregister).

%% @private Registry's unregister/2: the caller's entries only.
-spec unregister(regent:registry(), term()) -> ok.
unregister(Reg, Key) ->
    KeyBin = regent_write:key({Reg, Key}),
    Self = regent_name:encode_pid(self()),
    {Kind, Args} = case regent_read:kind(Reg) of
                       unique -> {unregister_if_owner, {KeyBin, Self}};
                       duplicate -> {group_del, {KeyBin, Self, all, <<>>}}
                   end,
    regent_telemetry:span([unregister], #{registry => Reg, name => Key},
                          fun() -> regent_write:write({Reg, Key}, Kind, Args) end).

%% @private Registry's unregister_match/4: the caller's entries whose value
%% matches, found in the mirror (the caller's own entries there reflect
%% its own writes).
-spec unregister_match(regent:registry(), term(), term(), list()) -> ok.
unregister_match(Reg, Key, Pattern, Guards) ->
    KeyBin = regent_write:key({Reg, Key}),
    Self = self(),
    Mine = [V || {P, V} <- regent_read:match(Reg, Key, Pattern, Guards), P =:= Self],
    SelfBin = regent_name:encode_pid(Self),
    case {regent_read:kind(Reg), Mine} of
        {_, []} ->
            ok;
        {unique, _} ->
            regent_write:write({Reg, Key}, unregister_if_owner, {KeyBin, SelfBin});
        {duplicate, _} ->
            [regent_write:write({Reg, Key}, group_del,
                                {KeyBin, SelfBin, one, regent_write:value_bytes(value, V)})
             || V <- lists:usort(Mine)],
            ok
    end.

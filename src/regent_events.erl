%% @doc Registry's `listeners': the member tells the named local processes
%% of every registration and unregistration it applies, whichever node
%% made it, as `{register, Registry, Key, Pid, Value}' and `{unregister,
%% Registry, Key, Pid}'. Called from the mirror (regent_mirror,
%% regent_duplicate) where a change is applied, so events follow log order.
%%
%% Unlike Elixir's Registry, which tells only of explicit calls on its own
%% node, an entry removed because its process exited, or its node went
%% down, is told too. A send never blocks the member; a listener name that
%% is not registered is skipped.
-module(regent_events).

-export([registered/4, unregistered/3]).

-include("regent_member.hrl").

%% @private
-spec registered(term(), pid(), term(), #st{}) -> ok.
registered(Key, Pid, Value, #st{reg = Reg} = S) ->
    notify({register, Reg, Key, Pid, Value}, S).

%% @private
-spec unregistered(term(), pid(), #st{}) -> ok.
unregistered(Key, Pid, #st{reg = Reg} = S) ->
    notify({unregister, Reg, Key, Pid}, S).

notify(Msg, #st{opts = #{listeners := Listeners}}) ->
    [Pid ! Msg || L <- Listeners, Pid <- [whereis(L)], is_pid(Pid)],
    ok.

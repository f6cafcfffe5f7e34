%% @doc Events: who is told of the changes the mirror applies.
%%
%% Two kinds of audience, both local processes on this node, both told of
%% changes made anywhere in the cluster, in log order:
%% <ul>
%% <li>Registry's `listeners' (named at start): `{register, Registry, Key,
%%   Pid, Value}' and `{unregister, Registry, Key, Pid}'. Unlike Elixir's
%%   Registry, which tells only of explicit calls on its own node, an entry
%%   removed because its process exited, or its node went down, is told
%%   too.</li>
%% <li>Subscriptions (`regent:subscribe/2,3'): `{regent_event, Ref, Index,
%%   Event}' with the raft log index of the entry that made the change, and
%%   `Event' one of `{register, Key, Pid, Value}', `{update, Key, Pid,
%%   Value}', `{unregister, Key, Pid, Value}', for the changes whose
%%   `{Key, Pid, Value}' passes the subscription's filter. A subscription
%%   starts with `{regent_resync, Ref, Index, Entries}', the matching
%%   entries as of `Index', and gets another whenever it may have missed
%%   changes: its mailbox passed its bound (events are then dropped until
%%   it has read half of them), or the mirror was rebuilt from a DUMP (a
%%   daemon restart, a re-sync after a partition, a member that fell
%%   behind).</li>
%% </ul>
%% A send never blocks the member: a listener name that is not registered
%% is skipped, and a subscriber that does not read is cut off by its bound
%% rather than slowing anyone. Called by regent_mirror and regent_duplicate
%% where a change is applied, by regent_member for subscribe calls and the
%% subscribers' 'DOWN', and after a DUMP. Owns the fields `subs',
%% `lag_timer' and `applied_index'.
-module(regent_events).

-export([told/2, listeners/2, changed/2, subscribe/4, unsubscribe/3,
         subscriber_down/3, resync_all/1, lag_check/1, check_filter/1]).

-include("regent_member.hrl").

%% How often lagging subscribers are looked at.
-define(LAG_CHECK_MS, 50).

-type event() :: {register | update | unregister, Key :: term(), pid(), Value :: term()}.

%% @private One change, told to the listeners and the subscriptions.
-spec told(event(), #st{}) -> #st{}.
told(Event, S) ->
    listeners(Event, S),
    changed(Event, S).

%% @private Registry listeners only: a registration, or an entry that went
%% (for a duplicate key: the last of a pid's entries under it).
-spec listeners(event(), #st{}) -> ok.
listeners(_Event, #st{opts = #{listeners := []}}) ->
    ok;
listeners({register, Key, Pid, Value}, #st{reg = Reg} = S) ->
    notify({register, Reg, Key, Pid, Value}, S);
listeners({unregister, Key, Pid, _Value}, #st{reg = Reg} = S) ->
    notify({unregister, Reg, Key, Pid}, S);
listeners({update, _, _, _}, _S) ->
    ok.

notify(Msg, #st{opts = #{listeners := Listeners}}) ->
    [Pid ! Msg || L <- Listeners, Pid <- [whereis(L)], is_pid(Pid)],
    ok.

%% @private Subscriptions only: one change at the index being applied.
-spec changed(event(), #st{}) -> #st{}.
changed(_Event, #st{subs = Subs} = S) when map_size(Subs) =:= 0 ->
    S;
changed({_, Key, Pid, Value} = Event, #st{subs = Subs, applied_index = Index} = S) ->
    Entry = {Key, Pid, Value},
    maps:fold(fun(Ref, Sub, Acc) -> deliver(Ref, Sub, Entry, Event, Index, Acc) end,
              S, Subs).

deliver(Ref, #{filter := Filter} = Sub, Entry, Event, Index, S) ->
    case matches(Filter, Entry) of
        false -> S;
        true -> send_event(Ref, Sub, Event, Index, S)
    end.

send_event(_Ref, #{lagging := true}, _Event, _Index, S) ->
    S; % dropped: a resync follows once it has read
send_event(Ref, #{pid := Pid, max_queue := Max} = Sub, Event, Index, S) ->
    case queue_len(Pid) > Max of
        false ->
            Pid ! {regent_event, Ref, Index, Event},
            S;
        true ->
            arm_lag_check(S#st{subs = maps:put(Ref, Sub#{lagging := true}, S#st.subs)})
    end.

queue_len(Pid) ->
    case erlang:process_info(Pid, message_queue_len) of
        {message_queue_len, N} -> N;
        undefined -> 0 % gone: its 'DOWN' is on its way
    end.

matches(all, _Entry) -> true;
matches({key, Key}, {Key, _, _}) -> true;
matches({key, _}, _) -> false;
matches({match, Compiled}, Entry) -> ets:match_spec_run([Entry], Compiled) =/= [].

%% @private regent:subscribe/3 on the member: monitors the subscriber and
%% sends its first resync before the reply, so no change falls between.
-spec subscribe(pid(), term(), pos_integer(), #st{}) -> {reference(), #st{}}.
subscribe(Pid, Filter, MaxQueue, S) ->
    Ref = erlang:monitor(process, Pid),
    Sub = #{pid => Pid, filter => compile(Filter), max_queue => MaxQueue,
            lagging => false},
    resync(Ref, Sub, S),
    {Ref, S#st{subs = maps:put(Ref, Sub, S#st.subs)}}.

%% @private In the subscriber, before the call: a filter the member could
%% not compile raises there, naming it.
-spec check_filter(term()) -> ok.
check_filter(all) -> ok;
check_filter({key, _}) -> ok;
check_filter({match, Spec}) when is_list(Spec) ->
    try ets:match_spec_compile(Spec) of _ -> ok
    catch error:badarg -> error({badarg, {bad_match_spec, Spec}})
    end;
check_filter(Other) -> error({badarg, {filter, Other}}).

compile(all) -> all;
compile({key, _} = F) -> F;
compile({match, Spec}) -> {match, ets:match_spec_compile(Spec)}.

%% @private
-spec unsubscribe(reference(), pid(), #st{}) -> #st{}.
unsubscribe(Ref, Pid, #st{subs = Subs} = S) ->
    case maps:find(Ref, Subs) of
        {ok, #{pid := Pid}} ->
            erlang:demonitor(Ref, [flush]),
            S#st{subs = maps:remove(Ref, Subs)};
        _ ->
            S
    end.

%% @private A 'DOWN' that may be a subscriber's; false if it is not.
-spec subscriber_down(reference(), pid(), #st{}) -> {true, #st{}} | false.
subscriber_down(Ref, _Pid, #st{subs = Subs} = S) ->
    case maps:is_key(Ref, Subs) of
        true -> {true, S#st{subs = maps:remove(Ref, Subs)}};
        false -> false
    end.

%% @private After the mirror was rebuilt from a DUMP: every subscription
%% may have missed changes.
-spec resync_all(#st{}) -> #st{}.
resync_all(#st{subs = Subs} = S) ->
    maps:foreach(fun(Ref, Sub) -> resync(Ref, Sub, S) end, Subs),
    S#st{subs = maps:map(fun(_, Sub) -> Sub#{lagging := false} end, Subs)}.

resync(Ref, #{pid := Pid, filter := Filter}, #st{reg = Tab, applied_index = Index}) ->
    Entries = [E || {_, _, _} = E <- entries(Tab, Filter), matches(Filter, E)],
    Pid ! {regent_resync, Ref, Index, Entries},
    ok.

entries(Tab, {key, Key}) -> ets:lookup(Tab, Key);
entries(Tab, _) -> ets:tab2list(Tab).

%% @private The lag timer: subscribers that have read half their bound get
%% their resync and receive events again.
-spec lag_check(#st{}) -> #st{}.
lag_check(#st{subs = Subs} = S0) ->
    S = S0#st{lag_timer = false},
    Caught = [{Ref, Sub} || {Ref, #{lagging := true, pid := Pid, max_queue := Max} = Sub}
                                <- maps:to_list(Subs),
                            queue_len(Pid) =< Max div 2],
    S1 = lists:foldl(fun({Ref, Sub}, Acc) ->
                             resync(Ref, Sub, Acc),
                             Acc#st{subs = maps:put(Ref, Sub#{lagging := false}, Acc#st.subs)}
                     end, S, Caught),
    case lists:any(fun(#{lagging := L}) -> L end, maps:values(S1#st.subs)) of
        true -> arm_lag_check(S1);
        false -> S1
    end.

arm_lag_check(#st{lag_timer = true} = S) ->
    S;
arm_lag_check(S) ->
    erlang:send_after(?LAG_CHECK_MS, self(), lag_check),
    S#st{lag_timer = true}.

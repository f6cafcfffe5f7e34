%% @doc The mirror of the registry's metadata (Registry's `meta/2',
%% `put_meta/3', `delete_meta/2'), replicated through the raft log so that
%% every node reads the same value.
%%
%% init/1 creates the table and publishes `{Kind, Table}' in
%% `persistent_term' under `{regent, Registry}' for regent_read; the values
%% of the `meta' option are in the table at once, and are put in the
%% cluster, unless the key has a value there already, when the member is
%% first synced (start_meta/1). change/2 and reconcile/2 follow the log.
%% Owns the fields `meta_tab' and `start_meta_put'.
-module(regent_meta).

-export([init/1, terminate/1, change/2, reconcile/2, start_meta/1]).

-include("regent_member.hrl").

%% @private
-spec init(#st{}) -> #st{}.
init(#st{reg = Reg, opts = Opts} = S) ->
    Tab = ets:new(regent_meta, [set, protected, {read_concurrency, true}]),
    true = ets:insert(Tab, maps:get(meta, Opts)),
    persistent_term:put({regent, Reg}, {maps:get(keys, Opts), Tab}),
    S#st{meta_tab = Tab}.

%% @private
-spec terminate(#st{}) -> ok.
terminate(#st{reg = Reg}) ->
    _ = persistent_term:erase({regent, Reg}),
    ok.

%% @private
-spec change(regent_proto:change(), #st{}) -> #st{}.
change({meta_put, Key, Value}, #st{meta_tab = Tab} = S) ->
    K = regent_name:decode(Key),
    true = ets:insert(Tab, {K, binary_to_term(Value)}),
    supervision(K, S);
change({meta_del, Key}, #st{meta_tab = Tab} = S) ->
    K = regent_name:decode(Key),
    true = ets:delete(Tab, K),
    supervision(K, S).

%% A distributed supervisor's record (regent_sup_store) changed: its server
%% on this node hears of it at once.
supervision(K, S) ->
    case regent_sup_store:decode_key(K) of
        {Sup, Kind, X} -> regent_sup_server:notify(Sup, Kind, X);
        other -> ok
    end,
    S.

%% @private
%% The daemon's metadata replaces the table, except the `meta' option's
%% keys that the cluster lacks: they are about to be put (start_meta/1).
-spec reconcile([regent_proto:row()], #st{}) -> #st{}.
reconcile(Rows, #st{meta_tab = Tab, opts = Opts, start_meta_put = Put} = S) ->
    Fresh = maps:from_list([{regent_name:decode(K), binary_to_term(V)} || {K, _, V} <- Rows]),
    Keep = case Put of
               true -> Fresh;
               false -> maps:merge(maps:from_list(maps:get(meta, Opts)), Fresh)
           end,
    [true = ets:delete(Tab, K) || {K, _} <- ets:tab2list(Tab), not is_map_key(K, Keep)],
    true = ets:insert(Tab, maps:to_list(Keep)),
    S.

%% @private
%% Once per member: the `meta' option's values, put if absent.
-spec start_meta(#st{}) -> #st{}.
start_meta(#st{start_meta_put = true} = S) ->
    S;
start_meta(#st{opts = Opts} = S) ->
    Put = fun({K, V}, Acc) ->
                  Args = {regent_write:key(meta_key, K),
                          regent_write:value_bytes(value, V), if_absent},
                  regent_outbox:submit(meta_put, Args, internal, infinity, Acc)
          end,
    lists:foldl(Put, S#st{start_meta_put = true}, maps:get(meta, Opts)).

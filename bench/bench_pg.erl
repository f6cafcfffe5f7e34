%% Benchmark adapter: OTP's pg (process groups), groups only: pg has no
%% names, so it sits out scenarios 1-8. Its scope is a process per node
%% that broadcasts joins to the other nodes' scopes; pg:join/3 returns once
%% the local scope has it, before the other nodes know.
%%
%% pg keeps no value per member and has no dispatch: group_dispatch/2 reads
%% the members with pg:get_members/2 and calls the fun with [{Pid,
%% undefined}], the entries a Registry dispatcher would get, so the row
%% includes building that list.
-module(bench_pg).
-behaviour(bench_registry).
-export([label/0, scope/0, group_start/1, group_stop/0, group_join/2, group_lookup/1,
         group_dispatch/2, group_count/1]).

%% A scope of its own, not the default one another application may use.
-define(SCOPE, bench_pg).

label() -> "pg".
scope() -> cluster.

%% Not linked: the caller is an erpc process that exits when this returns.
group_start(_Nodes) ->
    {ok, _} = pg:start(?SCOPE),
    ok.

group_stop() ->
    case whereis(?SCOPE) of
        undefined -> ok;
        _ -> gen_server:stop(?SCOPE, normal, 30000)
    end.

group_join(Group, _Value) -> pg:join(?SCOPE, Group, self()).
group_lookup(Group) -> pg:get_members(?SCOPE, Group).
group_dispatch(Group, Fun) -> Fun([{P, undefined} || P <- pg:get_members(?SCOPE, Group)]).
group_count(Group) -> length(pg:get_members(?SCOPE, Group)).

%% @doc A distributed dynamic supervisor on a regent registry: each child
%% runs at most once in the cluster, on a node the placement rule picks,
%% and is started again elsewhere when its node dies or is cut off.
%%
%% Start one on every node that may run children, under your own
%% supervision tree:
%% ```
%% {ok, _} = regent:start_link(my_reg, []),
%% {ok, _} = regent_sup:start_link([{name, my_sup}, {registry, my_reg}]),
%% {ok, Pid} = regent_sup:start_child(my_sup, #{id => job, start => {job, start_link, []}}),
%% Pid = regent:whereis_name({my_reg, job}).
%% '''
%% A child's spec and its placement are committed to the registry's raft
%% log before it starts; the node the log names starts it under a local
%% supervisor and registers it under its id, so `{via, regent, {Reg, Id}}'
%% reaches it from any node. A node runs children only while it holds a
%% lease renewed through the log: a node cut off from the leader kills its
%% children within `lease' ms, and a coordinator moves them only after
%% `lease' + `lease_margin' ms. docs/supervision.md has the whole design.
%%
%% The functions mirror OTP's `supervisor' for a dynamic child: they take
%% the child's id, and they return what `supervisor' returns.
-module(regent_sup).
-behaviour(supervisor).

-export([start_link/1, child_spec/1, stop/1, handoff_state/2, start_child/2, start_child/3, find_or_start/2,
         find_or_start/3, terminate_child/2, delete_child/2, restart_child/2,
         which_children/1, count_children/1, children/1, local_children/1, get_pid/2,
         token/2]).
-export([init/1]).

-type sup() :: atom().
-type child_id() :: term().
-type option() :: {name, atom()} | {registry, regent:registry()} | {lease, pos_integer()}
                | {lease_margin, non_neg_integer()} | {placement, placement()}
                | {max_restarts, non_neg_integer()} | {max_seconds, pos_integer()}
                | {start_timeout, pos_integer()} | {redistribute, none | active}.
-type placement() :: least_loaded | hash | local | {node, node()} | {module(), atom()}
                   | fun((child_id(), [node()]) -> node()).
-type child_option() :: {placement, placement()} | {tags, term()} | {handoff, boolean()}
                      | {max_restarts, non_neg_integer()} | {max_seconds, pos_integer()}.
-type start_result() :: {ok, pid()} | ignore | {error, term()}.
-export_type([sup/0, child_id/0, option/0, placement/0, child_option/0]).

%% @doc Starts the supervisor on this node, registered locally as `name'.
%% Options: `name' and `registry' (a running unique-key regent registry),
%% both required; `lease' (ms, default 3000) and `lease_margin' (ms,
%% default 500); `placement' (default `least_loaded'); `max_restarts'
%% (default 3) and `max_seconds' (default 5), each child's defaults;
%% `start_timeout' (ms, default 15000); `redistribute' (`none', the
%% default, or `active': children move to a node that joins, a few at a
%% time, with handoff). Every node running the same
%% supervisor should give the same options. An unknown option or a bad
%% value raises `{badarg, ...}'.
-spec start_link([option()] | map()) -> {ok, pid()} | {error, term()}.
start_link(Opts0) ->
    #{name := Name, registry := Reg} = Opts = regent_sup_spec:sup_options(Opts0),
    regent_read:unique_only(Reg, regent_sup),
    supervisor:start_link(?MODULE, {top, Opts#{name := Name}}).

%% @doc A graceful leave: this node's children move to other nodes with
%% their state (docs/supervision.md, "Handoff"), then the supervisor stops
%% here and gives its lease back. A child that could not move in 5 x lease
%% ms stops with the supervisor and restarts elsewhere.
-spec stop(sup()) -> ok.
stop(Sup) ->
    _ = info(Sup),
    ok = gen_server:call(Sup, leave, infinity),
    {dictionary, D} = process_info(whereis(Sup), dictionary),
    [Top | _] = proplists:get_value('$ancestors', D),
    proc_lib:stop(Top, shutdown, infinity).

%% @doc In a child's init: the state its previous instance handed over
%% when it moved here (`{ok, State}'), or `none' (a first start, a
%% restart, or a move after a crash or node death).
-spec handoff_state(sup(), child_id()) -> {ok, term()} | none.
handoff_state(Sup, Id) ->
    #{registry := Reg} = info(Sup),
    case regent_sup_store:child(Reg, Sup, Id) of
        #{handoff := State, node := N} when N =:= node() -> {ok, State};
        _ -> none
    end.

%% @doc A child spec for starting the supervisor under yours.
-spec child_spec([option()] | map()) -> supervisor:child_spec().
child_spec(Opts) ->
    #{name := Name} = regent_sup_spec:sup_options(Opts),
    #{id => {regent_sup, Name}, start => {?MODULE, start_link, [Opts]}, type => supervisor,
      shutdown => infinity}.

%% @private
-spec init({top, map()} | local) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init({top, #{name := Name} = Opts}) ->
    %% Both written by the server only; public so that the server can be
    %% restarted without losing them, and read in callers.
    Tab = ets:new(regent_sup_load, [public, {read_concurrency, true}]),
    Tok = ets:new(regent_sup_tokens, [public, {read_concurrency, true}]),
    Full = Opts#{load_tab => Tab, token_tab => Tok},
    persistent_term:put({regent_sup, Name}, Full),
    {ok, {#{strategy => one_for_all, intensity => 3, period => 5},
          [#{id => local, start => {supervisor, start_link, [?MODULE, local]},
             type => supervisor, shutdown => infinity},
           #{id => server, start => {regent_sup_server, start_link, [Full]},
             shutdown => infinity}]}};
init(local) ->
    %% The instances run here as temporary children: the server decides
    %% restarts, through the log.
    {ok, {#{strategy => one_for_one, intensity => 1, period => 5}, []}}.

%% @doc start_child/3 with no options.
-spec start_child(sup(), term()) -> start_result().
start_child(Sup, Spec) ->
    start_child(Sup, Spec, []).

%% @doc Starts a child somewhere in the cluster: `{ok, Pid}' once it runs,
%% `{error, {already_started, Pid}}' if its id runs, `{error,
%% already_present}' if its id is a stopped child, `ignore' or `{error,
%% Reason}' as its start returned (and then nothing of it stays in the
%% log). Spec is an OTP child spec (map or tuple) or Elixir's `Module' or
%% `{Module, Arg}'; it must be plain data. Options: `placement' (not a fun),
%% `tags' (the child's value in the registry, listed by children/1),
%% `max_restarts', `max_seconds', and `handoff' (default false: true asks a
%% moving instance for its state, see handoff_state/2).
-spec start_child(sup(), term(), [child_option()] | map()) -> start_result().
start_child(Sup, Spec0, Opts0) ->
    case create(Sup, Spec0, Opts0) of
        {existing, #{status := stopped}, _} -> {error, already_present};
        {existing, Rec, Ctx} ->
            case await(Ctx, maps:get(node, Rec), maps:get(inc, Rec)) of
                {ok, Pid} -> {error, {already_started, Pid}};
                Other -> Other
            end;
        Result -> Result
    end.

%% @doc find_or_start/3 with no options.
-spec find_or_start(sup(), term()) -> start_result().
find_or_start(Sup, Spec) ->
    find_or_start(Sup, Spec, []).

%% @doc The singleton: every node may call this at once with the same
%% spec; one instance starts and every caller gets its pid.
-spec find_or_start(sup(), term(), [child_option()] | map()) -> start_result().
find_or_start(Sup, Spec, Opts) ->
    case start_child(Sup, Spec, Opts) of
        {error, {already_started, Pid}} -> {ok, Pid};
        Other -> Other
    end.

create(Sup, Spec0, Opts0) ->
    #{registry := Reg, start_timeout := T} = info(Sup),
    Spec = regent_sup_spec:child_spec(Spec0),
    Id = maps:get(id, Spec),
    create(Sup, Spec0, Opts0, #{sup => Sup, reg => Reg, id => Id, deadline => now_ms() + T + 1000}).

create(Sup, Spec0, Opts0, #{reg := Reg, id := Id} = Ctx) ->
    SupOpts = info(Sup),
    Spec = regent_sup_spec:child_spec(Spec0),
    #{tags := Tags, placement := Rule} = COpts = regent_sup_spec:child_options(Opts0, SupOpts),
    case regent_sup_store:child(Reg, Sup, Id) of
        undefined ->
            Live = regent_sup_place:live_nodes(Reg, Sup),
            case regent_sup_place:choose(regent_sup_place:rule(Rule, SupOpts), Id, maps:keys(Live), [],
                                         regent_sup_place:loads(SupOpts)) of
                {error, no_node_available} = Error ->
                    %% No supervisor holds a lease yet (they are starting,
                    %% or the cluster has no quorum): wait, as a start would.
                    case now_ms() < maps:get(deadline, Ctx) - 1000 of
                        true -> timer:sleep(50), create(Sup, Spec0, Opts0, Ctx);
                        false -> Error
                    end;
                {error, _} = Error -> Error;
                {ok, N} ->
                    Rec = #{spec => Spec, node => N, epoch => maps:get(N, Live), inc => 1,
                            status => run, restarts => [], tried => [], tags => Tags,
                            placement => Rule, why => initial,
                            handoff_opt => maps:get(handoff, COpts),
                            max_restarts => maps:get(max_restarts, COpts),
                            max_seconds => maps:get(max_seconds, COpts)},
                    case regent_sup_store:cas(Reg, key(Sup, Id), absent, Rec) of
                        ok -> await(Ctx, N, 1);
                        {conflict, absent} -> create(Sup, Spec0, Opts0, Ctx);
                        {conflict, Now} -> {existing, Now, Ctx}
                    end
            end;
        Rec ->
            {existing, Rec, Ctx}
    end.

%% Waits for incarnation I of the child to start on N (or on the node it
%% moved to).
await(#{sup := Sup, reg := Reg, id := Id, deadline := D} = Ctx, N, I) ->
    case D - now_ms() of
        Left when Left =< 0 -> {error, timeout};
        Left ->
            try gen_server:call({Sup, N}, {await, Id, I}, Left) of
                {moved, N2} -> await(Ctx, N2, I);
                Reply -> Reply
            catch exit:{timeout, _} -> {error, timeout};
                  exit:{Why, _} when Why =:= noproc; Why =:= nodedown;
                                     element(1, Why) =:= nodedown ->
                    %% N is gone: its children move once its lease is revoked.
                    timer:sleep(100),
                    case regent_sup_store:child(Reg, Sup, Id) of
                        #{node := N2, status := run} -> await(Ctx, N2, I);
                        _ -> {error, {node_down, N}}
                    end
            end
    end.

%% @doc Stops a child and keeps its spec (a temporary child's goes), as
%% OTP's terminate_child/2; returns when the instance has stopped.
%% `{error, not_found}' for an unknown id.
-spec terminate_child(sup(), child_id() | pid()) -> ok | {error, not_found}.
terminate_child(Sup, Pid) when is_pid(Pid) ->
    #{registry := Reg} = info(Sup),
    case [Id || Id <- keys_of(Reg, Pid), regent_sup_store:child(Reg, Sup, Id) =/= undefined] of
        [Id | _] -> terminate_child(Sup, Id);
        [] -> {error, not_found}
    end;
terminate_child(Sup, Id) ->
    case change(Sup, Id, fun(#{spec := #{restart := temporary}}) -> delete;
                            (Rec) -> Rec#{status := stopped}
                         end) of
        {ok, #{node := N}} -> await_stop(Sup, N, Id);
        {error, _} = Error -> Error
    end.

%% The ids Pid is registered under. This node's mirror may not have a
%% registration made on Pid's node yet; that node's has it (its member
%% applied it before the start returned), so it is asked when ours has none.
keys_of(Reg, Pid) ->
    case regent:keys(Reg, Pid) of
        [] when node(Pid) =/= node() ->
            try erpc:call(node(Pid), regent, keys, [Reg, Pid], 5000)
            catch error:{erpc, _} -> []
            end;
        Keys -> Keys
    end.

await_stop(Sup, N, Id) ->
    try gen_server:call({Sup, N}, {await_stop, Id}, infinity)
    catch exit:{Why, _} when Why =:= noproc; Why =:= nodedown; element(1, Why) =:= nodedown -> ok
    end.

%% @doc Removes a stopped child's spec: `{error, running}' if it runs,
%% `{error, not_found}' if there is none.
-spec delete_child(sup(), child_id()) -> ok | {error, running | not_found}.
delete_child(Sup, Id) ->
    case change(Sup, Id, fun(#{status := stopped}) -> delete;
                            (_) -> {error, running}
                         end) of
        {ok, _} -> ok;
        Error -> Error
    end.

%% @doc Starts a stopped child again (a new incarnation), on its node if
%% that is live, else where its placement rule says.
-spec restart_child(sup(), child_id()) -> start_result() | {error, running | not_found}.
restart_child(Sup, Id) ->
    #{registry := Reg, start_timeout := T} = SupOpts = info(Sup),
    Restart = fun(#{status := St}) when St =/= stopped -> {error, running};
                 (#{node := N0, placement := Rule, inc := I} = Rec) ->
                      Live = regent_sup_place:live_nodes(Reg, Sup),
                      Place = case is_map_key(N0, Live) of
                                  true -> {ok, N0};
                                  false -> regent_sup_place:choose(regent_sup_place:rule(Rule, SupOpts), Id,
                                                                   maps:keys(Live), [],
                                                                   regent_sup_place:loads(SupOpts))
                              end,
                      case Place of
                          {ok, N} -> Rec#{status := run, node := N, epoch := maps:get(N, Live),
                                          inc := I + 1, why := manual, tried := []};
                          Error -> Error
                      end
              end,
    case change(Sup, Id, Restart) of
        {ok, #{node := N, inc := I}} ->
            await(#{sup => Sup, reg => Reg, id => Id, deadline => now_ms() + T + 1000}, N, I + 1);
        Error -> Error
    end.

%% A compare-and-set of Id's record by Fun (a new record, `delete' or an
%% error), again from the record as it is after a conflict: `{ok, Old}'.
change(Sup, Id, Fun) ->
    #{registry := Reg} = info(Sup),
    change(Reg, Sup, Id, Fun, regent_sup_store:child(Reg, Sup, Id), 20).

change(_Reg, _Sup, _Id, _Fun, undefined, _) ->
    {error, not_found};
change(_Reg, _Sup, _Id, _Fun, _Rec, 0) ->
    {error, contended};
change(Reg, Sup, Id, Fun, Rec, N) ->
    case Fun(Rec) of
        {error, _} = Error -> Error;
        New ->
            case regent_sup_store:cas(Reg, key(Sup, Id), Rec, New) of
                ok -> {ok, Rec};
                {conflict, absent} -> {error, not_found};
                {conflict, Now} -> change(Reg, Sup, Id, Fun, Now, N - 1)
            end
    end.

%% @doc OTP's `[{Id, Child, Type, Modules}]' for every child in the
%% cluster, from this node's mirror: Child is the pid, `restarting' while
%% it has none, `undefined' when stopped.
-spec which_children(sup()) -> [{child_id(), pid() | restarting | undefined, worker | supervisor,
                                 [module()] | dynamic}].
which_children(Sup) ->
    [{Id, child_pid(Pid, Status), Type, Ms}
     || #{id := Id, pid := Pid, status := Status, spec := #{type := Type, modules := Ms}}
            <- children(Sup)].

child_pid(_, stopped) -> undefined;
child_pid(undefined, _) -> restarting;
child_pid(Pid, _) -> Pid.

%% @doc OTP's counts: `[{specs, N}, {active, N}, {supervisors, N}, {workers, N}]'.
-spec count_children(sup()) -> [{specs | active | supervisors | workers, non_neg_integer()}].
count_children(Sup) ->
    Cs = children(Sup),
    [{specs, length(Cs)},
     {active, length([C || #{pid := P} = C <- Cs, is_pid(P)])},
     {supervisors, length([C || #{spec := #{type := supervisor}} = C <- Cs])},
     {workers, length([C || #{spec := #{type := worker}} = C <- Cs])}].

%% @doc Every child with its spec, node, pid (or `undefined'), status
%% (`run', `stopped', or `handoff' while it moves), tags and fencing token (`epoch' of its node's
%% lease, `inc'arnation), as ProcessHub lists them.
-spec children(sup()) -> [map()].
children(Sup) ->
    #{registry := Reg} = info(Sup),
    [#{id => Id, spec => Spec, node => N, pid => pid_of(Reg, Id, Status), status => Status,
       tags => Tags, epoch => E, inc => I}
     || {Id, #{spec := Spec, node := N, status := Status, tags := Tags, epoch := E, inc := I}}
            <- regent_sup_store:children(Reg, Sup)].

pid_of(_, _, stopped) -> undefined;
pid_of(Reg, Id, _RunOrHandoff) -> regent:whereis_name({Reg, Id}).

%% @doc The children running on this node: `[{Id, Pid}]'.
-spec local_children(sup()) -> [{child_id(), pid()}].
local_children(Sup) ->
    [{Id, P} || #{id := Id, pid := P} <- children(Sup), is_pid(P), node(P) =:= node()].

%% @doc The pid of child Id, wherever it runs, or `undefined'.
-spec get_pid(sup(), child_id()) -> pid() | undefined.
get_pid(Sup, Id) ->
    #{registry := Reg} = info(Sup),
    case regent_sup_store:child(Reg, Sup, Id) of
        #{status := St} when St =/= stopped -> regent:whereis_name({Reg, Id});
        _ -> undefined
    end.

%% @doc The fencing token of child Id's current incarnation, `{Epoch,
%% Inc}': Inc grows with every start of the child anywhere, and is in the
%% log before that instance starts. Pass it to external systems that must
%% refuse a stale instance (docs/supervision.md).
%% On a node that runs (or starts) an instance of Id, the token is that
%% instance's, even when the log has moved on: a stale instance never reads
%% its successor's token.
-spec token(sup(), child_id()) -> {pos_integer(), pos_integer()} | undefined.
token(Sup, Id) ->
    #{registry := Reg, token_tab := Tok} = info(Sup),
    case {ets:lookup(Tok, Id), regent_sup_store:child(Reg, Sup, Id)} of
        {[{_, Token}], _} -> Token;
        {[], #{epoch := E, inc := I}} -> {E, I};
        {[], undefined} -> undefined
    end.

info(Sup) when is_atom(Sup) ->
    case {whereis(Sup), persistent_term:get({regent_sup, Sup}, undefined)} of
        {Pid, #{} = Info} when is_pid(Pid) -> Info;
        _ -> exit({noproc, {regent_sup, Sup}})
    end;
info(Sup) ->
    error({badarg, {not_a_supervisor_name, Sup}}).

key(Sup, Id) -> regent_sup_store:child_key(Sup, Id).

now_ms() -> regent_sup_lease:now_ms().

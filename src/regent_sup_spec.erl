%% @doc Checking what a distributed supervisor is given: its options, the
%% options of one child, and child specifications. A spec goes into the
%% raft log as an external term and may be started on any node, so it
%% must be plain data: a fun, pid, port or reference in it is refused
%% (`{badarg, {not_plain_data, Term}}'), and so is anything that is not an
%% OTP child spec (`{badarg, {invalid_child_spec, Spec}}').
-module(regent_sup_spec).

-export([sup_options/1, child_options/2, child_spec/1, plain/1]).

-define(DEFAULTS, #{lease => 3000, lease_margin => 500, placement => least_loaded,
                    max_restarts => 3, max_seconds => 5, start_timeout => 15000,
                    redistribute => none}).

%% @private The options of regent_sup:start_link/1, checked, with defaults.
-spec sup_options(list() | map()) -> map().
sup_options(Opts) when is_list(Opts) ->
    sup_options(to_map(Opts));
sup_options(Opts) when is_map(Opts) ->
    Merged = maps:merge(?DEFAULTS, Opts),
    [is_map_key(K, Merged) orelse error({badarg, {missing_option, K}}) || K <- [name, registry]],
    maps:foreach(fun sup_option/2, Merged),
    Merged;
sup_options(Other) ->
    error({badarg, {not_options, Other}}).

%% A proplist of options as a map; anything but a pair is `badarg'.
to_map(Opts) ->
    lists:foreach(fun({_, _}) -> ok; (O) -> error({badarg, {not_an_option, O}}) end, Opts),
    maps:from_list(Opts).

sup_option(name, N) when is_atom(N) -> ok;
sup_option(registry, R) when is_atom(R) -> ok;
sup_option(lease, L) when is_integer(L), L >= 100 -> ok;
sup_option(lease_margin, M) when is_integer(M), M >= 0 -> ok;
sup_option(placement, P) -> placement(P, sup);
sup_option(max_restarts, R) when is_integer(R), R >= 0 -> ok;
sup_option(max_seconds, S) when is_integer(S), S > 0 -> ok;
sup_option(start_timeout, T) when is_integer(T), T > 0 -> ok;
sup_option(redistribute, R) when R =:= none; R =:= active -> ok;
sup_option(K, V) ->
    case maps:is_key(K, ?DEFAULTS) orelse K =:= name orelse K =:= registry of
        true -> error({badarg, {K, V}});
        false -> error({badarg, {unknown_option, {K, V}}})
    end.

%% A function can only be a supervisor's option: a child's options are
%% stored in the log.
placement(P, _) when P =:= least_loaded; P =:= hash; P =:= local -> ok;
placement({node, N}, _) when is_atom(N) -> ok;
placement({M, F}, _) when is_atom(M), is_atom(F) -> ok;
placement(F, sup) when is_function(F, 2) -> ok;
placement(P, _) -> error({badarg, {placement, P}}).

%% @private The options of start_child/3, checked, with the supervisor's
%% defaults: placement, tags, handoff, max_restarts, max_seconds.
-spec child_options(list() | map(), map()) -> map().
child_options(Opts, SupOpts) when is_list(Opts) ->
    child_options(to_map(Opts), SupOpts);
child_options(Opts, SupOpts) when is_map(Opts) ->
    Base = maps:merge(maps:with([max_restarts, max_seconds], SupOpts),
                      #{placement => default, tags => [], handoff => false}),
    Merged = maps:merge(Base, Opts),
    maps:foreach(fun child_option/2, Merged),
    Merged;
child_options(Other, _) ->
    error({badarg, {not_options, Other}}).

child_option(placement, default) -> ok;
child_option(placement, P) -> placement(P, child);
child_option(tags, T) -> plain(T);
child_option(handoff, B) when is_boolean(B) -> ok;
child_option(max_restarts, R) when is_integer(R), R >= 0 -> ok;
child_option(max_seconds, S) when is_integer(S), S > 0 -> ok;
child_option(K, V) when K =:= max_restarts; K =:= max_seconds; K =:= handoff ->
    error({badarg, {K, V}});
child_option(K, V) -> error({badarg, {unknown_option, {K, V}}}).

%% @private An OTP child spec (map or tuple), or Elixir's `Module' and
%% `{Module, Arg}' forms (through `Module:child_spec/1', as Elixir's
%% supervisors do), as a map with every key.
-spec child_spec(term()) -> map().
child_spec(Mod) when is_atom(Mod) ->
    child_spec({Mod, []});
child_spec({Mod, Arg} = Short) when is_atom(Mod) ->
    _ = code:ensure_loaded(Mod),
    case erlang:function_exported(Mod, child_spec, 1) of
        true -> child_spec(Mod:child_spec(Arg));
        false -> error({badarg, {invalid_child_spec, Short}})
    end;
child_spec({Id, Start, Restart, Shutdown, Type, Modules}) ->
    child_spec(#{id => Id, start => Start, restart => Restart, shutdown => Shutdown,
                 type => Type, modules => Modules});
child_spec(#{id := _, start := {M, _, _}} = Spec) ->
    Type = maps:get(type, Spec, worker),
    Full = maps:merge(#{restart => permanent, type => Type, modules => [M],
                        shutdown => case Type of worker -> 5000; supervisor -> infinity end},
                      Spec),
    check(Full);
child_spec(Other) ->
    error({badarg, {invalid_child_spec, Other}}).

check(#{start := {M, F, A}, restart := R, shutdown := Sh, type := T, modules := Ms} = Spec)
  when is_atom(M), is_atom(F), is_list(A),
       (R =:= permanent orelse R =:= transient orelse R =:= temporary),
       (Sh =:= brutal_kill orelse Sh =:= infinity orelse (is_integer(Sh) andalso Sh >= 0)),
       (T =:= worker orelse T =:= supervisor),
       (Ms =:= dynamic orelse is_list(Ms)) ->
    Known = maps:with([id, start, restart, shutdown, type, modules, significant], Spec),
    map_size(Known) =:= map_size(Spec) orelse error({badarg, {invalid_child_spec, Spec}}),
    plain(Spec),
    _ = regent_write:key(name, maps:get(id, Spec)),
    _ = regent_write:value_bytes(metadata, Spec),
    Spec;
check(Spec) ->
    error({badarg, {invalid_child_spec, Spec}}).

%% @private Plain data only: what the log keeps must mean the same on
%% every node. `ok', or `{badarg, {not_plain_data, Term}}'.
-spec plain(term()) -> ok.
plain(T) when is_function(T); is_pid(T); is_port(T); is_reference(T) ->
    error({badarg, {not_plain_data, T}});
plain(T) when is_list(T) -> plain_list(T);
plain(T) when is_tuple(T) -> plain_list(tuple_to_list(T));
plain(T) when is_map(T) -> plain_list(maps:to_list(T));
plain(_) -> ok.

plain_list([H | T]) -> plain(H), plain_list(T);
plain_list(_) -> ok.

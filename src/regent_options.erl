%% @doc The options a registry's member runs with: the caller's options
%% over the `regent' application environment over the defaults, every one
%% checked before anything starts.
%%
%% An unknown option, or a known one with a value of the wrong type or out
%% of range, raises `{badarg, {Option, Value}}' (`{badarg, {unknown_option,
%% {Option, Value}}}' for an unknown one), so a typo never starts a
%% registry that silently does something else. Registry's options (`keys',
%% `listeners', `meta', `partitions', `compressed') are checked as Elixir's
%% Registry checks them.
-module(regent_options).

-export([options/1, daemon_check/1]).

-include_lib("kernel/include/file.hrl").
-include_lib("kernel/include/logger.hrl").

-define(META_MAX, 65536).

%% @private
-spec options(regent:options()) -> #{atom() => term()}.
options(Opts) when is_list(Opts) ->
    [error({badarg, {not_an_option, O}}) || O <- Opts, not is_option_pair(O)],
    options(maps:from_list(Opts));
options(Opts) when is_map(Opts) ->
    Defaults = defaults(),
    [error({badarg, {unknown_option, {K, V}}})
     || {K, V} <- maps:to_list(Opts), not is_map_key(K, Defaults), K =/= name],
    Env = maps:with(maps:keys(Defaults), maps:from_list(application:get_all_env(regent))),
    M = maps:remove(name, maps:merge(maps:merge(Defaults, Env), Opts)),
    maps:map(fun check/2, M);
options(Opts) ->
    error({badarg, {options, Opts}}).

is_option_pair({K, _}) -> is_atom(K);
is_option_pair(_) -> false.

defaults() ->
    #{data_dir => default_data_dir(),
      register_timeout => 5000,
      max_pending_writes => 65536,
      reconnect => true,
      voters => 3,
      conflict => kill,
      bind_host => distribution_address,
      port_range => {0, 0},
      secret => undefined,
      snapshot_threshold => 8192,
      snapshot_trailing => 2048,
      tls => psk,
      daemon => filename:join(code:priv_dir(regent), "regentd"),
      %% Elixir Registry's options
      keys => unique,
      listeners => [],
      meta => [],
      partitions => 1,
      compressed => false}.

check(data_dir, V) -> path(data_dir, V);
check(daemon, V) -> path(daemon, V);
check(register_timeout, V) -> in_range(register_timeout, V, 1, 1 bsl 32);
check(voters, V) -> in_range(voters, V, 1, 7);
check(max_pending_writes, V) -> in_range(max_pending_writes, V, 1, 1 bsl 24);
check(snapshot_threshold, V) -> in_range(snapshot_threshold, V, 16, 1 bsl 24);
check(snapshot_trailing, V) -> in_range(snapshot_trailing, V, 0, 1 bsl 24);
check(partitions, V) -> in_range(partitions, V, 1, 1 bsl 32);
check(conflict, V) -> conflict(V);
check(bind_host, distribution_address) -> distribution_address();
check(bind_host, V) -> bind_host(V);
check(port_range, {Lo, Hi} = V) when is_integer(Lo), is_integer(Hi), Lo >= 0,
                                     Hi >= Lo, Hi =< 65535 -> V;
check(secret, V) -> secret(V);
check(tls, V) -> tls(V);
check(keys, V) when V =:= unique; V =:= duplicate -> V;
check(reconnect, V) when is_boolean(V) -> V;
check(compressed, V) when is_boolean(V) -> V;
check(listeners, V) when is_list(V) ->
    lists:all(fun is_atom/1, V) orelse error({badarg, {listeners, V}}),
    V;
check(meta, V) -> meta(V);
check(K, V) -> error({badarg, {K, V}}).

%% @private A missing or unrunnable regentd says which file it looked for
%% and how to build it, rather than a bare enoent from open_port.
-spec daemon_check(file:filename()) -> ok | {error, tuple()}.
daemon_check(Path) ->
    Hint = "build it with `make` (Erlang) or `mix compile` (Elixir) in regent's "
           "directory, after `make setup`; or give its path in the `daemon` option",
    case file:read_file_info(Path) of
        {ok, #file_info{type = regular, mode = Mode}} when Mode band 8#111 =/= 0 ->
            ok;
        {ok, _} ->
            {error, {regentd_not_executable, Path, Hint}};
        {error, Why} ->
            {error, {regentd_not_found, Path, Why, Hint}}
    end.

in_range(Key, V, Min, Max) ->
    is_integer(V) andalso V >= Min andalso V =< Max
        orelse error({badarg, {Key, V}}),
    V.

path(Key, V) ->
    try unicode:characters_to_list(V) of
        L when is_list(L), L =/= [] -> L;
        _ -> error({badarg, {Key, V}})
    catch error:badarg -> error({badarg, {Key, V}})
    end.

conflict(kill) -> kill;
conflict(notify) -> notify;
conflict({resolve, F} = V) when is_function(F, 3) -> V;
conflict(V) -> error({badarg, {conflict, V}}).

bind_host(V) ->
    Host = try unicode:characters_to_binary(V)
           catch error:badarg -> error({badarg, {bind_host, V}})
           end,
    is_binary(Host) andalso byte_size(Host) =< 63 andalso
        element(1, inet:parse_ipv4strict_address(binary_to_list(Host))) =:= ok
        orelse error({badarg, {bind_host, V}}),
    Host.

%% The default raft address: the IPv4 address this node's distribution is
%% reached at, so a cluster across hosts needs no `bind_host' (peers reach
%% regentd where they already reach the BEAM). That is the interface the
%% distribution is bound to (kernel's `inet_dist_use_interface'), or else
%% an address of this host that its host name resolves to (`a@10.0.0.5',
%% `a@db1.example'): a non-loopback one first, the lowest for a stable
%% choice. A node that is not distributed binds 127.0.0.1; so does one
%% whose name resolves to no address of this host (a NAT or a VIP; binding
%% it would fail), with a warning. A long name that resolves only to a
%% loopback address here (Debian's /etc/hosts maps the host's names to
%% 127.0.1.1) binds it, with a warning: peers on other hosts cannot reach
%% it, and `bind_host' says where they can.
distribution_address() ->
    case application:get_env(kernel, inet_dist_use_interface) of
        {ok, {0, 0, 0, 0}} -> host_address(node());
        {ok, {_, _, _, _} = Ip} -> ip_binary(Ip);
        _ -> host_address(node())
    end.

host_address(nonode@nohost) ->
    <<"127.0.0.1">>;
host_address(Node) ->
    [_, Host] = string:split(atom_to_list(Node), "@"),
    Resolved = case inet:getaddrs(Host, inet) of
                   {ok, L} -> lists:usort(L);
                   {error, _} -> []
               end,
    Local = local_addresses(),
    case lists:partition(fun is_loopback/1, [A || A <- Resolved, lists:member(A, Local)]) of
        {_, [Ip | _]} ->
            ip_binary(Ip);
        {[Ip | _], []} ->
            lists:member($., Host) andalso
                ?LOG_WARNING("regent: the raft port binds ~s, a loopback address (what ~s "
                             "resolves to on this host): members on other hosts cannot reach "
                             "it; give the bind_host option", [inet:ntoa(Ip), Host]),
            ip_binary(Ip);
        {[], []} ->
            ?LOG_WARNING("regent: ~s resolves to no IPv4 address of this host (~p); the raft "
                         "port binds 127.0.0.1, which other hosts cannot reach: give the "
                         "bind_host option", [Host, Resolved]),
            <<"127.0.0.1">>
    end.

local_addresses() ->
    case inet:getifaddrs() of
        {ok, Ifs} -> [A || {_, Opts} <- Ifs, {addr, {_, _, _, _} = A} <- Opts];
        {error, _} -> []
    end.

is_loopback({127, _, _, _}) -> true;
is_loopback(_) -> false.

ip_binary(Ip) ->
    list_to_binary(inet:ntoa(Ip)).

%% Registry metadata given at start: `[{Key, Value}]' with atom or tuple
%% keys, as `regent:put_meta/3' takes them.
meta(V) when is_list(V) ->
    [error({badarg, {meta, V}}) || E <- V, not is_meta_entry(E)],
    V;
meta(V) ->
    error({badarg, {meta, V}}).

is_meta_entry({K, Value}) when is_atom(K); is_tuple(K) ->
    element(1, regent_name:encode(K)) =:= ok andalso
        erlang:external_size(Value) =< ?META_MAX;
is_meta_entry(_) ->
    false.

%% TLS on the raft port: `psk' (the default: a key derived from the cluster
%% secret), `false', or certificates as for TLS distribution. Checked here,
%% in the form the START frame carries: {Mode, CertFile, KeyFile, CaFile,
%% Verify}.
tls(psk) ->
    {psk, <<>>, <<>>, <<>>, false};
tls(false) ->
    {off, <<>>, <<>>, <<>>, false};
tls({_, _, _, _, _} = AlreadyChecked) ->
    AlreadyChecked;
tls(Opts) when is_list(Opts) ->
    [error({badarg, {tls, Opts}}) || O <- Opts, not is_option_pair(O)],
    tls(maps:from_list(Opts));
tls(#{} = Opts) ->
    Known = [certfile, keyfile, cacertfile, verify],
    [error({badarg, {tls, {unknown_option, K}}}) || K <- maps:keys(Opts), not lists:member(K, Known)],
    Verify = case maps:get(verify, Opts, verify_peer) of
                 verify_peer -> true;
                 verify_none -> false;
                 V -> error({badarg, {tls, {verify, V}}})
             end,
    File = fun(K, Required) ->
                   case maps:find(K, Opts) of
                       {ok, F} -> tls_file(K, F);
                       error when Required -> error({badarg, {tls, {missing, K}}});
                       error -> <<>>
                   end
           end,
    {cert, File(certfile, true), File(keyfile, true), File(cacertfile, Verify), Verify};
tls(Other) ->
    error({badarg, {tls, Other}}).

tls_file(K, F) ->
    try unicode:characters_to_binary(F) of
        B when is_binary(B), byte_size(B) > 0, byte_size(B) =< 4096 -> B;
        _ -> error({badarg, {tls, {K, F}}})
    catch error:badarg -> error({badarg, {tls, {K, F}}})
    end.

default_data_dir() ->
    case filelib:is_dir("/dev/shm") of
        true -> "/dev/shm/regent";
        false -> filename:basedir(user_cache, "regent")
    end.

%% The secret reaches regentd over the port, never argv or the environment.
secret(undefined) ->
    crypto:hash(sha256, ["regent:", atom_to_binary(erlang:get_cookie())]);
secret(Secret) ->
    B = try iolist_to_binary(Secret)
        catch error:badarg -> error({badarg, {secret, not_iodata}})
        end,
    byte_size(B) >= 1 andalso byte_size(B) =< 1024
        orelse error({badarg, {secret, size}}),
    B.

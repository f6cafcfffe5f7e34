%% Hosts with their own addresses: a test harness that gives each BEAM node
%% its own Linux network namespace, so that regent runs across separate
%% network stacks as across hosts, and faults are real packet drops.
%%
%% The network (all of it made here, removed by teardown/0):
%% - a bridge `rgbr0' in the root namespace holding 10.77.0.1/24, the
%%   controller's address (the node running the test, `-name x@10.77.0.1');
%% - host I (1..9) is the namespace `regent-hI' with loopback up and a veth
%%   pair to the bridge, its end `eth0' holding 10.77.0.(10+I)/24;
%% - nothing else: the range 10.77.0.0/24 exists only on this bridge and in
%%   these namespaces, and no route leads out of it.
%% Each namespace runs its own epmd (erl starts one there) and its nodes'
%% distribution on its address (`-name n@10.77.0.1I').
%%
%% Faults are nftables rules inside a host's namespace, on its input hook,
%% so they hit distribution and the raft port alike:
%% - drop(Host, From): drop every packet from those hosts (a one-way cut:
%%   Host hears nothing from them; both ways is drop on each side);
%% - loss(Host, From, Pct): drop Pct % of their packets at random (real IP
%%   loss: TCP retransmits, with its backoff);
%% - delay(Host, Ms, Jitter): every byte into Host's raft port waits Ms
%%   plus up to Jitter ms, in a userspace proxy (regent_lossy_proxy) that a
%%   nat rule puts in front of the port, since tc's netem is not in this
%%   kernel. The proxy runs in a BEAM of its own in the namespace, so a
%%   paused regent node does not pause its host's network.
%% heal(Host) removes all of them.
-module(regent_hosts).

-export([available/0, setup/1, teardown/0, address/1, namespace/1,
         start_node/3, start_proxy/2, drop/2, loss/3, delay/3, heal/1,
         raft_port/0, controller_address/0]).

-define(BRIDGE, "rgbr0").
-define(PREFIX, "10.77.0.").
%% The raft port every host's member binds (port_range), and the port its
%% proxy listens on.
-define(RAFT_PORT, 7400).
-define(PROXY_PORT, 17400).

%% @doc Whether this machine lets us make namespaces: true, or {false, Why}.
-spec available() -> true | {false, string()}.
available() ->
    try available_()
    catch throw:{false, _} = No -> No
    end.

available_() ->
    Probe = "regent-probe",
    case {os:find_executable("ip"), os:find_executable("nft")} of
        {false, _} -> {false, "no `ip' (Debian's iproute2)"};
        {_, false} -> {false, "no `nft' (Debian's nftables)"};
        _ ->
            {_, Addrs} = sh("ip -4 -o addr show"),
            InUse = [L || L <- string:lexemes(Addrs, "\n"), string:find(L, ?PREFIX) =/= nomatch,
                          string:find(L, ?BRIDGE) =:= nomatch],
            InUse =:= [] orelse throw({false, "10.77.0.0/24 is already in use on this machine: "
                                        ++ string:trim(hd(InUse))}),
            case sh("ip netns add " ++ Probe ++ " && ip netns exec " ++ Probe
                    ++ " nft add table inet probe; rc=$?; ip netns del " ++ Probe
                    ++ " 2>/dev/null; exit $rc") of
                {0, _} -> true;
                {_, Out} -> {false, "cannot make a network namespace with nftables here: "
                             ++ string:trim(Out)}
            end
    end.

%% @doc Makes the bridge and N hosts (after removing any left over).
-spec setup(1..9) -> ok.
setup(N) when N >= 1, N =< 9 ->
    teardown(),
    ok = cmds(["ip link add " ++ ?BRIDGE ++ " type bridge",
               "ip addr add " ++ controller_address() ++ "/24 dev " ++ ?BRIDGE,
               "ip link set " ++ ?BRIDGE ++ " up"]),
    [ok = host_setup(I) || I <- lists:seq(1, N)],
    ok.

host_setup(I) ->
    Ns = namespace(I),
    Veth = "rgv" ++ integer_to_list(I),
    In = "ip netns exec " ++ Ns ++ " ",
    cmds(["ip netns add " ++ Ns,
          In ++ "ip link set lo up",
          "ip link add " ++ Veth ++ " type veth peer name eth0 netns " ++ Ns,
          "ip link set " ++ Veth ++ " master " ++ ?BRIDGE ++ " up",
          In ++ "ip addr add " ++ address(I) ++ "/24 dev eth0",
          In ++ "ip link set eth0 up",
          In ++ "nft add table inet regent_faults",
          In ++ "nft 'add chain inet regent_faults input "
                 "{ type filter hook input priority 0; }'",
          In ++ "nft add table ip regent_proxy",
          In ++ "nft 'add chain ip regent_proxy prerouting "
                 "{ type nat hook prerouting priority -100; }'"]).

%% @doc Removes every host namespace (killing what runs there) and the bridge.
-spec teardown() -> ok.
teardown() ->
    {_, Out} = sh("ip netns list"),
    Names = [hd(string:lexemes(L, " ")) || L <- string:lexemes(Out, "\n"), L =/= ""],
    [sh("ip netns pids " ++ Ns ++ " | xargs -r kill -9")
     || Ns <- Names, lists:prefix("regent-h", Ns)],
    %% Deleting a namespace frees its veth pair only later, asynchronously:
    %% delete our ends now, so that a setup right after finds the names free.
    [sh("ip link del rgv" ++ integer_to_list(I)) || I <- lists:seq(1, 9)],
    [sh("ip netns del " ++ Ns) || Ns <- Names, lists:prefix("regent-h", Ns)],
    sh("ip link del " ++ ?BRIDGE),
    ok.

-spec namespace(pos_integer()) -> string().
namespace(I) -> "regent-h" ++ integer_to_list(I).

-spec address(pos_integer()) -> string().
address(I) -> ?PREFIX ++ integer_to_list(10 + I).

-spec controller_address() -> string().
controller_address() -> ?PREFIX ++ "1".

-spec raft_port() -> inet:port_number().
raft_port() -> ?RAFT_PORT.

%% @doc Starts a BEAM node in host I's namespace, named Name@address, with
%% our code path, cookie and net_ticktime (peers with another tick time
%% would be disconnected, and a peer whose control connection goes halts);
%% Args are more emulator flags.
-spec start_node(pos_integer(), atom() | string(), [string()]) ->
          {ok, pid(), node()}.
start_node(I, Name, Args) ->
    Paths = [P || P <- code:get_path(), string:find(P, code:lib_dir()) =:= nomatch],
    {ok, Peer, Node} =
        peer:start(#{name => Name, host => address(I), longnames => true,
                     exec => {os:find_executable("ip"),
                              ["netns", "exec", namespace(I), os:find_executable("erl")]},
                     args => ["-setcookie", atom_to_list(erlang:get_cookie()),
                              "-kernel", "net_ticktime",
                              integer_to_list(net_kernel:get_net_ticktime())
                              | Args ++ lists:append([["-pa", P] || P <- Paths])]}),
    {ok, Peer, Node}.

%% @doc Starts host I's raft-port proxy (a node of its own in the namespace)
%% and the nat rule that sends every connection to the raft port from
%% another host through it. Returns the proxy's node.
-spec start_proxy(pos_integer(), string()) -> {ok, pid(), node()}.
start_proxy(I, Name) ->
    {ok, Peer, Node} = start_node(I, Name, ["-connect_all", "false"]),
    ok = erpc:call(Node, regent_lossy_proxy, start,
                   [?PROXY_PORT, address(I), ?RAFT_PORT]),
    ok = in(I, "nft flush chain ip regent_proxy prerouting"),
    ok = in(I, "nft 'add rule ip regent_proxy prerouting iifname eth0 tcp dport "
               ++ integer_to_list(?RAFT_PORT) ++ " redirect to :"
               ++ integer_to_list(?PROXY_PORT) ++ "'"),
    {ok, Peer, Node}.

%% @doc Host I drops every packet from the hosts From.
-spec drop(pos_integer(), [pos_integer()]) -> ok.
drop(_I, []) -> ok;
drop(I, From) ->
    in(I, "nft add rule inet regent_faults input ip saddr " ++ set(From) ++ " drop").

%% @doc Host I drops Pct % of the packets from the hosts From, at random.
-spec loss(pos_integer(), [pos_integer()], 1..100) -> ok.
loss(_I, [], _) -> ok;
loss(I, From, Pct) ->
    in(I, "nft add rule inet regent_faults input ip saddr " ++ set(From)
          ++ " numgen random mod 100 '<' " ++ integer_to_list(Pct) ++ " drop").

%% @doc Bytes into host I's raft port wait Ms + rand(0..Jitter) ms (order is
%% kept, as TCP keeps it). ProxyNode is start_proxy/2's node.
-spec delay(node(), non_neg_integer(), non_neg_integer()) -> ok.
delay(ProxyNode, Ms, Jitter) ->
    erpc:call(ProxyNode, regent_lossy_proxy, set_delay, [Ms, Jitter]).

%% @doc Removes host I's drop and loss rules.
-spec heal(pos_integer()) -> ok.
heal(I) ->
    in(I, "nft flush chain inet regent_faults input").

%% ---- helpers --------------------------------------------------------------

set(Hosts) ->
    "'{ " ++ lists:join(", ", [address(H) || H <- Hosts]) ++ " }'".

in(I, Cmd) ->
    cmds(["ip netns exec " ++ namespace(I) ++ " " ++ Cmd]).

cmds([]) -> ok;
cmds([C | Cs]) ->
    case sh(C) of
        {0, _} -> cmds(Cs);
        {Rc, Out} -> error({command_failed, C, Rc, Out})
    end.

sh(Cmd) ->
    Port = open_port({spawn_executable, "/bin/sh"},
                     [{args, ["-c", Cmd ++ " 2>&1"]}, exit_status, binary, stderr_to_stdout]),
    sh_collect(Port, <<>>).

sh_collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> sh_collect(Port, <<Acc/binary, D/binary>>);
        {Port, {exit_status, Rc}} -> {Rc, binary_to_list(Acc)}
    end.

%% A TCP proxy in front of a host's raft port (regent_hosts): each
%% connection to it is forwarded to the port, both directions, every chunk
%% held back by the current delay (set_delay/2) plus a random jitter. Order
%% is kept within a direction, as TCP keeps it; what the delay changes is
%% when bytes arrive, which is what a slow link does to raft (heartbeats,
%% elections and appends late by 1-20 ms, unevenly). Packet loss is not
%% done here but by nftables at the IP level (regent_hosts:loss/3), where
%% it is real and TCP's retransmissions handle it.
%%
%% It runs on a BEAM node of its own inside the host's namespace, so it is
%% not paused with the host's regent node.
-module(regent_lossy_proxy).

-export([start/3, set_delay/2]).

-define(KEY, {?MODULE, delay}).

%% @doc Listens on ListenPort (every address) and forwards to Host:Port.
-spec start(inet:port_number(), string(), inet:port_number()) -> ok.
start(ListenPort, Host, Port) ->
    persistent_term:put(?KEY, {0, 0}),
    {ok, Target} = inet:parse_address(Host),
    Self = self(),
    spawn(fun() ->
                  {ok, L} = gen_tcp:listen(ListenPort, [binary, {active, false},
                                                        {reuseaddr, true}, {nodelay, true},
                                                        {backlog, 128}]),
                  Self ! {listening, self()},
                  accept_loop(L, Target, Port)
          end),
    receive {listening, _} -> ok after 5000 -> error(proxy_not_listening) end.

%% @doc From now on each chunk waits Ms + rand(0..Jitter) ms.
-spec set_delay(non_neg_integer(), non_neg_integer()) -> ok.
set_delay(Ms, Jitter) ->
    persistent_term:put(?KEY, {Ms, Jitter}).

%% A failed accept (the peer gave up meanwhile) only loses that connection.
accept_loop(L, Target, Port) ->
    case gen_tcp:accept(L) of
        {ok, In} ->
            Conn = spawn(fun() -> connection(Target, Port) end),
            case gen_tcp:controlling_process(In, Conn) of
                ok -> Conn ! {socket, In};
                {error, _} -> gen_tcp:close(In), exit(Conn, kill)
            end;
        {error, _} ->
            ok
    end,
    accept_loop(L, Target, Port).

%% One proxied connection: a pump each way; when either side closes, both go.
connection(Target, Port) ->
    In = receive {socket, S} -> S end,
    case gen_tcp:connect(Target, Port, [binary, {active, false}, {nodelay, true}], 5000) of
        {ok, Out} ->
            process_flag(trap_exit, true),
            W1 = spawn_link(fun() -> writer(Out) end),
            W2 = spawn_link(fun() -> writer(In) end),
            spawn_link(fun() -> pump(In, W1, now_ms()) end),
            spawn_link(fun() -> pump(Out, W2, now_ms()) end),
            receive {'EXIT', _, _} -> ok end,
            gen_tcp:close(In),
            gen_tcp:close(Out),
            exit(closed); % takes the other pump and both writers with it
        {error, _} ->
            gen_tcp:close(In)
    end.

%% Reads chunks and hands each to the writer with the time it is due, never
%% earlier than the previous one's.
pump(Sock, Writer, LastDue) ->
    case gen_tcp:recv(Sock, 0) of
        {ok, Bin} ->
            {Ms, Jitter} = persistent_term:get(?KEY),
            Due = max(LastDue, now_ms() + Ms + jitter(Jitter)),
            Writer ! {chunk, Due, Bin},
            pump(Sock, Writer, Due);
        {error, Why} ->
            exit(Why)
    end.

writer(Sock) ->
    receive
        {chunk, Due, Bin} ->
            Wait = Due - now_ms(),
            Wait > 0 andalso timer:sleep(Wait),
            case gen_tcp:send(Sock, Bin) of
                ok -> writer(Sock);
                {error, Why} -> exit(Why)
            end
    end.

jitter(0) -> 0;
jitter(J) -> rand:uniform(J + 1) - 1.

now_ms() -> erlang:monotonic_time(millisecond).

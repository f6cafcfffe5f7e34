%% The overload suite's load, run on the node under test (regent_overload_SUITE):
%% callers are local processes there, as an application's would be.
-module(regent_overload).

-export([burst/2, sequential/3, check_consistent/2]).

%% @doc N processes register a name each at the same moment and stay alive
%% holding it. Returns what they got, their latencies, the acknowledged
%% {Name, Pid} and the refused names, and the largest queue of waiting
%% writes the member reported meanwhile (regent:status/1 pending_ops).
-spec burst(atom(), pos_integer()) -> map().
burst(Reg, N) ->
    Self = self(),
    Callers = [spawn(fun() -> caller(Self, Reg, {burst, I}) end) || I <- lists:seq(1, N)],
    Sampler = spawn_link(fun() -> sample(Reg, Self, 0) end),
    T0 = erlang:monotonic_time(millisecond),
    [C ! go || C <- Callers],
    Answers = [receive {answer, C, A} -> A after 60000 -> error({no_answer, C}) end
               || C <- Callers],
    Ms = erlang:monotonic_time(millisecond) - T0,
    Sampler ! {stop, self()},
    MaxPending = receive {max_pending, M} -> M end,
    #{results => count([R || {_, _, R, _} <- Answers]),
      latency_us => percentiles([Us || {_, _, _, Us} <- Answers]),
      acked => [{Name, Pid} || {Name, Pid, yes, _} <- Answers],
      refused => [Name || {Name, _, overloaded, _} <- Answers],
      max_pending => MaxPending, ms => Ms}.

caller(Parent, Reg, Name) ->
    receive go -> ok end,
    T0 = erlang:monotonic_time(microsecond),
    R = try regent:register_name({Reg, Name}, self())
        catch exit:{regent_overloaded, _} -> overloaded;
              exit:{regent_unavailable, _} -> unavailable
        end,
    Parent ! {answer, self(), {Name, self(), R, erlang:monotonic_time(microsecond) - T0}},
    receive never -> ok end.

%% The member's own count of waiting writes, as often as it answers.
sample(Reg, Parent, Max) ->
    receive
        {stop, Parent} -> Parent ! {max_pending, Max}
    after 0 ->
            P = maps:get(pending_ops, regent:status(Reg)),
            sample(Reg, Parent, max(Max, P))
    end.

%% @doc Procs processes register Each names apiece, one after another, and
%% stay alive holding them.
-spec sequential(atom(), pos_integer(), pos_integer()) -> map().
sequential(Reg, Procs, Each) ->
    Self = self(),
    T0 = erlang:monotonic_time(millisecond),
    Ps = [spawn(fun() -> registrar(Self, Reg, P, Each) end) || P <- lists:seq(1, Procs)],
    Answers = lists:append([receive {done, P, As} -> As end || P <- Ps]),
    #{ms => erlang:monotonic_time(millisecond) - T0,
      results => count([R || {_, _, R} <- Answers]),
      acked => [{Name, Pid} || {Name, Pid, yes} <- Answers]}.

registrar(Parent, Reg, P, Each) ->
    As = [begin
              Name = {seq, P, I},
              {Name, self(), regent:register_name({Reg, Name}, self())}
          end || I <- lists:seq(1, Each)],
    Parent ! {done, self(), As},
    receive never -> ok end.

%% @doc The {Name, Pid} pairs whose name does not read back as Pid through
%% the log (50 readers at once).
-spec check_consistent(atom(), [{term(), pid()}]) -> [{term(), pid(), term()}].
check_consistent(Reg, Pairs) ->
    Self = self(),
    Chunks = chunks(Pairs, max(1, (length(Pairs) + 49) div 50)),
    Rs = [spawn(fun() ->
                        Self ! {wrong, self(), [{N, P, G} || {N, P} <- C,
                                                 (G = regent:whereis_name_consistent({Reg, N})) =/= P]}
                end) || C <- Chunks],
    lists:append([receive {wrong, R, W} -> W end || R <- Rs]).

chunks([], _) -> [];
chunks(L, N) when length(L) =< N -> [L];
chunks(L, N) -> {A, B} = lists:split(N, L), [A | chunks(B, N)].

count(L) ->
    lists:foldl(fun(X, M) -> maps:update_with(X, fun(C) -> C + 1 end, 1, M) end, #{}, L).

percentiles(L0) ->
    L = lists:sort(L0),
    N = length(L),
    At = fun(Q) -> lists:nth(max(1, min(N, round(Q * N))), L) end,
    #{p50 => At(0.5), p99 => At(0.99), max => lists:last(L)}.

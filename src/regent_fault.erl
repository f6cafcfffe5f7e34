%% @doc Fault injection for tests: not part of regent's API.
%%
%% Cuts the raft links of this node's registry member with the members on
%% other nodes, for real: regentd refuses their handshakes and shuts down the
%% sockets it holds with them. Together with cutting Erlang distribution
%% (`erlang:disconnect_node/1' with `dist_auto_connect' set to `once') this
%% makes a full network partition between node sets.
-module(regent_fault).

-export([cut_raft/2, heal_raft/1]).

%% @doc Cuts the raft links with the members on `Nodes'.
-spec cut_raft(regent:registry(), [node()]) -> {ok, non_neg_integer()}.
cut_raft(Reg, Nodes) ->
    gen_server:call(Reg, {block_raft, Nodes}).

%% @doc Restores every raft link.
-spec heal_raft(regent:registry()) -> {ok, 0}.
heal_raft(Reg) ->
    gen_server:call(Reg, {block_raft, []}).

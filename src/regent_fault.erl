%% @doc Fault injection for tests: not part of regent's API.
%%
%% Cuts the raft links of this node's registry member with the members on
%% other nodes, for real: regentd refuses their handshakes and shuts down the
%% sockets it holds with them. Together with cutting Erlang distribution
%% (`erlang:disconnect_node/1' with `dist_auto_connect' set to `once') this
%% makes a full network partition between node sets. A one-way cut drops
%% only what one side receives: raft_uv sends on the connections it opens
%% itself, so `in' refuses the peers' connections to this node and leaves
%% this node's connections to them alone.
%%
%% `take_leadership/1' moves the raft leadership to a chosen node, for tests
%% that need a particular server in charge.
-module(regent_fault).

-export([cut_raft/2, cut_raft/3, heal_raft/1, take_leadership/1]).

-type direction() :: in | out | both.
-export_type([direction/0]).

%% @doc Cuts the raft links with the members on `Nodes', both ways.
-spec cut_raft(regent:registry(), [node()]) -> {ok, non_neg_integer()}.
cut_raft(Reg, Nodes) ->
    cut_raft(Reg, Nodes, both).

%% @doc Cuts the raft links with the members on `Nodes' in one direction
%% (`in': drop what they send this node; `out': drop what this node sends
%% them) or both. Replaces any earlier cut on this node.
-spec cut_raft(regent:registry(), [node()], direction()) -> {ok, non_neg_integer()}.
cut_raft(Reg, Nodes, Dir) when Dir =:= in; Dir =:= out; Dir =:= both ->
    gen_server:call(Reg, {block_raft, [{N, Dir} || N <- Nodes]}).

%% @doc Restores every raft link.
-spec heal_raft(regent:registry()) -> {ok, 0}.
heal_raft(Reg) ->
    gen_server:call(Reg, {block_raft, []}).

%% @doc Asks the current leader to hand the raft leadership to this node's
%% member (`raft_transfer'). Returns at once; the caller polls
%% `regent:get_leader/1'. The leader ignores the request while another
%% membership change is in progress.
-spec take_leadership(regent:registry()) -> ok | {error, no_leader}.
take_leadership(Reg) ->
    gen_server:call(Reg, take_leadership).

%% The adapter behaviour of the benchmark. An adapter puts a registry behind
%% one or both of two contracts, and the run measures it in the rows of the
%% contracts it implements:
%%
%% - names (scenarios 1-8): the via contract, a name with one owner;
%% - groups (scenarios 10-11): duplicate keys, a key with any number of
%%   members, as Elixir's Registry with `keys: :duplicate' or OTP's pg;
%% - supervision (scenario 13): children started once in the cluster and
%%   started again elsewhere when their node halts.
%%
%% Both sets are optional callbacks, so that a registry with only one of
%% them (global has no groups, pg has no names) is simply left out of the
%% other's rows; an adapter exporting `register_name/2' has names, one
%% exporting `group_join/2' has groups. To measure another registry (syn,
%% Horde, ...) from your own checkout, write a module with these callbacks
%% and add it to `make bench BENCH_ADAPTERS=...' (see bench/README.md).
-module(bench_registry).

%% A short label for the table.
-callback label() -> string().
%% local: one node only (Elixir Registry); cluster: works across nodes.
-callback scope() -> local | cluster.

%% ---- names ----
%% Called on every node of the run (first the first node), once per round.
-callback start(Nodes :: [node()]) -> ok.
%% Called on every node at the end of a round.
-callback stop() -> ok.
%% The via contract, called on the node where the caller runs.
-callback register_name(Name :: term(), Pid :: pid()) -> yes | no.
-callback unregister_name(Name :: term()) -> ok.
-callback whereis_name(Name :: term()) -> pid() | undefined.
%% Names registered on this node's view, for cleanup/convergence scenarios.
-callback count() -> non_neg_integer().

%% ---- groups ----
%% Like start/1 and stop/0, for the registry that holds the groups (it may
%% be a second instance: regent and Elixir's Registry choose `keys' when
%% they start).
-callback group_start(Nodes :: [node()]) -> ok.
-callback group_stop() -> ok.
%% Called in the process that joins: registries of this kind register the
%% caller (Registry.register/3, pg:join/3 with self()). A registry without
%% values ignores Value.
-callback group_join(Group :: term(), Value :: term()) -> ok.
%% The registry's own read of a group's members, as it returns them (pg
%% returns pids, the others {Pid, Value} entries).
-callback group_lookup(Group :: term()) -> list().
%% Calls Fun with the group's [{Pid, Value}] entries in the caller, as
%% Registry.dispatch/3 (a registry without dispatch builds the entries from
%% its lookup, see bench_pg).
-callback group_dispatch(Group :: term(), Fun :: fun((list()) -> term())) -> term().
%% Members of Group in this node's view, to wait for convergence.
-callback group_count(Group :: term()) -> non_neg_integer().

%% ---- supervision (scenario 13) ----
%% A distributed supervisor whose children run once in the cluster
%% (regent_sup, Horde.DynamicSupervisor). Called on every node of the run
%% at once; returns when the cluster's supervisors are ready.
-callback sup_start(Nodes :: [node()]) -> ok.
%% Starts child Id (an idle process) from the calling node; returns once it
%% runs somewhere.
-callback sup_start_child(Id :: term()) -> {ok, pid()}.
%% Children running, as this node sees them, on nodes other than Excluded.
-callback sup_running(Excluded :: node()) -> non_neg_integer().

%% Optional: true, or {false, Why} when the registry's code is not on this
%% node (the run then leaves the adapter out and prints Why).
-callback available() -> true | {false, iodata()}.
%% Optional: the most names a run may give this registry (see bench_global).
-callback max_names() -> pos_integer().

-optional_callbacks([start/1, stop/0, register_name/2, unregister_name/1,
                     whereis_name/1, count/0,
                     group_start/1, group_stop/0, group_join/2, group_lookup/1,
                     group_dispatch/2, group_count/1,
                     sup_start/1, sup_start_child/1, sup_running/1,
                     available/0, max_names/0]).

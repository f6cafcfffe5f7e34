%% The adapter behaviour of the benchmark: a registry behind the via
%% contract. To measure another registry (syn, Horde, ...) from your own
%% checkout, write a module with these callbacks and add it to
%% `make bench BENCH_ADAPTERS=...' (see bench/README.md).
-module(bench_registry).

%% A short label for the table.
-callback label() -> string().
%% local: one node only (Elixir Registry); cluster: works across nodes.
-callback scope() -> local | cluster.
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
%% Optional: true, or {false, Why} when the registry's code is not on this
%% node (the run then leaves the adapter out and prints Why).
-callback available() -> true | {false, iodata()}.
%% Optional: the most names a run may give this registry (see bench_global).
-callback max_names() -> pos_integer().
-optional_callbacks([available/0, max_names/0]).

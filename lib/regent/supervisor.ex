defmodule Regent.Supervisor do
  @moduledoc """
  A distributed dynamic supervisor on a `Regent` registry: each child runs
  at most once in the cluster, on a node chosen by a placement rule, and
  starts again on another node when its node dies or is cut off (the
  Elixir face of `:regent_sup`).

  Where `Horde.DynamicSupervisor` and ProcessHub are eventually
  consistent, and run duplicates around partitions, regent decides every
  start, restart and move through the same raft log as the names. A node
  runs children only while it holds a lease renewed through that log: a
  node cut off from the leader kills its children within `:lease`
  milliseconds, and they start elsewhere only after `:lease` +
  `:lease_margin`. See docs/supervision.md for the timing argument and its
  assumptions.

  ## Starting

  Start it after its registry, on every node that may run children, with
  the same options:

      children = [
        {Regent, keys: :unique, name: MyApp.Registry},
        {Regent.Supervisor, name: MyApp.Sup, registry: MyApp.Registry}
      ]

      Supervisor.start_link(children, strategy: :rest_for_one)

  Options: `:name` and `:registry` (required); `:lease` (ms, default 3000)
  and `:lease_margin` (ms, default 500); `:placement` (default
  `:least_loaded`, see `start_child/3`); `:max_restarts` (default 3) and
  `:max_seconds` (default 5), each child's defaults; `:start_timeout` (ms,
  default 15000); `:redistribute` (`:none`, the default, or `:active`:
  children move to a node that joins, a few at a time, with handoff). An
  unknown option or a bad value raises `ArgumentError`.

  ## Handoff

  `stop/1` is a graceful leave: the node's children move to other nodes.
  A child started with `handoff: true` is asked for its state first, by the
  call `:"$regent_handoff"`, which it answers with `{:handoff, state}` as it
  stops; the next instance reads that state in its `init/1`:

      def init(id) do
        state =
          case Regent.Supervisor.handoff_state(MyApp.Sup, id) do
            {:ok, handed_over} -> handed_over
            :none -> fresh_state()
          end

        {:ok, state}
      end

      def handle_call(:"$regent_handoff", _from, state),
        do: {:stop, :normal, {:handoff, state}, state}

  The old instance is gone before the new one starts: a move never runs
  two instances. After a crash or a node's death the child starts with
  fresh state.

  ## Children

  `start_child/3` takes what `DynamicSupervisor.start_child/2` takes: a
  child spec map, or `{module, arg}`, or `module`. The spec is stored in
  the log, so it must be plain data: a pid, fun, port or reference in it
  raises `ArgumentError`. The child is registered in the registry under its
  id, so `{:via, Regent, {MyApp.Registry, id}}` reaches it from any node.

  ## A singleton

  As in Horde's singleton guide, every node may ask for the same child; one
  instance runs, and every caller gets its pid:

      {:ok, pid} = Regent.Supervisor.find_or_start(MyApp.Sup, {MyApp.Scheduler, []})
  """

  @type sup :: atom
  @type child_id :: term
  @type placement ::
          :least_loaded | :hash | :local | {:node, node} | {module, atom}
          | (child_id, [node] -> node)
  @type on_start :: {:ok, pid} | :ignore | {:error, term}

  @doc """
  Starts the supervisor on this node, registered locally under `:name`.
  """
  @spec start_link(keyword) :: {:ok, pid} | {:error, term}
  def start_link(options) when is_list(options), do: :regent_sup.start_link(options)

  @doc """
  A child specification: `{Regent.Supervisor, name: MyApp.Sup, registry: MyApp.Registry}`.
  """
  @spec child_spec(keyword) :: Supervisor.child_spec()
  def child_spec(options) when is_list(options), do: :regent_sup.child_spec(options)

  @doc """
  A graceful leave: this node's children move to other nodes, with their
  state when started with `handoff: true`, then the supervisor stops here
  and gives its lease back.
  """
  @spec stop(sup) :: :ok
  def stop(sup), do: :regent_sup.stop(sup)

  @doc """
  Starts a child somewhere in the cluster and returns once it runs.

  Returns `{:ok, pid}`; `{:error, {:already_started, pid}}` if a child with
  its id runs; `{:error, :already_present}` if its id is a terminated
  child; `:ignore` or `{:error, reason}` as its start function returned,
  and then nothing of it stays in the log. When the chosen node lacks the
  child's module, another node is tried, at most three in all, then
  `{:error, {:module_missing, module, tried}}`.

  Options:

    * `:placement` - `:least_loaded` (the supervisor's default),
      `:hash` (rendezvous hashing on the id: the fewest moves when nodes
      come and go), `:local`, `{:node, node}`, or `{module, function}`
      called with the id and the live nodes (a fun is only a supervisor
      option: a child's options are stored in the log);
    * `:tags` - any plain term, the child's value in the registry (so
      `Regent.match/3` and `Regent.select/2` query it) and in `children/1`;
    * `:max_restarts`, `:max_seconds` - as OTP's, for this child;
    * `:handoff` - `true` to ask a moving instance for its state (see
      "Handoff" above); default `false`.
  """
  @spec start_child(sup, Supervisor.child_spec() | {module, term} | module, keyword) :: on_start
  def start_child(sup, child_spec, options \\ []), do: :regent_sup.start_child(sup, child_spec, options)

  @doc """
  The singleton: `{:ok, pid}` of the one instance of the child, started
  if it did not run. Every node may call it at once with the same spec.
  """
  @spec find_or_start(sup, Supervisor.child_spec() | {module, term} | module, keyword) :: on_start
  def find_or_start(sup, child_spec, options \\ []),
    do: :regent_sup.find_or_start(sup, child_spec, options)

  @doc """
  Terminates a child, by id or pid, and keeps its spec (a `:temporary`
  child's goes), as `Supervisor.terminate_child/2`; returns once it has
  stopped.
  """
  @spec terminate_child(sup, child_id | pid) :: :ok | {:error, :not_found}
  def terminate_child(sup, id_or_pid), do: :regent_sup.terminate_child(sup, id_or_pid)

  @doc "Deletes a terminated child's spec, as `Supervisor.delete_child/2`."
  @spec delete_child(sup, child_id) :: :ok | {:error, :running | :not_found}
  def delete_child(sup, id), do: :regent_sup.delete_child(sup, id)

  @doc "Starts a terminated child again, as `Supervisor.restart_child/2`."
  @spec restart_child(sup, child_id) :: on_start | {:error, :running | :not_found}
  def restart_child(sup, id), do: :regent_sup.restart_child(sup, id)

  @doc """
  Every child in the cluster, as `Supervisor.which_children/1`:
  `{id, pid | :restarting | :undefined, type, modules}`, read on this node.
  """
  @spec which_children(sup) :: [{child_id, pid | :restarting | :undefined, :worker | :supervisor, [module] | :dynamic}]
  def which_children(sup), do: :regent_sup.which_children(sup)

  @doc "The counts of `Supervisor.count_children/1`, cluster-wide."
  @spec count_children(sup) :: %{specs: non_neg_integer, active: non_neg_integer,
                                 supervisors: non_neg_integer, workers: non_neg_integer}
  def count_children(sup), do: Map.new(:regent_sup.count_children(sup))

  @doc """
  Every child with its `:spec`, `:node`, `:pid`, `:status` (`:run`,
  `:stopped`, or `:handoff` while it moves), `:tags` and fencing token (`:epoch`, `:inc`).
  """
  @spec children(sup) :: [map]
  def children(sup), do: :regent_sup.children(sup)

  @doc "The children running on this node: `[{id, pid}]`."
  @spec local_children(sup) :: [{child_id, pid}]
  def local_children(sup), do: :regent_sup.local_children(sup)

  @doc "The pid of child `id`, wherever it runs, or `nil`."
  @spec get_pid(sup, child_id) :: pid | nil
  def get_pid(sup, id), do: nil_if_undefined(:regent_sup.get_pid(sup, id))

  @doc """
  In a child's `init/1`: `{:ok, state}` handed over by its previous
  instance when it moved here, or `:none`.
  """
  @spec handoff_state(sup, child_id) :: {:ok, term} | :none
  def handoff_state(sup, id), do: :regent_sup.handoff_state(sup, id)

  @doc """
  The fencing token of child `id`'s current instance, `{epoch, inc}`, or
  `nil`: `inc` grows with every start of the child on any node and is in
  the log before that instance starts. A child passes it to external
  systems so that they can refuse a stale instance (docs/supervision.md).
  """
  @spec token(sup, child_id) :: {pos_integer, pos_integer} | nil
  def token(sup, id), do: nil_if_undefined(:regent_sup.token(sup, id))

  defp nil_if_undefined(:undefined), do: nil
  defp nil_if_undefined(value), do: value
end

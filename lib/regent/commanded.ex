defmodule Regent.Commanded do
  @moduledoc """
  A registry adapter for [Commanded](https://github.com/commanded/commanded)
  (≥ 1.0, the `Commanded.Registration.Adapter` behaviour): aggregates,
  process managers and event handlers registered and supervised by regent,
  so that each runs once in the cluster and starts again on another node
  when its node dies.

      defmodule MyApp.App do
        use Commanded.Application,
          otp_app: :my_app,
          registry: Regent.Commanded
      end

  With options: `registry: {Regent.Commanded, lease: 5_000}`. Options:
  `:registry` (the name of the `Regent` registry to start; default
  `MyApp.App.Regent`), `:supervisor` (the `Regent.Supervisor`'s name;
  default `MyApp.App.Regent.Supervisor`), and any option of
  `Regent.Supervisor` (`:lease`, `:lease_margin`, `:placement`, ...).

  How each callback maps onto regent:

    * `child_spec/2` starts a `Regent` registry and a `Regent.Supervisor`
      on the node, in Commanded's supervision tree;
    * `supervisor_child_spec/3` is the supervisor Commanded asks for (its
      aggregates' `DynamicSupervisor`), started as it would be locally;
    * `start_child/4` commits the child to the `Regent.Supervisor`, which
      places it on one node, where it runs under that node's instance of
      Commanded's supervisor (so the supervisor's `extra_arguments` reach
      it); every caller, on any node, gets the one pid. A temporary child
      (an aggregate) is not restarted (Commanded opens it again on its next
      command); a permanent one starts again on another node;
    * `start_link/5` starts a named `GenServer` linked to the caller, or
      links the caller to the one that holds the name, as Commanded's
      global registry does;
    * `whereis_name/2` and `via_tuple/2` read and name through the registry.

  Commanded is not a dependency of regent: this module is compiled always,
  and declares the behaviour when Commanded is loaded.
  """

  if Code.ensure_loaded?(Commanded.Registration.Adapter) do
    @behaviour Commanded.Registration.Adapter
  end

  @type adapter_meta :: %{application: module, registry: atom, supervisor: atom}

  @doc "The registry and the distributed supervisor, on every node of the application."
  @spec child_spec(module, keyword) :: {:ok, [Supervisor.child_spec()], adapter_meta}
  def child_spec(application, config) do
    {registry, config} = Keyword.pop(config, :registry, Module.concat(application, Regent))
    {supervisor, config} = Keyword.pop(config, :supervisor, Module.concat(registry, Supervisor))

    children = [
      {Regent, keys: :unique, name: registry},
      {Regent.Supervisor, [name: supervisor, registry: registry] ++ config}
    ]

    {:ok, children, %{application: application, registry: registry, supervisor: supervisor}}
  end

  @doc "The supervisor Commanded asks for, started on this node as it would be locally."
  @spec supervisor_child_spec(adapter_meta, module, term) :: Supervisor.child_spec()
  def supervisor_child_spec(_adapter_meta, module, arg) do
    Supervisor.child_spec(%{id: module, start: {module, :start_link, [arg]}, type: :supervisor}, [])
  end

  @doc """
  Starts the child named `name` once in the cluster (under `supervisor` on
  the node that runs it): `{:ok, pid}`, also when it runs already.
  """
  @spec start_child(adapter_meta, term, atom, {module, keyword} | module) ::
          {:ok, pid} | {:error, term}
  def start_child(adapter_meta, name, supervisor, child_spec) do
    named = named_spec(child_spec, via_tuple(adapter_meta, name))
    %{restart: restart} = Supervisor.child_spec(named, [])

    spec = %{
      id: name,
      start: {__MODULE__, :start_local, [supervisor, named]},
      restart: restart,
      type: :worker
    }

    Regent.Supervisor.find_or_start(adapter_meta.supervisor, spec)
  end

  defp named_spec(module, via) when is_atom(module), do: {module, name: via}
  defp named_spec({module, args}, via) when is_atom(module) and is_list(args),
    do: {module, Keyword.put(args, :name, via)}

  @doc false
  # On the node the Regent.Supervisor chose, in its local supervisor: the
  # child under that node's instance of Commanded's supervisor, never
  # restarted by it (regent decides restarts, cluster-wide), and linked to
  # the caller too, so that regent's local supervisor sees it exit.
  def start_local(supervisor, named_spec) do
    case DynamicSupervisor.start_child(supervisor, Supervisor.child_spec(named_spec, restart: :temporary)) do
      {:ok, pid} = ok ->
        Process.link(pid)
        ok

      {:ok, pid, _info} ->
        Process.link(pid)
        {:ok, pid}

      other ->
        other
    end
  end

  @doc """
  Starts `module` as a `GenServer` named `name`, linked to the caller; if
  another process holds the name, links the caller to it instead.
  """
  @spec start_link(adapter_meta, term, module, term, GenServer.options()) ::
          {:ok, pid} | {:error, term}
  def start_link(adapter_meta, name, module, args, start_opts) do
    start_opts = Keyword.put(start_opts, :name, via_tuple(adapter_meta, name))

    case GenServer.start_link(module, args, start_opts) do
      {:error, {:already_started, pid}} ->
        true = Process.link(pid)
        {:ok, pid}

      reply ->
        reply
    end
  end

  @doc "The pid registered under `name`, or `:undefined`."
  @spec whereis_name(adapter_meta, term) :: pid | :undefined
  def whereis_name(adapter_meta, name), do: Regent.whereis_name({adapter_meta.registry, name})

  @doc "The via tuple of `name` in the application's registry."
  @spec via_tuple(adapter_meta, term) :: {:via, Regent, {atom, term}}
  def via_tuple(adapter_meta, name), do: {:via, Regent, {adapter_meta.registry, name}}
end

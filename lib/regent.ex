defmodule Regent do
  @moduledoc """
  A distributed, consistent process registry (the Elixir face of `:regent`).

  Any process can be registered under a `{:via, Regent, {registry, name}}`
  tuple, where `name` is any term. Registration is decided by raft
  consensus in `regentd`, a C daemon owned by the registry, so a name never
  has two owners; lookups read a local ETS table and never block. Names of
  processes that exit disappear by themselves.

  ## Starting a registry

  Add it to your supervision tree, before the processes that use it:

      children = [
        {Regent, name: MyApp.Registry},
        {DynamicSupervisor, name: MyApp.Workers, strategy: :one_for_one}
      ]

      Supervisor.start_link(children, strategy: :one_for_one)

  ## Using it in `:via`

      name = {:via, Regent, {MyApp.Registry, {:cart, 42}}}
      {:ok, _} = DynamicSupervisor.start_child(MyApp.Workers, {Cart, name: name})
      GenServer.call(name, :checkout)

  ## Semantics

    * `register_name/2` returns `:no` only when a different live process
      holds the name; registering the same pid again returns `:yes`.
    * After `:yes`, `whereis_name/1` on the same node returns the pid
      (read-your-writes); after `unregister_name/1`, it returns `:undefined`.
    * While the daemon cannot commit a write, the write waits; after
      `:register_timeout` (5000 ms) the caller exits with
      `{:regent_unavailable, {registry, name}}`.
    * Bad arguments raise `ArgumentError` (`{:badarg, why}` in Erlang); a registry
      that is not running makes the caller exit with
      `{:regent_not_running, registry}`.

  Every function delegates to the Erlang module `:regent`, which documents
  the options.
  """

  @typedoc "A registry: the atom given as `:name` when starting it."
  @type registry :: atom()
  @typedoc "A registered name: any term without funs, at most 1024 bytes encoded."
  @type name :: term()

  @doc """
  A child specification: `{Regent, name: MyReg}`, `{Regent, MyReg}` or
  `{Regent, name: MyReg, register_timeout: 2000}`.
  """
  @spec child_spec(keyword() | registry()) :: Supervisor.child_spec()
  def child_spec(reg) when is_atom(reg), do: child_spec(name: reg)

  def child_spec(opts) when is_list(opts) do
    {reg, opts} = Keyword.pop(opts, :name)

    unless is_atom(reg) and reg != nil do
      raise ArgumentError, "expected :name to be an atom, got: #{inspect(reg)}"
    end

    %{id: {Regent, reg}, start: {Regent, :start_link, [reg, opts]}, type: :worker}
  end

  @doc "Starts the registry `reg` on this node, linked to the caller."
  @spec start_link(registry(), keyword()) :: {:ok, pid()} | {:error, term()}
  def start_link(reg, opts \\ []), do: :regent.start_link(reg, opts)

  @doc "Registers `pid` under `name`: `:yes`, or `:no` if a live process holds it."
  @spec register_name({registry(), name()}, pid()) :: :yes | :no
  defdelegate register_name(via_name, pid), to: :regent

  @doc "Registers `pid` under `name` with metadata `meta`."
  @spec register_name({registry(), name()}, pid(), term()) :: :yes | :no
  defdelegate register_name(via_name, pid, meta), to: :regent

  @doc "Removes `name`, whoever holds it."
  @spec unregister_name({registry(), name()}) :: :ok
  defdelegate unregister_name(via_name), to: :regent

  @doc "The pid registered under `name`, or `:undefined` (a local ETS read)."
  @spec whereis_name({registry(), name()}) :: pid() | :undefined
  defdelegate whereis_name(via_name), to: :regent

  @doc "Sends `msg` to the process registered under `name`; exits if there is none."
  @spec send({registry(), name()}, term()) :: pid()
  defdelegate send(via_name, msg), to: :regent

  @doc "The owner of `name` read through the raft log (linearizable)."
  @spec whereis_name_consistent({registry(), name()}) :: pid() | :undefined
  defdelegate whereis_name_consistent(via_name), to: :regent

  @doc "`[{pid, meta}]` for `name`, or `[]`, as `Registry.lookup/2`."
  @spec lookup(registry(), name()) :: [{pid(), term()}]
  defdelegate lookup(reg, name), to: :regent

  @doc "Replaces the metadata of a registered name."
  @spec set_metadata({registry(), name()}, term()) :: :ok | {:error, :not_registered}
  defdelegate set_metadata(via_name, meta), to: :regent

  @doc "The metadata of a registered name."
  @spec get_metadata({registry(), name()}) :: {:ok, term()} | {:error, :not_registered}
  defdelegate get_metadata(via_name), to: :regent

  @doc "The number of registered names."
  @spec count(registry()) :: non_neg_integer()
  defdelegate count(reg), to: :regent

  @doc "Runs an ETS match specification over `{name, pid, meta}` rows."
  @spec select(registry(), :ets.match_spec()) :: [term()]
  defdelegate select(reg, spec), to: :regent

  @doc "The leading member, `{node, registry}`, or `:undefined`."
  @spec get_leader(registry()) :: {node(), registry()} | :undefined
  defdelegate get_leader(reg), to: :regent

  @doc "The raft term; it grows with every election."
  @spec get_epoch(registry()) :: non_neg_integer()
  defdelegate get_epoch(reg), to: :regent

  @doc "The members with their roles."
  @spec get_members(registry()) :: [{{node(), registry()}, :voter | :standby}]
  defdelegate get_members(reg), to: :regent

  @doc "This member's view of the registry (role, leader, epoch, indexes, daemon)."
  @spec status(registry()) :: map()
  defdelegate status(reg), to: :regent

  @doc "Whether the registry serves writes."
  @spec ready(registry()) :: boolean()
  defdelegate ready(reg), to: :regent

  @doc "Waits until the registry serves writes."
  @spec await_ready(registry(), timeout()) :: :ok | {:error, :timeout}
  defdelegate await_ready(reg, timeout \\ 5000), to: :regent
end

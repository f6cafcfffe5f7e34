defmodule Regent do
  @moduledoc """
  A distributed, consistent process registry: Elixir's `Registry`,
  cluster-wide (the Elixir face of the Erlang module `:regent`).

  Code written for `Registry` runs unchanged after replacing the module
  name, and gets answers from the whole cluster. Registration is decided
  by raft consensus in `regentd`, a C daemon owned by the registry on each
  node, so a unique key never has two owners, even across partitions.
  Lookups, matches and dispatches read a local ETS table in the caller's
  process and never block. Entries of processes that exit, and of nodes
  that go down, disappear by themselves.

  ## Starting a registry

  Start it in your supervision tree, before the processes that use it, on
  every node of the cluster, with the same options:

      children = [
        {Regent, keys: :unique, name: MyApp.Registry},
        {DynamicSupervisor, name: MyApp.Workers, strategy: :one_for_one}
      ]

      Supervisor.start_link(children, strategy: :one_for_one)

  Nodes that run a registry of the same name find each other through
  Erlang distribution and form one raft cluster.

  ## Using in `:via`

  Once the registry is started with a given name using
  `Regent.start_link/1`, it can be used to register and access named
  processes using the `{:via, Regent, {registry, key}}` tuple, from any
  node:

      {:ok, _} = Regent.start_link(keys: :unique, name: Regent.ViaTest)
      name = {:via, Regent, {Regent.ViaTest, "agent"}}
      {:ok, _} = Agent.start_link(fn -> 0 end, name: name)
      Agent.get(name, & &1)
      #=> 0
      Agent.update(name, &(&1 + 1))
      Agent.get(name, & &1)
      #=> 1

  In the previous example, we were not interested in associating a value
  to the process. Like `Registry`, `{:via, Regent, {registry, key, value}}`
  registers with a value:

      name = {:via, Regent, {Regent.ViaTest, "agent", :hello}}
      {:ok, agent_pid} = Agent.start_link(fn -> 0 end, name: name)
      Regent.lookup(Regent.ViaTest, "agent")
      #=> [{agent_pid, :hello}]

  `:via` is for unique registries only.

  ## Using as a dispatcher and a PubSub

  A duplicate registry (`keys: :duplicate`) maps a key to many
  `{pid, value}` entries registered from any node: process groups and
  pub/sub across the cluster.

      {:ok, _} = Regent.start_link(keys: :duplicate, name: Regent.PubSubTest)
      {:ok, _} = Regent.register(Regent.PubSubTest, "hello", [])

      Regent.dispatch(Regent.PubSubTest, "hello", fn entries ->
        for {pid, _} <- entries, do: send(pid, {:broadcast, "world"})
      end)
      #=> :ok

  Every process registered under `"hello"` on every node gets the message.
  Entries of the losing side of a partition come back when it heals:
  duplicate entries never conflict.

  ## Semantics

    * Writes (`register/3`, `unregister/2`, `update_value/3`,
      `unregister_match/4`, `put_meta/3`, ...) go through the raft log.
      Once one returns, reads on the same node see its effect
      (read-your-writes); other nodes see it within a round trip.
    * Reads (`lookup/2`, `match/4`, `dispatch/3`, `select/2`, `count/1`,
      `keys/2`, `values/3`, `meta/2`, `whereis_name/1`) run in the caller's
      process on the local mirror: no message, no network hop.
    * While the daemon cannot commit a write, the write waits; after
      `:register_timeout` (5000 ms) the caller exits with
      `{:regent_unavailable, {registry, key}}`.
    * A member holds at most `:max_pending_writes` (65536) callers' writes
      waiting for the log; a write beyond that is refused at once, with no
      effect: the caller exits with `{:regent_overloaded, {registry, key}}`.
    * Bad arguments raise `ArgumentError` and change nothing; a registry
      that is not running makes the caller exit with
      `{:regent_not_running, registry}`.

  ## Differences from `Registry`

    * `register/3` returns `{:ok, member}`, the registry's process on this
      node; callers are monitored by it, not linked.
    * `:listeners` receive `{:register, ...}` and `{:unregister, ...}` for
      changes made on any node, and also when an entry goes because its
      process exited.
    * `:partitions` is accepted and ignored; `dispatch/4`'s `parallel:`
      too.
    * `keys/2` scans the table (Registry keeps an index per pid).
    * The via callbacks keep `:global`'s semantics: registering the pid
      that already holds the key answers `:yes`, and `unregister_name/1`
      removes the key whoever holds it.

  Every function delegates to the Erlang module `:regent`.
  """

  @typedoc "The registry identifier: the atom given as `:name`."
  @type registry :: atom()
  @typedoc "The type of registry: `:unique` (the default) or `:duplicate`."
  @type keys :: :unique | :duplicate
  @typedoc "A key: any term without funs, at most 1024 bytes encoded."
  @type key :: term()
  @typedoc "A value: any term, at most 65536 bytes in external format."
  @type value :: term()
  @typedoc "The type of registry metadata keys."
  @type meta_key :: atom() | tuple()
  @typedoc "The type of registry metadata values."
  @type meta_value :: term()
  @typedoc "A pattern to match on objects in a registry."
  @type match_pattern :: atom() | term()
  @typedoc "A list of guards to be evaluated when matching on objects in a registry."
  @type guards :: [atom() | tuple()]
  @typedoc "A full match spec over `{key, pid, value}`."
  @type spec :: [{match_pattern, guards, [term()]}]
  @typedoc "A via name: `{registry, key}` or `{registry, key, value}`."
  @type via_name :: {registry, key} | {registry, key, value}

  @typedoc "Options for `start_link/1` and `child_spec/1`."
  @type start_option ::
          {:keys, keys}
          | {:name, registry}
          | {:partitions, pos_integer}
          | {:listeners, [atom]}
          | {:meta, [{meta_key, meta_value}]}
          | {:compressed, boolean}
          | {atom, term}

  ## Starting

  @doc """
  Starts the registry on this node.

      Regent.start_link(keys: :unique, name: MyApp.Registry)

  In your supervision tree:

      Supervisor.start_link([{Regent, keys: :unique, name: MyApp.Registry}],
        strategy: :one_for_one)

  ## Options

    * `:name` - the name of the registry and its table (required).
    * `:keys` - `:unique` (default) or `:duplicate`.
    * `:listeners` - named local processes told of `:register` and
      `:unregister` events made anywhere in the cluster.
    * `:meta` - a keyword list of registry metadata, put in the cluster
      unless the key already has a value there.
    * `:partitions` - accepted and ignored.
    * `:compressed` - compress the local ETS table.

  regent's own options (`:data_dir`, `:register_timeout`,
  `:max_pending_writes`, `:reconnect`, `:voters`,
  `:conflict`, `:bind_host`, `:port_range`, `:secret`, `:tls`,
  `:snapshot_threshold`, `:snapshot_trailing`, `:daemon`) are documented in
  `:regent.start_link/2`. An unknown option, or a value of the wrong type,
  raises `ArgumentError` naming it, and nothing starts:

      iex> Regent.start_link(keys: :uniq, name: Regent.BadKeysTest)
      ** (ArgumentError) argument error: {:keys, :uniq}

  The registry serves reads at once and writes once its daemon is ready
  (writes wait for it); `await_ready/2` waits explicitly.
  """
  @spec start_link([start_option]) :: {:ok, pid} | {:error, term}
  def start_link(options) when is_list(options) do
    {reg, options} = pop_name(options)
    :regent.start_link(reg, options)
  end

  @doc false
  # The form of earlier releases: `Regent.start_link(MyReg, opts)`.
  @spec start_link(registry, keyword) :: {:ok, pid} | {:error, term}
  def start_link(reg, options) when is_atom(reg), do: :regent.start_link(reg, options)

  @doc """
  A child specification: `{Regent, keys: :unique, name: MyReg}` (or
  `{Regent, MyReg}` for a unique registry with the defaults).
  """
  @spec child_spec([start_option] | registry) :: Supervisor.child_spec()
  def child_spec(reg) when is_atom(reg), do: child_spec(name: reg)

  def child_spec(options) when is_list(options) do
    {reg, _} = pop_name(options)
    %{id: {Regent, reg}, start: {Regent, :start_link, [options]}, type: :worker}
  end

  defp pop_name(options) do
    case Keyword.pop(options, :name) do
      {reg, rest} when is_atom(reg) and reg != nil -> {reg, rest}
      {nil, _} -> raise ArgumentError, "expected :name option to be present"
      {other, _} -> raise ArgumentError, "expected :name to be an atom, got: #{inspect(other)}"
    end
  end

  ## Via callbacks

  @doc false
  def register_name({reg, key}, pid), do: :regent.register_name({reg, key, nil}, pid)
  def register_name({_reg, _key, _value} = via, pid), do: :regent.register_name(via, pid)

  @doc """
  Registers `pid` (any process, on any connected node) under `key` with
  metadata `value`: `:yes`, or `:no` if another live process holds it.
  regent's extension of the via contract; unique registries only.
  """
  @spec register_name({registry, key}, pid, value) :: :yes | :no
  defdelegate register_name(via_name, pid, value), to: :regent

  @doc false
  defdelegate unregister_name(via_name), to: :regent

  @doc false
  defdelegate whereis_name(via_name), to: :regent

  @doc false
  defdelegate send(via_name, msg), to: :regent

  ## Registry's API

  @doc """
  Registers the current process under the given `key` in `registry`, with
  `value`.

  In a unique registry it returns `{:ok, member}` unless the key is held by
  a live process anywhere in the cluster, the caller included: then
  `{:error, {:already_registered, pid}}`. In a duplicate registry,
  multiple registrations from the current process under the same key are
  allowed. The entry goes when the process exits.

      iex> Regent.start_link(keys: :unique, name: Regent.UniqueRegisterTest)
      iex> {:ok, _} = Regent.register(Regent.UniqueRegisterTest, "hello", :world)
      iex> Regent.register(Regent.UniqueRegisterTest, "hello", :later)
      {:error, {:already_registered, self()}}
      iex> Regent.keys(Regent.UniqueRegisterTest, self())
      ["hello"]

  Such is possible for duplicate registries though:

      iex> Regent.start_link(keys: :duplicate, name: Regent.DuplicateRegisterTest)
      iex> {:ok, _} = Regent.register(Regent.DuplicateRegisterTest, "hello", :world)
      iex> {:ok, _} = Regent.register(Regent.DuplicateRegisterTest, "hello", :world)
      iex> Regent.keys(Regent.DuplicateRegisterTest, self())
      ["hello", "hello"]

  """
  @spec register(registry, key, value) :: {:ok, pid} | {:error, {:already_registered, pid}}
  defdelegate register(registry, key, value), to: :regent

  @doc """
  Unregisters all entries for the given `key` associated to the current
  process in `registry`. Always returns `:ok`.

      iex> Regent.start_link(keys: :unique, name: Regent.UniqueUnregisterTest)
      iex> Regent.register(Regent.UniqueUnregisterTest, "hello", :world)
      iex> Regent.keys(Regent.UniqueUnregisterTest, self())
      ["hello"]
      iex> Regent.unregister(Regent.UniqueUnregisterTest, "hello")
      :ok
      iex> Regent.keys(Regent.UniqueUnregisterTest, self())
      []

      iex> Regent.start_link(keys: :duplicate, name: Regent.DuplicateUnregisterTest)
      iex> Regent.register(Regent.DuplicateUnregisterTest, "hello", :world)
      iex> Regent.register(Regent.DuplicateUnregisterTest, "hello", :world)
      iex> Regent.keys(Regent.DuplicateUnregisterTest, self())
      ["hello", "hello"]
      iex> Regent.unregister(Regent.DuplicateUnregisterTest, "hello")
      :ok
      iex> Regent.keys(Regent.DuplicateUnregisterTest, self())
      []

  """
  @spec unregister(registry, key) :: :ok
  defdelegate unregister(registry, key), to: :regent

  @doc """
  Unregisters the current process's entries under `key` whose value matches
  `pattern` and `guards`.

      iex> Regent.start_link(keys: :unique, name: Regent.UniqueUnregisterMatchTest)
      iex> Regent.register(Regent.UniqueUnregisterMatchTest, "hello", :world)
      iex> Regent.unregister_match(Regent.UniqueUnregisterMatchTest, "hello", :foo)
      :ok
      iex> Regent.keys(Regent.UniqueUnregisterMatchTest, self())
      ["hello"]
      iex> Regent.unregister_match(Regent.UniqueUnregisterMatchTest, "hello", :world)
      :ok
      iex> Regent.keys(Regent.UniqueUnregisterMatchTest, self())
      []

      iex> Regent.start_link(keys: :duplicate, name: Regent.DuplicateUnregisterMatchTest)
      iex> Regent.register(Regent.DuplicateUnregisterMatchTest, "hello", :world_a)
      iex> Regent.register(Regent.DuplicateUnregisterMatchTest, "hello", :world_b)
      iex> Regent.register(Regent.DuplicateUnregisterMatchTest, "hello", :world_c)
      iex> Regent.unregister_match(Regent.DuplicateUnregisterMatchTest, "hello", :world_a)
      :ok
      iex> Regent.keys(Regent.DuplicateUnregisterMatchTest, self())
      ["hello", "hello"]
      iex> Regent.lookup(Regent.DuplicateUnregisterMatchTest, "hello") |> Enum.sort()
      [{self(), :world_b}, {self(), :world_c}]

  """
  @spec unregister_match(registry, key, match_pattern, guards) :: :ok
  defdelegate unregister_match(registry, key, pattern, guards \\ []), to: :regent

  @doc """
  Finds the `{pid, value}` pairs for `key` in `registry`, cluster-wide, in
  no particular order. A local read.

      iex> Regent.start_link(keys: :unique, name: Regent.UniqueLookupTest)
      iex> Regent.lookup(Regent.UniqueLookupTest, "hello")
      []
      iex> {:ok, _} = Regent.register(Regent.UniqueLookupTest, "hello", :world)
      iex> Regent.lookup(Regent.UniqueLookupTest, "hello")
      [{self(), :world}]
      iex> Task.async(fn -> Regent.lookup(Regent.UniqueLookupTest, "hello") end) |> Task.await()
      [{self(), :world}]

      iex> Regent.start_link(keys: :duplicate, name: Regent.DuplicateLookupTest)
      iex> {:ok, _} = Regent.register(Regent.DuplicateLookupTest, "hello", :world)
      iex> {:ok, _} = Regent.register(Regent.DuplicateLookupTest, "hello", :another)
      iex> Enum.sort(Regent.lookup(Regent.DuplicateLookupTest, "hello"))
      [{self(), :another}, {self(), :world}]

  """
  @spec lookup(registry, key) :: [{pid, value}]
  defdelegate lookup(registry, key), to: :regent

  @doc """
  Returns `{pid, value}` pairs under `key` whose value matches `pattern`
  (`:_` ignores, `:"$1"` binds) and `guards` (such as `{:>, :"$1", 1}`).

      iex> Regent.start_link(keys: :duplicate, name: Regent.MatchTest)
      iex> {:ok, _} = Regent.register(Regent.MatchTest, "hello", {1, :atom, 1})
      iex> {:ok, _} = Regent.register(Regent.MatchTest, "hello", {2, :atom, 2})
      iex> Regent.match(Regent.MatchTest, "hello", {1, :_, :_})
      [{self(), {1, :atom, 1}}]
      iex> Regent.match(Regent.MatchTest, "hello", {:_, :atom, :_}) |> Enum.sort()
      [{self(), {1, :atom, 1}}, {self(), {2, :atom, 2}}]
      iex> Regent.match(Regent.MatchTest, "hello", {:_, :_, :"$1"}, [{:>, :"$1", 1}])
      [{self(), {2, :atom, 2}}]

  """
  @spec match(registry, key, match_pattern, guards) :: [{pid, term}]
  defdelegate match(registry, key, pattern, guards \\ []), to: :regent

  @doc """
  Returns the number of entries in the registry, in constant time.

      iex> Regent.start_link(keys: :duplicate, name: Regent.DuplicateCountTest)
      iex> Regent.count(Regent.DuplicateCountTest)
      0
      iex> {:ok, _} = Regent.register(Regent.DuplicateCountTest, "hello", :world)
      iex> {:ok, _} = Regent.register(Regent.DuplicateCountTest, "hello", :world)
      iex> Regent.count(Regent.DuplicateCountTest)
      2

  """
  @spec count(registry) :: non_neg_integer
  defdelegate count(registry), to: :regent

  @doc """
  Returns the number of entries under `key` that `match/4` would return.

      iex> Regent.start_link(keys: :duplicate, name: Regent.CountMatchTest)
      iex> {:ok, _} = Regent.register(Regent.CountMatchTest, "hello", {1, :atom, 1})
      iex> {:ok, _} = Regent.register(Regent.CountMatchTest, "hello", {2, :atom, 2})
      iex> Regent.count_match(Regent.CountMatchTest, "hello", {:_, :atom, :_})
      2
      iex> Regent.count_match(Regent.CountMatchTest, "hello", {:_, :_, :"$1"}, [{:>, :"$1", 1}])
      1

  """
  @spec count_match(registry, key, match_pattern, guards) :: non_neg_integer
  defdelegate count_match(registry, key, pattern, guards \\ []), to: :regent

  @doc """
  Selects keys, pids and values with a full match spec over
  `{key, pid, value}`.

      iex> Regent.start_link(keys: :unique, name: Regent.SelectAllTest)
      iex> {:ok, _} = Regent.register(Regent.SelectAllTest, "hello", :value)
      iex> {:ok, _} = Regent.register(Regent.SelectAllTest, "world", :value)
      iex> Regent.select(Regent.SelectAllTest, [{{:"$1", :_, :_}, [], [:"$1"]}]) |> Enum.sort()
      ["hello", "world"]

  A spec that is not a list of `{{key, pid, value}, guards, body}` raises:

      iex> Regent.select(Regent.SelectAllTest, [:bad])
      ** (ArgumentError) argument error: {:bad_match_spec, [:bad]}

  """
  @spec select(registry, spec) :: [term]
  defdelegate select(registry, spec), to: :regent

  @doc """
  Works like `select/2`, but only returns the number of matching records.

      iex> Regent.start_link(keys: :unique, name: Regent.CountSelectTest)
      iex> {:ok, _} = Regent.register(Regent.CountSelectTest, "hello", :value)
      iex> {:ok, _} = Regent.register(Regent.CountSelectTest, "world", :value)
      iex> Regent.count_select(Regent.CountSelectTest, [{{:_, :_, :value}, [], [true]}])
      2

  """
  @spec count_select(registry, spec) :: non_neg_integer
  defdelegate count_select(registry, spec), to: :regent

  @doc """
  Returns the keys `pid` holds in `registry`, once per entry. It scans the
  table.

      iex> Regent.start_link(keys: :unique, name: Regent.UniqueKeysTest)
      iex> Regent.keys(Regent.UniqueKeysTest, self())
      []
      iex> {:ok, _} = Regent.register(Regent.UniqueKeysTest, "hello", :world)
      iex> Regent.keys(Regent.UniqueKeysTest, self())
      ["hello"]

  """
  @spec keys(registry, pid) :: [key]
  defdelegate keys(registry, pid), to: :regent

  @doc """
  Reads the values `pid` holds under `key`.

      iex> Regent.start_link(keys: :unique, name: Regent.UniqueValuesTest)
      iex> Regent.values(Regent.UniqueValuesTest, "hello", self())
      []
      iex> {:ok, _} = Regent.register(Regent.UniqueValuesTest, "hello", :world)
      iex> Regent.values(Regent.UniqueValuesTest, "hello", self())
      [:world]
      iex> Task.async(fn -> Regent.values(Regent.UniqueValuesTest, "hello", self()) end) |> Task.await()
      []

  """
  @spec values(registry, key, pid) :: [value]
  defdelegate values(registry, key, pid), to: :regent

  @doc """
  Updates the value for `key` for the current process in the unique
  `registry`: `{new_value, old_value}`, or `:error` if the current process
  does not hold `key`. The state machine checks the owner, so the update
  never lands on another process's entry. A duplicate registry raises.

      iex> Regent.start_link(keys: :unique, name: Regent.UpdateTest)
      iex> {:ok, _} = Regent.register(Regent.UpdateTest, "hello", 1)
      iex> Regent.update_value(Regent.UpdateTest, "hello", &(&1 + 1))
      {2, 1}
      iex> Regent.lookup(Regent.UpdateTest, "hello")
      [{self(), 2}]

  """
  @spec update_value(registry, key, (value -> value)) :: {value, value} | :error
  defdelegate update_value(registry, key, callback), to: :regent

  @doc """
  Invokes the callback with all entries under `key`, from the whole
  cluster, in the calling process, unless there are none. The callback is a
  function of one argument or `{module, function, args}`, called as
  `apply(module, function, [entries | args])`. If it raises, the caller
  gets the exception. Always `:ok`; `opts` (`parallel:`) is ignored.

      iex> Regent.start_link(keys: :duplicate, name: Regent.DispatchTest)
      iex> {:ok, _} = Regent.register(Regent.DispatchTest, "hello", :one)
      iex> Regent.dispatch(Regent.DispatchTest, "hello", fn entries ->
      ...>   for {pid, value} <- entries, do: send(pid, {:dispatched, value})
      ...> end)
      :ok
      iex> receive do: ({:dispatched, v} -> v)
      :one

  """
  @spec dispatch(registry, key, dispatcher, keyword) :: :ok
        when dispatcher: (entries :: [{pid, value}] -> term) | {module, atom, [any]}
  defdelegate dispatch(registry, key, mfa_or_fun, opts \\ []), to: :regent

  @doc """
  Reads registry metadata given on `start_link/1` or by `put_meta/3`.
  Atoms and tuples are allowed as keys. The same on every node.

      iex> Regent.start_link(keys: :unique, name: Regent.MetaTest, meta: [custom_key: "custom_value"])
      iex> Regent.meta(Regent.MetaTest, :custom_key)
      {:ok, "custom_value"}
      iex> Regent.meta(Regent.MetaTest, :unknown_key)
      :error

  """
  @spec meta(registry, meta_key) :: {:ok, meta_value} | :error
  defdelegate meta(registry, key), to: :regent

  @doc """
  Stores registry metadata through the raft log, cluster-wide.

      iex> Regent.start_link(keys: :unique, name: Regent.PutMetaTest)
      iex> Regent.put_meta(Regent.PutMetaTest, :custom_key, "custom_value")
      :ok
      iex> Regent.meta(Regent.PutMetaTest, :custom_key)
      {:ok, "custom_value"}
      iex> Regent.put_meta(Regent.PutMetaTest, {:tuple, :key}, "tuple_value")
      :ok
      iex> Regent.meta(Regent.PutMetaTest, {:tuple, :key})
      {:ok, "tuple_value"}

  """
  @spec put_meta(registry, meta_key, meta_value) :: :ok
  defdelegate put_meta(registry, key, value), to: :regent

  @doc """
  Deletes registry metadata for `key`, cluster-wide.

      iex> Regent.start_link(keys: :unique, name: Regent.DeleteMetaTest)
      iex> Regent.put_meta(Regent.DeleteMetaTest, :custom_key, "custom_value")
      :ok
      iex> Regent.delete_meta(Regent.DeleteMetaTest, :custom_key)
      :ok
      iex> Regent.meta(Regent.DeleteMetaTest, :custom_key)
      :error

  """
  @spec delete_meta(registry, meta_key) :: :ok
  defdelegate delete_meta(registry, key), to: :regent

  ## Events, atomic updates, bulk operations (regent's own)

  @typedoc "A subscription filter: every change, one key's, or a match spec over `{key, pid, value}`."
  @type filter :: :all | {:key, key} | {:match, :ets.match_spec()}

  @doc """
  Subscribes the calling process to the registry's changes, made anywhere
  in the cluster, in log order (see docs/events.md).

  The caller first gets `{:regent_resync, ref, index, entries}` (the
  matching `{key, pid, value}` entries as of raft log index `index`), then
  `{:regent_event, ref, index, event}` per change, with `event` one of
  `{:register, key, pid, value}`, `{:update, key, pid, value}`,
  `{:unregister, key, pid, value}`. Whenever it may have missed changes
  (its mailbox passed `max_queue:` messages, 10,000 by default; the daemon
  restarted; the node re-synced after a partition) it gets another
  `:regent_resync` and carries on from there.

      iex> Regent.start_link(keys: :unique, name: Regent.SubscribeTest)
      iex> {:ok, ref} = Regent.subscribe(Regent.SubscribeTest, {:key, "hello"})
      iex> receive do: ({:regent_resync, ^ref, _index, entries} -> entries)
      []
      iex> {:ok, _} = Regent.register(Regent.SubscribeTest, "hello", :world)
      iex> receive do: ({:regent_event, ^ref, _index, event} -> event)
      {:register, "hello", self(), :world}

  """
  @spec subscribe(registry, filter, keyword) :: {:ok, reference}
  defdelegate subscribe(registry, filter, opts \\ []), to: :regent

  @doc "Ends a subscription of the calling process."
  @spec unsubscribe(registry, reference) :: :ok
  defdelegate unsubscribe(registry, ref), to: :regent

  @doc """
  Replaces the value of a registered key with `fun.(old)`, atomically, from
  any process on any node: a compare-and-set through the raft log against
  the entry's version, tried again after a short random pause when another
  write came first, at most `attempts` times (64). A conflict that outlives
  the attempts is `{:error, {:conflict, attempts}}`, never a lost update.
  `fun` may run more than once. Unique registries.

      iex> Regent.start_link(keys: :unique, name: Regent.UpdateMetadataTest)
      iex> {:ok, _} = Regent.register(Regent.UpdateMetadataTest, "counter", 0)
      iex> Regent.update_metadata({Regent.UpdateMetadataTest, "counter"}, &(&1 + 1))
      {:ok, 1}

  """
  @spec update_metadata({registry, key}, (value -> value), pos_integer) ::
          {:ok, value} | {:error, :not_registered | {:conflict, pos_integer}}
  defdelegate update_metadata(via_name, fun, attempts \\ 64), to: :regent

  @doc """
  Registers many keys in one raft log entry: `[{key, pid, value}]`
  (`:undefined` for no value). Answers per key, in order: `:yes` or
  `{:no, holder}`. Readers see all of the call's new keys at once or none.
  Unique registries.
  """
  @spec register_many(registry, [{key, pid, value}]) :: [:yes | {:no, pid}]
  defdelegate register_many(registry, entries), to: :regent

  @doc "`register_many/2` of `keys` for one pid, without values."
  @spec register_many(registry, pid, [key]) :: [:yes | {:no, pid}]
  defdelegate register_many(registry, pid, keys), to: :regent

  @doc "Removes many keys, whoever holds them, in one raft log entry."
  @spec unregister_many(registry, [key]) :: :ok
  defdelegate unregister_many(registry, keys), to: :regent

  ## regent's own

  @doc """
  The owner of `key` read through the raft log (linearizable): it reflects
  every write acknowledged anywhere before it began. Unique registries.
  """
  @spec whereis_name_consistent({registry, key}) :: pid | :undefined
  defdelegate whereis_name_consistent(via_name), to: :regent

  @doc "Replaces the value of a registered key, whoever calls. Unique registries."
  @spec set_metadata({registry, key}, value) :: :ok | {:error, :not_registered}
  defdelegate set_metadata(via_name, value), to: :regent

  @doc "The value of a registered key. Unique registries."
  @spec get_metadata({registry, key}) :: {:ok, value} | {:error, :not_registered}
  defdelegate get_metadata(via_name), to: :regent

  @doc "The leading member, `{node, registry}`, or `:undefined`."
  @spec get_leader(registry) :: {node, registry} | :undefined
  defdelegate get_leader(registry), to: :regent

  @doc "The raft term; it grows with every election."
  @spec get_epoch(registry) :: non_neg_integer
  defdelegate get_epoch(registry), to: :regent

  @doc "The members with their roles."
  @spec get_members(registry) :: [{{node, registry}, :voter | :standby | :spare}]
  defdelegate get_members(registry), to: :regent

  @doc "This member's view of the registry (role, leader, epoch, indexes, daemon)."
  @spec status(registry) :: map
  defdelegate status(registry), to: :regent

  @doc "Whether the registry serves writes on this node."
  @spec ready(registry) :: boolean
  defdelegate ready(registry), to: :regent

  @doc "Waits until the registry serves writes on this node."
  @spec await_ready(registry, timeout) :: :ok | {:error, :timeout}
  defdelegate await_ready(registry, timeout \\ 5000), to: :regent

  @doc """
  Re-forms the registry around this node after its cluster lost its
  quorum for good (see `:regent.recover/1`).
  """
  @spec recover(registry) :: :ok
  defdelegate recover(registry), to: :regent
end

defmodule RegentTest.Commanded do
  @moduledoc false
  # Stand-ins for Commanded's parts that drive a registry adapter, for
  # regent_commanded_test.exs (Commanded cannot be installed here): an
  # application's start (the adapter's child_spec/2 and
  # supervisor_child_spec/3 in one supervisor), an aggregates supervisor
  # as Commanded's (a DynamicSupervisor named after the application, its
  # start argument passed to every child as extra_arguments), a temporary
  # aggregate and a permanent worker started through start_child/4, and a
  # process manager through start_link/5. Each instance tells the test
  # process (registered as :regent_commanded_test on `observer`) it started.

  defmodule Aggregates do
    @moduledoc false
    use DynamicSupervisor

    def start_link(args) do
      app = Keyword.fetch!(args, :application)
      DynamicSupervisor.start_link(__MODULE__, args, name: Module.concat([app, __MODULE__]))
    end

    @impl true
    def init(args), do: DynamicSupervisor.init(strategy: :one_for_one, extra_arguments: [args])
  end

  defmodule Aggregate do
    @moduledoc false
    use GenServer, restart: :temporary

    # As Commanded's: the supervisor's extra argument first, then the options.
    def start_link(config, opts) do
      GenServer.start_link(__MODULE__, {config, opts}, name: Keyword.fetch!(opts, :name))
    end

    @impl true
    def init({config, opts}) do
      send({:regent_commanded_test, Keyword.fetch!(opts, :observer)},
           {:up, Keyword.fetch!(opts, :uuid), self(), node()})
      {:ok, config}
    end

    @impl true
    def handle_call(:config, _from, config), do: {:reply, config, config}
  end

  defmodule Worker do
    @moduledoc false
    use GenServer, restart: :permanent

    def start_link(config, opts), do: Aggregate.start_link(config, opts)

    @impl true
    def init(arg), do: Aggregate.init(arg)

    @impl true
    def handle_call(msg, from, state), do: Aggregate.handle_call(msg, from, state)
  end

  defmodule ProcessManager do
    @moduledoc false
    use GenServer

    @impl true
    def init(observer) do
      send({:regent_commanded_test, observer}, {:up, :pm, self(), node()})
      {:ok, observer}
    end
  end

  @doc "Commanded's application start, on this node; the adapter meta."
  def start_app(app, config) do
    {:ok, children, meta} = Regent.Commanded.child_spec(app, config)
    aggregates = Regent.Commanded.supervisor_child_spec(meta, Aggregates, application: app, config: :from_app)
    {:ok, pid} = Supervisor.start_link(children ++ [aggregates], strategy: :one_for_one)
    Process.unlink(pid)
    meta
  end

  @doc "Commanded's open_aggregate: start_child/4 with its aggregates supervisor's name."
  def open(meta, kind, uuid, observer) do
    sup = Module.concat([meta.application, Aggregates])
    Regent.Commanded.start_child(meta, {meta.application, kind, uuid}, sup,
                                 {kind, [uuid: uuid, observer: observer]})
  end

  @doc "A long-lived process that starts the process manager linked to itself."
  def start_pm(meta, observer, reply_to) do
    spawn(fn ->
      send(reply_to, {:pm, node(), Regent.Commanded.start_link(meta, "pm", ProcessManager, observer, [])})
      receive do: (:stop -> :ok)
    end)
  end
end

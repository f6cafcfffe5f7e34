defmodule RegentTest do
  # Through the real member and regentd, as an Elixir application uses it.
  use ExUnit.Case, async: false

  defmodule Counter do
    use GenServer

    def start_link(opts) do
      {name, opts} = Keyword.pop!(opts, :name)
      GenServer.start_link(__MODULE__, Keyword.get(opts, :start, 0), name: name)
    end

    def init(n), do: {:ok, n}
    def handle_call(:get, _from, n), do: {:reply, n, n}
    def handle_cast(:inc, n), do: {:noreply, n + 1}
  end

  @reg RegentTest.Registry

  setup do
    start_supervised!({Regent, [name: @reg] ++ RegentTest.Peers.daemon_opts()})
    :ok = Regent.await_ready(@reg)
    :ok
  end

  defp via(name), do: {:via, Regent, {@reg, name}}

  test "a GenServer registered with {:via, Regent, ...} is called by name" do
    {:ok, pid} = Counter.start_link(name: via("counter"))
    GenServer.cast(via("counter"), :inc)
    assert GenServer.call(via("counter"), :get) == 1
    assert Regent.whereis_name({@reg, "counter"}) == pid
    assert {:error, {:already_started, ^pid}} = GenServer.start(Counter, 0, name: via("counter"))
  end

  test "DynamicSupervisor children started with via names, as in the Registry guide" do
    sup = start_supervised!({DynamicSupervisor, strategy: :one_for_one})

    pids =
      for i <- 1..20 do
        {:ok, pid} =
          DynamicSupervisor.start_child(sup, {Counter, name: via({:worker, i}), start: i})

        pid
      end

    assert Regent.count(@reg) == 20
    assert GenServer.call(via({:worker, 7}), :get) == 7

    # A child that dies is restarted by the supervisor and registers again.
    victim = Enum.at(pids, 2)
    Process.exit(victim, :kill)

    assert_eventually(fn ->
      case Regent.whereis_name({@reg, {:worker, 3}}) do
        :undefined -> false
        pid -> pid != victim and Process.alive?(pid)
      end
    end)

    # Terminated children leave the registry.
    for pid <- pids -- [victim], do: DynamicSupervisor.terminate_child(sup, pid)
    assert_eventually(fn -> Regent.count(@reg) == 1 end)
  end

  test "metadata, lookup and select" do
    me = self()
    assert Regent.register_name({@reg, {:user, 1}}, me, %{role: :admin}) == :yes
    other = spawn(fn -> Process.sleep(:infinity) end)
    assert Regent.register_name({@reg, {:user, 2}}, other) == :yes
    assert Regent.register_name({@reg, {:user, 2}}, me) == :no
    assert [{^me, %{role: :admin}}] = Regent.lookup(@reg, {:user, 1})
    assert Regent.get_metadata({@reg, {:user, 1}}) == {:ok, %{role: :admin}}
    assert :ok = Regent.set_metadata({@reg, {:user, 1}}, :guest)
    assert Regent.get_metadata({@reg, {:user, 1}}) == {:ok, :guest}
    assert Regent.select(@reg, [{{{:user, :"$1"}, :_, :_}, [], [:"$1"]}]) |> Enum.sort() == [1, 2]
    assert Regent.whereis_name_consistent({@reg, {:user, 1}}) == me
  end

  test "bad arguments raise and change nothing" do
    assert_raise ArgumentError, ~r/not_a_pid/, fn -> Regent.register_name({@reg, :x}, :nope) end

    assert_raise ArgumentError, ~r/name_too_large/, fn ->
      Regent.register_name({@reg, String.duplicate("x", 5000)}, self())
    end

    assert catch_exit(Regent.whereis_name({NotStarted, :x})) == {:regent_not_running, NotStarted}
    assert Regent.count(@reg) == 0
  end

  test "child_spec validates its name" do
    assert %{id: {Regent, Foo}} = Regent.child_spec(name: Foo)
    assert %{id: {Regent, Foo}} = Regent.child_spec(Foo)
    assert_raise ArgumentError, fn -> Regent.child_spec(name: "foo") end
  end

  defp assert_eventually(fun, ms \\ 5000) do
    deadline = System.monotonic_time(:millisecond) + ms

    Stream.repeatedly(fn -> fun.() end)
    |> Enum.reduce_while(nil, fn
      true, _ ->
        {:halt, :ok}

      false, _ ->
        if System.monotonic_time(:millisecond) > deadline,
          do: flunk("condition not met in #{ms} ms")

        Process.sleep(5)
        {:cont, nil}
    end)
  end
end

defmodule RegentSupervisorTest do
  # Regent.Supervisor on three real BEAM nodes (OTP's :peer), each with its
  # own regentd: the Elixir face of :regent_sup (test/regent_sup_SUITE.erl
  # covers node death, fencing and the restart rules).
  use ExUnit.Case, async: false

  alias RegentTest.{Peers, Remote}

  @moduletag timeout: 120_000

  @reg RegentSupTest.Registry
  @sup RegentSupTest.Sup

  setup_all do
    Peers.start_distribution()
    peers = Peers.start_peers(3)
    on_exit(fn -> Peers.stop_peers(peers) end)
    nodes = for {_, node} <- peers, do: node

    nodes
    |> Enum.map(fn node ->
      Task.async(fn ->
        :ok = rpc(node, Remote, :start_registry, [[name: @reg] ++ Peers.daemon_opts()])
        :ok = rpc(node, Remote, :start_supervisor, [[name: @sup, registry: @reg, lease: 1000]])
      end)
    end)
    |> Task.await_many(30_000)

    Peers.await_cluster(@reg, nodes, 20_000)

    Peers.await("every supervisor holds a lease", fn ->
      Enum.all?(nodes, fn n -> length(Map.keys(rpc(n, :regent_sup_place, :live_nodes, [@reg, @sup]))) == 3 end)
    end, 10_000)

    %{nodes: nodes}
  end

  defp rpc(node, m, f, a), do: Peers.rpc(node, m, f, a)
  defp sup(node, f, a), do: rpc(node, Regent.Supervisor, f, [@sup | a])

  test "find_or_start from every node at once: one instance, one pid", %{nodes: nodes} do
    results =
      for node <- nodes, _ <- 1..5 do
        Task.async(fn -> sup(node, :find_or_start, [{RegentTest.Worker, :singleton}]) end)
      end
      |> Task.await_many(30_000)

    assert [{:ok, pid}] = Enum.uniq(results)
    assert {:singleton, node(pid)} == GenServer.call(pid, :name)
    # Registered under its id: a via tuple reaches it from any node.
    for node <- nodes do
      Peers.await("the name on #{node}", fn ->
        rpc(node, Regent, :whereis_name, [{@reg, RegentTest.Worker}]) == pid
      end, 5_000)
    end
  end

  test "the OTP lifecycle with Elixir's shapes", %{nodes: [a, b, c]} do
    spec = %{id: :life, start: {RegentTest.Worker, :start_link, [:life]}}
    assert {:ok, pid} = sup(a, :start_child, [spec, [tags: [:blue]]])
    assert {:error, {:already_started, ^pid}} = sup(b, :start_child, [spec])
    Peers.await("b sees it", fn -> sup(b, :get_pid, [:life]) == pid end, 5_000)

    Peers.await("c counts it", fn ->
      match?(%{specs: n, active: n, workers: n, supervisors: 0} when n >= 1, sup(c, :count_children, []))
    end, 5_000)

    assert :ok = sup(b, :terminate_child, [:life])
    assert {:error, :already_present} = sup(b, :start_child, [spec])
    assert {:ok, pid2} = sup(b, :restart_child, [:life])
    assert pid2 != pid
    assert :ok = sup(c, :terminate_child, [pid2])
    assert :ok = sup(c, :delete_child, [:life])
    assert {:error, :not_found} = sup(c, :delete_child, [:life])
    assert nil == sup(c, :get_pid, [:life])
    assert nil == sup(c, :token, [:life])
  end

  test "bad input raises ArgumentError, and nothing is stored", %{nodes: [a | _]} do
    not_plain = %{id: :bad, start: {RegentTest.Worker, :start_link, [self()]}}
    assert_raise ArgumentError, ~r/not_plain_data/, fn -> sup(a, :start_child, [not_plain]) end
    assert_raise ArgumentError, ~r/invalid_child_spec/, fn -> sup(a, :start_child, [42]) end

    assert_raise ArgumentError, ~r/unknown_option/, fn ->
      sup(a, :start_child, [{RegentTest.Worker, :x}, [colour: :red]])
    end

    assert nil == sup(a, :token, [:bad])
  end

  test "a graceful leave moves a child with its state (handoff)", %{nodes: [a, b, c] = nodes} do
    spec = %{id: :counter, start: {RegentTest.HandoffCounter, :start_link, [{@sup, :counter}]}}
    assert {:ok, pid} = sup(a, :start_child, [spec, [placement: {:node, c}, handoff: true]])
    assert node(pid) == c
    for _ <- 1..5, do: GenServer.call(pid, :bump)

    assert :ok = sup(c, :stop, [])

    Peers.await("the counter moved", fn ->
      p = sup(a, :get_pid, [:counter])
      is_pid(p) and node(p) != c
    end, 10_000)

    assert 5 == GenServer.call(sup(b, :get_pid, [:counter]), :get)
    # The supervisor comes back on c for the other tests.
    :ok = rpc(c, Remote, :start_supervisor, [[name: @sup, registry: @reg, lease: 1000]])

    Peers.await("c holds a lease again", fn ->
      Enum.all?(nodes, fn n -> map_size(rpc(n, :regent_sup_place, :live_nodes, [@reg, @sup])) == 3 end)
    end, 10_000)
  end
end

defmodule RegentCommandedTest do
  # Regent.Commanded driven the way Commanded drives a registry adapter
  # (RegentTest.Commanded stands in for Commanded, which cannot be installed
  # here), on three real peer nodes: every node runs the application, and
  # aggregates and process managers are opened from all of them at once.
  use ExUnit.Case, async: false

  alias RegentTest.{Commanded, Peers}

  @moduletag timeout: 120_000

  @app RegentCommandedTest.App

  setup do
    Peers.start_distribution()
    Process.register(self(), :regent_commanded_test)
    peers = Peers.start_peers(3)
    on_exit(fn -> Peers.stop_peers(peers) end)
    nodes = for {_, node} <- peers, do: node

    metas =
      nodes
      |> Enum.map(fn n ->
        Task.async(fn -> rpc(n, Commanded, :start_app, [@app, [lease: 1000] ++ Peers.daemon_opts()]) end)
      end)
      |> Task.await_many(30_000)

    meta = hd(metas)
    Peers.await_cluster(meta.registry, nodes, 20_000)

    Peers.await("every supervisor holds a lease", fn ->
      Enum.all?(nodes, fn n ->
        map_size(rpc(n, :regent_sup_place, :live_nodes, [meta.registry, meta.supervisor])) == 3
      end)
    end, 10_000)

    %{nodes: nodes, meta: meta}
  end

  defp rpc(node, m, f, a), do: Peers.rpc(node, m, f, a)

  defp ups(acc \\ []) do
    receive do
      {:up, _, _, _} = up -> ups([up | acc])
    after
      200 -> Enum.reverse(acc)
    end
  end

  test "implements every callback of Commanded.Registration.Adapter" do
    callbacks = [child_spec: 2, supervisor_child_spec: 3, start_child: 4, start_link: 5,
                 whereis_name: 2, via_tuple: 2]

    Code.ensure_loaded!(Regent.Commanded)

    for {f, arity} <- callbacks do
      assert function_exported?(Regent.Commanded, f, arity), "#{f}/#{arity}"
    end
  end

  test "an aggregate opened from every node at once runs once, with its supervisor's extra arguments",
       %{nodes: nodes, meta: meta} do
    results =
      for n <- nodes, _ <- 1..4 do
        Task.async(fn -> rpc(n, Commanded, :open, [meta, Commanded.Aggregate, "acc-1", node()]) end)
      end
      |> Task.await_many(30_000)

    assert [{:ok, pid}] = Enum.uniq(results)
    assert [{:up, "acc-1", ^pid, _}] = ups()
    name = {@app, Commanded.Aggregate, "acc-1"}
    via = rpc(hd(nodes), Regent.Commanded, :via_tuple, [meta, name])
    assert [application: @app, config: :from_app] == rpc(List.last(nodes), GenServer, :call, [via, :config])

    for n <- nodes do
      Peers.await("whereis on #{n}", fn -> rpc(n, Regent.Commanded, :whereis_name, [meta, name]) == pid end, 5_000)
    end
  end

  test "start_link/5 from every node: one process manager, every caller linked to it",
       %{nodes: nodes, meta: meta} do
    for n <- nodes, do: rpc(n, Commanded, :start_pm, [meta, node(), self()])
    got = for _ <- nodes, do: (receive do {:pm, _, r} -> r after 20_000 -> :timeout end)
    assert [{:ok, pid}] = Enum.uniq(got)
    assert [{:up, :pm, ^pid, _}] = ups()
    {:links, links} = rpc(node(pid), Process, :info, [pid, :links])
    assert length(links) >= 3
  end

  test "a permanent worker on a halted node restarts elsewhere; a temporary aggregate opens again elsewhere",
       %{nodes: nodes, meta: meta} do
    {:ok, worker} = rpc(hd(nodes), Commanded, :open, [meta, Commanded.Worker, "w-1", node()])
    victim = node(worker)
    [asker | _] = nodes -- [victim]
    # Six aggregates, least loaded: some of them on the victim.
    aggs =
      for i <- 1..6 do
        {:ok, p} = rpc(asker, Commanded, :open, [meta, Commanded.Aggregate, "acc-#{i}", node()])
        {"acc-#{i}", p}
      end

    on_victim = for {uuid, p} <- aggs, node(p) == victim, do: uuid
    assert on_victim != []
    :erpc.cast(victim, :erlang, :halt, [])
    worker_name = {@app, Commanded.Worker, "w-1"}

    Peers.await("the worker runs again", fn ->
      p = rpc(asker, Regent.Commanded, :whereis_name, [meta, worker_name])
      is_pid(p) and node(p) != victim
    end, 10_000)

    # Commanded opens an aggregate again on its next command.
    for uuid <- on_victim do
      Peers.await("#{uuid} reopens", fn ->
        match?({:ok, p} when node(p) != victim,
               rpc(asker, Commanded, :open, [meta, Commanded.Aggregate, uuid, node()]))
      end, 10_000)
    end
  end
end

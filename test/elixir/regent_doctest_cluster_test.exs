defmodule RegentDoctestClusterTest do
  # Registry's documented examples (the doctests of lib/regent.ex, ported
  # from Elixir 1.14's Registry) again, with this node a member of a
  # three-node cluster: two peers run every registry the examples start
  # before they do, so each example's start_link joins a cluster and its
  # writes and reads go through it. The answers must be those of Registry
  # on one node.
  use ExUnit.Case, async: false

  alias RegentTest.Peers

  @moduletag timeout: 120_000

  setup_all do
    Peers.start_distribution()
    peers = Peers.start_peers(2)
    on_exit(fn -> Peers.stop_peers(peers) end)
    nodes = for {_, node} <- peers, do: node

    for {keys, reg} <- doctest_registries(), node <- nodes do
      :ok =
        Peers.rpc(node, RegentTest.Remote, :start_registry, [
          [keys: keys, name: reg] ++ daemon_opts()
        ])
    end

    for {_, reg} <- doctest_registries(), do: Peers.await_cluster(reg, nodes, 20_000)
    :ok
  end

  defp doctest_registries,
    do: [{:unique, RegentDoctestClusterTest.Joined} | Peers.doctest_registries()]

  # An example's registry on this node stops when its example ends, in the
  # background: the next example of that name (here or in
  # regent_doctest_test.exs) waits until it is gone.
  setup do
    for {_, reg} <- doctest_registries(), do: Peers.await_stopped(reg)
    :ok
  end

  defp daemon_opts, do: Peers.daemon_opts()

  doctest Regent

  test "the examples' registries on this node join the peers' clusters" do
    # A registry of its own: an example's registry may still be stopping.
    {:ok, pid} = Regent.start_link(keys: :unique, name: RegentDoctestClusterTest.Joined)
    {:ok, _} = Regent.register(RegentDoctestClusterTest.Joined, "joined", :yes)
    assert length(Regent.get_members(RegentDoctestClusterTest.Joined)) == 3
    GenServer.stop(pid)
  end
end

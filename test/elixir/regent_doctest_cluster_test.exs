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

  # Every registry an example starts, with its kind, read from the docs.
  defp doctest_registries do
    source = File.read!(Path.expand("../../lib/regent.ex", __DIR__))

    for [_, keys, name] <-
          Regex.scan(
            ~r/Regent\.start_link\(keys: :(unique|duplicate), name: (Regent\.\w+)/,
            source
          ),
        uniq: true,
        do: {String.to_atom(keys), Module.concat([name])}
  end

  defp daemon_opts do
    case System.get_env("REGENT_TEST_DAEMON") do
      nil -> []
      path -> [daemon: path]
    end
  end

  doctest Regent

  test "the examples' registries on this node join the peers' clusters" do
    {:ok, pid} = Regent.start_link(keys: :unique, name: Regent.UniqueLookupTest)
    {:ok, _} = Regent.register(Regent.UniqueLookupTest, "joined", :yes)
    assert length(Regent.get_members(Regent.UniqueLookupTest)) == 3
    GenServer.stop(pid)
  end
end

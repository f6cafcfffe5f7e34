defmodule RegentDoctestTest do
  # Registry's own documented examples (Elixir 1.14's moduledoc and
  # function docs), ported to Regent in lib/regent.ex's docs and run here
  # on one node against real daemons. regent_cluster_test.exs checks the
  # same behaviour across three nodes, where the answers are cluster-wide.
  use ExUnit.Case, async: false

  # An example's registry stops when its example ends, in the background:
  # the next example of that name waits until it is gone.
  setup do
    for {_, reg} <- RegentTest.Peers.doctest_registries(),
        do: RegentTest.Peers.await_stopped(reg)

    :ok
  end

  doctest Regent
end

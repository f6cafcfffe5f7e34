defmodule RegentDoctestTest do
  # Registry's own documented examples (Elixir 1.14's moduledoc and
  # function docs), ported to Regent in lib/regent.ex's docs and run here
  # on one node against real daemons. regent_cluster_test.exs checks the
  # same behaviour across three nodes, where the answers are cluster-wide.
  use ExUnit.Case, async: false
  doctest Regent
end

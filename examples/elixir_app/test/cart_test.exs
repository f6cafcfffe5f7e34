defmodule ElixirApp.CartTest do
  use ExUnit.Case

  test "carts are found by id" do
    :ok = Regent.await_ready(ElixirApp.Registry)
    {:ok, _} = ElixirApp.Cart.open(42)
    :ok = ElixirApp.Cart.add(42, "tea")
    assert ElixirApp.Cart.items(42) == ["tea"]
    assert {:error, {:already_started, _}} = ElixirApp.Cart.open(42)
  end
end

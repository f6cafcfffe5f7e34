defmodule ElixirApp.Cart do
  @moduledoc "A shopping cart, one process per cart id, found by name on any node."
  use GenServer

  def open(id) do
    DynamicSupervisor.start_child(ElixirApp.Carts, {__MODULE__, id})
  end

  def add(id, item), do: GenServer.call(via(id), {:add, item})
  def items(id), do: GenServer.call(via(id), :items)

  def start_link(id), do: GenServer.start_link(__MODULE__, [], name: via(id))

  defp via(id), do: {:via, Regent, {ElixirApp.Registry, {:cart, id}}}

  @impl true
  def init(items), do: {:ok, items}

  @impl true
  def handle_call({:add, item}, _from, items), do: {:reply, :ok, [item | items]}
  def handle_call(:items, _from, items), do: {:reply, Enum.reverse(items), items}
end

defmodule RegentTest.Worker do
  @moduledoc false
  # A child for regent_supervisor_test.exs, started on the peers by
  # Regent.Supervisor: `{RegentTest.Worker, name}` is a plain-data spec.
  use GenServer

  def start_link(name), do: GenServer.start_link(__MODULE__, name)

  @impl true
  def init(name), do: {:ok, name}

  @impl true
  def handle_call(:name, _from, name), do: {:reply, {name, node()}, name}
end

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

defmodule RegentTest.HandoffCounter do
  @moduledoc false
  # A child with handoff (regent_supervisor_test.exs): its count moves with
  # it when its node leaves.
  use GenServer

  def start_link({sup, id}), do: GenServer.start_link(__MODULE__, {sup, id})

  @impl true
  def init({sup, id}) do
    case Regent.Supervisor.handoff_state(sup, id) do
      {:ok, n} -> {:ok, n}
      :none -> {:ok, 0}
    end
  end

  @impl true
  def handle_call(:bump, _from, n), do: {:reply, n + 1, n + 1}
  def handle_call(:get, _from, n), do: {:reply, n, n}
  def handle_call(:"$regent_handoff", _from, n), do: {:stop, :normal, {:handoff, n}, n}
end

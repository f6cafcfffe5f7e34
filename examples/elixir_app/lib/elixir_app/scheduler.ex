defmodule ElixirApp.Scheduler do
  @moduledoc """
  A cluster singleton, as in Horde's guide: every node asks for it at
  start, one instance runs in the whole cluster, and it starts again on
  another node when its node dies or is cut off.

      {:ok, pid} = ElixirApp.Scheduler.ensure_started()

  It counts its ticks; `fencing_token/0` is what it would pass to an
  external system so that a stale instance is refused (docs/supervision.md).
  """
  use GenServer

  @sup ElixirApp.Singletons

  @doc "Starts the singleton unless it runs somewhere; its pid either way."
  def ensure_started, do: Regent.Supervisor.find_or_start(@sup, __MODULE__)

  def start_link(_arg), do: GenServer.start_link(__MODULE__, :ok)

  @doc "Ticks so far, from any node."
  def ticks, do: GenServer.call(via(), :ticks)

  @doc "This instance's fencing token: `{epoch, incarnation}`."
  def fencing_token, do: GenServer.call(via(), :token)

  # The supervisor registers the child under its id (here the module).
  defp via, do: {:via, Regent, {ElixirApp.Registry, __MODULE__}}

  @impl true
  def init(:ok) do
    :timer.send_interval(1_000, :tick)
    {:ok, %{ticks: 0}}
  end

  @impl true
  def handle_info(:tick, state), do: {:noreply, %{state | ticks: state.ticks + 1}}

  @impl true
  def handle_call(:ticks, _from, state), do: {:reply, state.ticks, state}
  def handle_call(:token, _from, state), do: {:reply, Regent.Supervisor.token(@sup, __MODULE__), state}
end

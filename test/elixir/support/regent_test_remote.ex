defmodule RegentTest.Remote do
  @moduledoc false
  # Code that regent_cluster_test.exs runs on its peer nodes. The peers get
  # the test node's code path, so they load modules compiled by mix (this
  # one, from test/elixir/support, compiled in MIX_ENV=test only) but not
  # the test modules themselves: every function, dispatcher and fun that
  # runs on a peer is here.

  @doc """
  Starts a registry on this node, unlinked from the caller (an rpc process
  that exits as soon as it returns).
  """
  def start_registry(options) do
    {:ok, _} = Application.ensure_all_started(:crypto)
    {:ok, pid} = Regent.start_link(options)
    Process.unlink(pid)
    :ok
  end

  @doc """
  Starts a `Regent.Supervisor` on this node, unlinked from the caller.
  """
  def start_supervisor(options) do
    {:ok, pid} = Regent.Supervisor.start_link(options)
    Process.unlink(pid)
    :ok
  end

  @doc "Stops a registry started by `start_registry/1`."
  def stop_registry(reg) do
    case Process.whereis(reg) do
      nil -> :ok
      pid -> GenServer.stop(pid)
    end
  end

  @doc """
  A long-lived process that works for `reply_to`: it registers `key` with
  `value` in `reg`, sends `{:registered, self(), key, result}`, then serves
  `agent/2` until told `:stop`.
  """
  def register_and_wait(reg, key, value, reply_to) do
    result = Regent.register(reg, key, value)
    send(reply_to, {:registered, self(), key, result})
    serve(reply_to)
  end

  @doc """
  Like `register_and_wait/4`, but waits for `:go` first, so that many of
  them, on many nodes, register at (nearly) the same moment.
  """
  def register_on_go(reg, key, value, reply_to) do
    send(reply_to, {:waiting, self()})

    receive do
      :go -> register_and_wait(reg, key, value, reply_to)
    end
  end

  @doc """
  A long-lived process that runs what `call/3` asks of it (in itself, so
  that `self()` is a process of this node) and forwards every other
  message to `reply_to` as `{:forwarded, self(), message}`.
  """
  def serve(reply_to) do
    receive do
      :stop ->
        :ok

      {:apply, from, ref, {m, f, a}} ->
        send(from, {ref, capture(m, f, a)})
        serve(reply_to)

      message ->
        send(reply_to, {:forwarded, self(), message})
        serve(reply_to)
    end
  end

  @doc "Asks a `serve/1` process to run `apply(m, f, a)`; its result, or what it raised."
  def call(server, {m, f, a}, timeout \\ 10_000) do
    ref = make_ref()
    send(server, {:apply, self(), ref, {m, f, a}})

    receive do
      {^ref, {:ok, result}} -> result
      {^ref, {:raised, kind, reason, stack}} -> :erlang.raise(kind, reason, stack)
    after
      timeout -> exit({:timeout, {__MODULE__, :call, [server, {m, f, a}]}})
    end
  end

  defp capture(m, f, a) do
    {:ok, apply(m, f, a)}
  catch
    kind, reason -> {:raised, kind, reason, __STACKTRACE__}
  end

  @doc """
  Registers itself locally as `name` (a listener), says `{:listening,
  self()}` to `reply_to`, and forwards everything it receives.
  """
  def listen_as(name, reply_to) do
    Process.register(self(), name)
    send(reply_to, {:listening, self()})
    serve(reply_to)
  end

  @doc "A dispatcher: sends `{tag, value}` to every entry's pid."
  def send_all(entries, tag) do
    for {pid, value} <- entries, do: send(pid, {tag, value})
    :ok
  end

  @doc "A dispatcher as a fun of one argument: sends `:hello` to every entry's pid."
  def send_all_hello(entries), do: send_all_plain(entries, :hello)

  defp send_all_plain(entries, message) do
    for {pid, _} <- entries, do: send(pid, message)
    :ok
  end

  @doc "For `update_value/3`: the next value."
  def bump({:version, n}), do: {:version, n + 1}

  @doc "For Agent.update/2."
  def inc(n), do: n + 1

  @doc "For Agent: the initial state."
  def zero, do: 0

  @doc "For Agent.get/2: the whole state."
  def identity(state), do: state
end

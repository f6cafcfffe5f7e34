defmodule RegentTest.Peers do
  @moduledoc false
  # What the Elixir cluster tests share: a distributed test node, peer nodes
  # with its code path, MFA calls that re-raise, and polls with deadlines.

  @doc "`[daemon: path]` when REGENT_TEST_DAEMON names another regentd, else `[]`."
  def daemon_opts do
    case System.get_env("REGENT_TEST_DAEMON") do
      nil -> []
      path -> [daemon: path]
    end
  end

  @doc "Makes the test node distributed (epmd, a short name of its own)."
  def start_distribution do
    if node() == :nonode@nohost do
      {_, 0} = System.cmd("epmd", ["-daemon"])
      {:ok, _} = :net_kernel.start([:"regent_ex_#{System.pid()}", :shortnames])
    end

    :ok
  end

  @doc """
  Starts `n` peers with this node's cookie and code path, meshed, with
  crypto and elixir started: `[{peer, node}]`.
  """
  def start_peers(n) do
    cookie = Atom.to_charlist(Node.get_cookie())

    peers =
      for _ <- 1..n do
        {:ok, peer, node} =
          :peer.start_link(%{
            name: :peer.random_name(:regent_ex),
            args: [~c"-setcookie", cookie | code_path_args()]
          })

        {peer, node}
      end

    nodes = for {_, node} <- peers, do: node
    for x <- nodes, y <- nodes, x < y, do: true = rpc(x, :net_kernel, :connect_node, [y])

    for node <- nodes do
      {:ok, _} = rpc(node, :application, :ensure_all_started, [:crypto])
      {:ok, _} = rpc(node, :application, :ensure_all_started, [:elixir])
      :ok = rpc(node, :logger, :set_primary_config, [:level, :warning])
    end

    peers
  end

  @doc "Stops peers (they may be gone with the process they were linked to)."
  def stop_peers(peers) do
    for {peer, _} <- peers do
      try do
        :peer.stop(peer)
      catch
        :exit, _ -> :ok
      end
    end

    :ok
  end

  # -pa for every code path entry outside OTP's lib dir: regent (with the
  # support modules), Elixir, ExUnit, Logger...
  defp code_path_args do
    lib = :code.lib_dir()

    for path <- :code.get_path(), not List.starts_with?(path, lib), arg <- [~c"-pa", path] do
      arg
    end
  end

  @doc """
  An MFA call on `node`; what the function raises there is raised here, as
  it was raised (an Erlang `{:badarg, _}` error becomes ArgumentError).
  """
  def rpc(node, m, f, a) do
    :erpc.call(node, m, f, a, 15_000)
  catch
    :error, {:exception, reason, stack} -> :erlang.raise(:error, reason, stack)
  end

  @doc "Polls `fun` until it returns true, at most `ms`; raises otherwise."
  def await(what, fun, ms) do
    deadline = System.monotonic_time(:millisecond) + ms
    await_loop(what, fun, deadline, ms)
  end

  defp await_loop(what, fun, deadline, ms) do
    result =
      try do
        fun.()
      catch
        kind, reason -> {kind, reason}
      end

    cond do
      result == true ->
        :ok

      System.monotonic_time(:millisecond) > deadline ->
        raise "waited #{ms} ms for #{what}; last: #{inspect(result)}"

      true ->
        Process.sleep(10)
        await_loop(what, fun, deadline, ms)
    end
  end

  @doc "Every registry the doctests of lib/regent.ex start, with its kind."
  def doctest_registries do
    source = File.read!(Path.expand("../../../lib/regent.ex", __DIR__))

    for [_, keys, name] <-
          Regex.scan(
            ~r/Regent\.start_link\(keys: :(unique|duplicate), name: (Regent\.\w+)/,
            source
          ),
        uniq: true,
        do: {String.to_atom(keys), Module.concat([name])}
  end

  @doc "Waits until no process on this node is registered as `reg`."
  def await_stopped(reg) do
    await("#{inspect(reg)} to stop", fn -> Process.whereis(reg) == nil end, 10_000)
  end

  @doc "Waits until `reg` on `nodes` is one ready cluster with one leader."
  def await_cluster(reg, nodes, ms) do
    await(
      "registry #{inspect(reg)} to form one cluster of #{length(nodes)}",
      fn ->
        statuses = for node <- nodes, do: rpc(node, Regent, :status, [reg])
        leaders = statuses |> Enum.map(& &1.leader) |> Enum.uniq()

        Enum.all?(statuses, &(&1.ready and length(&1.members) == length(nodes))) and
          match?([{_, ^reg}], leaders)
      end,
      ms
    )
  end
end

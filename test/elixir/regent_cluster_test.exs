defmodule RegentClusterTest do
  # Registry's documented behaviour, run against Regent on three real BEAM
  # nodes (OTP's :peer), each with its own regentd, where the answers that
  # matter are cluster-wide: what one node writes, the others read.
  #
  # The test node is not a member: every registry runs on the peers A, B
  # and C, and the test drives them with :erpc (MFA calls) and with
  # long-lived processes spawned there (RegentTest.Remote, in
  # test/elixir/support: the peers load it from the code path, but not this
  # module). Each test starts registries of its own names on the same three
  # peers and waits for their cluster; the peers live for the whole module.
  use ExUnit.Case, async: false

  alias RegentTest.{Peers, Remote}

  @moduletag timeout: 120_000

  # How long a write made on one node may take to show on another (the
  # brief: 5 s), and how long a fresh registry may take to form its cluster.
  @visible_ms 5_000
  @cluster_ms 20_000

  setup_all do
    Peers.start_distribution()
    peers = Peers.start_peers(3)
    on_exit(fn -> Peers.stop_peers(peers) end)
    [a, b, c] = nodes = for {_, node} <- peers, do: node
    %{nodes: nodes, a: a, b: b, c: c}
  end

  defp daemon_opts, do: Peers.daemon_opts()

  # Starts a registry on every node of `node_opts` ([{node, options}]) at
  # once, then waits until they form one cluster: on every node ready, 3
  # members and the same leader.
  defp start_registry(reg, node_opts) do
    node_opts
    |> Enum.map(fn {node, opts} ->
      Task.async(fn ->
        :ok = rpc(node, Remote, :start_registry, [[name: reg] ++ opts ++ daemon_opts()])
      end)
    end)
    |> Task.await_many(30_000)

    nodes = for {node, _} <- node_opts, do: node
    await_cluster(reg, nodes)
  end

  defp start_registry_everywhere(reg, nodes, opts) do
    start_registry(reg, for(node <- nodes, do: {node, opts}))
  end

  defp await_cluster(reg, nodes), do: Peers.await_cluster(reg, nodes, @cluster_ms)

  ## Helpers

  defp rpc(node, m, f, a), do: Peers.rpc(node, m, f, a)

  # Polls `fun` until it returns true, at most `ms`; never a bare sleep.
  defp await(what, fun, ms \\ @visible_ms), do: Peers.await(what, fun, ms)

  defp await_equal(what, expected, fun, ms \\ @visible_ms) do
    await(
      "#{what} to be #{inspect(expected)}",
      fn -> (answer = fun.()) == expected or answer end,
      ms
    )

    expected
  end

  # A process on `node` that registers `key` itself (register/3 registers
  # the caller), then stays alive serving Remote.call/2: its pid and the
  # result of its register/3.
  defp spawn_registered(node, reg, key, value) do
    pid = Node.spawn(node, Remote, :register_and_wait, [reg, key, value, self()])
    assert_receive {:registered, ^pid, ^key, result}, 10_000
    {pid, result}
  end

  defp all_entries(node, reg) do
    rpc(node, Regent, :select, [reg, [{{:"$1", :"$2", :"$3"}, [], [{{:"$1", :"$2", :"$3"}}]}]])
    |> Enum.sort()
  end

  defp sorted_lookup(node, reg, key), do: Enum.sort(rpc(node, Regent, :lookup, [reg, key]))

  ## Unique keys

  test "a unique key registered on A is read, held and removed on B and C",
       %{nodes: nodes} = ctx do
    %{a: a, b: b, c: c} = ctx
    reg = :regent_ex_unique
    start_registry_everywhere(reg, nodes, keys: :unique)

    {owner, result} = spawn_registered(a, reg, "owner", {:version, 1})
    member_a = rpc(a, Process, :whereis, [reg])
    assert result == {:ok, member_a}
    assert node(owner) == a

    for node <- [b, c] do
      await_equal("lookup on #{node}", [{owner, {:version, 1}}], fn ->
        rpc(node, Regent, :lookup, [reg, "owner"])
      end)

      assert rpc(node, Regent, :match, [reg, "owner", {:version, :_}]) == [{owner, {:version, 1}}]

      assert rpc(node, Regent, :match, [reg, "owner", {:version, :"$1"}, [{:>, :"$1", 0}]]) ==
               [{owner, {:version, 1}}]

      assert rpc(node, Regent, :match, [reg, "owner", {:version, :"$1"}, [{:>, :"$1", 1}]]) == []
      assert rpc(node, Regent, :match, [reg, "owner", :nope]) == []
      assert rpc(node, Regent, :values, [reg, "owner", owner]) == [{:version, 1}]
      assert rpc(node, Regent, :keys, [reg, owner]) == ["owner"]
      assert rpc(node, Regent, :count, [reg]) == 1
      assert all_entries(node, reg) == [{"owner", owner, {:version, 1}}]
      assert rpc(node, Regent, :count_select, [reg, [{{"owner", owner, :_}, [], [true]}]]) == 1
      assert rpc(node, Regent, :whereis_name, [{reg, "owner"}]) == owner
    end

    # The key is held cluster-wide: B (an rpc process there, and a
    # long-lived one) cannot take it, and nothing changes.
    assert {:error, {:already_registered, ^owner}} = rpc(b, Regent, :register, [reg, "owner", :b])
    assert {_, {:error, {:already_registered, ^owner}}} = spawn_registered(b, reg, "owner", :b)
    assert {_, {:error, {:already_registered, ^owner}}} = spawn_registered(c, reg, "owner", :c)
    assert rpc(c, Regent, :lookup, [reg, "owner"]) == [{owner, {:version, 1}}]

    # update_value/3 by the owner on A is seen on C; by another process, on
    # B, it is :error and changes nothing.
    assert Remote.call(owner, {Regent, :update_value, [reg, "owner", &Remote.bump/1]}) ==
             {{:version, 2}, {:version, 1}}

    await_equal("the updated value on C", [{owner, {:version, 2}}], fn ->
      rpc(c, Regent, :lookup, [reg, "owner"])
    end)

    assert rpc(b, Regent, :update_value, [reg, "owner", &Remote.bump/1]) == :error
    # unregister/2 from B removes only the caller's own entry: none.
    assert rpc(b, Regent, :unregister, [reg, "owner"]) == :ok

    # unregister_match/3 with a pattern that does not match keeps the
    # entry. A later write by the owner, once seen everywhere, shows that
    # nothing before it removed "owner".
    assert Remote.call(owner, {Regent, :unregister_match, [reg, "owner", {:version, 1}]}) == :ok
    assert {:ok, _} = Remote.call(owner, {Regent, :register, [reg, "barrier", :b]})

    for node <- nodes do
      await_equal(
        "both keys on #{node}",
        [{"barrier", owner, :b}, {"owner", owner, {:version, 2}}],
        fn ->
          all_entries(node, reg)
        end
      )
    end

    # The matching pattern removes it, everywhere.
    assert Remote.call(owner, {Regent, :unregister_match, [reg, "owner", {:version, :_}]}) == :ok
    assert rpc(a, Regent, :lookup, [reg, "owner"]) == []

    for node <- nodes do
      await_equal("owner gone on #{node}", [{"barrier", owner, :b}], fn ->
        all_entries(node, reg)
      end)

      assert rpc(node, Regent, :keys, [reg, owner]) == ["barrier"]
      assert rpc(node, Regent, :values, [reg, "owner", owner]) == []
      assert rpc(node, Regent, :count, [reg]) == 1
    end

    # Once it is gone, B may take it.
    {b_owner, {:ok, _}} = spawn_registered(b, reg, "owner", :b)

    for node <- nodes do
      await_equal("B's owner on #{node}", [{b_owner, :b}], fn ->
        rpc(node, Regent, :lookup, [reg, "owner"])
      end)
    end
  end

  # Registry answers {:error, {:already_registered, pid}} only for a live
  # pid, and so does regent cluster-wide. A holder on another node that has
  # exited keeps the key in the log until its node's member commits the
  # unregister it sends on 'DOWN'; a register refused by it asks the
  # holder's node whether it lives and, since it does not, registers again
  # replacing it. Suspending A's member (as a busy member would be) keeps
  # that unregister from ever coming, so only the replacement can make B's
  # register succeed. (Found by this test: before, 4 to 6 of 20 tries failed
  # without any suspension when A was not the leader.)
  test "a unique key whose holder on A has exited is free for B at once, as in Registry", ctx do
    %{a: a, b: b, nodes: nodes} = ctx
    reg = :regent_ex_dead_holder
    start_registry_everywhere(reg, nodes, keys: :unique)

    {owner, {:ok, member_a}} = spawn_registered(a, reg, "key", :a)
    await_equal("B's lookup", [{owner, :a}], fn -> rpc(b, Regent, :lookup, [reg, "key"]) end)

    :ok = rpc(a, :sys, :suspend, [member_a])

    try do
      ref = Process.monitor(owner)
      send(owner, :stop)
      assert_receive {:DOWN, ^ref, :process, ^owner, _}, 5_000
      assert {:ok, _} = rpc(b, Regent, :register, [reg, "key", :b])
    after
      :ok = rpc(a, :sys, :resume, [member_a])
    end
  end

  test "50 keys, each raced for by one process on each of the three nodes: one winner per key, agreed everywhere",
       %{nodes: nodes} do
    reg = :regent_ex_race
    start_registry_everywhere(reg, nodes, keys: :unique)
    keys = for i <- 1..50, do: {:race, i}

    # Key by key, one contender per node; all wait for :go.
    contenders =
      for key <- keys, node <- nodes do
        pid = Node.spawn(node, Remote, :register_on_go, [reg, key, node, self()])
        {pid, key}
      end

    for {pid, _} <- contenders, do: assert_receive({:waiting, ^pid}, 10_000)
    for {pid, _} <- contenders, do: send(pid, :go)

    results =
      for {pid, key} <- contenders do
        assert_receive {:registered, ^pid, ^key, result}, 20_000
        {key, pid, result}
      end

    winners =
      for {key, group} <- Enum.group_by(results, &elem(&1, 0)), into: %{} do
        assert length(group) == 3

        assert [{_, winner, {:ok, member}}] = Enum.filter(group, &match?({_, _, {:ok, _}}, &1)),
               "key #{inspect(key)}: #{inspect(group)}"

        assert node(member) == node(winner)

        for {_, pid, result} <- group, pid != winner do
          assert result == {:error, {:already_registered, winner}},
                 "key #{inspect(key)}: #{inspect(group)}"
        end

        {key, winner}
      end

    expected = Enum.sort(for {key, winner} <- winners, do: {key, winner, node(winner)})

    for node <- nodes do
      await_equal("every node to agree on the winners (#{node})", expected, fn ->
        all_entries(node, reg)
      end)

      assert rpc(node, Regent, :count, [reg]) == 50

      for {key, winner} <- winners do
        assert rpc(node, Regent, :lookup, [reg, key]) == [{winner, node(winner)}]
      end
    end
  end

  test "via names: an Agent named on A is called from B and C, and its name is taken there",
       %{nodes: nodes} = ctx do
    %{a: a, b: b, c: c} = ctx
    reg = :regent_ex_via
    start_registry_everywhere(reg, nodes, keys: :unique)

    # Agent.start_link links to its caller: a long-lived process on A, not
    # an rpc process that exits with its result.
    worker = Node.spawn(a, Remote, :serve, [self()])
    name = {:via, Regent, {reg, "agent", :hello}}

    assert {:ok, agent} =
             Remote.call(worker, {Agent, :start_link, [&Remote.zero/0, [name: name]]})

    assert node(agent) == a

    plain = {:via, Regent, {reg, "agent"}}

    await("B to see the agent", fn -> rpc(b, Regent, :whereis_name, [{reg, "agent"}]) == agent end)

    assert rpc(b, Agent, :get, [plain, &Remote.identity/1]) == 0
    assert rpc(b, Agent, :update, [plain, &Remote.inc/1]) == :ok

    await_equal("C's lookup", [{agent, :hello}], fn -> rpc(c, Regent, :lookup, [reg, "agent"]) end)

    assert rpc(c, Agent, :get, [plain, &Remote.identity/1]) == 1

    # The name is taken on C: gen's look-up first, and the raft write too.
    assert rpc(c, Agent, :start, [&Remote.zero/0, [name: name]]) ==
             {:error, {:already_started, agent}}

    assert rpc(c, Agent, :start, [&Remote.zero/0, [name: plain]]) ==
             {:error, {:already_started, agent}}

    other = Node.spawn(c, :timer, :sleep, [:infinity])
    assert rpc(c, Regent, :register_name, [{reg, "agent"}, other]) == :no

    for node <- nodes do
      assert rpc(node, Regent, :lookup, [reg, "agent"]) == [{agent, :hello}]
      assert rpc(node, Regent, :count, [reg]) == 1
    end

    # When the agent stops, its name goes everywhere and C may take it.
    assert rpc(b, Agent, :stop, [plain]) == :ok

    for node <- nodes do
      await_equal("the agent's name gone on #{node}", [], fn ->
        rpc(node, Regent, :lookup, [reg, "agent"])
      end)
    end

    assert {:ok, agent_c} = rpc(c, Agent, :start, [&Remote.zero/0, [name: plain]])
    assert node(agent_c) == c

    await("A to see C's agent", fn ->
      rpc(a, Regent, :whereis_name, [{reg, "agent"}]) == agent_c
    end)

    send(worker, :stop)
  end

  ## Duplicate keys

  test "duplicate: entries from A, B and C under one key are looked up, dispatched to and counted everywhere",
       %{nodes: nodes} = ctx do
    %{a: a, b: b, c: c} = ctx
    reg = :regent_ex_duplicate
    start_registry_everywhere(reg, nodes, keys: :duplicate)

    {pa, {:ok, _}} = spawn_registered(a, reg, "topic", :a)
    {pb, {:ok, _}} = spawn_registered(b, reg, "topic", :b)
    {pc, {:ok, _}} = spawn_registered(c, reg, "topic", :c)
    # One process twice, with the same value: two entries, as in Registry.
    assert {:ok, _} = Remote.call(pc, {Regent, :register, [reg, "topic", :c]})

    entries = Enum.sort([{pa, :a}, {pb, :b}, {pc, :c}, {pc, :c}])

    for node <- nodes do
      await_equal("all 4 entries on #{node}", entries, fn -> sorted_lookup(node, reg, "topic") end)

      assert rpc(node, Regent, :count, [reg]) == 4
      assert rpc(node, Regent, :keys, [reg, pc]) == ["topic", "topic"]
      assert rpc(node, Regent, :values, [reg, "topic", pc]) == [:c, :c]
      assert rpc(node, Regent, :values, [reg, "topic", pa]) == [:a]
    end

    # dispatch/3 on C reaches every entry: the processes on A, B and C (the
    # one registered twice, twice).
    assert rpc(c, Regent, :dispatch, [reg, "topic", {Remote, :send_all, [:broadcast]}]) == :ok
    assert_receive {:forwarded, ^pa, {:broadcast, :a}}, 5_000
    assert_receive {:forwarded, ^pb, {:broadcast, :b}}, 5_000
    assert_receive {:forwarded, ^pc, {:broadcast, :c}}, 5_000
    assert_receive {:forwarded, ^pc, {:broadcast, :c}}, 5_000
    refute_receive {:forwarded, _, {:broadcast, _}}, 100

    # dispatch with a fun (an external one: the peers do not have this
    # module) from A.
    assert rpc(a, Regent, :dispatch, [reg, "topic", &Remote.send_all_hello/1]) == :ok
    for pid <- [pa, pb, pc, pc], do: assert_receive({:forwarded, ^pid, :hello}, 5_000)
    assert rpc(a, Regent, :dispatch, [reg, "nobody", &Remote.send_all_hello/1]) == :ok
    refute_receive {:forwarded, _, :hello}, 100

    for node <- nodes do
      assert rpc(node, Regent, :count_match, [reg, "topic", :_]) == 4
      assert rpc(node, Regent, :count_match, [reg, "topic", :c]) == 2
      assert rpc(node, Regent, :count_match, [reg, "topic", :"$1", [{:"=/=", :"$1", :a}]]) == 3
      assert rpc(node, Regent, :count_match, [reg, "other", :_]) == 0

      assert Enum.sort(rpc(node, Regent, :match, [reg, "topic", :"$1", [{:"=/=", :"$1", :c}]])) ==
               Enum.sort([{pa, :a}, {pb, :b}])
    end

    # B's process exits: its entry vanishes on A and C.
    send(pb, :stop)
    without_b = entries -- [{pb, :b}]

    for node <- nodes do
      await_equal("B's entry gone on #{node}", without_b, fn ->
        sorted_lookup(node, reg, "topic")
      end)

      assert rpc(node, Regent, :keys, [reg, pb]) == []
      assert rpc(node, Regent, :count_match, [reg, "topic", :_]) == 3
    end

    # unregister/2 by C's process removes both its entries, everywhere.
    assert Remote.call(pc, {Regent, :unregister, [reg, "topic"]}) == :ok

    for node <- nodes do
      await_equal("C's entries gone on #{node}", [{pa, :a}], fn ->
        sorted_lookup(node, reg, "topic")
      end)
    end
  end

  ## Registry metadata

  test "meta: given at start, put on A and deleted on C, read the same everywhere",
       %{nodes: nodes} = ctx do
    %{a: a, b: b, c: c} = ctx
    reg = :regent_ex_meta

    # `shared` on every node, `from_a` only in A's options: the cluster
    # gets it from A.
    # `contested` differs on every node (against the advice to start every
    # node alike): the cluster keeps one value, the same everywhere.
    start_registry(reg, [
      {a, [keys: :unique, meta: [shared: "custom_value", from_a: {:only, :a}, contested: :a]]},
      {b, [keys: :unique, meta: [shared: "custom_value", contested: :b]]},
      {c, [keys: :unique, meta: [shared: "custom_value", contested: :c]]}
    ])

    await("one value of :contested on every node", fn ->
      values = for node <- nodes, do: rpc(node, Regent, :meta, [reg, :contested])
      match?([{:ok, _}], Enum.uniq(values)) or values
    end)

    for node <- nodes do
      assert rpc(node, Regent, :meta, [reg, :shared]) == {:ok, "custom_value"}

      await_equal("A's start meta on #{node}", {:ok, {:only, :a}}, fn ->
        rpc(node, Regent, :meta, [reg, :from_a])
      end)

      assert rpc(node, Regent, :meta, [reg, :unknown_key]) == :error
    end

    assert rpc(a, Regent, :put_meta, [reg, :custom_key, "put on A"]) == :ok
    assert rpc(a, Regent, :put_meta, [reg, {:tuple, :key}, "tuple_value"]) == :ok
    assert rpc(a, Regent, :meta, [reg, :custom_key]) == {:ok, "put on A"}

    for node <- [b, c] do
      await_equal("put_meta from A on #{node}", {:ok, "put on A"}, fn ->
        rpc(node, Regent, :meta, [reg, :custom_key])
      end)

      await_equal("tuple key on #{node}", {:ok, "tuple_value"}, fn ->
        rpc(node, Regent, :meta, [reg, {:tuple, :key}])
      end)
    end

    # A later put from B wins over A's everywhere.
    assert rpc(b, Regent, :put_meta, [reg, :custom_key, "put on B"]) == :ok

    for node <- nodes do
      await_equal("B's put on #{node}", {:ok, "put on B"}, fn ->
        rpc(node, Regent, :meta, [reg, :custom_key])
      end)
    end

    assert rpc(c, Regent, :delete_meta, [reg, :custom_key]) == :ok
    assert rpc(c, Regent, :delete_meta, [reg, :from_a]) == :ok
    assert rpc(c, Regent, :meta, [reg, :custom_key]) == :error

    for node <- nodes do
      await_equal("deleted on #{node}", :error, fn ->
        rpc(node, Regent, :meta, [reg, :custom_key])
      end)

      await_equal("from_a deleted on #{node}", :error, fn ->
        rpc(node, Regent, :meta, [reg, :from_a])
      end)

      assert rpc(node, Regent, :meta, [reg, :shared]) == {:ok, "custom_value"}
      assert rpc(node, Regent, :meta, [reg, {:tuple, :key}]) == {:ok, "tuple_value"}
    end
  end

  ## Listeners

  test "listeners on B are told of registrations and unregistrations made on A", ctx do
    %{a: a, b: b, c: c} = ctx
    reg = :regent_ex_listeners
    listener_name = :regent_ex_listener
    listener = Node.spawn(b, Remote, :listen_as, [listener_name, self()])
    assert_receive {:listening, ^listener}, 5_000

    start_registry(reg, [
      {a, [keys: :unique]},
      {b, [keys: :unique, listeners: [listener_name]]},
      {c, [keys: :unique]}
    ])

    {pa, {:ok, _}} = spawn_registered(a, reg, "watched", :value)
    assert_receive {:forwarded, ^listener, {:register, ^reg, "watched", ^pa, :value}}, 5_000

    assert Remote.call(pa, {Regent, :unregister, [reg, "watched"]}) == :ok
    assert_receive {:forwarded, ^listener, {:unregister, ^reg, "watched", ^pa}}, 5_000

    # regent's difference from Registry (documented): an entry that goes
    # because its process exited is told too, from any node.
    {pc, {:ok, _}} = spawn_registered(c, reg, "exits", :value)
    assert_receive {:forwarded, ^listener, {:register, ^reg, "exits", ^pc, :value}}, 5_000
    send(pc, :stop)
    assert_receive {:forwarded, ^listener, {:unregister, ^reg, "exits", ^pc}}, 5_000

    refute_receive {:forwarded, ^listener, _}, 200
    send(pa, :stop)
    send(listener, :stop)
  end

  ## Bad input

  test "bad input on a running cluster raises ArgumentError and changes nothing",
       %{nodes: nodes} = ctx do
    %{a: a, b: b, c: c} = ctx
    reg = :regent_ex_bad_input
    start_registry_everywhere(reg, nodes, keys: :duplicate, meta: [kept: true])

    {holder, {:ok, _}} = spawn_registered(b, reg, "k", :good)

    for node <- nodes do
      await_equal("the good entry on #{node}", [{"k", holder, :good}], fn ->
        all_entries(node, reg)
      end)
    end

    big = :binary.copy("x", 100_000)

    assert_raise ArgumentError, ~r/value_too_large/, fn ->
      rpc(a, Regent, :register, [reg, "big", big])
    end

    assert_raise ArgumentError, ~r/value_too_large/, fn ->
      Remote.call(holder, {Regent, :register, [reg, "k", big]})
    end

    assert_raise ArgumentError, ~r/bad_match_spec/, fn ->
      rpc(c, Regent, :match, [reg, "k", :"$1", [{:bogus_fun, :"$1"}]])
    end

    assert_raise ArgumentError, ~r/bad_match_spec/, fn ->
      rpc(c, Regent, :count_match, [reg, "k", :"$1", [{:bogus_fun, :"$1"}]])
    end

    assert_raise ArgumentError, ~r/via_not_supported_for_duplicate_registry/, fn ->
      rpc(a, Regent, :whereis_name, [{reg, :x}])
    end

    assert_raise ArgumentError, ~r/not_supported_for_duplicate_registry/, fn ->
      Remote.call(holder, {Regent, :update_value, [reg, "k", &Remote.bump/1]})
    end

    assert_raise ArgumentError, ~r/unknown_option/, fn ->
      rpc(b, Regent, :start_link, [[keys: :unique, name: :x, bogus: 1]])
    end

    assert rpc(b, Process, :whereis, [:x]) == nil

    # Nothing changed: a write made after them all, once seen everywhere,
    # shows the table as it was, plus that write.
    {barrier, {:ok, _}} = spawn_registered(c, reg, "barrier", :after)

    for node <- nodes do
      await_equal(
        "the table on #{node}",
        [{"barrier", barrier, :after}, {"k", holder, :good}],
        fn ->
          all_entries(node, reg)
        end
      )

      assert rpc(node, Regent, :count, [reg]) == 2
      assert rpc(node, Regent, :meta, [reg, :kept]) == {:ok, true}
      assert rpc(node, Regent, :status, [reg]).ready
    end
  end
end

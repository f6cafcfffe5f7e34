defmodule ElixirApp.SchedulerTest do
  use ExUnit.Case

  test "the singleton runs once and answers through its via name" do
    {:ok, pid} = ElixirApp.Scheduler.ensure_started()
    assert {:ok, ^pid} = ElixirApp.Scheduler.ensure_started()
    assert is_integer(ElixirApp.Scheduler.ticks())
    assert {epoch, 1} = ElixirApp.Scheduler.fencing_token()
    assert is_integer(epoch)
    assert [{ElixirApp.Scheduler, ^pid, :worker, [ElixirApp.Scheduler]}] =
             Regent.Supervisor.which_children(ElixirApp.Singletons)
  end
end

defmodule ElixirApp.Application do
  @moduledoc """
  A registry, a DynamicSupervisor of carts named through it, and a
  cluster singleton (ElixirApp.Scheduler) under a Regent.Supervisor.
  """
  use Application

  @impl true
  def start(_type, _args) do
    children = [
      {Regent, name: ElixirApp.Registry},
      {DynamicSupervisor, name: ElixirApp.Carts, strategy: :one_for_one},
      {Regent.Supervisor, name: ElixirApp.Singletons, registry: ElixirApp.Registry},
      # Every node asks for the singleton; one instance runs in the cluster.
      {Task, &ElixirApp.Scheduler.ensure_started/0}
    ]

    Supervisor.start_link(children, strategy: :rest_for_one, name: ElixirApp.Supervisor)
  end
end

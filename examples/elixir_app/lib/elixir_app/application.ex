defmodule ElixirApp.Application do
  @moduledoc "A registry and a DynamicSupervisor of carts named through it."
  use Application

  @impl true
  def start(_type, _args) do
    children = [
      {Regent, name: ElixirApp.Registry},
      {DynamicSupervisor, name: ElixirApp.Carts, strategy: :one_for_one}
    ]

    Supervisor.start_link(children, strategy: :rest_for_one, name: ElixirApp.Supervisor)
  end
end

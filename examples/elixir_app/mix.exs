defmodule ElixirApp.MixProject do
  use Mix.Project

  def project do
    [app: :elixir_app, version: "0.1.0", elixir: "~> 1.14", deps: deps()]
  end

  def application do
    [extra_applications: [:logger], mod: {ElixirApp.Application, []}]
  end

  # regent by path: Mix compiles its Erlang and Elixir code and builds regentd.
  defp deps do
    [{:regent, path: "../.."}]
  end
end

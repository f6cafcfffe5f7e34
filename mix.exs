defmodule Regent.MixProject do
  use Mix.Project

  # regent is both a rebar3 project (Erlang users) and a Mix project (Elixir
  # users): Mix compiles src/*.erl and lib/*.ex and builds regentd with make.
  def project do
    [
      app: :regent,
      version: "0.1.0",
      elixir: "~> 1.14",
      erlc_paths: ["src"],
      erlc_options: [:debug_info, :warnings_as_errors],
      compilers: [:regentd | Mix.compilers()],
      test_paths: ["test/elixir"],
      deps: []
    ]
  end

  def application do
    [extra_applications: [:logger, :crypto]]
  end
end

defmodule Mix.Tasks.Compile.Regentd do
  @moduledoc "Builds priv/regentd (the C daemon) with make."
  use Mix.Task.Compiler

  @impl true
  def run(_args) do
    {out, status} = System.cmd("make", ["-s", "-C", "c_src"], stderr_to_stdout: true)

    case status do
      0 ->
        {:ok, []}

      _ ->
        Mix.shell().error(out)
        {:error, []}
    end
  end
end

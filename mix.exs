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
      elixirc_paths: elixirc_paths(Mix.env()),
      erlc_options: [:debug_info, :warnings_as_errors],
      compilers: [:regentd | Mix.compilers()],
      test_paths: ["test/elixir"],
      deps: deps()
    ]
  end

  # telemetry is optional (it is not packaged in Debian): regent emits its
  # events when the application is there (src/regent_telemetry.erl). Mix
  # cannot even parse a hex dependency without Hex, so it is declared only
  # where Hex is installed (a user's machine); offline builds, like this
  # repository's CI, go without it.
  defp deps do
    if Code.ensure_loaded?(Hex) do
      [{:telemetry, "~> 1.0", optional: true}]
    else
      []
    end
  end

  # test/elixir/support: code the cluster tests run on their peer nodes,
  # which load modules from the code path but not the test modules.
  defp elixirc_paths(:test), do: ["lib", "test/elixir/support"]
  defp elixirc_paths(_), do: ["lib"]

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
        # Mix links priv/ into _build before the compilers run; on the first
        # build priv/ did not exist yet, so link it now, or the first start
        # after the first `mix compile` would not find priv/regentd.
        Mix.Project.build_structure()
        {:ok, []}

      _ ->
        Mix.shell().error(out)
        {:error, []}
    end
  end
end

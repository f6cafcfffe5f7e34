{:ok, _} = Application.ensure_all_started(:logger)
{:ok, _} = Application.ensure_all_started(:crypto)
Logger.configure(level: :warning)
ExUnit.start()

Application.ensure_all_started(:crypto)
Logger.configure(level: :warning)
ExUnit.start()

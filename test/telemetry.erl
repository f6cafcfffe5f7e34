%% A test double of telemetry:execute/3, kept under test/ because the real
%% telemetry package is not in Debian and cannot be installed here
%% (docs/testing.md). regent calls telemetry:execute/3 when it can load it
%% (src/regent_telemetry.erl); this one sends each event to the process
%% registered as `regent_telemetry_events' on its node, if there is one.
-module(telemetry).

-export([execute/3]).

execute(Event, Measurements, Metadata) ->
    case whereis(regent_telemetry_events) of
        undefined -> ok;
        Pid -> Pid ! {telemetry, Event, Measurements, Metadata}, ok
    end.

%% @doc `:telemetry' events, when the telemetry application is there.
%%
%% telemetry is an optional dependency (it is not packaged in Debian): each
%% event goes through `telemetry:execute/3' if that function can be loaded,
%% and costs a `persistent_term' read otherwise. Whether it can is looked
%% up once, and again each time a member starts (a release that adds
%% telemetry later is seen at the next registry start). docs/telemetry.md
%% lists every event with its measurements and metadata.
-module(regent_telemetry).

-export([refresh/0, execute/3, span/3]).

-define(KEY, {?MODULE, enabled}).

%% @private Looks again whether telemetry:execute/3 is there.
-spec refresh() -> boolean().
refresh() ->
    On = code:ensure_loaded(telemetry) =:= {module, telemetry} andalso
        erlang:function_exported(telemetry, execute, 3),
    persistent_term:get(?KEY, undefined) =:= On orelse persistent_term:put(?KEY, On),
    On.

enabled() ->
    case persistent_term:get(?KEY, undefined) of
        undefined -> refresh();
        On -> On
    end.

%% @private One event: `[regent | Event]'.
-spec execute([atom()], map(), map()) -> ok.
execute(Event, Measurements, Metadata) ->
    case enabled() of
        true -> telemetry:execute([regent | Event], Measurements, Metadata);
        false -> ok
    end.

%% @private `[regent | Prefix] ++ [start | stop | exception]' around Fun,
%% as telemetry:span/3 does: stop carries the duration and the result in
%% its metadata; exception the kind and reason, and the exception goes on.
-spec span([atom()], map(), fun(() -> Result)) -> Result.
span(Prefix, Metadata, Fun) ->
    case enabled() of
        false ->
            Fun();
        true ->
            T0 = erlang:monotonic_time(),
            execute(Prefix ++ [start], #{system_time => erlang:system_time(),
                                         monotonic_time => T0}, Metadata),
            try Fun() of
                Result ->
                    execute(Prefix ++ [stop], #{duration => erlang:monotonic_time() - T0},
                            Metadata#{result => Result}),
                    Result
            catch
                Kind:Reason:Stack ->
                    execute(Prefix ++ [exception], #{duration => erlang:monotonic_time() - T0},
                            Metadata#{kind => Kind, reason => Reason, stacktrace => Stack}),
                    erlang:raise(Kind, Reason, Stack)
            end
    end.

%% @doc The member's data dir: where it is, the sweep of stale ones at start,
%% its removal.
%%
%% The dir holds the daemon's raft state, written by regentd (`regent.id'
%% last: regent_discovery and regent_daemon look for it to tell whether
%% there is a state to resume), and `daemon.pid', written by regent_daemon.
%% Called by regent_member (init/1 and terminate/2) and regent_leave (a
%% dissolve drops the raft state).
-module(regent_data_dir).

-export([data_dir/2, remove_dir/1]).

-include_lib("kernel/include/logger.hrl").

%% @private
%% <base>/<node>-<os pid>/<registry>: a new BEAM incarnation never resumes
%% an older one's raft state (it must join under a fresh id), while a
%% restarted daemon or member in this BEAM does. Directories that no
%% running regentd holds are removed by `regentd --sweep' (c_src/datadir.h):
%% liveness is the daemon's flock on its dir, which holds across PID
%% namespaces, never the visibility of /proc/<pid> (a BEAM in a container of
%% its own that shared /dev/shm deleted the others' live state: issue 11).
-spec data_dir(atom(), map()) -> file:filename().
data_dir(Reg, Opts) ->
    Base = maps:get(data_dir, Opts),
    Self = atom_to_list(node()) ++ "-" ++ os:getpid(),
    ok = filelib:ensure_path(Base),
    sweep(maps:get(daemon, Opts), Base, Self),
    Dir = filename:join([Base, Self, atom_to_list(Reg)]),
    ok = filelib:ensure_path(Dir),
    Dir.

%% Someone else's leftovers (another user's, in a shared /dev/shm) may not be
%% ours to delete: the sweep says so and we go on.
sweep(Exe, Base, Self) ->
    Port = open_port({spawn_executable, Exe},
                     [{args, ["--sweep", Base, Self]}, exit_status, stderr_to_stdout,
                      {line, 4096}]),
    sweep_output(Port, Base, []).

sweep_output(Port, Base, Lines) ->
    receive
        {Port, {data, {_, Line}}} ->
            sweep_output(Port, Base, [Line | Lines]);
        {Port, {exit_status, Code}} ->
            [?LOG_INFO("regent: ~ts", [L]) || L <- lists:reverse(Lines)],
            Code =:= 0 orelse
                ?LOG_WARNING("regent: the sweep of stale data dirs in ~ts exited with ~p",
                             [Base, Code]),
            ok
    after 30000 ->
            port_close(Port),
            ?LOG_WARNING("regent: the sweep of stale data dirs did not finish"),
            ok
    end.

%% @private
%% A dir that is already gone is fine; any other failure is logged, so that
%% terminate/2 never hides the reason the member stops with.
-spec remove_dir(file:filename()) -> ok.
remove_dir(Dir) ->
    case file:del_dir_r(Dir) of
        ok -> ok;
        {error, enoent} -> ok;
        {error, Why} -> ?LOG_WARNING("regent: cannot remove ~ts: ~p", [Dir, Why])
    end.

%% The state of a registry's member, shared by the modules that hold its
%% concerns. Private to src/; not part of the API.
%%
%% The member is one process (regent_member, a gen_server) whose code is cut
%% by concern into modules that all work on this one record: the concerns
%% read and write the same fields (dissolving touches the port, the outbox,
%% the mirror and the peers; a new daemon resets the fields of the old
%% one's life), so one record in one header keeps a field's meaning in one
%% place, where a record per module would copy fields back and forth.
%%
%% Which module owns which fields: the owner gives a field its meaning and
%% does most of the writing; any module may read any field. The other
%% writers store what a frame or a message says in the owner's field, or
%% reset it when a daemon starts (regent_daemon:start_daemon/2) or the
%% member dissolves (regent_leave:dissolve/2).
%%
%%   field                       owner              also written by
%%   reg, opts                   regent_member      -
%%   dir                         regent_data_dir    -
%%   port, daemon_id             regent_daemon      regent_leave
%%   raft_port, restarts,        regent_daemon      -
%%     daemon_starts
%%   pending, outbox, sent_upto, regent_outbox      -
%%     settled_at; #op{}
%%   flush_queued, tick          regent_outbox      regent_member (the flush
%%                                                  and tick messages)
%%   synced, dump, held,         regent_mirror      regent_daemon
%%     reclaim_on_dump, dump_into
%%   owned, watched, waiters     regent_mirror      regent_duplicate
%%   meta_tab, start_meta_put    regent_meta        -
%%   subs, lag_timer,            regent_events      regent_daemon
%%     applied_index
%%   status, status_waiters      regent_status      regent_daemon, regent_leave
%%   peers, leader_since         regent_peers       -
%%   leader_id                   regent_peers       regent_daemon, regent_leave
%%   leaderless_since            regent_peers       regent_daemon, regent_member
%%   phase                       regent_discovery   regent_daemon
%%   join_target                 regent_discovery   regent_leave
%%   discover_rounds             regent_discovery   -
%%   join_timer                  regent_discovery   regent_peers (its timer)
%%   members                     regent_membership  regent_daemon (MEMBERS),
%%                                                  regent_leave
%%   changes, change_busy        regent_membership  regent_daemon
%%   plan_timer                  regent_membership  regent_peers (its timer)
%%   hand_overs                  regent_membership  -
%%   claims                      regent_merge       regent_leave, regent_mirror
%%   left_out_since              regent_merge       -

%% The member's clock for timers and deadlines (ms, monotonic).
-define(NOW_MS(), erlang:monotonic_time(millisecond)).

%% The kinds of write a caller may ask of the member (regent_write).
-define(CALLER_WRITES, [register, unregister, unregister_if_owner, set_meta, read,
                        register_new, set_meta_if_owner, group_add, group_del,
                        meta_put, meta_del, set_meta_if_version, read_entry,
                        register_many, unregister_many, meta_cas]).

-record(op, {from :: gen_server:from() | internal | {claim, term(), pid()},
             kind :: register | unregister | unregister_if_owner | set_meta | read
                   | purge_node | register_new | set_meta_if_owner | group_add
                   | group_del | meta_put | meta_del | set_meta_if_version
                   | read_entry | register_many | unregister_many | meta_cas,
             bin :: binary(),
             deadline :: integer() | infinity,
             %% A registration of a pid on a connected node that runs no
             %% member of this registry: once it is done, we monitor it.
             watch :: {binary(), pid()} | undefined}).

-record(st, {reg :: atom(),
             opts :: map(),
             dir :: file:filename(),
             port :: port() | undefined,
             daemon_id = 0 :: non_neg_integer(),
             raft_port = 0 :: inet:port_number(),
             synced = false :: boolean(),
             status = #{} :: map(),
             pending = #{} :: #{pos_integer() => #op{}},
             outbox = [] :: [pos_integer()],
             flush_queued = false :: boolean(),
             held = [] :: [regent_proto:reply()],
             dump = [] :: [{regent_proto:table(), [regent_proto:row()]}],
             %% Where the DUMP being received goes: decided at its first
             %% frame; `empty': the names mirror was empty, so its names go
             %% in frame by frame (regent_mirror:dump_frame/3).
             dump_into :: empty | full | undefined,
             %% The next DUMP comes from a daemon that started without state
             %% (first start, lost data dir, a cluster joined after a
             %% dissolve): only then may names it lacks be re-claimed.
             reclaim_on_dump = false :: boolean(),
             owned = #{} :: #{pid() => {reference(), #{binary() => true}}},
             %% The registry metadata mirror (regent_meta), and whether the
             %% `meta' option's values were put in the cluster yet.
             meta_tab :: ets:tid() | undefined,
             start_meta_put = false :: boolean(),
             %% Subscriptions (regent_events): by monitor reference.
             subs = #{} :: #{reference() => map()},
             lag_timer = false :: boolean(),
             %% The log index of the entry whose changes are being applied
             %% (or of the last DUMP).
             applied_index = 0 :: non_neg_integer(),
             %% Remote owners on nodes with no member of this registry
             %% (nobody else would see them exit), registered through us.
             watched = #{} :: #{pid() => {reference(), #{binary() => true}}},
             waiters = [] :: [gen_server:from()],
             status_waiters = [] :: [gen_server:from()],
             restarts = [] :: [integer()],
             daemon_starts = 0 :: non_neg_integer(),
             tick = false :: boolean(),
             %% clustering
             phase = running :: discovering | joining | running,
             discover_rounds = 0 :: non_neg_integer(),
             join_target :: node() | undefined,
             peers = #{} :: #{node() => map()},
             members = [] :: [{pos_integer(), voter | standby | spare, binary()}],
             leader_id = 0 :: non_neg_integer(),
             leader_since = 0 :: integer(),
             changes = #{} :: #{pos_integer() => term()},
             change_busy = false :: boolean(),
             leaderless_since = 0 :: integer(),
             claims = [] :: [{term(), pid(), term()}],
             %% When the leader's hello first left us out (0: it did not).
             left_out_since = 0 :: integer(),
             %% connection attempts in flight to members' nodes (regent_peers:reconnect/1)
             reconnecting = #{} :: #{node() => pid()},
             %% Leadership hand-overs without a majority so far, and when the
             %% last one was asked for (regent_membership:hand_over/1).
             hand_overs = {0, undefined} :: {non_neg_integer(), integer() | undefined},
             %% Every pending op with a ref up to this one went to a leader
             %% at least once, so it may have been applied.
             sent_upto = 0 :: non_neg_integer(),
             %% The one {plan} timer and when it fires (ms): one is enough
             %% (each failed change arming another made them multiply into a
             %% storm of changes that kept the member from answering calls),
             %% and an earlier need moves it earlier.
             plan_timer :: {reference(), integer()} | undefined,
             %% The one {join_retry} timer while joining: a timer per attempt
             %% plus one per refusal doubled the attempts each round.
             join_timer :: reference() | undefined,
             %% When the last SETTLE went out (ms).
             settled_at :: integer() | undefined}).

%% Timings used by more than one module (each module defines those only it
%% uses).

%% How often the member tells its daemon it runs: a leader's daemon that
%% hears nothing for a second (a stopped BEAM) hands the leadership over
%% (c_src/node_health.c, rg_node_maybe_hand_over).
-define(ALIVE_MS, 250).

-define(JOIN_RETRY_MS, 1000).
%% A leader waits this long after a nodedown before it purges the node's
%% names or removes its server: a partition reaches a node as a series of
%% nodedowns, and a leader on the small side that acted on the first ones
%% (while it still saw a majority) would purge live nodes' names and shrink
%% the voters to a set the big side cannot elect from (found by the nemesis
%% test, docs/testing.md). After the wait it sees the whole cut.
-define(DOWN_SETTLE_MS, 500).
%% How often a member checks that its view of the other members is current
%% (regent_peers, the {refresh} timer).
-define(REFRESH_MS, 1000).

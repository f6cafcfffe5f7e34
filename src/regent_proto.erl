%% @doc Frames of the port protocol between the member and regentd.
%%
%% Pure encoding and decoding; docs/protocol.md is the reference and
%% c_src/proto.c, c_src/cmd.c the other side. Every frame starts with
%% `[version, type]'; integers are big-endian; `blob' is a u32 length and
%% the bytes.
-module(regent_proto).

-export([start/1, ops/1, fwd_ops/2, change/5, block/1, stop/0, status_request/0, alive/0,
         op_ref/1,
         op_register/5, op_unregister/2, op_unregister_if_owner/3,
         op_set_meta/3, op_purge_node/4, op_read/2, op_settle/1,
         op_register_new/5, op_set_meta_if_owner/4, op_group_add/4,
         op_group_del/5, op_meta_put/4, op_meta_del/2,
         op_set_meta_if_version/5, op_read_entry/2, op_meta_cas/4, op_register_many/2,
         op_unregister_many/2, entry/1, many_answers/1,
         decode/1]).

-define(V, 1).

-define(RES_OK, 0).
-define(RES_NO, 1).
-define(RES_NOT_FOUND, 2).
-define(RES_RETRY, 3).
-define(RES_BAD, 4).

-type result() :: ok | no | not_found | retry | bad.
-type reply() :: {Ref :: pos_integer(), result(), Payload :: binary()}.
-type change() :: {put, Key :: binary(), Pid :: binary(), Meta :: binary()}
                | {del, Key :: binary()}
                | {del_purge, Key :: binary()}
                | {group_add, Key :: binary(), Pid :: binary(), Value :: binary()}
                | {group_del, Key :: binary(), Pid :: binary(), all | binary()}
                | {group_del_purge, Key :: binary(), Pid :: binary()}
                | {meta_put, Key :: binary(), Value :: binary()}
                | {meta_del, Key :: binary()}.
%% A row of a DUMP: a name (key, pid, meta), a duplicate-key entry (name,
%% pid, value list) or registry metadata (key, <<>>, value).
-type row() :: {Key :: binary(), Pid :: binary(), Meta :: binary()}.
-type table() :: names | groups | meta.
-type event() :: {started, Id :: pos_integer(), RaftPort :: inet:port_number(),
                  Resumed :: boolean()}
               | {applied, Index :: non_neg_integer(), [change()], [reply()]}
               | {replies, [{Origin :: pos_integer(), Ref :: pos_integer(),
                             result(), binary()}]}
               | {members, [{Id :: pos_integer(), Role :: voter | standby | spare,
                             Address :: binary()}]}
               | {changed, Ref :: pos_integer(), Status :: non_neg_integer()}
               | {status, map()}
               | {dump, Last :: boolean(), table(), Index :: non_neg_integer(), [row()]}
               | {error, binary()}.
-export_type([event/0, change/0, reply/0, row/0, table/0]).

%% ---- member -> daemon ----------------------------------------------------

%% @doc The START frame: where to keep raft state, what to bind, the secret,
%% how often to snapshot, TLS on the raft port (off, a PSK from the secret,
%% or certificate, key and CA files, and whether to verify the peer).
-spec start(#{id := non_neg_integer(), bootstrap := boolean(),
              data_dir := binary(), bind_host := binary(),
              port_range := {inet:port_number(), inet:port_number()},
              secret := binary(),
              snapshot := {pos_integer(), non_neg_integer()},
              tls := {off | psk | cert, binary(), binary(), binary(), boolean()}}) ->
          binary().
start(#{id := Id, bootstrap := Boot, data_dir := Dir, bind_host := Host,
        port_range := {Lo, Hi}, secret := Secret,
        snapshot := {Threshold, Trailing},
        tls := {Mode, Cert, Key, Ca, Verify}}) ->
    Flags = case Boot of true -> 1; false -> 0 end,
    TlsMode = case Mode of off -> 0; psk -> 1; cert -> 2 end,
    <<?V, 16#01, Id:64, Flags, (blob(Dir))/binary, (blob(Host))/binary,
      Lo:16, Hi:16, (blob(Secret))/binary, Threshold:32, Trailing:32,
      TlsMode, (blob(Cert))/binary, (blob(Key))/binary, (blob(Ca))/binary,
      (case Verify of true -> 1; false -> 0 end)>>.

%% @doc One OPS frame carrying encoded ops (see the op_* functions).
-spec ops([binary()]) -> iodata().
ops(Ops) ->
    [<<?V, 16#02, (length(Ops)):32>> | Ops].

%% @doc FWD_OPS: ops that another member forwarded to this (leader) member;
%% `Origin' is that member's daemon id, which will answer its callers.
-spec fwd_ops(pos_integer(), [binary()]) -> iodata().
fwd_ops(Origin, Ops) ->
    [<<?V, 16#06, Origin:64, (length(Ops)):32>> | Ops].

%% @doc CHANGE: a membership change; only a leader's daemon can make it.
-spec change(add | assign | remove | transfer, pos_integer(), non_neg_integer(),
             voter | standby | spare, binary()) -> binary().
change(Kind, Ref, Id, Role, Address) ->
    K = case Kind of add -> 1; assign -> 2; remove -> 3; transfer -> 4 end,
    R = case Role of standby -> 0; voter -> 1; spare -> 2 end,
    <<?V, 16#05, K, Ref:64, Id:64, R, (blob(Address))/binary>>.

%% @doc BLOCK (fault injection for tests): cut the raft links with these
%% daemons, in these directions (`in': what they send us, `out': what we
%% send them); `[]' heals.
-spec block([{pos_integer(), in | out | both}]) -> binary().
block(Blocks) ->
    <<?V, 16#07, (length(Blocks)):32,
      << <<Id:64, (dirs(D))>> || {Id, D} <- Blocks >>/binary>>.

dirs(in) -> 1;
dirs(out) -> 2;
dirs(both) -> 3.

%% @doc The ref inside an encoded op.
-spec op_ref(binary()) -> pos_integer().
op_ref(<<_Kind, Ref:64, _/binary>>) -> Ref.

-spec stop() -> binary().
stop() -> <<?V, 16#03>>.

-spec status_request() -> binary().
status_request() -> <<?V, 16#04>>.

%% Sent every ?ALIVE_MS by the member: a leader's daemon that hears
%% nothing from its member for a second hands the leadership over.
-spec alive() -> binary().
alive() -> <<?V, 16#08>>.

-spec op_register(pos_integer(), binary(), binary(), binary(), binary()) -> binary().
op_register(Ref, Key, Pid, Meta, Replace) ->
    <<1, Ref:64, (blob(Key))/binary, (blob(Pid))/binary, (blob(Meta))/binary,
      (blob(Replace))/binary>>.

-spec op_unregister(pos_integer(), binary()) -> binary().
op_unregister(Ref, Key) ->
    <<2, Ref:64, (blob(Key))/binary>>.

-spec op_unregister_if_owner(pos_integer(), binary(), binary()) -> binary().
op_unregister_if_owner(Ref, Key, Pid) ->
    <<3, Ref:64, (blob(Key))/binary, (blob(Pid))/binary>>.

-spec op_set_meta(pos_integer(), binary(), binary()) -> binary().
op_set_meta(Ref, Key, Meta) ->
    <<4, Ref:64, (blob(Key))/binary, (blob(Meta))/binary>>.

-spec op_purge_node(pos_integer(), binary(), any | non_neg_integer(),
                    non_neg_integer()) -> binary().
op_purge_node(Ref, Node, any, _) ->
    <<5, Ref:64, (blob(Node))/binary, 1, 0:32>>;
op_purge_node(Ref, Node, Creation, _) ->
    <<5, Ref:64, (blob(Node))/binary, 0, Creation:32>>.

-spec op_read(pos_integer(), binary()) -> binary().
op_read(Ref, Key) ->
    <<6, Ref:64, (blob(Key))/binary>>.

%% @doc REGISTER_NEW (Registry's register/3): like REGISTER, but `no' also
%% when `Pid' already holds the name.
-spec op_register_new(pos_integer(), binary(), binary(), binary(), binary()) -> binary().
op_register_new(Ref, Key, Pid, Meta, Replace) ->
    <<8, Ref:64, (blob(Key))/binary, (blob(Pid))/binary, (blob(Meta))/binary,
      (blob(Replace))/binary>>.

%% @doc SET_META_IF_OWNER (Registry's update_value/3): `not_found' unless
%% `Pid' holds the name.
-spec op_set_meta_if_owner(pos_integer(), binary(), binary(), binary()) -> binary().
op_set_meta_if_owner(Ref, Key, Pid, Meta) ->
    <<9, Ref:64, (blob(Key))/binary, (blob(Pid))/binary, (blob(Meta))/binary>>.

%% @doc GROUP_ADD: one more value for (Key, Pid) in the duplicate-key table;
%% `no' when that pid's values under the key would pass 1 MiB.
-spec op_group_add(pos_integer(), binary(), binary(), binary()) -> binary().
op_group_add(Ref, Key, Pid, Value) ->
    <<10, Ref:64, (blob(Key))/binary, (blob(Pid))/binary, (blob(Value))/binary>>.

%% @doc GROUP_DEL: (Key, Pid)'s values equal to `Value', or all of them.
-spec op_group_del(pos_integer(), binary(), binary(), all | binary(), binary()) -> binary().
op_group_del(Ref, Key, Pid, all, _) ->
    <<11, Ref:64, (blob(Key))/binary, (blob(Pid))/binary, 1, (blob(<<>>))/binary>>;
op_group_del(Ref, Key, Pid, one, Value) ->
    <<11, Ref:64, (blob(Key))/binary, (blob(Pid))/binary, 0, (blob(Value))/binary>>.

%% @doc META_PUT: registry metadata; with `if_absent' only when the key has
%% no value yet (the `meta' option given at start).
-spec op_meta_put(pos_integer(), binary(), binary(), always | if_absent) -> binary().
op_meta_put(Ref, Key, Value, When) ->
    <<12, Ref:64, (blob(Key))/binary, (blob(Value))/binary,
      (case When of if_absent -> 1; always -> 0 end)>>.

-spec op_meta_del(pos_integer(), binary()) -> binary().
op_meta_del(Ref, Key) ->
    <<13, Ref:64, (blob(Key))/binary>>.

%% @doc SET_META_IF_VERSION: a compare-and-set of a name's metadata; `no'
%% with the entry as it is unless `Pid' holds the name at `Version'.
-spec op_set_meta_if_version(pos_integer(), binary(), binary(), non_neg_integer(),
                             binary()) -> binary().
op_set_meta_if_version(Ref, Key, Pid, Version, Meta) ->
    <<14, Ref:64, (blob(Key))/binary, (blob(Pid))/binary, Version:64, (blob(Meta))/binary>>.

%% @doc META_CAS: registry metadata `Key' becomes `New' (`delete': goes)
%% only if it holds `Expect' now (`absent': has no value); otherwise `no'
%% with the value it holds, or `not_found'.
-spec op_meta_cas(pos_integer(), binary(), absent | binary(), delete | binary()) -> binary().
op_meta_cas(Ref, Key, Expect, New) ->
    {E, EBin} = case Expect of absent -> {0, <<>>}; _ -> {1, Expect} end,
    {V, VBin} = case New of delete -> {0, <<>>}; _ -> {2, New} end,
    <<18, Ref:64, (blob(Key))/binary, (E bor V), (blob(EBin))/binary, (blob(VBin))/binary>>.

%% @doc READ_ENTRY: a name's holder, version and metadata, through the log.
-spec op_read_entry(pos_integer(), binary()) -> binary().
op_read_entry(Ref, Key) ->
    <<15, Ref:64, (blob(Key))/binary>>.

%% @doc REGISTER_MANY: `[{Key, Pid, Meta, Replace}]' in one op.
-spec op_register_many(pos_integer(), [{binary(), binary(), binary(), binary()}]) -> binary().
op_register_many(Ref, Items) ->
    iolist_to_binary([<<16, Ref:64, (length(Items)):32>>
                      | [[blob(K), blob(P), blob(M), blob(R)] || {K, P, M, R} <- Items]]).

%% @doc UNREGISTER_MANY: names in one op, removed whoever holds them.
-spec op_unregister_many(pos_integer(), [binary()]) -> binary().
op_unregister_many(Ref, Keys) ->
    iolist_to_binary([<<17, Ref:64, (length(Keys)):32>> | [blob(K) || K <- Keys]]).

%% @doc The payload of READ_ENTRY and of a refused SET_META_IF_VERSION.
-spec entry(binary()) -> {binary(), non_neg_integer(), binary()} | undefined.
entry(<<>>) -> undefined;
entry(<<PL:32, Pid:PL/binary, Version:64, Meta/binary>>) -> {Pid, Version, Meta}.

%% @doc The payload of REGISTER_MANY's reply: per name, `ok' or `{no, Holder}'.
-spec many_answers(binary()) -> [ok | {no, binary()}].
many_answers(<<>>) -> [];
many_answers(<<0, 0:32, Rest/binary>>) -> [ok | many_answers(Rest)];
many_answers(<<1, L:32, Holder:L/binary, Rest/binary>>) -> [{no, Holder} | many_answers(Rest)].

%% @doc SETTLE: every op of this member with a ref below `Below' has been
%% answered, so the FSM may forget them (it keeps the (origin, ref) of
%% applied writes to skip a second copy of a re-sent op). Ref 0: no reply.
-spec op_settle(pos_integer()) -> binary().
op_settle(Below) ->
    <<7, 0:64, Below:64>>.

blob(B) -> <<(byte_size(B)):32, B/binary>>.

%% ---- daemon -> member ----------------------------------------------------

%% @doc Decodes one frame from regentd. A frame that does not parse is a bug
%% in one of the two programs, so it raises `{bad_frame, Frame}'.
-spec decode(binary()) -> event().
decode(<<?V, 16#81, Id:64, Port:16, Resumed>>) ->
    {started, Id, Port, Resumed =:= 1};
decode(<<?V, 16#82, Index:64, NC:32, Rest0/binary>>) ->
    {Changes, <<NR:32, Rest1/binary>>} = changes(NC, Rest0, []),
    {Replies, <<>>} = replies(NR, Rest1, []),
    {applied, Index, Changes, Replies};
decode(<<?V, 16#83, N:32, Rest/binary>>) ->
    {replies, origin_replies(N, Rest, [])};
decode(<<?V, 16#86, N:32, Rest/binary>>) ->
    {members, servers(N, Rest, [])};
decode(<<?V, 16#87, Ref:64, Status:32>>) ->
    {changed, Ref, Status};
decode(<<?V, 16#84, State, Leader:64, Term:64, Applied:64, Commit:64,
         Last:64, Synced, IoError:32, Rss:64>>) ->
    {status, #{raft_state => raft_state(State), leader_id => Leader,
               term => Term, applied => Applied, commit => Commit,
               last_index => Last, synced => Synced =:= 1,
               io_error => IoError, rss => Rss}};
decode(<<?V, 16#85, Last, Table, Index:64, N:32, Rest/binary>>) ->
    {Rows, <<>>} = rows(N, Rest, []),
    {dump, Last =:= 1, element(Table + 1, {names, groups, meta}), Index, Rows};
decode(<<?V, 16#8F, L:32, Msg:L/binary>>) ->
    {error, Msg};
decode(Frame) ->
    error({bad_frame, Frame}).


changes(0, Rest, Acc) ->
    {lists:reverse(Acc), Rest};
changes(N, <<1, KL:32, K:KL/binary, PL:32, P:PL/binary, ML:32, M:ML/binary,
             Rest/binary>>, Acc) ->
    changes(N - 1, Rest, [{put, K, P, M} | Acc]);
changes(N, <<2, KL:32, K:KL/binary, Rest/binary>>, Acc) ->
    changes(N - 1, Rest, [{del, K} | Acc]);
changes(N, <<3, KL:32, K:KL/binary, Rest/binary>>, Acc) ->
    changes(N - 1, Rest, [{del_purge, K} | Acc]);
changes(N, <<4, KL:32, K:KL/binary, PL:32, P:PL/binary, VL:32, V:VL/binary,
             Rest/binary>>, Acc) ->
    changes(N - 1, Rest, [{group_add, K, P, V} | Acc]);
changes(N, <<5, KL:32, K:KL/binary, PL:32, P:PL/binary, All, VL:32, V:VL/binary,
             Rest/binary>>, Acc) ->
    What = case All of 1 -> all; 0 -> V end,
    changes(N - 1, Rest, [{group_del, K, P, What} | Acc]);
changes(N, <<6, KL:32, K:KL/binary, PL:32, P:PL/binary, Rest/binary>>, Acc) ->
    changes(N - 1, Rest, [{group_del_purge, K, P} | Acc]);
changes(N, <<7, KL:32, K:KL/binary, VL:32, V:VL/binary, Rest/binary>>, Acc) ->
    changes(N - 1, Rest, [{meta_put, K, V} | Acc]);
changes(N, <<8, KL:32, K:KL/binary, Rest/binary>>, Acc) ->
    changes(N - 1, Rest, [{meta_del, K} | Acc]).

replies(0, Rest, Acc) ->
    {lists:reverse(Acc), Rest};
replies(N, <<Ref:64, Res, PL:32, P:PL/binary, Rest/binary>>, Acc) ->
    replies(N - 1, Rest, [{Ref, result(Res), P} | Acc]).

origin_replies(0, <<>>, Acc) ->
    lists:reverse(Acc);
origin_replies(N, <<Origin:64, Ref:64, Res, PL:32, P:PL/binary, Rest/binary>>, Acc) ->
    origin_replies(N - 1, Rest, [{Origin, Ref, result(Res), P} | Acc]).

servers(0, <<>>, Acc) ->
    lists:reverse(Acc);
servers(N, <<Id:64, Role, AL:32, A:AL/binary, Rest/binary>>, Acc) ->
    servers(N - 1, Rest, [{Id, role(Role), A} | Acc]).

role(0) -> standby;
role(1) -> voter;
role(2) -> spare.

rows(0, Rest, Acc) ->
    {lists:reverse(Acc), Rest};
rows(N, <<KL:32, K:KL/binary, PL:32, P:PL/binary, ML:32, M:ML/binary,
          Rest/binary>>, Acc) ->
    rows(N - 1, Rest, [{K, P, M} | Acc]).

result(?RES_OK) -> ok;
result(?RES_NO) -> no;
result(?RES_NOT_FOUND) -> not_found;
result(?RES_RETRY) -> retry;
result(?RES_BAD) -> bad.

raft_state(0) -> unavailable;
raft_state(1) -> follower;
raft_state(2) -> candidate;
raft_state(3) -> leader;
raft_state(_) -> unknown.

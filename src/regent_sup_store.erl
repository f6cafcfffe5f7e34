%% @doc The replicated records of a distributed supervisor, kept as registry
%% metadata of its registry and changed only by compare-and-set (META_CAS,
%% docs/protocol.md), so that two deciders never both win.
%%
%% Two kinds of record, keyed `{'$regent_sup', Sup, Kind, X}':
%%   - `child', X the child's id: `#{spec, node, epoch, inc, status (run,
%%     stopped or handoff), restarts, tried, tags, placement, max_restarts,
%%     max_seconds, why (initial, manual or auto: what the next start
%%     failing means), handoff_opt}', and while it moves `to' (the target)
%%     and `handoff' (the state handed over);
%%   - `lease', X a node: `{Epoch, Seq, LeaseMs}' while the node holds its lease,
%%     `{revoked, Epoch}' once a coordinator took it away.
%% Reads are of the local mirror (regent_meta's table): no network hop.
-module(regent_sup_store).

-export([child_key/2, lease_key/2, child/3, children/2, leases/2, lease/3,
         cas/4, try_cas/4, decode_key/1]).

-export_type([child/0, lease/0]).

-type child() :: #{spec := map(), node := node(), epoch := pos_integer(),
                   inc := pos_integer(), status := run | stopped | handoff,
                   restarts := [integer()], tried := [node()], tags := term(),
                   placement := term(), max_restarts := non_neg_integer(),
                   max_seconds := pos_integer(), why := initial | manual | auto,
                   handoff_opt := boolean(), to => node(), handoff => term()}.
-type lease() :: {pos_integer(), non_neg_integer(), pos_integer()} | {revoked, pos_integer()}.

-define(TAG, '$regent_sup').

%% @private
-spec child_key(atom(), term()) -> tuple().
child_key(Sup, Id) -> {?TAG, Sup, child, Id}.

%% @private
-spec lease_key(atom(), node()) -> tuple().
lease_key(Sup, Node) -> {?TAG, Sup, lease, Node}.

%% @private `{Sup, child | lease, X}' for one of our keys, else `other'.
-spec decode_key(term()) -> {atom(), child | lease, term()} | other.
decode_key({?TAG, Sup, Kind, X}) when Kind =:= child; Kind =:= lease -> {Sup, Kind, X};
decode_key(_) -> other.

%% @private One child's record as this node's mirror has it.
-spec child(regent:registry(), atom(), term()) -> child() | undefined.
child(Reg, Sup, Id) ->
    lookup(Reg, child_key(Sup, Id)).

%% @private Every child record of Sup: `[{Id, Record}]'.
-spec children(regent:registry(), atom()) -> [{term(), child()}].
children(Reg, Sup) ->
    ets:select(tab(Reg), [{{{?TAG, Sup, child, '$1'}, '$2'}, [], [{{'$1', '$2'}}]}]).

%% @private Every lease record of Sup: `[{Node, Lease}]'.
-spec leases(regent:registry(), atom()) -> [{node(), lease()}].
leases(Reg, Sup) ->
    ets:select(tab(Reg), [{{{?TAG, Sup, lease, '$1'}, '$2'}, [], [{{'$1', '$2'}}]}]).

%% @private
-spec lease(regent:registry(), atom(), node()) -> lease() | undefined.
lease(Reg, Sup, Node) ->
    lookup(Reg, lease_key(Sup, Node)).

%% @private Key becomes New (`delete': goes) if it is Expect now (`absent':
%% has no value): `ok', or `{conflict, Now}' with what it is (`absent').
%% The comparison is of the stored bytes: every node encodes a record the
%% same way (`deterministic'), which assumes one OTP release in a cluster.
-spec cas(regent:registry(), tuple(), absent | term(), delete | term()) ->
          ok | {conflict, absent | term()}.
cas(Reg, Key, Expect, New) ->
    Args = {regent_write:key(meta_key, Key), bytes(Expect, absent), bytes(New, delete)},
    regent_write:write({Reg, Key}, meta_cas, Args).

%% @private cas/4 for the server's writers: `unavailable' instead of the
%% exit when the registry has no quorum within its register_timeout, or
%% when its member refuses the write for want of room (overloaded): the
%% writer's caller tries again later.
-spec try_cas(regent:registry(), tuple(), absent | term(), delete | term()) ->
          ok | {conflict, absent | term()} | unavailable.
try_cas(Reg, Key, Expect, New) ->
    try cas(Reg, Key, Expect, New)
    catch exit:{Why, _} when Why =:= regent_unavailable; Why =:= regent_overloaded ->
            unavailable
    end.

bytes(Atom, Atom) -> Atom;
bytes(Term, _) -> regent_write:value_bytes(metadata, Term).

lookup(Reg, Key) ->
    case ets:lookup(tab(Reg), Key) of
        [{_, Value}] -> Value;
        [] -> undefined
    end.

tab(Reg) ->
    case persistent_term:get({regent, Reg}, undefined) of
        {_Kind, Tab} -> Tab;
        undefined -> exit({regent_not_running, Reg})
    end.

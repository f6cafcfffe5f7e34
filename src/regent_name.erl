%% @doc Canonical encoding of registered names.
%%
%% Names that are `=:=' must give the same bytes on every node and on every
%% OTP release from 25 on, because those bytes are the keys of the replicated
%% table. `term_to_binary/1' does not promise that (atoms changed encoding in
%% OTP 26, map order can differ between nodes), so names are encoded here by
%% fixed rules: a subset of the external term format in which every term has
%% exactly one form. regentd checks the same rules (c_src/canon.c);
%% docs/names.md lists them.
-module(regent_name).

-export([encode/1, encode_pid/1, decode/1]).

-define(MAX_NAME, 1024).
-define(MAX_DEPTH, 64).

-type reason() :: name_too_large | name_too_deep | {unsupported_term, term()}.
-export_type([reason/0]).

%% @doc The canonical bytes of `Name', or why it cannot be a name.
-spec encode(term()) -> {ok, binary()} | {error, reason()}.
encode(Name) ->
    %% Refuse giant terms before building anything: the canonical form is
    %% never much smaller than the external format.
    case erlang:external_size(Name) > 4 * ?MAX_NAME of
        true ->
            {error, name_too_large};
        false ->
            try iolist_to_binary(enc(Name, 0)) of
                Bin when byte_size(Bin) > ?MAX_NAME -> {error, name_too_large};
                Bin -> {ok, Bin}
            catch
                throw:{regent_name, Reason} -> {error, Reason}
            end
    end.

%% @doc The canonical bytes of a pid (always valid).
-spec encode_pid(pid()) -> binary().
encode_pid(Pid) when is_pid(Pid) ->
    <<131, Bin/binary>> = term_to_binary(Pid, [{minor_version, 2}]),
    Bin.

%% @doc The term for canonical bytes produced by {@link encode/1}.
%% The bytes come from this registry's own table, which only holds names
%% built by members of the registry, so atoms in them are trusted.
-spec decode(binary()) -> term().
decode(Bin) ->
    binary_to_term(<<131, Bin/binary>>).

enc(_, Depth) when Depth > ?MAX_DEPTH ->
    throw({regent_name, name_too_deep});
enc(I, _) when is_integer(I), I >= 0, I =< 255 ->
    [97, I];
enc(I, _) when is_integer(I), I >= -16#80000000, I =< 16#7FFFFFFF ->
    <<98, I:32/signed>>;
enc(I, _) when is_integer(I) ->
    Sign = case I < 0 of true -> 1; false -> 0 end,
    Mag = binary:encode_unsigned(abs(I), little),
    byte_size(Mag) =< 255 orelse throw({regent_name, name_too_large}),
    [110, byte_size(Mag), Sign, Mag];
enc(F, _) when is_float(F) ->
    %% -0.0 and 0.0 are =:= before OTP 27: give both the bytes of 0.0.
    Canonical = case F == 0 of true -> 0.0; false -> F end,
    <<70, Canonical:64/float>>;
enc(A, _) when is_atom(A) ->
    enc_atom(A);
enc(B, _) when is_binary(B) ->
    [109, <<(byte_size(B)):32>>, B];
enc(B, _) when is_bitstring(B) ->
    Bits = bit_size(B) rem 8,
    Padded = <<B/bitstring, 0:(8 - Bits)>>,
    [77, <<(byte_size(Padded)):32, Bits>>, Padded];
enc(T, Depth) when is_tuple(T) ->
    N = tuple_size(T),
    Header = case N =< 255 of true -> [104, N]; false -> [105, <<N:32>>] end,
    [Header | [enc(E, Depth + 1) || E <- tuple_to_list(T)]];
enc([], _) ->
    [106];
enc(L, Depth) when is_list(L) ->
    enc_list(L, Depth, 0, []);
enc(M, Depth) when is_map(M) ->
    %% Entries sorted by the bytes of their encoded keys; binaries compare
    %% bytewise with a shorter prefix first, exactly like regentd's memcmp.
    Pairs = lists:sort([{iolist_to_binary(enc(K, Depth + 1)), V}
                        || {K, V} <- maps:to_list(M)]),
    [116, <<(map_size(M)):32>>
     | [[K, enc(V, Depth + 1)] || {K, V} <- Pairs]];
enc(P, _) when is_pid(P) ->
    encode_pid(P);
enc(R, _) when is_reference(R) ->
    <<131, 90, _/binary>> = Bin = term_to_binary(R, [{minor_version, 2}]),
    binary_part(Bin, 1, byte_size(Bin) - 1);
enc(P, _) when is_port(P) ->
    enc_port(term_to_binary(P, [{minor_version, 2}]));
enc(Other, _) ->
    throw({regent_name, {unsupported_term, Other}}).

enc_atom(A) ->
    B = atom_to_binary(A, utf8),
    case byte_size(B) of
        N when N =< 255 -> [119, N, B];
        N -> [118, <<N:16>>, B]
    end.

%% Always LIST_EXT (term_to_binary uses STRING_EXT for byte lists).
enc_list([H | T], Depth, N, Acc) ->
    enc_list(T, Depth, N + 1, [enc(H, Depth + 1) | Acc]);
enc_list(Tail, Depth, N, Acc) ->
    [108, <<N:32>>, lists:reverse(Acc), enc(Tail, Depth + 1)].

%% Ports: always V4_PORT_EXT, whatever form this release produced.
enc_port(<<131, 120, Rest/binary>>) ->
    [120, Rest];
enc_port(<<131, 89, Rest/binary>>) ->
    AtomSize = case Rest of
                   <<119, L, _/binary>> -> 2 + L;
                   <<118, L:16, _/binary>> -> 3 + L
               end,
    <<Atom:AtomSize/binary, Id:32, Creation:32>> = Rest,
    [120, Atom, <<Id:64, Creation:32>>].

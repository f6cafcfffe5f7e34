%% The state of a distributed supervisor's server on one node
%% (regent_sup_server), shared with the modules that own its concerns:
%% regent_sup_lease (lease, epoch, fencing), regent_sup_coord (revoking
%% and reassigning other nodes' children), regent_sup_run (starting,
%% stopping and restarting the local instances).
-record(s, {sup :: atom(),
            reg :: atom(),
            opts :: map(),
            local_sup :: pid() | undefined,
            load_tab :: ets:tid(),
            %% regent_sup_lease
            epoch :: pos_integer() | undefined,
            seq = 0 :: non_neg_integer(),
            lease_until = 0 :: integer(),       % monotonic ms
            lease_busy = false :: boolean(),    % an acquire or renewal in flight
            fence_timer :: reference() | undefined,
            %% regent_sup_run
            running = #{} :: #{term() => {pos_integer(), pid(), reference()}},
            %% Id => {Inc, start timer, pid once init returned, epoch at start}
            starting = #{} :: #{term() => {pos_integer(), reference(), pid() | undefined,
                                           pos_integer()}},
            started = #{} :: #{term() => pos_integer()},  % in this epoch
            stopping = #{} :: #{reference() => term()},
            writing = #{} :: #{term() => true},
            waiters = #{} :: #{term() => [{pos_integer(), gen_server:from()}]},
            stop_waiters = #{} :: #{term() => [gen_server:from()]},
            outcome = #{} :: #{term() => {pos_integer(), term()}},
            nodes = #{} :: #{term() => node()},        % every child's node
            %% regent_sup_coord
            seen = #{} :: #{node() => {term(), integer()}},
            revoking = #{} :: #{node() => true},
            moving = #{} :: #{term() => true},
            %% regent_sup_handoff
            leaving :: gen_server:from() | undefined,
            handing = #{} :: #{term() => true}}).

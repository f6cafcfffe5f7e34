/* Busy-polling for a moment after work: while the spin window is open, an
 * active idle handle makes the event loop poll without blocking, so the
 * next frame from the member or the next raft message is picked up
 * without the wake-up of a sleeping process. On the 2-core VM of
 * docs/architecture.md a wake-up is most of a hop's cost: a pipe round
 * trip between two C processes that block is 40 us, and a BEAM port round
 * trip 60 us, but 9 us on a machine kept busy (bench scenario 14, full run
 * against smoke run). The window is short, so an idle daemon sleeps as
 * before; each spin iteration yields the CPU, so the other processes of a
 * busy machine still run. 100 us, measured against 200 us and none: one
 * caller on one node 10.7k -> 15.3k registrations/s (17.2k at 200 us), on
 * a follower 1.98k -> 2.18k/s (2.49k); at 200 us the rows where every core
 * is busy got worse (convergence p99 625 -> 1565 us, 10k deaths 175 ->
 * 202 ms), at 100 us they did not. With {tls, false} the raft bytes go
 * straight to raft_uv, so only the member's frames and applied entries
 * open the window. */
#include "node_int.h"

#include <sched.h>

#define SPIN_NS (100u * 1000u)

static void on_spin(uv_idle_t *idle)
{
    (void)idle;
    sched_yield();
}

void rg_node_spin_init(struct rg_node *n)
{
    uv_idle_init(n->loop, &n->spin);
    n->spin.data = n;
}

void rg_node_spin_note(struct rg_node *n)
{
    n->spin_until_ns = uv_hrtime() + SPIN_NS;
    if (!n->stopping && !uv_is_active((uv_handle_t *)&n->spin)) {
        uv_idle_start(&n->spin, on_spin);
    }
}

/* tls.h's traffic hook: a peer's raft message arrived. */
void rg_node_spin_traffic(void *arg)
{
    rg_node_spin_note(arg);
}

/* From the end-of-iteration hook: the window closed, sleep again. */
void rg_node_spin_check(struct rg_node *n)
{
    if (uv_is_active((uv_handle_t *)&n->spin) &&
        (n->stopping || uv_hrtime() >= n->spin_until_ns)) {
        uv_idle_stop(&n->spin);
    }
}

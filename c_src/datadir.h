/* The data dir's liveness: a lock that regentd holds for its whole life.
 *
 * Members keep their raft state under <base>/<node>-<os pid>/<registry>.
 * Which of those directories are still in use must not be judged by PID
 * visibility: containers that share /dev/shm (--ipc=host) run BEAMs in PID
 * namespaces of their own, where the others' /proc/<pid> is missing, and a
 * BEAM that deleted the others' directories wiped their raft state (issue
 * 11). An flock(2) works across PID namespaces, and the kernel releases it
 * when the process dies, however it dies.
 *
 * - rg_datadir_lock: regentd takes <dir>/lock, exclusively, before it reads
 *   or writes anything in <dir>, and keeps the fd until it exits. It waits a
 *   while for a previous daemon that is still exiting. It re-creates a
 *   missing <dir>.
 * - rg_datadir_sweep: `regentd --sweep <base> <keep>`, run by a member before
 *   it creates its own directory: every <base>/<entry> other than <keep> in
 *   which no lock is held is removed, while the sweeper holds every lock in
 *   it, so a daemon that starts meanwhile waits and then finds its directory
 *   gone (and starts fresh) rather than sharing it with the removal. */
#ifndef RG_DATADIR_H
#define RG_DATADIR_H

#include <stdbool.h>

#define RG_LOCK_FILE "lock"

/* Locks dir (creating it and its lock file if missing), waiting up to
 * wait_ms for another holder. Returns the fd to keep open, or -1 with *err
 * set. *fresh_dir tells whether the directory had to be created (or was
 * removed while we waited): its state, if any, is gone. */
int rg_datadir_lock(const char *dir, unsigned wait_ms, bool *fresh_dir,
                    const char **err);

/* Whether fd (from rg_datadir_lock) is still the lock file in dir: false
 * once the dir was deleted or replaced under the daemon. */
bool rg_datadir_intact(int fd, const char *dir);

/* Removes the unlocked entries of base other than keep; returns how many,
 * or -1 if base cannot be read. Prints one line per removal on stderr. */
int rg_datadir_sweep(const char *base, const char *keep);

#endif

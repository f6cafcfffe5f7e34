/* Unit tests for datadir.c, the data dir's lock and the sweep of stale
 * member directories. Covers: the lock creates a missing dir and says so; a
 * second lock on a held dir waits and then fails (an flock is per open
 * file, so it is taken through another fd, as another daemon would); it
 * succeeds once the holder closes; the sweep removes an entry whose locks are
 * free or that never had a daemon, keeps one whose lock is held, the entry
 * to keep, and names members do not make; a lock taken while the sweep
 * removed its dir finds the dir fresh. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datadir.h"
#include "unit.h"

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fclose(f);
    }
}

static void test_lock(const char *base)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/n-1/reg", base);
    const char *err = NULL;
    bool fresh = false;
    int fd = rg_datadir_lock(dir, 0, &fresh, &err);
    CHECK(fd >= 0);
    CHECK(fresh);
    CHECK(is_dir(dir));
    int again = rg_datadir_lock(dir, 50, &fresh, &err);
    CHECK(again < 0);
    CHECK(err != NULL && strstr(err, "locked") != NULL);
    close(fd);
    fd = rg_datadir_lock(dir, 0, &fresh, &err);
    CHECK(fd >= 0);
    CHECK(!fresh);
    close(fd);
}

static void test_sweep(const char *base)
{
    char held[512], freed[512], never[512], keep[512], other[512], path[600];
    snprintf(held, sizeof held, "%s/a@h-10/reg", base);
    snprintf(freed, sizeof freed, "%s/b@h-11/reg", base);
    snprintf(never, sizeof never, "%s/c@h-12/reg", base);
    snprintf(keep, sizeof keep, "%s/d@h-13/reg", base);
    snprintf(other, sizeof other, "%s/not-a-member/x", base);
    const char *err = NULL;
    bool fresh;
    int h = rg_datadir_lock(held, 0, &fresh, &err);
    int f = rg_datadir_lock(freed, 0, &fresh, &err);
    CHECK(h >= 0 && f >= 0);
    snprintf(path, sizeof path, "%s/regent.id", freed);
    touch(path);
    close(f);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' '%s' '%s'", never, keep, other);
    CHECK(system(cmd) == 0);
    int removed = rg_datadir_sweep(base, "d@h-13");
    CHECK(removed == 2);
    CHECK(is_dir(held));
    CHECK(!is_dir(freed));
    CHECK(!is_dir(never));
    CHECK(is_dir(keep));
    CHECK(is_dir(other));
    close(h);
    /* Now free: swept, and a later lock finds its dir fresh. */
    CHECK(rg_datadir_sweep(base, "d@h-13") == 1);
    CHECK(!is_dir(held));
    int again = rg_datadir_lock(held, 0, &fresh, &err);
    CHECK(again >= 0 && fresh);
    close(again);
    CHECK(rg_datadir_sweep("/nonexistent/regent-test", "x") == -1);
}

int main(void)
{
    char base[] = "/tmp/regent-test-datadir-XXXXXX";
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    char lockbase[128];
    snprintf(lockbase, sizeof lockbase, "%s/lock", base);
    char sweepbase[128];
    snprintf(sweepbase, sizeof sweepbase, "%s/sweep", base);
    test_lock(lockbase);
    test_sweep(sweepbase);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot remove %s\n", base);
    }
    UNIT_DONE("test_datadir");
}

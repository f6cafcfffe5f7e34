/* The data dir's lock and the sweep of stale directories; see datadir.h. */
#define _XOPEN_SOURCE 700
#include "datadir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PATH_BYTES 4200
#define SWEEP_MAX_LOCKS 256

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* mkdir -p; *created is set if the last component did not exist. */
static int mkdir_p(const char *dir, bool *created)
{
    char path[PATH_BYTES];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        return -1;
    }
    *created = false;
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0700) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    if (mkdir(path, 0700) == 0) {
        *created = true;
        return 0;
    }
    return errno == EEXIST ? 0 : -1;
}

/* True while fd is still the file at path (not unlinked by a sweep). */
static bool still_there(int fd, const char *path)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

int rg_datadir_lock(const char *dir, unsigned wait_ms, bool *fresh_dir,
                    const char **err)
{
    char path[PATH_BYTES];
    if (snprintf(path, sizeof path, "%s/%s", dir, RG_LOCK_FILE) >= (int)sizeof path) {
        *err = "data dir path too long";
        return -1;
    }
    *fresh_dir = false;
    for (unsigned waited = 0;; waited += 10) {
        bool created;
        if (mkdir_p(dir, &created) != 0) {
            *err = "cannot create the data dir";
            return -1;
        }
        *fresh_dir = *fresh_dir || created;
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            *err = "cannot open the data dir's lock file";
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            if (still_there(fd, path)) {
                return fd;
            }
            *fresh_dir = true; /* swept while we waited: start over */
        } else if (errno != EWOULDBLOCK) {
            close(fd);
            *err = "cannot lock the data dir";
            return -1;
        }
        close(fd);
        if (waited >= wait_ms) {
            *err = "the data dir is locked by another regentd";
            return -1;
        }
        sleep_ms(10);
    }
}

bool rg_datadir_intact(int fd, const char *dir)
{
    char path[PATH_BYTES];
    return snprintf(path, sizeof path, "%s/%s", dir, RG_LOCK_FILE) < (int)sizeof path &&
           still_there(fd, path);
}

/* "<node>-<digits>": the entries members make; anything else in base is
 * someone else's and left alone. */
static bool member_entry(const char *name)
{
    const char *dash = strrchr(name, '-');
    if (dash == NULL || dash == name || dash[1] == '\0') {
        return false;
    }
    for (const char *p = dash + 1; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
    }
    return true;
}

struct held {
    int fds[SWEEP_MAX_LOCKS];
    unsigned n;
};

static void release(struct held *h)
{
    for (unsigned i = 0; i < h->n; i++) {
        close(h->fds[i]); /* closing drops the lock */
    }
    h->n = 0;
}

/* Takes the lock of every registry dir under entry; false (holding none)
 * if one is held by a live daemon or cannot be checked. */
static bool lock_all(const char *entry, struct held *h)
{
    DIR *d = opendir(entry);
    if (d == NULL) {
        return false;
    }
    bool ok = true;
    struct dirent *e;
    char path[PATH_BYTES];
    while (ok && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        if (snprintf(path, sizeof path, "%s/%s/%s", entry, e->d_name,
                     RG_LOCK_FILE) >= (int)sizeof path) {
            ok = false; /* cannot be checked: keep it */
            continue;
        }
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            ok = errno == ENOENT || errno == ENOTDIR; /* no daemon ever ran there */
            continue;
        }
        if (h->n == SWEEP_MAX_LOCKS || flock(fd, LOCK_EX | LOCK_NB) != 0) {
            close(fd);
            ok = false;
            continue;
        }
        h->fds[h->n++] = fd;
    }
    closedir(d);
    if (!ok) {
        release(h);
    }
    return ok;
}

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rv = flag == FTW_DP ? rmdir(path) : unlink(path);
    if (rv != 0) {
        fprintf(stderr, "regentd --sweep: cannot remove %s: %s\n", path,
                strerror(errno));
    }
    return 0; /* go on with the rest */
}

int rg_datadir_sweep(const char *base, const char *keep)
{
    DIR *d = opendir(base);
    if (d == NULL) {
        return -1;
    }
    int removed = 0;
    struct dirent *e;
    char path[PATH_BYTES];
    struct held h = {.n = 0};
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, keep) == 0 ||
            !member_entry(e->d_name)) {
            continue;
        }
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", base, e->d_name) >= (int)sizeof path ||
            lstat(path, &st) != 0 || !S_ISDIR(st.st_mode) || !lock_all(path, &h)) {
            continue;
        }
        fprintf(stderr, "regentd --sweep: removing %s (no daemon holds it)\n", path);
        nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
        release(&h);
        removed++;
    }
    closedir(d);
    return removed;
}

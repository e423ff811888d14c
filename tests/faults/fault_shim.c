/* An LD_PRELOAD shim that makes one system call of the process it is loaded
 * into fail, or kills the process right there: deterministic fault points
 * for the end-to-end crash and I/O-error tests (tests/e2e/test_crash.py).
 * Test support only; never linked into orrery.
 *
 * ORRERY_FAULT="op=OP path=GLOB nth=N do=ACTION [after=OP:GLOB]"
 *   OP      open | create | write | sync | rename | close  (create is an open
 *           with O_CREAT, open any other; write covers write, pwrite,
 *           pwrite64, writev; sync covers fsync and fdatasync; rename covers
 *           rename and renameat; for rename the old path is matched)
 *   GLOB    fnmatch(3) pattern matched against the path the call concerns
 *           (for calls on a descriptor: the path it was opened with)
 *   N       the Nth matching call (1 = the first) is the one that faults
 *   ACTION  kill (SIGKILL the process before the call runs), or an errno
 *           name the call then fails with: EIO, ENOSPC
 *   after   calls are counted only once a call OP:GLOB has been seen (e.g.
 *           after=open:*\/tmp/upload-* : from the first package upload on);
 *           OP:GLOB#K waits for the Kth such call
 * ORRERY_FAULT_LOG=FILE  the shim appends "fired OP PATH\n" to FILE when the
 *           fault happens, so a test can tell that it did.
 * The shim unsets LD_PRELOAD in its own process, so children do not inherit it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FDS 65536

static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static char* g_paths[MAX_FDS];  /* descriptor -> the path it was opened with */
static char g_op[16], g_glob[PATH_MAX], g_after_op[16], g_after_glob[PATH_MAX];
static char g_log[PATH_MAX];
static long g_nth = 0, g_seen = 0, g_after_nth = 1, g_after_seen = 0;
static int g_errno = 0, g_kill = 0, g_armed = 0, g_fired = 0, g_enabled = 0;

static void configure(void) __attribute__((constructor));

static void configure(void) {
  const char* spec = getenv("ORRERY_FAULT");
  const char* log = getenv("ORRERY_FAULT_LOG");
  if (log) snprintf(g_log, sizeof g_log, "%s", log);
  unsetenv("LD_PRELOAD");
  if (!spec) return;
  char copy[4 * PATH_MAX];
  snprintf(copy, sizeof copy, "%s", spec);
  char* save = NULL;
  for (char* field = strtok_r(copy, " ", &save); field; field = strtok_r(NULL, " ", &save)) {
    char* eq = strchr(field, '=');
    if (!eq) continue;
    *eq = '\0';
    const char* value = eq + 1;
    if (!strcmp(field, "op")) snprintf(g_op, sizeof g_op, "%s", value);
    else if (!strcmp(field, "path")) snprintf(g_glob, sizeof g_glob, "%s", value);
    else if (!strcmp(field, "nth")) g_nth = strtol(value, NULL, 10);
    else if (!strcmp(field, "do")) {
      if (!strcmp(value, "kill")) g_kill = 1;
      else if (!strcmp(value, "EIO")) g_errno = EIO;
      else if (!strcmp(value, "ENOSPC")) g_errno = ENOSPC;
    } else if (!strcmp(field, "after")) {
      const char* colon = strchr(value, ':');
      if (colon) {
        snprintf(g_after_op, sizeof g_after_op, "%.*s", (int)(colon - value), value);
        snprintf(g_after_glob, sizeof g_after_glob, "%s", colon + 1);
        char* hash = strrchr(g_after_glob, '#');
        if (hash) {
          *hash = '\0';
          g_after_nth = strtol(hash + 1, NULL, 10);
        }
      }
    }
  }
  g_armed = g_after_op[0] == '\0';
  g_enabled = g_op[0] && g_glob[0] && g_nth > 0 && (g_kill || g_errno);
}

static void note(const char* op, const char* path) {
  if (!g_log[0]) return;
  FILE* f = fopen(g_log, "a");
  if (!f) return;
  fprintf(f, "fired %s %s\n", op, path);
  fclose(f);
}

/* 0: go on; -1: fail the call with errno set. Kills the process for "kill". */
static int check(const char* op, const char* path) {
  if (!g_enabled || !path) return 0;
  pthread_mutex_lock(&g_mutex);
  int fault = 0;
  if (!g_armed) {
    if (!strcmp(op, g_after_op) && fnmatch(g_after_glob, path, 0) == 0 &&
        ++g_after_seen == g_after_nth) {
      g_armed = 1;
    }
  } else if (!g_fired && !strcmp(op, g_op) && fnmatch(g_glob, path, 0) == 0 &&
             ++g_seen == g_nth) {
    g_fired = 1;
    fault = 1;
    note(op, path);
  }
  pthread_mutex_unlock(&g_mutex);
  if (!fault) return 0;
  if (g_kill) kill(getpid(), SIGKILL);
  errno = g_errno;
  return -1;
}

static const char* path_of(int fd) {
  return fd >= 0 && fd < MAX_FDS ? g_paths[fd] : NULL;
}

static void remember(int fd, const char* path) {
  if (fd < 0 || fd >= MAX_FDS || !path) return;
  pthread_mutex_lock(&g_mutex);
  free(g_paths[fd]);
  g_paths[fd] = strdup(path);
  pthread_mutex_unlock(&g_mutex);
}

static int open_common(const char* name, int dirfd, const char* path, int flags, mode_t mode) {
  if (check((flags & O_CREAT) ? "create" : "open", path) != 0) return -1;
  int fd;
  if (dirfd == -1) {
    int (*real)(const char*, int, ...) = (int (*)(const char*, int, ...))dlsym(RTLD_NEXT, name);
    fd = real(path, flags, mode);
  } else {
    int (*real)(int, const char*, int, ...) =
        (int (*)(int, const char*, int, ...))dlsym(RTLD_NEXT, name);
    fd = real(dirfd, path, flags, mode);
  }
  if (fd >= 0 && path[0] == '/') remember(fd, path);
  return fd;
}

#define OPEN_MODE(flags) \
  mode_t mode = 0; \
  if ((flags) & (O_CREAT | __O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }

int open(const char* path, int flags, ...) { OPEN_MODE(flags); return open_common("open", -1, path, flags, mode); }
int open64(const char* path, int flags, ...) { OPEN_MODE(flags); return open_common("open64", -1, path, flags, mode); }
int openat(int dirfd, const char* path, int flags, ...) { OPEN_MODE(flags); return open_common("openat", dirfd, path, flags, mode); }
int openat64(int dirfd, const char* path, int flags, ...) { OPEN_MODE(flags); return open_common("openat64", dirfd, path, flags, mode); }

ssize_t write(int fd, const void* data, size_t size) {
  static ssize_t (*real)(int, const void*, size_t);
  if (!real) real = (ssize_t (*)(int, const void*, size_t))dlsym(RTLD_NEXT, "write");
  if (check("write", path_of(fd)) != 0) return -1;
  return real(fd, data, size);
}

ssize_t pwrite(int fd, const void* data, size_t size, off_t offset) {
  static ssize_t (*real)(int, const void*, size_t, off_t);
  if (!real) real = (ssize_t (*)(int, const void*, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
  if (check("write", path_of(fd)) != 0) return -1;
  return real(fd, data, size, offset);
}

ssize_t pwrite64(int fd, const void* data, size_t size, off64_t offset) {
  static ssize_t (*real)(int, const void*, size_t, off64_t);
  if (!real) real = (ssize_t (*)(int, const void*, size_t, off64_t))dlsym(RTLD_NEXT, "pwrite64");
  if (check("write", path_of(fd)) != 0) return -1;
  return real(fd, data, size, offset);
}

ssize_t writev(int fd, const struct iovec* iov, int count) {
  static ssize_t (*real)(int, const struct iovec*, int);
  if (!real) real = (ssize_t (*)(int, const struct iovec*, int))dlsym(RTLD_NEXT, "writev");
  if (check("write", path_of(fd)) != 0) return -1;
  return real(fd, iov, count);
}

int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  if (check("sync", path_of(fd)) != 0) return -1;
  return real(fd);
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  if (check("sync", path_of(fd)) != 0) return -1;
  return real(fd);
}

int rename(const char* from, const char* to) {
  static int (*real)(const char*, const char*);
  if (!real) real = (int (*)(const char*, const char*))dlsym(RTLD_NEXT, "rename");
  if (check("rename", from) != 0) return -1;
  return real(from, to);
}

int renameat(int fromfd, const char* from, int tofd, const char* to) {
  static int (*real)(int, const char*, int, const char*);
  if (!real) real = (int (*)(int, const char*, int, const char*))dlsym(RTLD_NEXT, "renameat");
  if (check("rename", from) != 0) return -1;
  return real(fromfd, from, tofd, to);
}

int close(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "close");
  const char* path = path_of(fd);
  if (check("close", path) != 0) return -1;
  if (fd >= 0 && fd < MAX_FDS) {
    pthread_mutex_lock(&g_mutex);
    free(g_paths[fd]);
    g_paths[fd] = NULL;
    pthread_mutex_unlock(&g_mutex);
  }
  return real(fd);
}

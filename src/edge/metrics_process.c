/*
 * metrics_process.c - the standard process_* families of /metrics, read
 * from /proc/self (Linux): resident memory, open descriptors, start time,
 * CPU time.  A value that cannot be read is left out.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "util.h"

typedef struct {
    double cpu_s;   /* utime + stime */
    double start_s; /* unix time */
    double rss_bytes;
    int ok;
} proc_stat;

/* Boot time (unix seconds) from /proc/stat; 0 when unknown. */
static long long boot_time(void)
{
    char line[256];
    long long bt = 0;
    FILE *f = fopen("/proc/stat", "re");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "btime %lld", &bt) == 1)
            break;
    }
    fclose(f);
    return bt;
}

static void read_stat(proc_stat *ps)
{
    char *text = util_read_file("/proc/self/stat", NULL);
    const char *p = text != NULL ? strrchr(text, ')') : NULL;
    unsigned long long utime, stime, start;
    long long rss;
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    memset(ps, 0, sizeof(*ps));
    /* after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime cutime cstime priority nice threads
     * itrealvalue starttime vsize rss */
    if (p != NULL && tck > 0 && page > 0 &&
        sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
               "%llu %*u %lld",
               &utime, &stime, &start, &rss) == 4) {
        ps->cpu_s = (double)(utime + stime) / (double)tck;
        ps->start_s = (double)boot_time() + (double)start / (double)tck;
        ps->rss_bytes = (double)rss * (double)page;
        ps->ok = 1;
    }
    free(text);
}

/* Entries of /proc/self/fd (not counting . and ..); -1 when unreadable. */
static int open_fds(void)
{
    int n = 0;
    struct dirent *e;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n - 1; /* the descriptor of d itself */
}

int metrics_render_process(struct evbuffer *out)
{
    proc_stat ps;
    int fds = open_fds();
    int rc = 0;
    read_stat(&ps);
    if (ps.ok)
        rc = evbuffer_add_printf(
                 out,
                 "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                 "# TYPE process_resident_memory_bytes gauge\n"
                 "process_resident_memory_bytes %.0f\n"
                 "# HELP process_start_time_seconds Start time of the process since the unix "
                 "epoch in seconds.\n"
                 "# TYPE process_start_time_seconds gauge\n"
                 "process_start_time_seconds %.2f\n"
                 "# HELP process_cpu_seconds_total Total user and system CPU time spent in "
                 "seconds.\n"
                 "# TYPE process_cpu_seconds_total counter\n"
                 "process_cpu_seconds_total %.2f\n",
                 ps.rss_bytes, ps.start_s, ps.cpu_s) < 0
                 ? -1
                 : 0;
    if (rc == 0 && fds >= 0)
        rc = evbuffer_add_printf(out,
                                 "# HELP process_open_fds Number of open file descriptors.\n"
                                 "# TYPE process_open_fds gauge\n"
                                 "process_open_fds %d\n",
                                 fds) < 0
                 ? -1
                 : 0;
    return rc;
}

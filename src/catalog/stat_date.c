/*
 * stat_date.c - formats a time for a group key's date_format: UTC, MongoDB
 * $dateToString specifiers (%Y %m %d %H %M %S %L %j %w %u %U %V %G %z %Z %%).
 */
#include "stat-internal.h"

#include <stdio.h>

static int iso_weeks_in(int64_t y)
{
    int64_t p = (y + y / 4 - y / 100 + y / 400) % 7;
    int64_t q = ((y - 1) + (y - 1) / 4 - (y - 1) / 100 + (y - 1) / 400) % 7;
    return 52 + (p == 4 || q == 3);
}

/* Formats ms (UTC) with MongoDB $dateToString specifiers into buf. */
void stat_format_date(int64_t ms, const char *fmt, char *buf, size_t size)
{
    int64_t days = qfloor_div(ms, 86400000), y, iso_year;
    int64_t in_day = ms - days * 86400000;
    unsigned mo, d;
    int wday0, yday0, iso_wday, week;
    size_t o = 0;

    qcivil_from_days(days, &y, &mo, &d);
    wday0 = (int)(((days % 7) + 11) % 7); /* 0 = Sunday; 1970-01-01 was a Thursday */
    yday0 = (int)(days - qdays_from_civil(y, 1, 1));
    iso_wday = (wday0 + 6) % 7 + 1;
    week = (yday0 + 1 - iso_wday + 10) / 7;
    iso_year = y;
    if (week < 1) {
        iso_year = y - 1;
        week = iso_weeks_in(y - 1);
    } else if (week > iso_weeks_in(y)) {
        iso_year = y + 1;
        week = 1;
    }
    buf[0] = '\0';
    for (const char *p = fmt; *p != '\0' && o + 8 < size; p++) {
        int w = 0;
        if (*p != '%') {
            buf[o++] = *p;
            buf[o] = '\0';
            continue;
        }
        p++;
        switch (*p) {
        case 'Y':
            w = snprintf(buf + o, size - o, "%04lld", (long long)y);
            break;
        case 'm':
            w = snprintf(buf + o, size - o, "%02u", mo);
            break;
        case 'd':
            w = snprintf(buf + o, size - o, "%02u", d);
            break;
        case 'H':
            w = snprintf(buf + o, size - o, "%02d", (int)(in_day / 3600000));
            break;
        case 'M':
            w = snprintf(buf + o, size - o, "%02d", (int)(in_day / 60000 % 60));
            break;
        case 'S':
            w = snprintf(buf + o, size - o, "%02d", (int)(in_day / 1000 % 60));
            break;
        case 'L':
            w = snprintf(buf + o, size - o, "%03d", (int)(in_day % 1000));
            break;
        case 'j':
            w = snprintf(buf + o, size - o, "%03d", yday0 + 1);
            break;
        case 'w':
            w = snprintf(buf + o, size - o, "%d", wday0 + 1);
            break;
        case 'u':
            w = snprintf(buf + o, size - o, "%d", iso_wday);
            break;
        case 'U':
            w = snprintf(buf + o, size - o, "%02d", (yday0 + 7 - wday0) / 7);
            break;
        case 'V':
            w = snprintf(buf + o, size - o, "%02d", week);
            break;
        case 'G':
            w = snprintf(buf + o, size - o, "%04lld", (long long)iso_year);
            break;
        case 'z':
            w = snprintf(buf + o, size - o, "+0000");
            break;
        case 'Z':
            w = snprintf(buf + o, size - o, "+0");
            break;
        default: /* '%' (others are rejected at compile time) */
            w = snprintf(buf + o, size - o, "%%");
            break;
        }
        if (w > 0)
            o += (size_t)w;
    }
}

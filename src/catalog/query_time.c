/*
 * query_time.c - time for the query engine: proleptic Gregorian calendar
 * helpers (qfloor_div, qdays_from_civil, qcivil_from_days), ISO-8601 date
 * and date-time parsing (query_parse_datetime) and the evaluation of
 * `timediff` values such as "now-1d/d" (query_parse_timediff).
 */
#include "query-internal.h"

#include <ctype.h>
#include <string.h>

int64_t qfloor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
int64_t qdays_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void qcivil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : dim[m - 1];
}

static int read_digits(const char **sp, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*sp)[i]))
            return -1;
        v = v * 10 + ((*sp)[i] - '0');
    }
    *sp += n;
    *out = v;
    return 0;
}

int query_parse_datetime(const char *s, int64_t *epoch_ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, offset_min = 0;
    if (s == NULL)
        return -1;
    if (read_digits(&s, 4, &y) || *s != '-')
        return -1;
    s++;
    if (read_digits(&s, 2, &mo) || *s != '-')
        return -1;
    s++;
    if (read_digits(&s, 2, &d))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -1;
    if (*s == 'T' || *s == 't' || *s == ' ') {
        s++;
        if (read_digits(&s, 2, &h) || *s != ':')
            return -1;
        s++;
        if (read_digits(&s, 2, &mi))
            return -1;
        if (*s == ':') {
            s++;
            if (read_digits(&s, 2, &sec))
                return -1;
            if (*s == '.' || *s == ',') {
                int nd = 0;
                s++;
                while (isdigit((unsigned char)*s)) {
                    if (nd < 3)
                        ms = ms * 10 + (*s - '0');
                    nd++;
                    s++;
                }
                if (nd == 0)
                    return -1;
                for (; nd < 3; nd++)
                    ms *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return -1;
        if (*s == 'Z' || *s == 'z') {
            s++;
        } else if (*s == '+' || *s == '-') {
            int sign = *s == '-' ? -1 : 1, oh, om = 0;
            s++;
            if (read_digits(&s, 2, &oh))
                return -1;
            if (*s == ':') {
                s++;
                if (read_digits(&s, 2, &om))
                    return -1;
            } else if (isdigit((unsigned char)*s)) {
                if (read_digits(&s, 2, &om))
                    return -1;
            }
            if (oh > 23 || om > 59)
                return -1;
            offset_min = sign * (oh * 60 + om);
        }
    }
    if (*s != '\0')
        return -1;
    int64_t days = qdays_from_civil(y, (unsigned)mo, (unsigned)d);
    *epoch_ms = (((days * 24 + h) * 60 + mi) * 60 + sec) * 1000 + ms - (int64_t)offset_min * 60000;
    return 0;
}

static int64_t unit_ms(char u)
{
    switch (u) {
    case 's':
        return 1000;
    case 'm':
        return 60 * 1000;
    case 'h':
        return 3600 * 1000;
    case 'd':
        return 86400 * 1000;
    case 'w':
        return 7 * 86400 * 1000;
    default:
        return 0;
    }
}

int query_parse_timediff(const char *s, int64_t now_ms, int64_t *epoch_ms)
{
    int64_t t = now_ms;
    if (s == NULL || strncmp(s, "now", 3) != 0)
        return -1;
    s += 3;
    while (*s != '\0') {
        if (*s == '+' || *s == '-') {
            int64_t sign = *s == '-' ? -1 : 1, n = 0, unit, delta;
            s++;
            if (!isdigit((unsigned char)*s))
                return -1;
            while (isdigit((unsigned char)*s)) {
                n = n * 10 + (*s - '0');
                if (n > 1000000000)
                    return -1;
                s++;
            }
            unit = unit_ms(*s);
            if (unit == 0)
                return -1;
            s++;
            delta = sign * n * unit;
            if (__builtin_add_overflow(t, delta, &t))
                return -1;
        } else if (*s == '/') {
            int64_t unit = unit_ms(s[1]);
            if (unit == 0)
                return -1;
            if (s[1] == 'w') {
                /* 1970-01-01 was a Thursday: Monday-based weeks start 3 days earlier. */
                int64_t day = qfloor_div(t, 86400000);
                int64_t since_monday = day - qfloor_div(day + 3, 7) * 7 + 3;
                t = (day - since_monday) * 86400000;
            } else {
                t = qfloor_div(t, unit) * unit;
            }
            s += 2;
        } else {
            return -1;
        }
        /* Keep to +-3 million years so that rounding cannot overflow. */
        if (t < -100000000000000000LL || t > 100000000000000000LL)
            return -1;
    }
    *epoch_ms = t;
    return 0;
}

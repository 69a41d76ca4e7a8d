/*
 * date.c - civil dates as days since 1970-01-01.
 *
 * Register validity intervals, donation dates and attainment dates are all whole days, so a
 * day count is the whole representation: it sorts, subtracts and fits in a key. The
 * conversions are Howard Hinnant's days_from_civil / civil_from_days algorithms.
 */
#include "core/core.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

rv_date rv_date_from_ymd(int y, int m, int d)
{
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const int yoe = y - era * 400;
    const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void rv_date_to_ymd(rv_date day, int *y, int *m, int *d)
{
    const int z = day + 719468;
    const int era = (z >= 0 ? z : z - 146096) / 146097;
    const int doe = z - era * 146097;
    const int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int y, int m)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dim[m - 1];
}

static int valid_ymd(int y, int m, int d)
{
    return y >= 1800 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 && d <= days_in_month(y, m);
}

/* Reads 1..maxd digits; returns the count read, 0 if none. */
static int read_num(const char *s, int maxd, int *out)
{
    int n = 0, v = 0;
    while (n < maxd && s[n] >= '0' && s[n] <= '9') {
        v = v * 10 + (s[n] - '0');
        n++;
    }
    *out = v;
    return n;
}

int rv_date_parse_iso(const char *s, rv_date *out)
{
    int y, m, d;
    if (read_num(s, 4, &y) != 4 || s[4] != '-' || read_num(s + 5, 2, &m) != 2 || s[7] != '-' ||
        read_num(s + 8, 2, &d) != 2 || s[10] != '\0')
        return RV_EPARSE;
    if (!valid_ymd(y, m, d))
        return RV_EPARSE;
    *out = rv_date_from_ymd(y, m, d);
    return 0;
}

int rv_date_parse_dmy(const char *s, rv_date *out)
{
    int y, m, d, n, k;
    if ((n = read_num(s, 2, &d)) == 0 || s[n] != '/')
        return RV_EPARSE;
    s += n + 1;
    if ((n = read_num(s, 2, &m)) == 0 || s[n] != '/')
        return RV_EPARSE;
    s += n + 1;
    if ((k = read_num(s, 4, &y)) != 4 || s[k] != '\0')
        return RV_EPARSE;
    if (!valid_ymd(y, m, d))
        return RV_EPARSE;
    *out = rv_date_from_ymd(y, m, d);
    return 0;
}

const char *rv_date_format(rv_date day, char buf[11])
{
    int y, m, d;
    if (day == RV_DATE_NONE) {
        strcpy(buf, "-");
    } else if (day == RV_DATE_FOREVER) {
        strcpy(buf, "open");
    } else {
        char tmp[32];
        rv_date_to_ymd(day, &y, &m, &d);
        snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d", y % 10000, m, d);
        memcpy(buf, tmp, 10);
        buf[10] = '\0';
    }
    return buf;
}

rv_date rv_date_today(void)
{
    return (rv_date)(time(NULL) / 86400);
}

/*
 * error.c - error strings, input diagnostics and the table of run-time data.
 *
 * rv_strerror covers the RV_E* range and falls back to strerror for errno values, so a
 * caller can hand it whatever a library call returned. Diagnostics carry file, line and
 * field so cli/ can print "file:line:col: message" without knowing which parser failed.
 */
#include "core/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const rv_messages[] = {
    [RV_EINVAL - RV_EINVAL] = "invalid argument",
    [RV_ENOMEM - RV_EINVAL] = "out of memory",
    [RV_EIO - RV_EINVAL] = "input/output error",
    [RV_EPARSE - RV_EINVAL] = "malformed input",
    [RV_ETOOBIG - RV_EINVAL] = "too large",
    [RV_ENOTFOUND - RV_EINVAL] = "not found",
    [RV_EEXIST - RV_EINVAL] = "already exists",
    [RV_ECORRUPT - RV_EINVAL] = "stored data failed its integrity check",
    [RV_EVERSION - RV_EINVAL] = "unsupported format version",
    [RV_EKEY - RV_EINVAL] = "wrong passphrase or key file",
    [RV_ECRYPTO - RV_EINVAL] = "cryptographic operation failed",
    [RV_EDENIED - RV_EINVAL] = "permission denied for this role",
    [RV_EAUTH - RV_EINVAL] = "authentication failed",
    [RV_ELIMIT - RV_EINVAL] = "limit reached",
    [RV_EAUDIT - RV_EINVAL] = "audit log unavailable; refusing work",
    [RV_EBUSY - RV_EINVAL] = "resource busy",
    [RV_EUNSUPPORTED - RV_EINVAL] = "not supported",
    [RV_ELOCKED - RV_EINVAL] = "locked out after failed logins; try again later",
    [RV_EWEAK - RV_EINVAL] = "password too weak",
    [RV_ECHANGE - RV_EINVAL] = "password must be changed first",
    [RV_ESUSPENDED - RV_EINVAL] = "principal suspended or disabled",
};

const char *rv_strerror(int err)
{
    if (err == 0)
        return "success";
    if (err > 0)
        return strerror(err);
    if (err >= RV_EINVAL && err < RV_E_END) {
        const char *m = rv_messages[err - RV_EINVAL];
        if (m != NULL)
            return m;
    }
    return "unknown error";
}

void rv_diag_clear(struct rv_diag *d)
{
    if (d != NULL)
        memset(d, 0, sizeof(*d));
}

void rv_diag_set(struct rv_diag *d, const char *file, unsigned long line, unsigned col,
                 const char *fmt, ...)
{
    va_list ap;

    if (d == NULL)
        return;
    snprintf(d->file, sizeof(d->file), "%s", file != NULL ? file : "");
    d->line = line;
    d->col = col;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
    va_end(ap);
}

const char *rv_diag_format(const struct rv_diag *d, char *buf, size_t bufsz)
{
    char where[300] = "";
    char num[32];

    if (bufsz == 0)
        return buf;
    if (d->file[0] != '\0') {
        strcat(where, d->file);
        strcat(where, ":");
    }
    if (d->line > 0) {
        snprintf(num, sizeof(num), "%lu:", d->line);
        strcat(where, num);
    }
    if (d->col > 0) {
        snprintf(num, sizeof(num), "%u:", d->col);
        strcat(where, num);
    }
    snprintf(buf, bufsz, "%s%s%s", where, where[0] != '\0' ? " " : "", d->msg);
    return buf;
}

extern const struct rv_blob rv_embedded_data[];

const struct rv_blob *rv_data_find(const char *name)
{
    for (const struct rv_blob *b = rv_embedded_data; b->name != NULL; b++)
        if (strcmp(b->name, name) == 0)
            return b;
    return NULL;
}

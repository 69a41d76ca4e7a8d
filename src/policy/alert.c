/*
 * alert.c - alert delivery: the audit log, syslog, the alert file and the alert command.
 * (Being written: only the hooks the gate needs exist.)
 */
#include "policy/inner.h"

#include <stdlib.h>

struct rv_alerter {
    int unused;
};

int rv_alerter_new(struct rv_gate_shared *sh, struct rv_alerter **out)
{
    (void)sh;
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? 0 : RV_ENOMEM;
}

void rv_alerter_free(struct rv_alerter *a)
{
    free(a);
}

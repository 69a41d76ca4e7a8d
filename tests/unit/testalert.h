/*
 * testalert.h - the alerts a vault's audit log holds, copied out one by one through
 * rv_policy_alerts_read so that a test can compare their kind, severity, principal, client
 * and detail: for the tests of alert delivery and of the controls that raise alerts (canary
 * electors, decoy credentials). Header-only, as testutil.h, since each test is one source
 * file.
 */
#ifndef RV_TESTALERT_H
#define RV_TESTALERT_H

#include "policy/policy.h"

#include <stdint.h>
#include <stdio.h>

#define RV_TEST_ALERTS 16

/* The first RV_TEST_ALERTS alerts read, in log order; n counts every alert read, kept or
 * not, so that a test sees how many there were. Start from {0}. */
struct rv_test_alerts {
    int n;
    uint64_t index[RV_TEST_ALERTS];
    enum rv_alert_severity sev[RV_TEST_ALERTS];
    char kind[RV_TEST_ALERTS][64], principal[RV_TEST_ALERTS][64], client[RV_TEST_ALERTS][64],
        detail[RV_TEST_ALERTS][256];
};

/* rv_policy_alerts_read's callback: ctx is a struct rv_test_alerts. */
static inline int rv_test_alerts_collect(void *ctx, uint64_t index, const struct rv_alert *a)
{
    struct rv_test_alerts *s = ctx;

    if (s->n < RV_TEST_ALERTS) {
        s->index[s->n] = index;
        s->sev[s->n] = a->severity;
        snprintf(s->kind[s->n], sizeof(s->kind[0]), "%s", a->kind);
        snprintf(s->principal[s->n], sizeof(s->principal[0]), "%s", a->principal);
        snprintf(s->client[s->n], sizeof(s->client[0]), "%s", a->client);
        snprintf(s->detail[s->n], sizeof(s->detail[0]), "%s", a->detail);
    }
    s->n++;
    return 0;
}

#endif /* RV_TESTALERT_H */

/*
 * principal.c - the vault's principals: people (password + TOTP) and services (mutual TLS),
 * their roles, logins and lockouts. (Being written: only the hooks the gate needs exist.)
 */
#include "policy/inner.h"

#include <stdlib.h>

struct rv_principals {
    int unused;
};

int rv_principals_new(struct rv_gate_shared *sh, struct rv_principals **out)
{
    (void)sh;
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? 0 : RV_ENOMEM;
}

void rv_principals_free(struct rv_principals *p)
{
    free(p);
}

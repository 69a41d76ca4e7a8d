/*
 * honeytoken.c - decoy credentials. (Being written: only the hooks the gate needs exist.)
 */
#include "policy/inner.h"

int rv_honeytoken_login(struct rv_gate *g, const char *user, const char *client)
{
    (void)g;
    (void)user;
    (void)client;
    return 0;
}

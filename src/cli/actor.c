/*
 * actor.c - who the local command acts as: the operating-system user, from this machine.
 *
 * A local command holds the vault's secret, so it may act in any role; it records the OS
 * user as the principal and the role its verb needs, so the audit log says who did what.
 */
#include "cli/cli.h"
#include "policy/policy.h"

#include <pwd.h>
#include <stdio.h>
#include <unistd.h>

void rv_cli_actor(const char *role, struct rv_actor *out)
{
    static char name[64];
    const struct passwd *pw = getpwuid(geteuid());

    if (pw != NULL && pw->pw_name != NULL)
        snprintf(name, sizeof(name), "%s", pw->pw_name);
    else
        snprintf(name, sizeof(name), "uid:%lu", (unsigned long)geteuid());
    out->principal = name;
    out->role = role;
    out->client = "local";
}

/*
 * query.c - turns what a donor wrote (name, free-text address, postcode, date) into the
 * normalised query the matcher compares, and refuses what cannot be compared with a message
 * that names the field and the rule, never the value.
 *
 * An unreadable street address is not a reason to refuse a donor: the query goes ahead on
 * name and postcode, with a note saying the address was not used. An unreadable name or
 * postcode is: there is nothing safe to search or compare on.
 */
#include "check/internal.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* Longest name, address or postcode accepted from a donor (bytes). */
#define NAME_INPUT_MAX     1024
#define ADDRESS_INPUT_MAX  2048
#define POSTCODE_INPUT_MAX 64

static bool blank(const char *s)
{
    if (s == NULL)
        return true;
    for (; *s != '\0'; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return false;
    return true;
}

int rv_check_query_init(const char *name, const char *address, const char *postcode, rv_date date,
                        struct rv_check_query *q, struct rv_diag *diag)
{
    size_t len = strlen(name);
    int err;

    memset(q, 0, sizeof(*q));
    q->date = date;
    q->win_from = date;
    q->win_to = date == RV_DATE_NONE ? RV_DATE_NONE : date + 1;
    if (date == RV_DATE_NONE) {
        rv_diag_set(diag, "", 0, 0, "the date received is missing");
        return RV_EPARSE;
    }
    if (blank(name)) {
        rv_diag_set(diag, "", 0, 0, "the donor's name is empty: give forenames and surname");
        return RV_EPARSE;
    }
    if (len > NAME_INPUT_MAX) {
        rv_diag_set(diag, "", 0, 0, "the donor's name is longer than %d bytes", NAME_INPUT_MAX);
        return RV_ETOOBIG;
    }
    if (!rv_utf8_valid(name, len)) {
        rv_diag_set(diag, "", 0, 0, "the donor's name is not valid UTF-8");
        return RV_EPARSE;
    }
    err = rv_name_parse(name, len, &q->name);
    if (err == 0)
        err = rv_name_key(&q->name, &q->key);
    if (err != 0 || q->key.surname[0] == '\0') {
        rv_diag_set(diag, "", 0, 0,
                    err == RV_ETOOBIG ? "a part of the donor's name is too long"
                                      : "the donor's name has no surname that can be read");
        sodium_memzero(q, sizeof(*q));
        return err == RV_ETOOBIG ? RV_ETOOBIG : RV_EPARSE;
    }

    if (!blank(postcode)) {
        size_t pl = strlen(postcode);
        if (pl > POSTCODE_INPUT_MAX || !rv_utf8_valid(postcode, pl) ||
            rv_postcode_parse(postcode, pl, &q->postcode) != 0) {
            rv_diag_set(diag, "", 0, 0,
                        "the postcode is not a valid UK postcode (BS 7666, like SW1A 1AA); "
                        "leave it empty for a donor living abroad");
            sodium_memzero(q, sizeof(*q));
            return RV_EPARSE;
        }
        q->has_postcode = true;
    }

    if (!blank(address)) {
        size_t al = strlen(address);
        if (al <= ADDRESS_INPUT_MAX && rv_utf8_valid(address, al) &&
            rv_address_parse(address, al, &q->addr) == 0 &&
            (q->addr.number[0] != '\0' || q->addr.building[0] != '\0' ||
             q->addr.street[0] != '\0' || q->addr.locality[0] != '\0')) {
            q->has_address = true;
        } else {
            sodium_memzero(&q->addr, sizeof(q->addr));
            snprintf(q->note, sizeof(q->note),
                     "the address could not be read and was not compared");
        }
    }
    return 0;
}

void rv_check_query_set_bequest(struct rv_check_query *q)
{
    q->bequest = true;
    if (q->date != RV_DATE_NONE)
        rv_check_bequest_window(q->date, &q->win_from, &q->win_to);
}

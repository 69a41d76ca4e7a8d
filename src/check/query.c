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

/* Words that begin a surname when written apart from it: "O Hara", "Mc Donald". */
static bool is_particle(const char *w, size_t n)
{
    static const char *const p[] = {"o",  "d",  "mc",  "mac", "fitz", "ap",  "de",  "da",
                                    "di", "du", "del", "le",  "la",   "van", "von", "st"};
    for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++)
        if (strlen(p[i]) == n && memcmp(p[i], w, n) == 0)
            return true;
    return false;
}

/* The second reading of a name: its last forename joined to the surname, for surnames the
 * donor split in two ("Leonard O Hara", "Bruce Mc Donald", "Sian Bray Ashton"). Only when
 * another forename remains, or the last one is a surname particle. */
static void alt_reading(const struct rv_name_key *k, struct rv_name_key *alt)
{
    const char *last = strrchr(k->forenames, ' ');
    size_t lead = last != NULL ? (size_t)(last - k->forenames) : 0;
    const char *w = last != NULL ? last + 1 : k->forenames;
    size_t wn = strlen(w);
    bool particle = is_particle(w, wn);
    const char *join = wn == 2 && memcmp(w, "mc", 2) == 0 ? "mac" : w;

    memset(alt, 0, sizeof(*alt));
    if (wn == 0 || (last == NULL && !particle) || (wn == 1 && !particle))
        return;
    if (strlen(join) + strlen(k->surname) + 1 > sizeof(alt->surname) ||
        wn + strlen(k->surname_tokens) + 2 > sizeof(alt->surname_tokens))
        return;
    memcpy(alt->forenames, k->forenames, lead);
    alt->forenames[lead] = '\0';
    memcpy(alt->first, alt->forenames, strcspn(alt->forenames, " "));
    alt->initial = alt->first[0];
    /* Both fit (checked above): copied by length. */
    size_t jn = strlen(join), sn = strlen(k->surname), tn = strlen(k->surname_tokens);
    memcpy(alt->surname, join, jn);
    memcpy(alt->surname + jn, k->surname, sn + 1);
    memcpy(alt->surname_tokens, w, wn);
    alt->surname_tokens[wn] = ' ';
    memcpy(alt->surname_tokens + wn + 1, k->surname_tokens, tn + 1);
    alt->nsurname_tokens = k->nsurname_tokens + 1;
}

/* The name read the other way round: the first word as the surname, the rest as forenames
 * ("SMITH John Paul", "McDonald Linda"). Keyed by core, so Mc/Mac and hyphens fold alike. */
static void swap_reading(const struct rv_name *n, struct rv_name_key *out)
{
    char sur[RV_NAME_MAX], fore[2 * RV_NAME_MAX];
    struct rv_name tmp;
    size_t k = strcspn(n->forenames, " ");
    bool more = n->forenames[k] == ' ';

    memset(out, 0, sizeof(*out));
    if (k == 0 || k >= sizeof(sur))
        return;
    memcpy(sur, n->forenames, k);
    sur[k] = '\0';
    snprintf(fore, sizeof(fore), "%s%s%s", more ? n->forenames + k + 1 : "", more ? " " : "",
             n->surname);
    if (rv_name_from_parts(sur, fore, &tmp) != 0 || rv_name_key(&tmp, out) != 0 ||
        out->forenames[0] == '\0')
        memset(out, 0, sizeof(*out));
    sodium_memzero(&tmp, sizeof(tmp));
    sodium_memzero(sur, sizeof(sur));
    sodium_memzero(fore, sizeof(fore));
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
    alt_reading(&q->key, &q->alt);
    swap_reading(&q->name, &q->swap);

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

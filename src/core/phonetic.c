/*
 * phonetic.c - Double Metaphone and NYSIIS codes of folded names.
 *
 * The phonetic-surname blind index and the matcher both key on these codes, so they must be
 * exactly reproducible: the same name gives the same code here, in vault/ when a record is
 * indexed, and in check/ when a donor is looked up, in every release. Each algorithm is
 * therefore pinned to a public reference and tested against a table generated from it
 * (tests/data/phonetic/): Double Metaphone as Lawrence Philips published it and as
 * PostgreSQL's fuzzystrmatch computes it (dmetaphone, dmetaphone_alt), codes cut to four
 * characters; NYSIIS as the jellyfish library computes it, cut to six characters.
 *
 * Inputs are folded strings; only the letters a-z (or A-Z) count, everything else is
 * skipped, so "o'brien" and "obrien" have one code. Codes are upper-case ASCII. Nothing here
 * allocates: each call works in a fixed buffer on the stack and reads at most the first
 * RV_PHON_LETTERS letters of its input (far beyond any real name).
 */
#include "core/core.h"

#include <string.h>

#define RV_PHON_LETTERS 256
#define DM_PAD          5 /* the reference pads the word with five spaces */
#define DM_KEEP         8 /* code characters kept while building (only 4 are returned) */

/* Copies the letters of s, upper-cased, into buf (at most RV_PHON_LETTERS); returns the
 * count. */
static int phon_letters(const char *s, char *buf)
{
    int n = 0;

    for (; *s != '\0' && n < RV_PHON_LETTERS; s++) {
        char c = *s;
        if (c >= 'a' && c <= 'z')
            buf[n++] = (char)(c - 'a' + 'A');
        else if (c >= 'A' && c <= 'Z')
            buf[n++] = c;
    }
    return n;
}

/* ------------------------------------------------------------------------------------------
 * Double Metaphone.
 */

struct dm {
    char w[RV_PHON_LETTERS + DM_PAD + 16]; /* letters, five spaces, then NULs */
    int len;                               /* letters */
    int plen;                              /* letters plus padding: the reference's bound */
    int last;
    bool slavo; /* Slavic or Germanic: the word contains W, K or CZ */
    char p[DM_KEEP + 1], a[DM_KEEP + 1];
    int np, na;
};

static inline char dm_get(const struct dm *d, int i)
{
    return i < 0 || i >= d->plen ? '\0' : d->w[i];
}

static inline bool dm_vowel(const struct dm *d, int i)
{
    char c = dm_get(d, i);
    return c == 'A' || c == 'E' || c == 'I' || c == 'O' || c == 'U' || c == 'Y';
}

/* True if one of the n-character strings concatenated in alts starts at position i. */
static bool dm_at(const struct dm *d, int i, int n, const char *alts)
{
    if (i < 0 || i >= d->plen)
        return false;
    for (; *alts != '\0'; alts += n)
        if (memcmp(d->w + i, alts, (size_t)n) == 0)
            return true;
    return false;
}

/* Appends s to a code; past DM_KEEP characters the code stops growing (only the first four
 * are returned, and the loop only asks whether four are there). */
static void dm_add1(char *code, int *len, const char *s)
{
    for (; *s != '\0' && *len < DM_KEEP; s++)
        code[(*len)++] = *s;
}

/* Adds to the primary and the alternate code. */
static void dm_add(struct dm *d, const char *p, const char *a)
{
    dm_add1(d->p, &d->np, p);
    dm_add1(d->a, &d->na, a);
}

static int dm_c(struct dm *d, int cur)
{
    /* Germanic "-ach-", as in "bacher", but not "-achi-" or "-ache-". */
    if (cur > 1 && !dm_vowel(d, cur - 2) && dm_at(d, cur - 1, 3, "ACH") &&
        dm_get(d, cur + 2) != 'I' &&
        (dm_get(d, cur + 2) != 'E' || dm_at(d, cur - 2, 6, "BACHERMACHER"))) {
        dm_add(d, "K", "K");
        return cur + 2;
    }
    if (cur == 0 && dm_at(d, cur, 6, "CAESAR")) {
        dm_add(d, "S", "S");
        return cur + 2;
    }
    if (dm_at(d, cur, 4, "CHIA")) { /* chianti */
        dm_add(d, "K", "K");
        return cur + 2;
    }
    if (dm_at(d, cur, 2, "CH")) {
        if (cur > 0 && dm_at(d, cur, 4, "CHAE")) { /* michael */
            dm_add(d, "K", "X");
            return cur + 2;
        }
        /* Greek roots: chemistry, chorus (but not chore). */
        if (cur == 0 &&
            (dm_at(d, cur + 1, 5, "HARACHARIS") || dm_at(d, cur + 1, 3, "HORHYMHIAHEM")) &&
            !dm_at(d, 0, 5, "CHORE")) {
            dm_add(d, "K", "K");
            return cur + 2;
        }
        /* Germanic or Greek "ch" said "kh": orchestra, architect, wachtler; not tichner. */
        if (dm_at(d, 0, 4, "VAN VON ") || dm_at(d, 0, 3, "SCH") ||
            dm_at(d, cur - 2, 6, "ORCHESARCHITORCHID") || dm_at(d, cur + 2, 1, "TS") ||
            ((dm_at(d, cur - 1, 1, "AOUE") || cur == 0) && dm_at(d, cur + 2, 1, "LRNMBHFVW "))) {
            dm_add(d, "K", "K");
        } else if (cur > 0) {
            if (dm_at(d, 0, 2, "MC")) /* mchugh */
                dm_add(d, "K", "K");
            else
                dm_add(d, "X", "K");
        } else {
            dm_add(d, "X", "X");
        }
        return cur + 2;
    }
    if (dm_at(d, cur, 2, "CZ") && !dm_at(d, cur - 2, 4, "WICZ")) { /* czerny */
        dm_add(d, "S", "X");
        return cur + 2;
    }
    if (dm_at(d, cur + 1, 3, "CIA")) { /* focaccia */
        dm_add(d, "X", "X");
        return cur + 3;
    }
    /* Double C, but not as in mcclellan. */
    if (dm_at(d, cur, 2, "CC") && !(cur == 1 && dm_get(d, 0) == 'M')) {
        if (dm_at(d, cur + 2, 1, "IEH") && !dm_at(d, cur + 2, 2, "HU")) {
            /* accident, succeed; otherwise Italian bacci */
            if ((cur == 1 && dm_get(d, cur - 1) == 'A') || dm_at(d, cur - 1, 5, "UCCEEUCCES"))
                dm_add(d, "KS", "KS");
            else
                dm_add(d, "X", "X");
            return cur + 3;
        }
        dm_add(d, "K", "K");
        return cur + 2;
    }
    if (dm_at(d, cur, 2, "CKCGCQ")) {
        dm_add(d, "K", "K");
        return cur + 2;
    }
    if (dm_at(d, cur, 2, "CICECY")) {
        if (dm_at(d, cur, 3, "CIOCIECIA"))
            dm_add(d, "S", "X");
        else
            dm_add(d, "S", "S");
        return cur + 2;
    }
    dm_add(d, "K", "K");
    if (dm_at(d, cur + 1, 2, " C Q G")) /* mac caffrey, mac gregor */
        return cur + 3;
    if (dm_at(d, cur + 1, 1, "CKQ") && !dm_at(d, cur + 1, 2, "CECI"))
        return cur + 2;
    return cur + 1;
}

static int dm_g(struct dm *d, int cur)
{
    if (dm_get(d, cur + 1) == 'H') {
        if (cur > 0 && !dm_vowel(d, cur - 1)) {
            dm_add(d, "K", "K");
            return cur + 2;
        }
        if (cur == 0) { /* ghislane, ghiradelli */
            if (dm_get(d, cur + 2) == 'I')
                dm_add(d, "J", "J");
            else
                dm_add(d, "K", "K");
            return cur + 2;
        }
        /* Parker's rule: hugh, bough, broughton are silent. */
        if ((cur > 1 && dm_at(d, cur - 2, 1, "BHD")) || (cur > 2 && dm_at(d, cur - 3, 1, "BHD")) ||
            (cur > 3 && dm_at(d, cur - 4, 1, "BH")))
            return cur + 2;
        /* laugh, mclaughlin, cough, rough, tough */
        if (cur > 2 && dm_get(d, cur - 1) == 'U' && dm_at(d, cur - 3, 1, "CGLRT"))
            dm_add(d, "F", "F");
        else if (cur > 0 && dm_get(d, cur - 1) != 'I')
            dm_add(d, "K", "K");
        return cur + 2;
    }
    if (dm_get(d, cur + 1) == 'N') {
        if (cur == 1 && dm_vowel(d, 0) && !d->slavo)
            dm_add(d, "KN", "N");
        else if (!dm_at(d, cur + 2, 2, "EY") && dm_get(d, cur + 1) != 'Y' && !d->slavo)
            dm_add(d, "N", "KN"); /* not cagney */
        else
            dm_add(d, "KN", "KN");
        return cur + 2;
    }
    if (dm_at(d, cur + 1, 2, "LI") && !d->slavo) { /* tagliaro */
        dm_add(d, "KL", "L");
        return cur + 2;
    }
    /* -ges-, -gep-, -gel-, -gie- at the start */
    if (cur == 0 && (dm_get(d, cur + 1) == 'Y' || dm_at(d, cur + 1, 2, "ESEPEBELEYIBILINIEEIER"))) {
        dm_add(d, "K", "J");
        return cur + 2;
    }
    /* -ger-, -gy- */
    if ((dm_at(d, cur + 1, 2, "ER") || dm_get(d, cur + 1) == 'Y') &&
        !dm_at(d, 0, 6, "DANGERRANGERMANGER") && !dm_at(d, cur - 1, 1, "EI") &&
        !dm_at(d, cur - 1, 3, "RGYOGY")) {
        dm_add(d, "K", "J");
        return cur + 2;
    }
    /* Italian biaggi */
    if (dm_at(d, cur + 1, 1, "EIY") || dm_at(d, cur - 1, 4, "AGGIOGGI")) {
        if (dm_at(d, 0, 4, "VAN VON ") || dm_at(d, 0, 3, "SCH") || dm_at(d, cur + 1, 2, "ET"))
            dm_add(d, "K", "K");
        else if (dm_at(d, cur + 1, 4, "IER "))
            dm_add(d, "J", "J");
        else
            dm_add(d, "J", "K");
        return cur + 2;
    }
    dm_add(d, "K", "K");
    return cur + (dm_get(d, cur + 1) == 'G' ? 2 : 1);
}

static int dm_j(struct dm *d, int cur)
{
    /* Spanish jose, san jacinto */
    if (dm_at(d, cur, 4, "JOSE") || dm_at(d, 0, 4, "SAN ")) {
        if ((cur == 0 && dm_get(d, cur + 4) == ' ') || dm_at(d, 0, 4, "SAN "))
            dm_add(d, "H", "H");
        else
            dm_add(d, "J", "H");
        return cur + 1;
    }
    if (cur == 0 && !dm_at(d, cur, 4, "JOSE")) {
        dm_add(d, "J", "A"); /* yankelovich, jankelowicz */
    } else if (dm_vowel(d, cur - 1) && !d->slavo &&
               (dm_get(d, cur + 1) == 'A' || dm_get(d, cur + 1) == 'O')) {
        dm_add(d, "J", "H"); /* Spanish bajador */
    } else if (cur == d->last) {
        dm_add(d, "J", "");
    } else if (!dm_at(d, cur + 1, 1, "LTKSNMBZ") && !dm_at(d, cur - 1, 1, "SKL")) {
        dm_add(d, "J", "J");
    }
    return cur + (dm_get(d, cur + 1) == 'J' ? 2 : 1);
}

static int dm_s(struct dm *d, int cur)
{
    if (dm_at(d, cur - 1, 3, "ISLYSL")) /* island, isle, carlisle */
        return cur + 1;
    if (cur == 0 && dm_at(d, cur, 5, "SUGAR")) {
        dm_add(d, "X", "S");
        return cur + 1;
    }
    if (dm_at(d, cur, 2, "SH")) {
        if (dm_at(d, cur + 1, 4, "HEIMHOEKHOLMHOLZ")) /* Germanic */
            dm_add(d, "S", "S");
        else
            dm_add(d, "X", "X");
        return cur + 2;
    }
    if (dm_at(d, cur, 3, "SIOSIA") || dm_at(d, cur, 4, "SIAN")) { /* Italian, Armenian */
        if (!d->slavo)
            dm_add(d, "S", "X");
        else
            dm_add(d, "S", "S");
        return cur + 3;
    }
    /* smith ~ schmidt, snider ~ schneider; Slavic -sz- */
    if ((cur == 0 && dm_at(d, cur + 1, 1, "MNLW")) || dm_at(d, cur + 1, 1, "Z")) {
        dm_add(d, "S", "X");
        return cur + (dm_at(d, cur + 1, 1, "Z") ? 2 : 1);
    }
    if (dm_at(d, cur, 2, "SC")) {
        if (dm_get(d, cur + 2) == 'H') {                /* Schlesinger's rule */
            if (dm_at(d, cur + 3, 2, "OOERENUYEDEM")) { /* Dutch school, schooner */
                if (dm_at(d, cur + 3, 2, "EREN"))       /* schermerhorn, schenker */
                    dm_add(d, "X", "SK");
                else
                    dm_add(d, "SK", "SK");
            } else if (cur == 0 && !dm_vowel(d, 3) && dm_get(d, 3) != 'W') {
                dm_add(d, "X", "S");
            } else {
                dm_add(d, "X", "X");
            }
            return cur + 3;
        }
        if (dm_at(d, cur + 2, 1, "IEY"))
            dm_add(d, "S", "S");
        else
            dm_add(d, "SK", "SK");
        return cur + 3;
    }
    if (cur == d->last && dm_at(d, cur - 2, 2, "AIOI")) /* French resnais, artois */
        dm_add(d, "", "S");
    else
        dm_add(d, "S", "S");
    return cur + (dm_at(d, cur + 1, 1, "SZ") ? 2 : 1);
}

static int dm_t(struct dm *d, int cur)
{
    if (dm_at(d, cur, 4, "TION")) {
        dm_add(d, "X", "X");
        return cur + 3;
    }
    if (dm_at(d, cur, 3, "TIATCH")) {
        dm_add(d, "X", "X");
        return cur + 3;
    }
    if (dm_at(d, cur, 2, "TH") || dm_at(d, cur, 3, "TTH")) {
        /* thomas, thames, or Germanic */
        if (dm_at(d, cur + 2, 2, "OMAM") || dm_at(d, 0, 4, "VAN VON ") || dm_at(d, 0, 3, "SCH"))
            dm_add(d, "T", "T");
        else
            dm_add(d, "0", "T");
        return cur + 2;
    }
    dm_add(d, "T", "T");
    return cur + (dm_at(d, cur + 1, 1, "TD") ? 2 : 1);
}

static int dm_w(struct dm *d, int cur)
{
    if (dm_at(d, cur, 2, "WR")) {
        dm_add(d, "R", "R");
        return cur + 2;
    }
    if (cur == 0 && (dm_vowel(d, cur + 1) || dm_at(d, cur, 2, "WH"))) {
        if (dm_vowel(d, cur + 1))
            dm_add(d, "A", "F"); /* wasserman ~ vasserman */
        else
            dm_add(d, "A", "A"); /* womo ~ uomo */
    }
    /* arnow ~ arnoff */
    if ((cur == d->last && dm_vowel(d, cur - 1)) || dm_at(d, cur - 1, 5, "EWSKIEWSKYOWSKIOWSKY") ||
        dm_at(d, 0, 3, "SCH")) {
        dm_add(d, "", "F");
        return cur + 1;
    }
    if (dm_at(d, cur, 4, "WICZWITZ")) { /* Polish filipowicz */
        dm_add(d, "TS", "FX");
        return cur + 4;
    }
    return cur + 1;
}

/* One step of the reference's main loop: codes for the letter at cur, and where to go on. */
static int dm_step(struct dm *d, int cur)
{
    const char c = dm_get(d, cur), next = dm_get(d, cur + 1);

    switch (c) {
    case 'A':
    case 'E':
    case 'I':
    case 'O':
    case 'U':
    case 'Y':
        if (cur == 0)
            dm_add(d, "A", "A");
        return cur + 1;
    case 'B':
        dm_add(d, "P", "P");
        return cur + (next == 'B' ? 2 : 1);
    case 'C':
        return dm_c(d, cur);
    case 'D':
        if (dm_at(d, cur, 2, "DG")) {
            if (dm_at(d, cur + 2, 1, "IEY")) { /* edge */
                dm_add(d, "J", "J");
                return cur + 3;
            }
            dm_add(d, "TK", "TK"); /* edgar */
            return cur + 2;
        }
        dm_add(d, "T", "T");
        return cur + (dm_at(d, cur, 2, "DTDD") ? 2 : 1);
    case 'F':
        dm_add(d, "F", "F");
        return cur + (next == 'F' ? 2 : 1);
    case 'G':
        return dm_g(d, cur);
    case 'H':
        /* Kept only first or between vowels. */
        if ((cur == 0 || dm_vowel(d, cur - 1)) && dm_vowel(d, cur + 1)) {
            dm_add(d, "H", "H");
            return cur + 2;
        }
        return cur + 1;
    case 'J':
        return dm_j(d, cur);
    case 'K':
        dm_add(d, "K", "K");
        return cur + (next == 'K' ? 2 : 1);
    case 'L':
        if (next == 'L') {
            /* Spanish cabrillo, gallegos */
            if ((cur == d->len - 3 && dm_at(d, cur - 1, 4, "ILLOILLAALLE")) ||
                ((dm_at(d, d->last - 1, 2, "ASOS") || dm_at(d, d->last, 1, "AO")) &&
                 dm_at(d, cur - 1, 4, "ALLE"))) {
                dm_add(d, "L", "");
                return cur + 2;
            }
            dm_add(d, "L", "L");
            return cur + 2;
        }
        dm_add(d, "L", "L");
        return cur + 1;
    case 'M':
        dm_add(d, "M", "M");
        /* dumb, thumb */
        if ((dm_at(d, cur - 1, 3, "UMB") && (cur + 1 == d->last || dm_at(d, cur + 2, 2, "ER"))) ||
            next == 'M')
            return cur + 2;
        return cur + 1;
    case 'N':
        dm_add(d, "N", "N");
        return cur + (next == 'N' ? 2 : 1);
    case 'P':
        if (next == 'H') {
            dm_add(d, "F", "F");
            return cur + 2;
        }
        dm_add(d, "P", "P");
        return cur + (dm_at(d, cur + 1, 1, "PB") ? 2 : 1); /* campbell, raspberry */
    case 'Q':
        dm_add(d, "K", "K");
        return cur + (next == 'Q' ? 2 : 1);
    case 'R':
        /* French rogier, but not hochmeier */
        if (cur == d->last && !d->slavo && dm_at(d, cur - 2, 2, "IE") &&
            !dm_at(d, cur - 4, 2, "MEMA"))
            dm_add(d, "", "R");
        else
            dm_add(d, "R", "R");
        return cur + (next == 'R' ? 2 : 1);
    case 'S':
        return dm_s(d, cur);
    case 'T':
        return dm_t(d, cur);
    case 'V':
        dm_add(d, "F", "F");
        return cur + (next == 'V' ? 2 : 1);
    case 'W':
        return dm_w(d, cur);
    case 'X':
        /* French breaux */
        if (!(cur == d->last && (dm_at(d, cur - 3, 3, "IAUEAU") || dm_at(d, cur - 2, 2, "AUOU"))))
            dm_add(d, "KS", "KS");
        return cur + (dm_at(d, cur + 1, 1, "CX") ? 2 : 1);
    case 'Z':
        if (next == 'H') { /* Chinese pinyin zhao */
            dm_add(d, "J", "J");
            return cur + 2;
        }
        if (dm_at(d, cur + 1, 2, "ZOZIZA") || (d->slavo && cur > 0 && dm_get(d, cur - 1) != 'T'))
            dm_add(d, "S", "TS");
        else
            dm_add(d, "S", "S");
        return cur + (next == 'Z' ? 2 : 1);
    default:
        return cur + 1;
    }
}

void rv_double_metaphone(const char *s, char primary[RV_PHONETIC_MAX],
                         char alternate[RV_PHONETIC_MAX])
{
    struct dm d;
    int cur = 0;

    d.len = phon_letters(s, d.w);
    d.plen = d.len + DM_PAD;
    d.last = d.len - 1;
    memset(d.w + d.len, ' ', DM_PAD);
    memset(d.w + d.plen, 0, sizeof(d.w) - (size_t)d.plen);
    d.np = d.na = 0;
    d.slavo = memchr(d.w, 'W', (size_t)d.len) != NULL || memchr(d.w, 'K', (size_t)d.len) != NULL ||
              memmem(d.w, (size_t)d.len, "CZ", 2) != NULL;

    if (dm_at(&d, 0, 2, "GNKNPNWRPS")) /* silent first letter */
        cur = 1;
    if (dm_get(&d, 0) == 'X') { /* xavier */
        dm_add(&d, "S", "S");
        cur = 1;
    }
    while ((d.np < 4 || d.na < 4) && cur < d.len)
        cur = dm_step(&d, cur);

    d.p[d.np < 4 ? d.np : 4] = '\0';
    d.a[d.na < 4 ? d.na : 4] = '\0';
    memcpy(primary, d.p, 5);
    if (strcmp(d.a, d.p) == 0)
        alternate[0] = '\0';
    else
        memcpy(alternate, d.a, 5);
}

/* ------------------------------------------------------------------------------------------
 * NYSIIS, as jellyfish computes it (its reference Python implementation), then cut to six.
 */

static bool ny_vowel(char c)
{
    return c == 'A' || c == 'E' || c == 'I' || c == 'O' || c == 'U';
}

static bool ny_ends(const char *s, int n, const char *suffix)
{
    return n >= 2 && s[n - 2] == suffix[0] && s[n - 1] == suffix[1];
}

#define NY_KEEP 16 /* key characters kept; at this length the tail rules cannot reach the head */

void rv_nysiis(const char *s, char out[RV_PHONETIC_MAX])
{
    char w[RV_PHON_LETTERS];
    char key[NY_KEEP + 4];
    char *p = w;
    int n, k = 0;
    bool full = false;

    n = phon_letters(s, w);
    if (n == 0) {
        out[0] = '\0';
        return;
    }
    /* Prefixes. */
    if (n >= 3 && memcmp(p, "MAC", 3) == 0) {
        p[1] = 'C'; /* MCC */
    } else if (n >= 2 && memcmp(p, "KN", 2) == 0) {
        p++, n--;
    } else if (p[0] == 'K') {
        p[0] = 'C';
    } else if (n >= 2 && (memcmp(p, "PH", 2) == 0 || memcmp(p, "PF", 2) == 0)) {
        p[0] = p[1] = 'F';
    } else if (n >= 3 && memcmp(p, "SCH", 3) == 0) {
        p[1] = p[2] = 'S';
    }
    /* Suffixes. */
    if (ny_ends(p, n, "IE") || ny_ends(p, n, "EE")) {
        p[n - 2] = 'Y';
        n--;
    } else if (ny_ends(p, n, "DT") || ny_ends(p, n, "RT") || ny_ends(p, n, "RD") ||
               ny_ends(p, n, "NT") || ny_ends(p, n, "ND")) {
        p[n - 2] = 'D';
        n--;
    }

    key[k++] = p[0];
    for (int i = 1; i < n && !full; i++) {
        char ch[2] = {p[i], 0};
        int nch = 1;
        char c = p[i], next = i + 1 < n ? p[i + 1] : '\0';

        if (c == 'E' && next == 'V') {
            ch[0] = 'A', ch[1] = 'F', nch = 2;
            i++;
        } else if (ny_vowel(c)) {
            ch[0] = 'A';
        } else if (c == 'Q') {
            ch[0] = 'G';
        } else if (c == 'Z') {
            ch[0] = 'S';
        } else if (c == 'M') {
            ch[0] = 'N';
        } else if (c == 'K') {
            ch[0] = next == 'N' ? 'N' : 'C';
        } else if (c == 'S' && next == 'C' && i + 2 < n && p[i + 2] == 'H') {
            ch[0] = ch[1] = 'S', nch = 2;
            i += 2;
        } else if (c == 'P' && next == 'H') {
            ch[0] = 'F';
            i++;
        } else if (c == 'H' &&
                   (!ny_vowel(p[i - 1]) || (i + 1 < n && !ny_vowel(next)) || i + 1 == n)) {
            ch[0] = ny_vowel(p[i - 1]) ? 'A' : p[i - 1];
        } else if (c == 'W' && ny_vowel(p[i - 1])) {
            ch[0] = p[i - 1];
        }
        if (ch[nch - 1] != key[k - 1]) {
            for (int j = 0; j < nch; j++)
                key[k++] = ch[j];
            full = k >= NY_KEEP;
        }
    }
    if (!full) {
        if (k > 1 && key[k - 1] == 'S')
            k--;
        if (k >= 2 && key[k - 2] == 'A' && key[k - 1] == 'Y')
            key[k - 2] = 'Y', k--;
        if (k > 1 && key[k - 1] == 'A')
            k--;
    }
    if (k > 6)
        k = 6;
    memcpy(out, key, (size_t)k);
    out[k] = '\0';
}

/*
 * vault_write.c - writing the vault: entries prepared (blind-index values, keyed hashes,
 * sealing) on any thread, then applied in file order inside a batch per input file, the
 * batches of one or more files in a load: one atomic store transaction.
 *
 * A batch decides for each row whether it is new, changed, unchanged or deleted against
 * the versions in force in its area, stores sealed versions, buffers blind-index entries
 * and the sealed lists' additions and hands them sorted to the load (which writes them
 * all, merged, at its commit), closes at an edition's date the
 * versions its file no longer lists, and keeps the counters behind statistics. Record and
 * list formats are in vault_records.c.
 */
#include "vault/vault_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define OPEN_LEN  35
#define AREA_LEN  (4 + 14 * 8)
#define STATS_LEN (16 + 1 + 4 + 4 + 20 * 8 + 32 + 8)

/* ---------------------------------------------------------------------------------------
 * Preparing entries.
 */

static int number_key(const struct rv_vault *v, const char *area,
                      const struct rv_elector_number *num, uint8_t out[16])
{
    uint8_t in[4 + RV_AREA_LEN + sizeof(num->prefix) + 8];
    size_t n = strnlen(num->prefix, sizeof(num->prefix));
    int rc;

    rc = rv_vault_area_key(area, in + 4);
    if (rc != 0)
        return rc;
    if (n == sizeof(num->prefix) || (n == 0 && num->number == 0))
        return RV_EINVAL;
    memcpy(in, "rvn2", 4);
    memset(in + 4 + RV_AREA_LEN, 0, sizeof(num->prefix));
    memcpy(in + 4 + RV_AREA_LEN, num->prefix, n);
    rv_put_u32be(in + 4 + RV_AREA_LEN + sizeof(num->prefix), num->number);
    rv_put_u32be(in + 8 + RV_AREA_LEN + sizeof(num->prefix), num->suffix);
    rv_vault_sip(v->k->sip_number, in, sizeof(in), out);
    return 0;
}

/* The normalised address of e's lines, from the cache when the lines are the last ones. */
static int address_key(struct rv_vault_prep_cache *c, const struct rv_elector *e,
                       struct rv_address_key *ak)
{
    const char *lines[RV_ADDR_LINES];
    int rc;

    for (int i = 0; i < RV_ADDR_LINES; i++)
        lines[i] = e->address[i];
    if (c == NULL)
        return rv_address_key(lines, RV_ADDR_LINES, ak);
    if (c->addr_valid) {
        int i = 0;
        while (i < RV_ADDR_LINES && strcmp(c->lines[i], e->address[i]) == 0)
            i++;
        if (i == RV_ADDR_LINES) {
            memcpy(ak, &c->ak, sizeof(*ak));
            return c->addr_rc;
        }
    }
    rc = rv_address_key(lines, RV_ADDR_LINES, ak);
    c->addr_valid = false;
    for (int i = 0; i < RV_ADDR_LINES; i++) {
        size_t n = strnlen(e->address[i], RV_ADDR_LINE_MAX);
        if (n == RV_ADDR_LINE_MAX)
            return rc; /* not a string: never cached */
        memcpy(c->lines[i], e->address[i], n + 1);
    }
    memcpy(&c->ak, ak, sizeof(*ak));
    c->addr_rc = rc;
    c->addr_valid = true;
    return rc;
}

/* True when the part just computed (out->part[out->nparts]) has the truncated value of the
 * entry's own surname entry or of an earlier part: both would be one store key, and the
 * second tag would overwrite the first. The part is then left out (the entry is still found
 * under the rest). */
static bool part_clashes(const struct rv_prepared *out, size_t len)
{
    const uint8_t *val = out->part[out->nparts];
    unsigned f = out->part_family;

    if ((out->idx_present & (1u << (f - 1))) && memcmp(out->idx[f - 1], val, len) == 0)
        return true;
    for (unsigned i = 0; i < out->nparts; i++)
        if (memcmp(out->part[i], val, len) == 0)
            return true;
    return false;
}

int rv_vault_prepare(const struct rv_vault *v, const struct rv_elector *e,
                     const struct rv_vault_sealer *sealer, uint64_t seal_id,
                     struct rv_prepared *out)
{
    return rv_vault_prepare_cached(v, NULL, e, sealer, seal_id, out);
}

int rv_vault_prepare_cached(const struct rv_vault *v, struct rv_vault_prep_cache *c,
                            const struct rv_elector *e, const struct rv_vault_sealer *sealer,
                            uint64_t seal_id, struct rv_prepared *out)
{
    uint8_t wire[RV_ELECTOR_WIRE_MAX];
    struct rv_name_key nk;
    struct rv_address_key ak;
    struct rv_index_query q;
    size_t len, ilen = (v->index_bits + 7) / 8;
    long wlen;
    int rc;

    out->idx_present = 0;
    out->sealed_bucket = 0;
    out->sealed_len = 0;
    out->tags_masked = false;
    if (&out->e != e)
        memcpy(&out->e, e, sizeof(*e));
    rc = number_key(v, e->area, &e->number, out->numkey);
    if (rc != 0)
        return rc;
    wlen = rv_elector_encode(e, wire, sizeof(wire));
    if (wlen < 0)
        return (int)wlen;
    rv_vault_sip(v->k->sip_content, wire, (size_t)wlen, out->chash);

    memset(&q, 0, sizeof(q));
    if (rv_name_key(&e->name, &nk) == 0) {
        q.surname = nk.surname;
        q.initial = nk.initial;
    }
    if (e->postcode.canon[0] != '\0')
        q.postcode = e->postcode.canon;
    if (q.postcode != NULL && address_key(c, e, &ak) == 0)
        q.first_line = ak.first_line;
    for (int f = 1; f <= RV_IDX_COUNT; f++) {
        if (f == RV_IDX_SURNAME && q.postcode != NULL)
            continue; /* surname alone only for entries with no postcode */
        if (rv_index_value_cached(v, c, (enum rv_index)f, &q, out->idx[f - 1], &len,
                                  out->idx_tag[f - 1]) == 0)
            out->idx_present |= (uint8_t)(1u << (f - 1));
    }
    /* The postcode list's key and the folded surname words for it. */
    out->has_pc = false;
    if (q.postcode != NULL && q.surname != NULL) {
        uint8_t pk[17];
        size_t sl = strlen(nk.surname_tokens);
        if (rv_pc_list_key(v, q.postcode, pk) == 0) {
            memcpy(out->pc_key, pk + 1, 16);
            out->pc_len = sl < RV_VAULT_PC_SURNAME ? (uint8_t)sl : RV_VAULT_PC_LONG;
            if (sl >= RV_VAULT_PC_SURNAME)
                sl = RV_VAULT_PC_SURNAME - 1;
            memcpy(out->pc_surname, nk.surname_tokens, sl);
            out->has_pc = true;
        }
    }
    /* The namesake list of the entry's initial, surname and outward code. */
    out->has_ns = false;
    if (out->has_pc && q.initial != 0) {
        size_t fl = strlen(nk.forenames);
        /* The list's key is the family's truncated value, computed above. */
        if (out->idx_present & (1u << (RV_IDX_INITIAL_SURNAME_OUTWARD - 1))) {
            memset(out->ns_key, 0, 16);
            memcpy(out->ns_key, out->idx[RV_IDX_INITIAL_SURNAME_OUTWARD - 1],
                   (v->index_bits + 7) / 8);
            out->ns_flen = fl < RV_VAULT_PC_SURNAME ? (uint8_t)fl : RV_VAULT_PC_LONG;
            if (fl >= RV_VAULT_PC_SURNAME)
                fl = RV_VAULT_PC_SURNAME - 1;
            memcpy(out->ns_forenames, nk.forenames, fl);
            out->has_ns = true;
        }
    }
    /* Each part of a surname of several (Smith-Jones: smith, jones) under the surname
     * family the entry uses, so that a donor who writes one part finds it. */
    out->nparts = 0;
    out->part_family = q.postcode != NULL ? RV_IDX_SURNAME_POSTCODE : RV_IDX_SURNAME;
    if (q.surname != NULL && nk.nsurname_tokens >= 2) {
        const char *tp = nk.surname_tokens;
        while (*tp != '\0' && out->nparts < RV_VAULT_PARTS) {
            size_t tl = strcspn(tp, " ");
            char part[RV_NAME_MAX];
            struct rv_index_query pq = q;
            if (tl >= 3 && tl < sizeof(part)) {
                memcpy(part, tp, tl);
                part[tl] = '\0';
                pq.surname = part;
                if (strcmp(part, nk.surname) != 0 &&
                    rv_index_value_cached(v, NULL, (enum rv_index)out->part_family, &pq,
                                          out->part[out->nparts], &len,
                                          out->part_tag[out->nparts]) == 0 &&
                    !part_clashes(out, len))
                    out->nparts++;
                sodium_memzero(part, sizeof(part));
            }
            tp += tl;
            while (*tp == ' ')
                tp++;
        }
    }
    if (sealer != NULL && sealer->bucket != 0) {
        rv_rec_header(v, seal_id, sealer->bucket, sealer->from, out->sealed);
        rv_rec_seal(v, sealer, seal_id, wire, (size_t)wlen, out->sealed + 30, &out->sealed_len);
        out->sealed_len += 30;
        out->sealed_bucket = sealer->bucket;
        out->sealed_id = seal_id;
        out->sealed_from = sealer->from;
        /* The index entries' check tags for that record id, so that the batch only copies
         * them. */
        for (int f = 1; f <= RV_IDX_COUNT; f++)
            if (out->idx_present & (1u << (f - 1)))
                rv_vault_index_tag(v, (uint8_t)f, out->idx[f - 1], ilen, seal_id,
                                   out->idx_tag[f - 1], out->idx_mtag[f - 1]);
        for (unsigned i = 0; i < out->nparts; i++)
            rv_vault_index_tag(v, out->part_family, out->part[i], ilen, seal_id, out->part_tag[i],
                               out->part_mtag[i]);
        out->tags_masked = true;
    }
    sodium_memzero(wire, sizeof(wire));
    sodium_memzero(&nk, sizeof(nk));
    sodium_memzero(&ak, sizeof(ak));
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Batches.
 */

struct area_state {
    rv_date last;
    uint64_t on_register, markers[RV_STAT_MARKERS], attainers, optout;
};

struct bucket_slot {
    int year;
    uint32_t bucket;
};

/* Blind-index keys wait here and go to the store sorted: written in key order they touch
 * each page of the index once instead of once per entry. Index values are uniform, so a
 * batch still touches (and the store copies) most leaf pages of the index: the cost of an
 * edition grows with the size of the whole index, not only with the edition. A layout
 * partitioned by area would bound it, at the price of one seek per area per lookup. */
#define IBUF_MAX     (1u << 20)
#define IBUF_BUCKETS (8u << 16)
#define IDLE_RUN_MIN (1u << 16)
struct ientry {
    uint8_t k[2 + RV_VAULT_INDEX_MAX + 8];
    uint8_t tag[4]; /* masked check tag: the entry's value */
};

/* In an area with nothing in force (its first edition), open entries wait here too and go
 * to the store sorted; a hash table over the buffer finds elector numbers repeated within
 * the file. Past OBUF_MAX rows the buffer is written and the rest of the file takes the
 * ordinary path. */
#define OBUF_MAX   (1u << 20)
#define OTAB_SLOTS (1u << 21)
struct oentry {
    uint8_t numkey[16];
    uint8_t val[OPEN_LEN];
};

/* An open entry's place in a sorted run: the first 8 bytes of its keyed number, and its
 * index in obuf. */
struct osort {
    uint64_t hi;
    uint32_t i;
};

/* A version waiting for its postcode's list: the list's key, the record id and the folded
 * surname words. Written at the end of the batch (or when PBUF_MAX wait), sorted by key. */
#define PBUF_MAX (1u << 20)
struct pentry {
    uint8_t key[16];
    uint64_t id;
    char pc[9];  /* compact postcode */
    uint8_t len; /* bytes of s, or RV_VAULT_PC_LONG */
    char s[RV_VAULT_PC_SURNAME];
};

/* A version waiting for its namesake list. */
#define RBUF_MAX (1u << 19)
struct rentry {
    uint8_t key[16];
    uint64_t id;
    char pc[9];         /* compact postcode */
    uint8_t slen, flen; /* bytes of s and f, or RV_VAULT_PC_LONG */
    char s[RV_VAULT_PC_SURNAME];
    char f[RV_VAULT_PC_SURNAME];
};

/* A version with no postcode waiting for its surname's list (or a part's). */
struct qentry {
    uint8_t key[16];
    uint64_t id;
    char s[RV_NAME_MAX]; /* folded surname words */
    char f[RV_NAME_MAX]; /* folded forenames */
    bool address;        /* address lines, not marked overseas */
};
/* list_order reads the key and the id of each at these places. */
_Static_assert(offsetof(struct pentry, id) == 16 && offsetof(struct rentry, id) == 16 &&
                   offsetof(struct qentry, id) == 16,
               "list entries start with key[16] and id");

struct rv_vault_batch {
    struct rv_vault *v;
    struct ientry *ibuf;
    size_t in;
    struct ientry *sbuf;   /* ibuf sorted, before it goes to the load as a run */
    uint32_t *icnt, *ocnt; /* counting-sort buckets, kept from sort to sort */
    struct oentry *obuf;
    uint64_t *otab; /* index + 1 into obuf, and bytes 4..7 of its keyed number above bit
                     * 32 so that most probes never touch obuf; 0 = empty slot */
    size_t on;
    size_t osorted;     /* obuf[0, osorted) sorted into runs (written, or in orun) */
    struct osort *orun; /* the latest run, sorted, written from opos on */
    size_t orun_n, opos;
    bool obuf_done; /* the buffer was written: no more buffering in this batch */
    struct rv_txn *t;
    uint8_t area[RV_AREA_LEN];
    struct area_state as;
    struct rv_file_stats fs;
    uint64_t next_id, first_new_id, max_appended;
    /* sodium memory: [0] the workers' sealer, [1] the applier's for other buckets, [2]
     * unused */
    struct rv_vault_sealer *sealers;
    uint8_t nonce_prefix[16];
    bool area_was_empty; /* no version in force in the area when the batch began */
    char (*dist)[8];     /* outward codes of the versions stored, for the district list */
    size_t ndist, dcap;
    char dlast[8];       /* the last one added (register files go street by street) */
    struct pentry *pbuf; /* versions stored, for the postcode lists (personal data) */
    size_t pn, pcap;
    struct qentry *qbuf; /* versions with no postcode, for the surname lists (personal data) */
    size_t qn, qcap;
    struct rentry *rbuf; /* versions for the namesake lists (personal data) */
    size_t rn, rcap;
    struct bucket_slot buckets[8];
    size_t nbuckets;
    int err; /* sticky */
    struct rv_vault_load *load;
    bool own_load; /* begun by rv_vault_batch_begin: committed with the batch */
    bool ended;    /* rv_vault_batch_commit wrote it all: freeing it leaves the load alive */
};

/* A sorted run of deferred writes (see "Deferred writes of a load"). */
struct drun {
    uint8_t *mem;    /* the packed entries, while in memory (NULL once spilled) */
    size_t len, cap; /* bytes of packed entries; bytes mapped for them */
    uint64_t off;    /* spilled: offset of its first block in the scratch file */
    uint64_t block0; /* spilled: the number of its first block (each block's nonce) */
    uint64_t nblocks;
};

/* A load: the write transaction that the batches of its files share, and the writes they
 * deferred to its end. */
struct rv_vault_load {
    struct rv_vault *v;
    struct rv_txn *t;
    bool batch_open;
    int err;           /* sticky: a batch began and did not end */
    struct drun *runs; /* runs[0, spilled) in the scratch file, the rest in memory */
    size_t nruns, rcap, spilled;
    size_t mem, budget; /* bytes of the runs in memory; their most before a spill */
    int fd;             /* the scratch file, -1 until the first spill */
    uint64_t fsize, nblocks;
    /* sodium memory: the scratch file's key (random, never written), and the lists'
     * sealer (subkey of list_nonce's prefix under key 40) */
    uint8_t *skey;
    struct rv_vault_sealer *ls;
    uint8_t list_nonce[24]; /* random per load; bytes 16..23 count the lists sealed */
};

/* The open-version entry ('O'). */
struct open_entry {
    uint64_t id;
    uint8_t chash[16];
    uint32_t seen;
    uint16_t markers;
    uint8_t flags; /* 1 attainer, 2 opt-out, 4 other markers */
    rv_date from;
};

/* Markers and flags are personal (a postal voter, an attainer) and are only needed by the
 * counters, so they are stored masked with a keyed pad unique to the version. */
static void open_pad(const struct rv_vault *v, uint64_t id, const uint8_t *numkey, uint8_t pad[16])
{
    uint8_t in[4 + 8 + 16];

    memcpy(in, "rvom", 4);
    rv_put_u64le(in + 4, id);
    memcpy(in + 12, numkey, 16);
    rv_vault_sip(v->k->sip_recmac, in, sizeof(in), pad);
}

static void open_encode(const struct rv_vault *v, const uint8_t *numkey, const struct open_entry *o,
                        uint8_t buf[OPEN_LEN])
{
    uint8_t pad[16];

    open_pad(v, o->id, numkey, pad);
    rv_put_u64le(buf, o->id);
    memcpy(buf + 8, o->chash, 16);
    rv_put_u32le(buf + 24, o->seen);
    buf[28] = (uint8_t)o->markers ^ pad[0];
    buf[29] = (uint8_t)(o->markers >> 8) ^ pad[1];
    buf[30] = o->flags ^ pad[2];
    rv_put_u32le(buf + 31, (uint32_t)o->from);
}

static int open_decode(const struct rv_vault *v, const uint8_t *numkey, const uint8_t *buf,
                       size_t len, struct open_entry *o)
{
    uint8_t pad[16];

    if (len != OPEN_LEN)
        return RV_ECORRUPT;
    o->id = rv_get_u64le(buf);
    open_pad(v, o->id, numkey, pad);
    memcpy(o->chash, buf + 8, 16);
    o->seen = rv_get_u32le(buf + 24);
    o->markers = (uint16_t)((buf[28] ^ pad[0]) | (buf[29] ^ pad[1]) << 8);
    o->flags = buf[30] ^ pad[2];
    o->from = (rv_date)rv_get_u32le(buf + 31);
    return 0;
}

static void area_decode(const uint8_t *p, struct area_state *a)
{
    a->last = (rv_date)rv_get_u32le(p);
    p += 4;
    a->on_register = rv_get_u64le(p);
    for (int i = 0; i < RV_STAT_MARKERS; i++)
        a->markers[i] = rv_get_u64le(p + 8 + 8 * i);
    a->attainers = rv_get_u64le(p + 8 + 8 * RV_STAT_MARKERS);
    a->optout = rv_get_u64le(p + 16 + 8 * RV_STAT_MARKERS);
}

static void area_encode(const struct area_state *a, uint8_t *p)
{
    rv_put_u32le(p, (uint32_t)a->last);
    p += 4;
    rv_put_u64le(p, a->on_register);
    for (int i = 0; i < RV_STAT_MARKERS; i++)
        rv_put_u64le(p + 8 + 8 * i, a->markers[i]);
    rv_put_u64le(p + 8 + 8 * RV_STAT_MARKERS, a->attainers);
    rv_put_u64le(p + 16 + 8 * RV_STAT_MARKERS, a->optout);
}

static void stats_encode(const struct rv_file_stats *s, uint8_t *p)
{
    const uint64_t *f[] = {&s->rows,      &s->stored,  &s->unchanged,  &s->closed,
                           &s->anonymous, &s->invalid, &s->on_register};
    size_t o = 25;

    memcpy(p, s->area, 16);
    p[16] = (uint8_t)s->kind;
    rv_put_u32le(p + 17, (uint32_t)s->date);
    rv_put_u32le(p + 21, s->seq);
    for (size_t i = 0; i < 7; i++, o += 8)
        rv_put_u64le(p + o, *f[i]);
    for (int i = 0; i < RV_STAT_MARKERS; i++, o += 8)
        rv_put_u64le(p + o, s->markers[i]);
    rv_put_u64le(p + o, s->attainers);
    rv_put_u64le(p + o + 8, s->optout);
    memcpy(p + o + 16, s->file_hash, 32);
    rv_put_u32le(p + o + 48, (uint32_t)s->eff_first);
    rv_put_u32le(p + o + 52, (uint32_t)s->eff_last);
}

static int stats_decode(const uint8_t *p, size_t len, struct rv_file_stats *s)
{
    uint64_t *f[] = {&s->rows,      &s->stored,  &s->unchanged,  &s->closed,
                     &s->anonymous, &s->invalid, &s->on_register};
    size_t o = 25;

    if (len != STATS_LEN || p[15] != 0)
        return RV_ECORRUPT;
    memset(s, 0, sizeof(*s));
    memcpy(s->area, p, 16);
    s->kind = (enum rv_file_kind)p[16];
    s->date = (rv_date)rv_get_u32le(p + 17);
    s->seq = rv_get_u32le(p + 21);
    for (size_t i = 0; i < 7; i++, o += 8)
        *f[i] = rv_get_u64le(p + o);
    for (int i = 0; i < RV_STAT_MARKERS; i++, o += 8)
        s->markers[i] = rv_get_u64le(p + o);
    s->attainers = rv_get_u64le(p + o);
    s->optout = rv_get_u64le(p + o + 8);
    memcpy(s->file_hash, p + o + 16, 32);
    s->eff_first = (rv_date)rv_get_u32le(p + o + 48);
    s->eff_last = (rv_date)rv_get_u32le(p + o + 52);
    return 0;
}

struct stats_ctx {
    rv_vault_stats_fn fn;
    void *ctx;
};

static int stats_one(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    struct stats_ctx *c = ctx;
    struct rv_file_stats s;
    int rc;

    (void)key;
    (void)klen;
    rc = stats_decode(val, vlen, &s);
    if (rc != 0)
        return rc;
    return c->fn(c->ctx, &s);
}

int rv_vault_stats(struct rv_vault *v, rv_vault_stats_fn fn, void *ctx)
{
    struct stats_ctx c = {fn, ctx};
    struct rv_txn *t = NULL;
    int rc;

    rc = rv_store_begin(v->store, false, &t);
    if (rc != 0)
        return rc;
    rc = rv_store_scan(t, "S", 1, stats_one, &c);
    rv_store_abort(t);
    return rc;
}

static int file_seen_txn(struct rv_txn *t, const uint8_t hash[32], struct rv_file_stats *st)
{
    uint8_t key[33], skey[1 + RV_AREA_LEN + 4];
    const void *val;
    size_t vlen;
    int rc;

    key[0] = 'F';
    memcpy(key + 1, hash, 32);
    rc = rv_store_get(t, key, sizeof(key), &val, &vlen);
    if (rc != 0)
        return rc;
    if (vlen != RV_AREA_LEN + 4)
        return RV_ECORRUPT;
    skey[0] = 'S';
    memcpy(skey + 1, val, RV_AREA_LEN);
    rv_put_u32be(skey + 1 + RV_AREA_LEN, rv_get_u32le((const uint8_t *)val + RV_AREA_LEN));
    rc = rv_store_get(t, skey, sizeof(skey), &val, &vlen);
    if (rc == RV_ENOTFOUND)
        return RV_ECORRUPT;
    if (rc != 0)
        return rc;
    return stats_decode(val, vlen, st);
}

int rv_vault_file_seen(struct rv_vault *v, const uint8_t hash[32], struct rv_file_stats *st)
{
    struct rv_txn *t = NULL;
    int rc;

    rc = rv_store_begin(v->store, false, &t);
    if (rc != 0)
        return rc;
    rc = file_seen_txn(t, hash, st);
    rv_store_abort(t);
    return rc;
}

int rv_vault_current(struct rv_vault *v, const char *area, const struct rv_elector_number *num,
                     uint64_t *id)
{
    uint8_t key[1 + RV_AREA_LEN + 16];
    const void *val;
    size_t vlen;
    struct open_entry o;
    struct rv_txn *t = NULL;
    int rc;

    key[0] = 'O';
    rc = rv_vault_area_key(area, key + 1);
    if (rc == 0)
        rc = number_key(v, area, num, key + 1 + RV_AREA_LEN);
    if (rc != 0)
        return rc;
    rc = rv_store_begin(v->store, false, &t);
    if (rc != 0)
        return rc;
    rc = rv_store_get(t, key, sizeof(key), &val, &vlen);
    if (rc == 0)
        rc = open_decode(v, key + 1 + RV_AREA_LEN, val, vlen, &o);
    if (rc == 0)
        *id = o.id;
    rv_store_abort(t);
    return rc;
}

static int year_of(rv_date d)
{
    int y, m, dd;

    rv_date_to_ymd(d, &y, &m, &dd);
    return y;
}

/* The bucket (area x year of `from`), created with a fresh data key when new. */
static int bucket_for(struct rv_vault_batch *b, rv_date from, uint32_t *out)
{
    uint8_t key[1 + RV_AREA_LEN + 2], val[4];
    const void *vp;
    size_t vlen;
    uint64_t n;
    int year = year_of(from), rc;

    for (size_t i = 0; i < b->nbuckets; i++)
        if (b->buckets[i].year == year) {
            *out = b->buckets[i].bucket;
            return 0;
        }
    if (year < 0 || year > 65535)
        return RV_EINVAL;
    key[0] = 'B';
    memcpy(key + 1, b->area, RV_AREA_LEN);
    rv_put_u16be(key + 1 + RV_AREA_LEN, (uint16_t)year);
    rc = rv_store_get(b->t, key, sizeof(key), &vp, &vlen);
    if (rc == 0) {
        if (vlen != 4)
            return RV_ECORRUPT;
        *out = rv_get_u32le(vp);
    } else if (rc == RV_ENOTFOUND) {
        rc = rv_vault_counter_get(b->t, "bkt", &n);
        if (rc != 0)
            return rc;
        if (n >= UINT32_MAX - 1)
            return RV_ETOOBIG;
        *out = (uint32_t)(n + 1);
        rv_put_u32le(val, *out);
        rc = rv_vault_counter_put(b->t, "bkt", n + 1);
        if (rc == 0) {
            /* A bucket of this number may have been made by a load that was abandoned
             * (redone without a refused file, or with more room): its key, never stored,
             * may still be in the cache of data keys, and must not seal anything now. */
            size_t slot = *out % RV_KEYCACHE;
            pthread_mutex_lock(&b->v->cache_lock);
            if (b->v->cache_bucket[slot] == *out) {
                b->v->cache_bucket[slot] = 0;
                sodium_memzero(b->v->k->cache[slot], 32);
            }
            pthread_mutex_unlock(&b->v->cache_lock);
            rc = rv_vault_new_data_key(b->v, b->t, *out);
        }
        if (rc == 0)
            rc = rv_store_put(b->t, key, sizeof(key), val, sizeof(val));
        if (rc != 0)
            return rc;
    } else {
        return rc;
    }
    if (b->nbuckets < sizeof(b->buckets) / sizeof(b->buckets[0])) {
        b->buckets[b->nbuckets].year = year;
        b->buckets[b->nbuckets].bucket = *out;
        b->nbuckets++;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Deferred writes of a load. Blind-index entries and the sealed lists' additions are read
 * only by checks, never by a later file of the same load, and their keys are keyed hashes
 * spread over the whole key space: written file by file, each file's writes would touch
 * nearly every page of the indexes and lists again, and the kernel, writing the load's
 * dirty pages back while it runs, would write most of them once per file. So each batch
 * hands its sorted runs of such writes to the load, and the load writes them all at its
 * end in one ascending pass over the key space (a merge of the runs), each page touched
 * once, each list read, extended and sealed once.
 *
 * A run is a sequence of packed entries in key order: key length (u8), value length
 * (u16 LE), key, value. For a list, the value is the bytes the entry adds to the list's
 * body, and entries of one key keep the order of their runs, so that a list grows exactly
 * as if each batch had written its own additions. Runs wait in memory up to a budget; past
 * it, those in memory are merged into one run in a scratch file of the store (without a
 * name, so that nothing of it outlives the load, even a crash). A spilled run holds
 * personal data (names, postcodes), so it is sealed in blocks with ChaCha20-Poly1305 under
 * a random key of the load's, held in sodium memory and never written; a block's nonce is
 * its number in the file, and its length is additional data.
 */
#define DEFER_MEM     (24u << 20) /* bytes of runs a load keeps in memory */
#define SPILL_BLOCK   (64u << 10) /* plaintext bytes of a sealed block, at most */
#define SPILL_HDR     4           /* the ciphertext's length (u32 LE) in front of each block */
#define DENTRY_HDR    3
#define LIST_BODY_MAX (PCL_BODY + 512)

/* A growing run of packed entries. */
struct dbuf {
    uint8_t *p;
    size_t len, cap;
};

/* Maps room for cap bytes: callers know the most their run holds, and only the pages used
 * are touched. Runs are mapped and unmapped whole rather than taken from the heap, whose
 * allocator would keep the pages of the many large runs a load makes and frees. */
static int dbuf_init(struct dbuf *d, size_t cap)
{
    void *p;

    d->len = 0;
    d->cap = cap > 0 ? cap : 1;
    p = mmap(NULL, d->cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    d->p = p == MAP_FAILED ? NULL : p;
    return d->p == NULL ? RV_ENOMEM : 0;
}

static void run_unmap(uint8_t *p, size_t len, size_t cap)
{
    if (p != NULL) {
        sodium_memzero(p, len);
        munmap(p, cap);
    }
}

static void dbuf_free(struct dbuf *d)
{
    run_unmap(d->p, d->len, d->cap);
    d->p = NULL;
    d->len = d->cap = 0;
}

/* Appends an entry; the caller's cap covers it. */
static void dbuf_put(struct dbuf *d, const uint8_t *key, size_t klen, const void *val, size_t vlen)
{
    uint8_t *e = d->p + d->len;

    e[0] = (uint8_t)klen;
    e[1] = (uint8_t)vlen;
    e[2] = (uint8_t)(vlen >> 8);
    memcpy(e + DENTRY_HDR, key, klen);
    memcpy(e + DENTRY_HDR + klen, val, vlen);
    d->len += DENTRY_HDR + klen + vlen;
}

static size_t dentry_len(const uint8_t *e)
{
    return DENTRY_HDR + e[0] + ((size_t)e[1] | (size_t)e[2] << 8);
}

/* A run being read by a merge: the entries left in its current block (or in memory). */
struct dsrc {
    const uint8_t *p, *end;
    const struct drun *r;
    uint64_t foff, block, left; /* spilled: next block's offset and number, blocks left */
    uint8_t *blk;               /* spilled: the opened block (wiped when done) */
};

static int read_full(int fd, void *buf, size_t n, uint64_t off)
{
    uint8_t *p = buf;

    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return RV_EIO;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n, uint64_t off)
{
    const uint8_t *p = buf;

    while (n > 0) {
        ssize_t r = pwrite(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return RV_EIO; /* a full disk too (errno tells): not the map's room, which more
                            * reserve would give */
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static void spill_nonce(uint64_t block, uint8_t npub[crypto_aead_chacha20poly1305_ietf_NPUBBYTES])
{
    memset(npub, 0, crypto_aead_chacha20poly1305_ietf_NPUBBYTES);
    rv_put_u64le(npub + 4, block);
}

/* Opens a spilled run's next block into s->blk. */
static int src_next_block(const struct rv_vault_load *l, struct dsrc *s, uint8_t *ct)
{
    uint8_t npub[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
    unsigned long long plen;
    uint32_t clen;
    int rc;

    rc = read_full(l->fd, ct, SPILL_HDR, s->foff);
    if (rc != 0)
        return rc;
    clen = rv_get_u32le(ct);
    if (clen < crypto_aead_chacha20poly1305_ietf_ABYTES ||
        clen > SPILL_BLOCK + crypto_aead_chacha20poly1305_ietf_ABYTES)
        return RV_ECORRUPT;
    rc = read_full(l->fd, ct + SPILL_HDR, clen, s->foff + SPILL_HDR);
    if (rc != 0)
        return rc;
    spill_nonce(s->block, npub);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(s->blk, &plen, NULL, ct + SPILL_HDR, clen, ct,
                                                  SPILL_HDR, npub, l->skey) != 0)
        return RV_ECORRUPT;
    s->foff += SPILL_HDR + clen;
    s->block++;
    s->left--;
    s->p = s->blk;
    s->end = s->blk + plen;
    return 0;
}

/* 1 with s->p at its next entry, 0 when the run is done, or a negative code. */
static int src_ready(const struct rv_vault_load *l, struct dsrc *s, uint8_t *ct)
{
    int rc;

    while (s->p == s->end) {
        if (s->r->mem != NULL || s->left == 0)
            return 0;
        if ((rc = src_next_block(l, s, ct)) != 0)
            return rc;
    }
    if (s->p + DENTRY_HDR > s->end || s->p + dentry_len(s->p) > s->end)
        return RV_ECORRUPT;
    return 1;
}

/* Key order, then the order of the runs. */
static bool src_before(const struct dsrc *a, size_t ia, const struct dsrc *b, size_t ib)
{
    size_t ka = a->p[0], kb = b->p[0];
    int c = memcmp(a->p + DENTRY_HDR, b->p + DENTRY_HDR, ka < kb ? ka : kb);

    if (c != 0)
        return c < 0;
    if (ka != kb)
        return ka < kb;
    return ia < ib;
}

typedef int (*dsink_fn)(void *ctx, const uint8_t *entry);

static void heap_down(const struct dsrc *src, size_t *heap, size_t n, size_t i)
{
    for (;;) {
        size_t m = i, a = 2 * i + 1, c = a + 1;
        if (a < n && src_before(&src[heap[a]], heap[a], &src[heap[m]], heap[m]))
            m = a;
        if (c < n && src_before(&src[heap[c]], heap[c], &src[heap[m]], heap[m]))
            m = c;
        if (m == i)
            return;
        size_t t = heap[i];
        heap[i] = heap[m];
        heap[m] = t;
        i = m;
    }
}

/* Feeds the entries of runs [from, to) to sink in key order (equal keys in run order). */
static int defer_merge(struct rv_vault_load *l, size_t from, size_t to, dsink_fn sink, void *ctx)
{
    size_t n = to - from, hn = 0;
    struct dsrc *src = calloc(n > 0 ? n : 1, sizeof(*src));
    size_t *heap = malloc((n > 0 ? n : 1) * sizeof(*heap));
    uint8_t *ct = malloc(SPILL_HDR + SPILL_BLOCK + crypto_aead_chacha20poly1305_ietf_ABYTES);
    int rc = 0;

    if (src == NULL || heap == NULL || ct == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct drun *r = &l->runs[from + i];
        src[i].r = r;
        if (r->mem != NULL) {
            src[i].p = r->mem;
            src[i].end = r->mem + r->len;
        } else {
            src[i].foff = r->off;
            src[i].block = r->block0;
            src[i].left = r->nblocks;
            if ((src[i].blk = malloc(SPILL_BLOCK)) == NULL)
                rc = RV_ENOMEM;
        }
        if (rc == 0 && (rc = src_ready(l, &src[i], ct)) == 1) {
            heap[hn++] = i;
            rc = 0;
        }
    }
    for (size_t i = hn / 2; i-- > 0;)
        heap_down(src, heap, hn, i);
    while (rc == 0 && hn > 0) {
        struct dsrc *s = &src[heap[0]];
        rc = sink(ctx, s->p);
        if (rc != 0)
            break;
        s->p += dentry_len(s->p);
        rc = src_ready(l, s, ct);
        if (rc < 0)
            break;
        if (rc == 0)
            heap[0] = heap[--hn];
        rc = 0;
        heap_down(src, heap, hn, 0);
    }
out:
    if (src != NULL)
        for (size_t i = 0; i < n; i++)
            if (src[i].blk != NULL) {
                sodium_memzero(src[i].blk, SPILL_BLOCK);
                free(src[i].blk);
            }
    free(src);
    free(heap);
    free(ct);
    return rc;
}

/* Writes merged entries into a new run of the scratch file, in sealed blocks. */
struct spill_writer {
    struct rv_vault_load *l;
    struct drun run;
    uint8_t *blk, *ct;
    size_t blen;
};

static int spill_block(struct spill_writer *w)
{
    struct rv_vault_load *l = w->l;
    uint8_t npub[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
    size_t clen = w->blen + crypto_aead_chacha20poly1305_ietf_ABYTES;
    int rc;

    if (w->blen == 0)
        return 0;
    rv_put_u32le(w->ct, (uint32_t)clen);
    spill_nonce(l->nblocks, npub);
    crypto_aead_chacha20poly1305_ietf_encrypt(w->ct + SPILL_HDR, NULL, w->blk, w->blen, w->ct,
                                              SPILL_HDR, NULL, npub, l->skey);
    rc = write_full(l->fd, w->ct, SPILL_HDR + clen, l->fsize);
    if (rc != 0)
        return rc;
    l->fsize += SPILL_HDR + clen;
    l->nblocks++;
    w->run.nblocks++;
    sodium_memzero(w->blk, w->blen);
    w->blen = 0;
    return 0;
}

static int spill_sink(void *ctx, const uint8_t *e)
{
    struct spill_writer *w = ctx;
    size_t n = dentry_len(e);
    int rc;

    if (w->blen + n > SPILL_BLOCK && (rc = spill_block(w)) != 0)
        return rc;
    memcpy(w->blk + w->blen, e, n);
    w->blen += n;
    return 0;
}

static void run_free(struct drun *r)
{
    run_unmap(r->mem, r->len, r->cap);
    memset(r, 0, sizeof(*r));
}

/* Merges the runs in memory into one run in the scratch file. */
static int defer_spill(struct rv_vault_load *l)
{
    struct spill_writer w = {.l = l};
    int rc;

    if (l->fd < 0) {
        rc = rv_store_scratch_file(rv_vault_store(l->v), &l->fd);
        if (rc != 0)
            return rc;
    }
    if (l->skey == NULL) {
        if ((l->skey = sodium_malloc(crypto_aead_chacha20poly1305_ietf_KEYBYTES)) == NULL)
            return RV_ENOMEM;
        crypto_aead_chacha20poly1305_ietf_keygen(l->skey);
    }
    w.blk = malloc(SPILL_BLOCK);
    w.ct = malloc(SPILL_HDR + SPILL_BLOCK + crypto_aead_chacha20poly1305_ietf_ABYTES);
    if (w.blk == NULL || w.ct == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    w.run.off = l->fsize;
    w.run.block0 = l->nblocks;
    rc = defer_merge(l, l->spilled, l->nruns, spill_sink, &w);
    if (rc == 0)
        rc = spill_block(&w);
    if (rc != 0)
        goto out;
    for (size_t i = l->spilled; i < l->nruns; i++) {
        w.run.len += l->runs[i].len;
        run_free(&l->runs[i]);
    }
    l->runs[l->spilled++] = w.run;
    l->nruns = l->spilled;
    l->mem = 0;
out:
    if (w.blk != NULL) {
        sodium_memzero(w.blk, SPILL_BLOCK);
        free(w.blk);
    }
    free(w.ct);
    return rc;
}

/* Hands a sorted run to the load (which takes its memory). */
static int defer_run(struct rv_vault_load *l, struct dbuf *d)
{
    struct drun *r;

    if (d->len == 0) {
        dbuf_free(d);
        return 0;
    }
    if (l->nruns == l->rcap) {
        size_t nc = l->rcap != 0 ? l->rcap * 2 : 64;
        struct drun *nr = realloc(l->runs, nc * sizeof(*nr));
        if (nr == NULL)
            return RV_ENOMEM;
        l->runs = nr;
        l->rcap = nc;
    }
    r = &l->runs[l->nruns++];
    memset(r, 0, sizeof(*r));
    r->mem = d->p;
    r->len = d->len;
    r->cap = d->cap;
    l->mem += d->len;
    d->p = NULL;
    d->len = d->cap = 0;
    if (l->mem > l->budget)
        return defer_spill(l);
    return 0;
}

/* Seals a list's body into val: nonce[24] || ciphertext || tag[16], with
 * XChaCha20-Poly1305 under key 40. The nonce is the load's random prefix and a count of
 * the lists it sealed, unique without asking the kernel for randomness once per list; as
 * in rv_rec_seal(), the XChaCha20 subkey of that prefix is derived once per load (held in
 * the load's sodium memory), and each list needs only the ChaCha20-Poly1305 (IETF) step with
 * nonce 0^4 || count: the same bytes as crypto_aead_xchacha20poly1305_ietf_encrypt. */
static void list_seal(struct rv_vault_load *l, const uint8_t *body, size_t blen,
                      const uint8_t ad[36], uint8_t *val)
{
    struct rv_vault_sealer *s = l->ls;
    uint8_t npub[crypto_aead_chacha20poly1305_ietf_NPUBBYTES] = {0};
    uint64_t n = rv_get_u64le(l->list_nonce + 16);

    if (s->bucket == 0) {
        crypto_core_hchacha20(s->subkey, l->list_nonce, l->v->k->pclist, NULL);
        s->bucket = 1; /* made */
    }
    memcpy(val, l->list_nonce, 24);
    rv_put_u64le(l->list_nonce + 16, n + 1);
    memcpy(npub + 4, val + 16, 8);
    crypto_aead_chacha20poly1305_ietf_encrypt(val + PCL_HDR, NULL, body, blen, ad, 36, NULL, npub,
                                              s->subkey);
}

/* Writes merged entries to the store: index entries as they come, a list's additions
 * appended to its stored body, sealed and written once the last of its key has come. */
struct store_sink {
    struct rv_vault_load *l;
    uint8_t key[17]; /* the list being extended, when open */
    bool open;
    uint8_t *body, *val;
    size_t blen;
};

static int list_close(struct store_sink *k)
{
    struct rv_vault *v = k->l->v;
    uint8_t ad[36];
    int rc;

    k->open = false;
    if (k->key[0] == 'P')
        rv_pc_list_ad(v, k->key, ad);
    else if (k->key[0] == 'Q')
        rv_nopc_list_ad(v, k->key, ad);
    else
        rv_ns_list_ad(v, k->key, ad);
    list_seal(k->l, k->body, k->blen, ad, k->val);
    rc = rv_store_put_run(k->l->t, k->key, sizeof(k->key), k->val, PCL_HDR + k->blen + 16);
    sodium_memzero(k->body, k->blen);
    k->blen = 0;
    return rc;
}

static int list_start(struct store_sink *k, const uint8_t *key)
{
    struct rv_vault *v = k->l->v;
    const void *old;
    size_t olen;
    int rc;

    memcpy(k->key, key, sizeof(k->key));
    k->blen = 0;
    rc = rv_store_get_run(k->l->t, k->key, sizeof(k->key), &old, &olen);
    if (rc == RV_ENOTFOUND)
        rc = 0;
    else if (rc == 0 && olen > LIST_BODY_MAX)
        rc = RV_ECORRUPT;
    else if (rc == 0 && k->key[0] == 'P')
        rc = rv_pc_list_open(v, k->key, old, olen, k->body, &k->blen);
    else if (rc == 0 && k->key[0] == 'Q')
        rc = rv_nopc_list_open(v, k->key, old, olen, k->body, &k->blen);
    else if (rc == 0)
        rc = rv_ns_list_open(v, k->key, old, olen, k->body, &k->blen);
    k->open = rc == 0;
    return rc;
}

static int store_sink(void *ctx, const uint8_t *e)
{
    struct store_sink *k = ctx;
    size_t klen = e[0], vlen = (size_t)e[1] | (size_t)e[2] << 8;
    const uint8_t *key = e + DENTRY_HDR, *val = key + klen;
    int rc;

    if (key[0] == 'I') {
        if (k->open && (rc = list_close(k)) != 0)
            return rc;
        return rv_store_put_run(k->l->t, key, klen, val, vlen);
    }
    if (klen != sizeof(k->key) || (key[0] != 'P' && key[0] != 'Q' && key[0] != 'R'))
        return RV_ECORRUPT;
    if (!k->open || memcmp(k->key, key, klen) != 0) {
        if (k->open && (rc = list_close(k)) != 0)
            return rc;
        if ((rc = list_start(k, key)) != 0)
            return rc;
    }
    /* A full list takes no more: it is only an aid to the typo search, and the indexes
     * still find the versions left out. */
    if (k->blen + vlen <= PCL_BODY) {
        memcpy(k->body + k->blen, val, vlen);
        k->blen += vlen;
    }
    return 0;
}

/* Writes every deferred run to the store. */
static int defer_finish(struct rv_vault_load *l)
{
    struct store_sink k = {.l = l};
    int rc;

    if (l->nruns == 0)
        return 0;
    k.body = malloc(LIST_BODY_MAX);
    k.val = malloc(PCL_HDR + LIST_BODY_MAX + 16);
    if (k.body == NULL || k.val == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    rc = defer_merge(l, 0, l->nruns, store_sink, &k);
    if (rc == 0 && k.open)
        rc = list_close(&k);
out:
    if (k.body != NULL) {
        sodium_memzero(k.body, LIST_BODY_MAX);
        free(k.body);
    }
    free(k.val);
    return rc;
}

static void defer_free(struct rv_vault_load *l)
{
    for (size_t i = 0; i < l->nruns; i++)
        run_free(&l->runs[i]);
    free(l->runs);
    l->runs = NULL;
    l->nruns = l->rcap = l->spilled = l->mem = 0;
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    if (l->skey != NULL)
        sodium_free(l->skey);
    l->skey = NULL;
    if (l->ls != NULL)
        sodium_free(l->ls);
    l->ls = NULL;
}

int rv_vault_load_begin(struct rv_vault *v, struct rv_vault_load **out)
{
    struct rv_vault_load *l = calloc(1, sizeof(*l));
    int rc;

    *out = NULL;
    if (l == NULL)
        return RV_ENOMEM;
    l->v = v;
    l->fd = -1;
    l->budget = DEFER_MEM;
    l->ls = sodium_malloc(sizeof(*l->ls));
    if (l->ls == NULL) {
        free(l);
        return RV_ENOMEM;
    }
    sodium_memzero(l->ls, sizeof(*l->ls)); /* bucket 0: subkey not yet made */
    randombytes_buf(l->list_nonce, 16);
    rc = rv_store_begin(v->store, true, &l->t);
    if (rc != 0) {
        rv_vault_load_abort(l);
        return rc;
    }
    *out = l;
    return 0;
}

void rv_vault_load_spill_budget(struct rv_vault_load *l, size_t bytes)
{
    l->budget = bytes;
}

int rv_vault_load_spill_fd(const struct rv_vault_load *l)
{
    return l->fd;
}

int rv_vault_load_file_seen(struct rv_vault_load *l, const uint8_t hash[32],
                            struct rv_file_stats *st)
{
    if (l->err != 0)
        return l->err;
    return file_seen_txn(l->t, hash, st);
}

int rv_vault_load_commit(struct rv_vault_load *l)
{
    int rc = l->err != 0 ? l->err : l->batch_open ? RV_EINVAL : 0;

    if (rc == 0)
        rc = defer_finish(l);
    defer_free(l); /* the scratch file goes before the commit makes its writes durable */
    if (rc == 0) {
        rc = rv_store_commit(l->t);
        l->t = NULL;
    }
    rv_vault_load_abort(l);
    return rc;
}

void rv_vault_load_abort(struct rv_vault_load *l)
{
    if (l == NULL)
        return;
    defer_free(l);
    rv_store_abort(l->t);
    free(l);
}

int rv_vault_batch_begin(struct rv_vault *v, const char *area, enum rv_file_kind kind, rv_date date,
                         const uint8_t file_hash[32], struct rv_vault_batch **out)
{
    struct rv_vault_load *l = NULL;
    int rc;

    *out = NULL;
    rc = rv_vault_load_begin(v, &l);
    if (rc != 0)
        return rc;
    rc = rv_vault_batch_begin_in(l, area, kind, date, file_hash, out);
    if (rc != 0) {
        rv_vault_load_abort(l);
        return rc;
    }
    (*out)->own_load = true;
    return 0;
}

int rv_vault_batch_begin_in(struct rv_vault_load *l, const char *area, enum rv_file_kind kind,
                            rv_date date, const uint8_t file_hash[32], struct rv_vault_batch **out)
{
    struct rv_vault *v = l->v;
    struct rv_vault_batch *b = NULL;
    uint8_t key[1 + RV_AREA_LEN];
    struct rv_file_stats seen;
    const void *val;
    size_t vlen;
    uint64_t n;
    int rc;

    *out = NULL;
    if (l->err != 0)
        return l->err;
    if (l->batch_open)
        return RV_EINVAL;
    if (kind != RV_FILE_EDITION && kind != RV_FILE_ALTERATIONS)
        return RV_EINVAL;
    if (date == RV_DATE_NONE || date == RV_DATE_FOREVER)
        return RV_EINVAL;
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return RV_ENOMEM;
    b->v = v;
    b->load = l;
    b->ended = true; /* until it is handed out: nothing written */
    b->t = l->t;
    randombytes_buf(b->nonce_prefix, sizeof(b->nonce_prefix));
    b->sealers = sodium_malloc(3 * sizeof(*b->sealers));
    if (b->sealers == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    sodium_memzero(b->sealers, 3 * sizeof(*b->sealers)); /* bucket 0: not yet made */
    rc = rv_vault_area_key(area, b->area);
    if (rc != 0)
        goto out;
    rc = file_seen_txn(b->t, file_hash, &seen);
    if (rc == 0) {
        rc = RV_EEXIST;
        goto out;
    }
    if (rc != RV_ENOTFOUND)
        goto out;
    key[0] = 'A';
    memcpy(key + 1, b->area, RV_AREA_LEN);
    rc = rv_store_get(b->t, key, sizeof(key), &val, &vlen);
    if (rc == 0) {
        if (vlen != AREA_LEN) {
            rc = RV_ECORRUPT;
            goto out;
        }
        area_decode(val, &b->as);
    } else if (rc == RV_ENOTFOUND) {
        b->as.last = RV_DATE_NONE;
    } else {
        goto out;
    }
    b->area_was_empty = b->as.on_register == 0;
    if (kind == RV_FILE_EDITION && b->as.last != RV_DATE_NONE && date < b->as.last) {
        rc = RV_EINVAL;
        goto out;
    }
    rc = rv_vault_counter_get(b->t, "rec", &n);
    if (rc != 0)
        goto out;
    b->next_id = n == 0 ? 1 : n;
    b->first_new_id = b->next_id;
    b->max_appended = 0;
    rc = rv_vault_counter_get(b->t, "seq", &n);
    if (rc != 0)
        goto out;
    if (n >= UINT32_MAX) {
        rc = RV_ETOOBIG;
        goto out;
    }
    memcpy(b->fs.area, b->area, RV_AREA_LEN);
    b->fs.kind = kind;
    b->fs.date = date;
    b->fs.seq = (uint32_t)(n + 1);
    b->fs.eff_first = RV_DATE_NONE;
    b->fs.eff_last = RV_DATE_NONE;
    memcpy(b->fs.file_hash, file_hash, 32);
    b->ended = false;
    l->batch_open = true;
    *out = b;
    b = NULL;
out:
    if (b != NULL)
        rv_vault_batch_abort(b);
    return rc;
}

void rv_vault_batch_abort(struct rv_vault_batch *b)
{
    if (b == NULL)
        return;
    if (!b->ended) {
        b->load->batch_open = false;
        if (b->load->err == 0)
            b->load->err = RV_EINVAL;
    }
    if (b->own_load)
        rv_vault_load_abort(b->load);
    if (b->sealers != NULL) {
        sodium_memzero(b->sealers, 3 * sizeof(*b->sealers));
        sodium_free(b->sealers);
    }
    free(b->ibuf);
    free(b->sbuf);
    free(b->icnt);
    free(b->ocnt);
    if (b->orun != NULL)
        sodium_memzero(b->orun, b->orun_n * sizeof(*b->orun));
    free(b->orun);
    if (b->obuf != NULL)
        sodium_memzero(b->obuf, b->on * sizeof(*b->obuf));
    free(b->obuf);
    free(b->otab);
    if (b->pbuf != NULL)
        sodium_memzero(b->pbuf, b->pn * sizeof(*b->pbuf)); /* flushes wipe the rest */
    free(b->pbuf);
    if (b->qbuf != NULL)
        sodium_memzero(b->qbuf, b->qn * sizeof(*b->qbuf));
    free(b->qbuf);
    if (b->rbuf != NULL)
        sodium_memzero(b->rbuf, b->rn * sizeof(*b->rbuf));
    free(b->rbuf);
    if (b->dist != NULL)
        sodium_memzero(b->dist, b->dcap * sizeof(*b->dist));
    free(b->dist);
    sodium_memzero(b->dlast, sizeof(b->dlast));
    free(b);
}

/* Fills a sealer for the bucket of `from`. */
static int make_sealer(struct rv_vault_batch *b, rv_date from, struct rv_vault_sealer *s)
{
    int rc;

    rc = bucket_for(b, from, &s->bucket);
    if (rc == 0)
        rc = rv_vault_data_key(b->v, b->t, s->bucket, s->key);
    if (rc != 0) {
        s->bucket = 0;
        return rc;
    }
    memcpy(s->nonce_prefix, b->nonce_prefix, 16);
    crypto_core_hchacha20(s->subkey, s->nonce_prefix, s->key, NULL);
    s->from = from;
    return 0;
}

int rv_vault_batch_presealing(struct rv_vault_batch *b, uint64_t n,
                              const struct rv_vault_sealer **seal, uint64_t *first_id)
{
    int rc;

    if (b->err != 0)
        return b->err;
    if (b->sealers[0].bucket == 0 && (rc = make_sealer(b, b->fs.date, &b->sealers[0])) != 0)
        return b->err = rc;
    *seal = &b->sealers[0];
    *first_id = b->next_id;
    b->next_id += n;
    return 0;
}

static void count(struct area_state *a, const struct open_entry *o, int64_t d)
{
    a->on_register += (uint64_t)d;
    for (int i = 0; i < 10; i++)
        if (o->markers & (1u << i))
            a->markers[i] += (uint64_t)d;
    if (o->flags & 4)
        a->markers[10] += (uint64_t)d;
    if (o->flags & 1)
        a->attainers += (uint64_t)d;
    if (o->flags & 2)
        a->optout += (uint64_t)d;
}

/* Ends a version at date `to`: rewrites its metadata and MAC. */
static int close_version(struct rv_vault_batch *b, uint64_t id, rv_date to)
{
    uint8_t key[9], rec[REC_HDR + RV_ELECTOR_WIRE_MAX + 16];
    const void *val;
    size_t vlen;
    uint32_t bucket;
    rv_date from, old_to;
    int rc;

    rv_rec_key(id, key);
    rc = rv_store_get(b->t, key, sizeof(key), &val, &vlen);
    if (rc == RV_ENOTFOUND)
        return RV_ECORRUPT;
    if (rc != 0)
        return rc;
    if (vlen > sizeof(rec))
        return RV_ECORRUPT;
    rc = rv_rec_check(b->v, id, val, vlen, &bucket, &from, &old_to);
    if (rc != 0)
        return rc;
    memcpy(rec, val, vlen);
    rv_put_u32le(rec + 10, (uint32_t)to);
    rv_rec_mac(b->v, id, rec, rec + REC_MACED);
    rc = rv_store_put(b->t, key, sizeof(key), rec, vlen);
    b->fs.closed++;
    return rc;
}

/* Sorts the buffered index keys into sbuf, and hands them to the load as a run. A counting
 * sort on the family and the first two bytes of the value, then insertion sort within each
 * (small) bucket. */
static int sort_index(struct rv_vault_batch *b)
{
    size_t kl = 2 + (b->v->index_bits + 7) / 8 + 8, n = b->in, start = 0;
    uint32_t *cnt = NULL;
    struct ientry *out;
    struct dbuf run = {0};
    int rc;

    if (n == 0)
        return 0;
    if (b->sbuf == NULL && (b->sbuf = malloc(IBUF_MAX * sizeof(*b->sbuf))) == NULL)
        return RV_ENOMEM;
    out = b->sbuf;
    if (b->icnt == NULL && (b->icnt = malloc((IBUF_BUCKETS + 1) * sizeof(*b->icnt))) == NULL)
        return RV_ENOMEM;
    cnt = b->icnt;
    memset(cnt, 0, (IBUF_BUCKETS + 1) * sizeof(*cnt));
#define BUCKET(e) (((uint32_t)((e)->k[1] & 7) << 16) | (uint32_t)(e)->k[2] << 8 | (e)->k[3])
    for (size_t i = 0; i < n; i++)
        cnt[BUCKET(&b->ibuf[i]) + 1]++;
    for (size_t i = 1; i <= IBUF_BUCKETS; i++)
        cnt[i] += cnt[i - 1];
    for (size_t i = 0; i < n; i++)
        out[cnt[BUCKET(&b->ibuf[i])]++] = b->ibuf[i];
#undef BUCKET
    for (size_t bk = 0; bk < IBUF_BUCKETS; bk++) {
        size_t end = cnt[bk];
        for (size_t i = start + 1; i < end; i++) {
            struct ientry t = out[i];
            size_t j = i;
            while (j > start && memcmp(out[j - 1].k, t.k, kl) > 0) {
                out[j] = out[j - 1];
                j--;
            }
            out[j] = t;
        }
        start = end;
    }
    b->in = 0;
    rc = dbuf_init(&run, n * (DENTRY_HDR + kl + 4));
    for (size_t i = 0; i < n && rc == 0; i++)
        dbuf_put(&run, out[i].k, kl, out[i].tag, 4);
    if (rc == 0)
        rc = defer_run(b->load, &run);
    dbuf_free(&run);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * District lists: the outward codes ("LS1", "EC1A") of the versions stored in an area,
 * kept under 'D' area sealed with XChaCha20-Poly1305 (key 38, a random nonce each write,
 * additional data "rvdd" || vault id || area) as: count (u16 LE), then each code as
 * length (u8) and bytes, in ascending order. Postcodes are personal data in the
 * aggregate too (which districts a register covers is public, which ones its electors
 * live in at a given size is not), so the list is sealed like the records. The matcher
 * reads it to search a donor's postcode area district by district without probing codes
 * that do not exist.
 */
/* Adds the outward code of pc (if any) to the batch's set. */
static int district_add(struct rv_vault_batch *b, const struct rv_postcode *pc)
{
    char out[9];

    if (pc->canon[0] == '\0' || pc->out_len < 2 || pc->out_len > 4)
        return 0;
    rv_postcode_outward(pc, out);
    if (strcmp(out, b->dlast) == 0)
        return 0;
    memcpy(b->dlast, out, strlen(out) + 1);
    for (size_t i = 0; i < b->ndist; i++)
        if (strcmp(b->dist[i], out) == 0)
            return 0;
    if (b->ndist == DIST_MAX)
        return 0; /* not a postcode area any more: the list is only an aid */
    if (b->ndist == b->dcap) {
        size_t nc = b->dcap != 0 ? b->dcap * 2 : 64;
        char(*nd)[8] = calloc(nc, sizeof(*nd));
        if (nd == NULL)
            return RV_ENOMEM;
        if (b->dist != NULL) {
            memcpy(nd, b->dist, b->ndist * sizeof(*nd));
            sodium_memzero(b->dist, b->dcap * sizeof(*b->dist));
            free(b->dist);
        }
        b->dist = nd;
        b->dcap = nc;
    }
    memcpy(b->dist[b->ndist++], out, strlen(out) + 1);
    return 0;
}

/* Merges the batch's codes into the area's stored list and writes it back sealed. */
static int districts_write(struct rv_vault_batch *b)
{
    uint8_t key[1 + RV_AREA_LEN], ad[36];
    uint8_t *body = NULL, *val = NULL;
    const void *old;
    size_t olen, blen = 0, pos;
    int rc;

    if (b->ndist == 0)
        return 0;
    key[0] = 'D';
    memcpy(key + 1, b->area, RV_AREA_LEN);
    body = malloc(DIST_BODY);
    val = malloc(DIST_HDR + DIST_BODY + 16);
    if (body == NULL || val == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    rc = rv_store_get(b->t, key, sizeof(key), &old, &olen);
    if (rc == 0) {
        rc = rv_district_open(b->v, b->area, old, olen, body, &blen);
        if (rc != 0)
            goto out;
        /* The stored codes join the batch's (district_add skips those already there). */
        pos = 2;
        b->dlast[0] = '\0';
        for (size_t i = 0, cnt = (size_t)body[0] | (size_t)body[1] << 8; i < cnt; i++) {
            struct rv_postcode pc;
            memset(&pc, 0, sizeof(pc));
            memcpy(pc.canon, body + pos + 1, body[pos]);
            pc.canon[body[pos]] = ' ';
            pc.out_len = body[pos];
            if ((rc = district_add(b, &pc)) != 0)
                goto out;
            pos += 1 + body[pos];
        }
    } else if (rc != RV_ENOTFOUND) {
        goto out;
    }
    qsort(b->dist, b->ndist, sizeof(*b->dist), rv_district_cmp);
    body[0] = (uint8_t)b->ndist;
    body[1] = (uint8_t)(b->ndist >> 8);
    pos = 2;
    for (size_t i = 0; i < b->ndist; i++) {
        size_t l = strlen(b->dist[i]);
        body[pos] = (uint8_t)l;
        memcpy(body + pos + 1, b->dist[i], l);
        pos += 1 + l;
    }
    randombytes_buf(val, DIST_HDR);
    rv_district_ad(b->v, b->area, ad);
    crypto_aead_xchacha20poly1305_ietf_encrypt(val + DIST_HDR, NULL, body, pos, ad, sizeof(ad),
                                               NULL, val, b->v->k->districts);
    rc = rv_store_put(b->t, key, sizeof(key), val, DIST_HDR + pos + 16);
out:
    if (body != NULL) {
        sodium_memzero(body, DIST_BODY);
        free(body);
    }
    free(val);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Postcode lists: under 'P' and a keyed hash of the postcode (key 39) truncated to
 * PC_BITS_LESS bits fewer than the indexes (so each list holds a few postcodes), every
 * version ever stored at those postcodes, as record id (u64 LE), compact postcode (u8
 * length, bytes), surname length (u8) and folded surname words, sealed with
 * XChaCha20-Poly1305 (key 40, a nonce unique to each write: see list_seal, additional
 * data "rvpc" || vault id || key). A batch collects its versions and merges them
 * into the lists at its end, postcode by postcode in key order. The matcher reads the list
 * of a donor's postcode to find a mistyped surname among the few there.
 */
/* The order of n list entries (stride bytes apart, each starting with its list's key[16]
 * and then its record id, u64) by key, then id: a counting sort on the key's first two
 * bytes (keyed hashes, so uniform), then insertion sort within each small bucket. Entries
 * arrive mostly in id order, so the insertion sort rarely moves anything. NULL when out of
 * memory. */
#define LIST_BUCKETS (1u << 16)
static uint32_t *list_order(const void *base, size_t n, size_t stride)
{
    const uint8_t *p = base;
    uint32_t *cnt = calloc(LIST_BUCKETS + 1, sizeof(*cnt)), *ord = malloc(n * sizeof(*ord));
    size_t start = 0;

    if (cnt == NULL || ord == NULL) {
        free(cnt);
        free(ord);
        return NULL;
    }
#define LB(i) ((uint32_t)p[(size_t)(i)*stride] << 8 | p[(size_t)(i)*stride + 1])
    for (size_t i = 0; i < n; i++)
        cnt[LB(i) + 1]++;
    for (size_t i = 1; i <= LIST_BUCKETS; i++)
        cnt[i] += cnt[i - 1];
    for (size_t i = 0; i < n; i++)
        ord[cnt[LB(i)]++] = (uint32_t)i;
#undef LB
    for (size_t bk = 0; bk < LIST_BUCKETS; bk++) {
        size_t end = cnt[bk];
        for (size_t i = start + 1; i < end; i++) {
            uint32_t t = ord[i];
            const uint8_t *te = p + (size_t)t * stride;
            size_t j = i;
            while (j > start) {
                const uint8_t *pe = p + (size_t)ord[j - 1] * stride;
                int c = memcmp(pe, te, 16);
                uint64_t pid, tid;
                if (c == 0) {
                    memcpy(&pid, pe + 16, 8);
                    memcpy(&tid, te + 16, 8);
                    c = pid > tid ? 1 : -1;
                }
                if (c < 0)
                    break;
                ord[j] = ord[j - 1];
                j--;
            }
            ord[j] = t;
        }
        start = end;
    }
    free(cnt);
    return ord;
}

/* The largest list fragment of any kind (the no-postcode lists' is). */
#define LIST_FRAG_MAX (10 + 2 * RV_NAME_MAX)

/* Writes one waiting entry's list fragment to frag (at most frag_max bytes): its length. */
typedef size_t (*list_frag_fn)(const void *entry, uint8_t *frag);

/* Hands a batch's n waiting list entries (stride bytes apart, each starting with its list's
 * key[16] and record id) to the load as one run sorted by list ('tag' || key), then id, and
 * wipes them; *n becomes 0. frag_max bounds one fragment, for the run's first size. */
static int list_flush(struct rv_vault_batch *b, uint8_t tag, void *buf, size_t *n, size_t stride,
                      size_t frag_max, list_frag_fn frag_of)
{
    uint8_t key[17], frag[LIST_FRAG_MAX];
    uint32_t *ord = NULL;
    struct dbuf run = {0};
    int rc;

    if (*n == 0)
        return 0;
    ord = list_order(buf, *n, stride);
    rc = ord == NULL ? RV_ENOMEM : dbuf_init(&run, *n * (DENTRY_HDR + sizeof(key) + frag_max));
    key[0] = tag;
    for (size_t i = 0; i < *n && rc == 0; i++) {
        const uint8_t *e = (const uint8_t *)buf + (size_t)ord[i] * stride;
        memcpy(key + 1, e, 16);
        dbuf_put(&run, key, sizeof(key), frag, frag_of(e, frag));
    }
    sodium_memzero(frag, sizeof(frag));
    if (rc == 0)
        rc = defer_run(b->load, &run);
    dbuf_free(&run);
    sodium_memzero(buf, *n * stride);
    *n = 0;
    free(ord);
    return rc;
}

#define PC_FRAG_MAX (10 + 8 + RV_VAULT_PC_SURNAME)

static size_t pc_frag(const void *entry, uint8_t *frag)
{
    const struct pentry *e = entry;
    size_t l = e->len == RV_VAULT_PC_LONG ? RV_VAULT_PC_SURNAME - 1 : e->len;
    size_t pl = strnlen(e->pc, sizeof(e->pc)), n;
    rv_put_u64le(frag, e->id);
    frag[8] = (uint8_t)pl;
    memcpy(frag + 9, e->pc, pl);
    n = 9 + pl;
    frag[n] = e->len;
    memcpy(frag + n + 1, e->s, l);
    return n + 1 + l;
}

/* Hands the waiting versions to the load, sorted by their postcodes' lists. */
static int pc_flush(struct rv_vault_batch *b)
{
    return list_flush(b, 'P', b->pbuf, &b->pn, sizeof(*b->pbuf), PC_FRAG_MAX, pc_frag);
}

static int pc_add(struct rv_vault_batch *b, const struct rv_prepared *p, uint64_t id)
{
    struct pentry *e;
    char outward[9];
    size_t l = p->pc_len == RV_VAULT_PC_LONG ? RV_VAULT_PC_SURNAME - 1 : p->pc_len;
    int rc;

    if (b->pn == PBUF_MAX && (rc = pc_flush(b)) != 0)
        return rc;
    if (b->pn == b->pcap) {
        /* The most a batch holds at once, allocated whole: only the pages used are ever
         * touched, and the buffer is neither copied nor faulted in twice as it grows. */
        size_t nc = PBUF_MAX;
        struct pentry *np = malloc(nc * sizeof(*np));
        if (np == NULL)
            return RV_ENOMEM;
        if (b->pbuf != NULL) {
            memcpy(np, b->pbuf, b->pn * sizeof(*np));
            sodium_memzero(b->pbuf, b->pcap * sizeof(*b->pbuf));
            free(b->pbuf);
        }
        b->pbuf = np;
        b->pcap = nc;
    }
    e = &b->pbuf[b->pn++];
    memcpy(e->key, p->pc_key, 16);
    e->id = id;
    memset(e->pc, 0, sizeof(e->pc));
    if (rv_split_postcode(p->e.postcode.canon, e->pc, outward) != 0)
        e->pc[0] = '\0';
    e->len = p->pc_len;
    memcpy(e->s, p->pc_surname, l);
    return 0;
}

/* Namesake lists: 'R' and the truncated value of the initial + surname + outward index
 * (family 2), every version with that value (coincidences included), as id (u64 LE), compact
 * postcode (u8 length, bytes), surname words and forenames (u8 length, 255 when cut to 38 bytes,
 * then the bytes), sealed as the postcode lists are (key 40) with additional data "rvrs" || vault
 * id || keyed name. The initial + surname + outward index finds the same versions; the list lets
 * the matcher leave out, without decrypting them, the namesakes across a district whose forenames
 * cannot match. */
#define NS_FRAG_MAX (11 + 8 + 2 * RV_VAULT_PC_SURNAME)

static size_t ns_frag(const void *entry, uint8_t *frag)
{
    const struct rentry *e = entry;
    size_t pl = strnlen(e->pc, sizeof(e->pc)), sl = rv_ns_len(e->slen), fl = rv_ns_len(e->flen), n;
    rv_put_u64le(frag, e->id);
    frag[8] = (uint8_t)pl;
    memcpy(frag + 9, e->pc, pl);
    n = 9 + pl;
    frag[n] = e->slen;
    memcpy(frag + n + 1, e->s, sl);
    n += 1 + sl;
    frag[n] = e->flen;
    memcpy(frag + n + 1, e->f, fl);
    return n + 1 + fl;
}

static int ns_flush(struct rv_vault_batch *b)
{
    return list_flush(b, 'R', b->rbuf, &b->rn, sizeof(*b->rbuf), NS_FRAG_MAX, ns_frag);
}

static int ns_add(struct rv_vault_batch *b, const struct rv_prepared *p, uint64_t id)
{
    struct rentry *e;
    char compact[9], outward[9];
    int rc;

    if (rv_split_postcode(p->e.postcode.canon, compact, outward) != 0)
        return 0;
    if (b->rn == RBUF_MAX && (rc = ns_flush(b)) != 0)
        return rc;
    if (b->rn == b->rcap) {
        size_t nc = RBUF_MAX; /* as for pbuf */
        struct rentry *nr = malloc(nc * sizeof(*nr));
        if (nr == NULL)
            return RV_ENOMEM;
        if (b->rbuf != NULL) {
            memcpy(nr, b->rbuf, b->rn * sizeof(*nr));
            sodium_memzero(b->rbuf, b->rcap * sizeof(*b->rbuf));
            free(b->rbuf);
        }
        b->rbuf = nr;
        b->rcap = nc;
    }
    e = &b->rbuf[b->rn++];
    memcpy(e->key, p->ns_key, 16);
    e->id = id;
    memcpy(e->pc, compact, sizeof(e->pc));
    e->slen = p->pc_len;
    e->flen = p->ns_flen;
    memcpy(e->s, p->pc_surname, rv_ns_len(p->pc_len));
    memcpy(e->f, p->ns_forenames, rv_ns_len(p->ns_flen));
    return 0;
}

/* Surname lists of versions with no postcode: 'Q' and the truncated value of the
 * surname-alone index (family 5), every version with no postcode bearing a surname (or
 * part) with that value, coincidences included, as
 * id (u64 LE), surname words (u8 length, its top bit set when the version has address lines
 * and no overseas marker; bytes) and forenames (u8 length, bytes), sealed as
 * the postcode lists are (key 40) with additional data "rvqs" || vault id || keyed
 * surname. Overseas electors are a few in a thousand, but a common surname has hundreds of
 * them in a national register, and the matcher would otherwise decrypt every one. */
static size_t nopc_frag(const void *entry, uint8_t *frag)
{
    const struct qentry *e = entry;
    size_t sl = strlen(e->s), fl = strlen(e->f);
    rv_put_u64le(frag, e->id);
    frag[8] = (uint8_t)(sl | (e->address ? 0x80u : 0u));
    memcpy(frag + 9, e->s, sl);
    frag[9 + sl] = (uint8_t)fl;
    memcpy(frag + 10 + sl, e->f, fl);
    return 10 + sl + fl;
}

static int nopc_flush(struct rv_vault_batch *b)
{
    return list_flush(b, 'Q', b->qbuf, &b->qn, sizeof(*b->qbuf), LIST_FRAG_MAX, nopc_frag);
}

static int nopc_push(struct rv_vault_batch *b, const char *key_surname, size_t kn,
                     const struct rv_name_key *nk, uint64_t id, bool address)
{
    struct qentry *e;
    uint8_t key[17];

    if (b->qn == b->qcap) {
        size_t nc = b->qcap != 0 ? b->qcap * 2 : 256;
        struct qentry *nq = malloc(nc * sizeof(*nq));
        if (nq == NULL)
            return RV_ENOMEM;
        if (b->qbuf != NULL) {
            memcpy(nq, b->qbuf, b->qn * sizeof(*nq));
            sodium_memzero(b->qbuf, b->qcap * sizeof(*b->qbuf));
            free(b->qbuf);
        }
        b->qbuf = nq;
        b->qcap = nc;
    }
    if (rv_nopc_list_key(b->v, key_surname, kn, key) != 0)
        return 0; /* not a surname the index takes either */
    e = &b->qbuf[b->qn++];
    memcpy(e->key, key + 1, 16);
    e->id = id;
    memcpy(e->s, nk->surname_tokens, sizeof(e->s));
    memcpy(e->f, nk->forenames, sizeof(e->f));
    e->s[sizeof(e->s) - 1] = '\0';
    e->f[sizeof(e->f) - 1] = '\0';
    e->address = address;
    return 0;
}

/* Adds a version with no postcode to its surname's list and its parts'. */
static int nopc_add(struct rv_vault_batch *b, const struct rv_elector *e, uint64_t id)
{
    struct rv_name_key nk;
    const char *tp;
    unsigned parts = 0;
    int rc;

    bool address = false;

    if (rv_name_key(&e->name, &nk) != 0 || nk.surname[0] == '\0')
        return 0; /* no surname: not in the surname index either */
    for (int i = 0; i < RV_ADDR_LINES; i++)
        address |= e->address[i][0] != '\0';
    address &= (e->markers.known & RV_MARK_F) == 0;
    rc = nopc_push(b, nk.surname, strlen(nk.surname), &nk, id, address);
    for (tp = nk.surname_tokens;
         rc == 0 && nk.nsurname_tokens >= 2 && *tp != '\0' && parts < RV_VAULT_PARTS;) {
        size_t tl = strcspn(tp, " ");
        if (tl >= 3) {
            parts++;
            if (tl != strlen(nk.surname) || memcmp(tp, nk.surname, tl) != 0)
                rc = nopc_push(b, tp, tl, &nk, id, address);
        }
        tp += tl;
        while (*tp == ' ')
            tp++;
    }
    sodium_memzero(&nk, sizeof(nk));
    return rc;
}

/* Stores a new version of p from `from`: its open entry first (STORE_INSERT: refused with
 * RV_EEXIST when the elector number is already in force, before anything else is written;
 * STORE_BUFFER: into the open-entry buffer, which the caller has checked), then the sealed
 * record and its index entries. */
enum store_mode { STORE_PUT, STORE_INSERT, STORE_BUFFER };

static int store_version(struct rv_vault_batch *b, struct rv_prepared *p, rv_date from,
                         const uint8_t *okey, enum store_mode mode)
{
    uint8_t rec[REC_HDR + RV_ELECTOR_WIRE_MAX + 16], key[9];
    uint8_t wire[RV_ELECTOR_WIRE_MAX], oval[OPEN_LEN];
    const uint8_t *val;
    struct open_entry o;
    size_t vlen, ilen = (b->v->index_bits + 7) / 8;
    uint32_t bucket;
    uint64_t id;
    long wlen;
    bool presealed;
    int rc;

    rc = bucket_for(b, from, &bucket);
    if (rc != 0)
        return rc;
    presealed = p->sealed_bucket == bucket && p->sealed_from == from && p->sealed_len > 0 &&
                p->sealed_id >= b->first_new_id && p->sealed_id < b->next_id;
    id = presealed ? p->sealed_id : b->next_id++;

    memset(&o, 0, sizeof(o));
    o.id = id;
    memcpy(o.chash, p->chash, 16);
    o.seen = b->fs.seq;
    o.markers = p->e.markers.known & 0x3ff;
    o.flags = (uint8_t)((p->e.attainment != RV_DATE_NONE ? 1 : 0) |
                        (p->e.open_register_optout ? 2 : 0) | (p->e.markers.other[0] ? 4 : 0));
    o.from = from;
    open_encode(b->v, okey + 1 + RV_AREA_LEN, &o, oval);
    if (mode == STORE_BUFFER) {
        struct oentry *oe = &b->obuf[b->on];
        uint32_t slot = rv_get_u32le(p->numkey) & (OTAB_SLOTS - 1);
        memcpy(oe->numkey, okey + 1 + RV_AREA_LEN, 16);
        memcpy(oe->val, oval, OPEN_LEN);
        while (b->otab[slot] != 0)
            slot = (slot + 1) & (OTAB_SLOTS - 1);
        b->otab[slot] = (uint64_t)rv_get_u32le(p->numkey + 4) << 32 | (uint32_t)++b->on;
        rc = 0;
    } else if (mode == STORE_INSERT) {
        rc = rv_store_insert(b->t, okey, 1 + RV_AREA_LEN + 16, oval, sizeof(oval));
    } else {
        rc = rv_store_put(b->t, okey, 1 + RV_AREA_LEN + 16, oval, sizeof(oval));
    }
    if (rc != 0)
        return rc;

    if (presealed) {
        val = p->sealed;
        vlen = p->sealed_len;
    } else {
        struct rv_vault_sealer *s = &b->sealers[1];
        size_t slen;
        if (s->bucket != bucket || s->from != from) {
            rc = make_sealer(b, from, s);
            if (rc != 0)
                return rc;
        }
        wlen = rv_elector_encode(&p->e, wire, sizeof(wire));
        if (wlen < 0)
            return (int)wlen;
        rv_rec_header(b->v, id, bucket, from, rec);
        rv_rec_seal(b->v, s, id, wire, (size_t)wlen, rec + 30, &slen);
        sodium_memzero(wire, sizeof(wire));
        val = rec;
        vlen = 30 + slen;
    }
    p->sealed_len = 0; /* a sealed payload is used once */
    rv_rec_key(id, key);
    if (id > b->max_appended) {
        rc = rv_store_append(b->t, key, sizeof(key), val, vlen);
        b->max_appended = id;
    } else {
        rc = rv_store_put(b->t, key, sizeof(key), val, vlen);
    }
    if (rc != 0)
        return rc;
    for (int f = 1; f <= RV_IDX_COUNT + RV_VAULT_PARTS; f++) {
        struct ientry *ie;
        const uint8_t *ival, *raw, *masked;
        uint8_t fam;
        if (f <= RV_IDX_COUNT) {
            if (!(p->idx_present & (1u << (f - 1))))
                continue;
            fam = (uint8_t)f;
            ival = p->idx[f - 1];
            raw = p->idx_tag[f - 1];
            masked = p->idx_mtag[f - 1];
        } else {
            if (f - RV_IDX_COUNT > p->nparts)
                break;
            fam = p->part_family;
            ival = p->part[f - RV_IDX_COUNT - 1];
            raw = p->part_tag[f - RV_IDX_COUNT - 1];
            masked = p->part_mtag[f - RV_IDX_COUNT - 1];
        }
        if (b->in == IBUF_MAX && (rc = sort_index(b)) != 0)
            return rc;
        if (b->ibuf == NULL && (b->ibuf = malloc(IBUF_MAX * sizeof(*b->ibuf))) == NULL)
            return RV_ENOMEM;
        ie = &b->ibuf[b->in++];
        ie->k[0] = 'I';
        ie->k[1] = fam;
        memcpy(ie->k + 2, ival, ilen);
        rv_put_u64be(ie->k + 2 + ilen, id);
        if (presealed && p->tags_masked)
            memcpy(ie->tag, masked, 4);
        else
            rv_vault_index_tag(b->v, fam, ival, ilen, id, raw, ie->tag);
    }
    if ((rc = district_add(b, &p->e.postcode)) != 0)
        return rc;
    if (p->has_pc && (rc = pc_add(b, p, id)) != 0)
        return rc;
    if (p->e.postcode.canon[0] == '\0' && (rc = nopc_add(b, &p->e, id)) != 0)
        return rc;
    if (p->has_ns && (rc = ns_add(b, p, id)) != 0)
        return rc;
    count(&b->as, &o, 1);
    b->fs.stored++;
    return 0;
}

static void open_key(const struct rv_vault_batch *b, const struct rv_prepared *p,
                     uint8_t key[1 + RV_AREA_LEN + 16])
{
    key[0] = 'O';
    memcpy(key + 1, b->area, RV_AREA_LEN);
    memcpy(key + 1 + RV_AREA_LEN, p->numkey, 16);
}

static int row_check(struct rv_vault_batch *b, const struct rv_prepared *p)
{
    uint8_t area[RV_AREA_LEN];

    if (b->err != 0)
        return b->err;
    if (rv_vault_area_key(p->e.area, area) != 0 || memcmp(area, b->area, RV_AREA_LEN) != 0)
        return RV_EINVAL;
    return 0;
}

static bool open_buffered(const struct rv_vault_batch *b, const uint8_t numkey[16])
{
    uint32_t slot = rv_get_u32le(numkey) & (OTAB_SLOTS - 1), tag = rv_get_u32le(numkey + 4);

    for (; b->otab[slot] != 0; slot = (slot + 1) & (OTAB_SLOTS - 1))
        if ((uint32_t)(b->otab[slot] >> 32) == tag &&
            memcmp(b->obuf[(uint32_t)b->otab[slot] - 1].numkey, numkey, 16) == 0)
            return true;
    return false;
}

/* Open entries buffered for an empty area are written in sorted runs: while the applier
 * waits for rows (rv_vault_batch_idle), and the rest at the end. A run sorts a compact
 * array of (first 8 bytes of the keyed number, index): a counting sort on two bytes, then
 * insertion sort within each bucket, all in cache-friendly memory; only equal prefixes
 * (practically never) compare the whole keys. The buffer itself stays whole until the
 * end, for its table of the elector numbers seen. */
static bool osort_after(const struct rv_vault_batch *b, const struct osort *x,
                        const struct osort *y)
{
    if (x->hi != y->hi)
        return x->hi > y->hi;
    return memcmp(b->obuf[x->i].numkey, b->obuf[y->i].numkey, 16) > 0;
}

/* Writes up to max entries of the current run. */
static int drain_open(struct rv_vault_batch *b, size_t max)
{
    uint8_t key[1 + RV_AREA_LEN + 16];
    int rc = 0;

    key[0] = 'O';
    memcpy(key + 1, b->area, RV_AREA_LEN);
    for (; b->opos < b->orun_n && max > 0 && rc == 0; b->opos++, max--) {
        const struct oentry *oe = &b->obuf[b->orun[b->opos].i];
        if (b->opos + 16 < b->orun_n) /* the buffer is read in random order: fetch ahead */
            __builtin_prefetch(&b->obuf[b->orun[b->opos + 16].i]);
        memcpy(key + 1 + RV_AREA_LEN, oe->numkey, 16);
        rc = rv_store_put_run(b->t, key, sizeof(key), oe->val, OPEN_LEN);
    }
    return rc;
}

/* Finishes the current run, then sorts the entries buffered since into the next. */
static int sort_open(struct rv_vault_batch *b)
{
    uint32_t *cnt = NULL;
    struct osort *order = NULL;
    size_t first = b->osorted, n = b->on - first, start = 0;
    int rc;

    rc = drain_open(b, SIZE_MAX);
    if (rc != 0 || n == 0)
        return rc;
    if (b->ocnt == NULL && (b->ocnt = malloc((65536 + 1) * sizeof(*b->ocnt))) == NULL)
        return RV_ENOMEM;
    cnt = b->ocnt;
    memset(cnt, 0, (65536 + 1) * sizeof(*cnt));
    order = malloc(n * sizeof(*order));
    if (order == NULL)
        return RV_ENOMEM;
    for (size_t i = first; i < b->on; i++)
        cnt[(b->obuf[i].numkey[0] << 8 | b->obuf[i].numkey[1]) + 1]++;
    for (size_t i = 1; i <= 65536; i++)
        cnt[i] += cnt[i - 1];
    for (size_t i = first; i < b->on; i++) {
        struct osort *o = &order[cnt[b->obuf[i].numkey[0] << 8 | b->obuf[i].numkey[1]]++];
        o->hi = rv_get_u64be(b->obuf[i].numkey);
        o->i = (uint32_t)i;
    }
    for (size_t bk = 0; bk < 65536; bk++) {
        size_t end = cnt[bk];
        for (size_t i = start + 1; i < end; i++) {
            struct osort t = order[i];
            size_t j = i;
            while (j > start && osort_after(b, &order[j - 1], &t)) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = t;
        }
        start = end;
    }
    if (b->orun != NULL)
        sodium_memzero(b->orun, b->orun_n * sizeof(*b->orun));
    free(b->orun);
    b->orun = order;
    b->orun_n = n;
    b->opos = 0;
    b->osorted = b->on;
    return 0;
}

/* Writes every buffered open entry not yet written, then ends buffering for the batch. */
static int flush_open(struct rv_vault_batch *b)
{
    int rc;

    b->obuf_done = true;
    rc = sort_open(b);
    if (rc == 0)
        rc = drain_open(b, SIZE_MAX);
    if (b->orun != NULL)
        sodium_memzero(b->orun, b->orun_n * sizeof(*b->orun));
    free(b->orun);
    b->orun = NULL;
    b->orun_n = b->opos = b->osorted = 0;
    if (b->obuf != NULL)
        sodium_memzero(b->obuf, b->on * sizeof(*b->obuf));
    free(b->obuf);
    free(b->otab);
    b->obuf = NULL;
    b->otab = NULL;
    b->on = 0;
    return rc;
}

int rv_vault_batch_idle(struct rv_vault_batch *b, size_t max)
{
    int rc = 0;

    if (b->err != 0)
        return b->err;
    /* With nothing sorted left to write, a run of enough entries is sorted now rather than
     * when its buffer is full: a file whose entries all fit the buffers would otherwise
     * leave all its index and open-entry writes to the commit, with the reader done and
     * idle. */
    if (b->opos == b->orun_n && !b->obuf_done && b->obuf != NULL &&
        b->on - b->osorted >= IDLE_RUN_MIN)
        rc = sort_open(b);
    if (rc == 0 && b->opos < b->orun_n)
        rc = drain_open(b, max);
    if (rc != 0)
        return b->err = rc;
    return b->opos < b->orun_n ? 1 : 0;
}

static int apply(struct rv_vault_batch *b, struct rv_prepared *p, bool del, rv_date from,
                 bool edition, enum rv_apply *out)
{
    uint8_t okey[1 + RV_AREA_LEN + 16], oval[OPEN_LEN];
    const void *val;
    size_t vlen;
    struct open_entry o;
    bool found;
    int rc;

    rc = row_check(b, p);
    if (rc != 0)
        return rc;
    open_key(b, p, okey);
    if (edition && b->area_was_empty && !b->obuf_done) {
        /* Nothing was in force: the row is new, or a duplicate within this file. */
        if (b->obuf == NULL) {
            b->obuf = malloc(OBUF_MAX * sizeof(*b->obuf));
            b->otab = calloc(OTAB_SLOTS, sizeof(*b->otab));
            if (b->obuf == NULL || b->otab == NULL) {
                rc = RV_ENOMEM;
                goto fail;
            }
        }
        if (open_buffered(b, p->numkey)) {
            *out = RV_APPLIED_DUPLICATE;
            return 0;
        }
        rc = store_version(b, p, from, okey, STORE_BUFFER);
        if (rc == 0 && b->on == OBUF_MAX)
            rc = flush_open(b);
        if (rc != 0)
            goto fail;
        *out = RV_APPLIED_NEW;
        goto done;
    }
    if (edition && b->area_was_empty) {
        rc = store_version(b, p, from, okey, STORE_INSERT);
        if (rc == RV_EEXIST) {
            *out = RV_APPLIED_DUPLICATE;
            return 0;
        }
        if (rc != 0)
            goto fail;
        *out = RV_APPLIED_NEW;
        goto done;
    }
    rc = rv_store_get(b->t, okey, sizeof(okey), &val, &vlen);
    if (rc != 0 && rc != RV_ENOTFOUND)
        goto fail;
    found = rc == 0;
    if (found && (rc = open_decode(b->v, okey + 1 + RV_AREA_LEN, val, vlen, &o)) != 0)
        goto fail;
    if (found && edition && o.seen == b->fs.seq) {
        *out = RV_APPLIED_DUPLICATE;
        return 0;
    }
    if (found && from < o.from) {
        *out = RV_APPLIED_EARLY;
        return 0;
    }
    if (del) {
        if (!found) {
            *out = RV_APPLIED_MISSING;
            return 0;
        }
        rc = close_version(b, o.id, from);
        if (rc == 0)
            rc = rv_store_del(b->t, okey, sizeof(okey));
        if (rc != 0)
            goto fail;
        count(&b->as, &o, -1);
        *out = RV_APPLIED_CLOSED;
        goto done;
    }
    if (found && crypto_verify_16(o.chash, p->chash) == 0) {
        if (edition && o.seen != b->fs.seq) {
            o.seen = b->fs.seq;
            open_encode(b->v, okey + 1 + RV_AREA_LEN, &o, oval);
            rc = rv_store_put(b->t, okey, sizeof(okey), oval, sizeof(oval));
            if (rc != 0)
                goto fail;
        }
        b->fs.unchanged++;
        *out = RV_APPLIED_SAME;
        goto done;
    }
    if (found) {
        rc = close_version(b, o.id, from);
        if (rc != 0)
            goto fail;
        count(&b->as, &o, -1);
    }
    rc = store_version(b, p, from, okey, STORE_PUT);
    if (rc != 0)
        goto fail;
    *out = RV_APPLIED_NEW;
done:
    if (b->as.last == RV_DATE_NONE || from > b->as.last)
        b->as.last = from;
    if (b->fs.eff_first == RV_DATE_NONE || from < b->fs.eff_first)
        b->fs.eff_first = from;
    if (b->fs.eff_last == RV_DATE_NONE || from > b->fs.eff_last)
        b->fs.eff_last = from;
    return 0;
fail:
    b->err = rc;
    return rc;
}

int rv_vault_batch_edition_row(struct rv_vault_batch *b, struct rv_prepared *p, enum rv_apply *out)
{
    if (b->fs.kind != RV_FILE_EDITION)
        return RV_EINVAL;
    return apply(b, p, false, b->fs.date, true, out);
}

int rv_vault_batch_alteration_row(struct rv_vault_batch *b, struct rv_prepared *p, bool del,
                                  rv_date from, enum rv_apply *out)
{
    if (b->fs.kind != RV_FILE_ALTERATIONS || from == RV_DATE_NONE || from == RV_DATE_FOREVER)
        return RV_EINVAL;
    return apply(b, p, del, from, false, out);
}

void rv_vault_batch_count(struct rv_vault_batch *b, uint64_t rows, uint64_t anonymous,
                          uint64_t invalid)
{
    b->fs.rows += rows;
    b->fs.anonymous += anonymous;
    b->fs.invalid += invalid;
}

/* Closes, at the edition date, every version in force in the area that the edition did not
 * contain. */
static int close_unseen(struct rv_vault_batch *b)
{
    uint8_t prefix[1 + RV_AREA_LEN];
    struct rv_cursor *c = NULL;
    const uint8_t *k, *val;
    size_t kl, vl;
    struct open_entry o;
    int rc;

    prefix[0] = 'O';
    memcpy(prefix + 1, b->area, RV_AREA_LEN);
    rc = rv_store_cursor_open(b->t, prefix, sizeof(prefix), &c);
    if (rc != 0)
        return rc;
    while ((rc = rv_store_cursor_next(c, &k, &kl, &val, &vl)) == 1) {
        if (kl != 1 + RV_AREA_LEN + 16) {
            rc = RV_ECORRUPT;
            break;
        }
        rc = open_decode(b->v, k + 1 + RV_AREA_LEN, val, vl, &o);
        if (rc != 0)
            break;
        if (o.seen == b->fs.seq)
            continue;
        rc = rv_store_cursor_del(c);
        if (rc == 0)
            rc = close_version(b, o.id, b->fs.date);
        if (rc != 0)
            break;
        count(&b->as, &o, -1);
    }
    rv_store_cursor_close(c);
    return rc;
}

int rv_vault_batch_commit(struct rv_vault_batch *b, struct rv_file_stats *st)
{
    uint8_t akey[1 + RV_AREA_LEN], aval[AREA_LEN], skey[1 + RV_AREA_LEN + 4], sval[STATS_LEN];
    uint8_t fkey[33], fval[RV_AREA_LEN + 4];
    int rc = b->err;

    if (rc == 0)
        rc = sort_index(b);
    if (rc == 0)
        rc = flush_open(b);
    /* In an area that was empty, every version in force was stored by this edition: none
     * is unseen, and the scan would only read them all back. */
    if (rc == 0 && b->fs.kind == RV_FILE_EDITION && !b->area_was_empty)
        rc = close_unseen(b);
    if (rc == 0)
        rc = districts_write(b);
    if (rc == 0)
        rc = pc_flush(b);
    if (rc == 0)
        rc = nopc_flush(b);
    if (rc == 0)
        rc = ns_flush(b);
    if (rc != 0)
        goto out;
    if (b->fs.kind == RV_FILE_EDITION) {
        if (b->as.last == RV_DATE_NONE || b->fs.date > b->as.last)
            b->as.last = b->fs.date;
        b->fs.eff_first = b->fs.eff_last = b->fs.date;
    }
    b->fs.on_register = b->as.on_register;
    memcpy(b->fs.markers, b->as.markers, sizeof(b->fs.markers));
    b->fs.attainers = b->as.attainers;
    b->fs.optout = b->as.optout;

    akey[0] = 'A';
    memcpy(akey + 1, b->area, RV_AREA_LEN);
    area_encode(&b->as, aval);
    skey[0] = 'S';
    memcpy(skey + 1, b->area, RV_AREA_LEN);
    rv_put_u32be(skey + 1 + RV_AREA_LEN, b->fs.seq);
    stats_encode(&b->fs, sval);
    fkey[0] = 'F';
    memcpy(fkey + 1, b->fs.file_hash, 32);
    memcpy(fval, b->area, RV_AREA_LEN);
    rv_put_u32le(fval + RV_AREA_LEN, b->fs.seq);
    rc = rv_store_put(b->t, akey, sizeof(akey), aval, sizeof(aval));
    if (rc == 0)
        rc = rv_store_put(b->t, skey, sizeof(skey), sval, sizeof(sval));
    if (rc == 0)
        rc = rv_store_put(b->t, fkey, sizeof(fkey), fval, sizeof(fval));
    if (rc == 0)
        rc = rv_vault_counter_put(b->t, "rec", b->next_id);
    if (rc == 0)
        rc = rv_vault_counter_put(b->t, "seq", b->fs.seq);
    if (rc != 0)
        goto out;
    b->ended = true;
    b->load->batch_open = false;
    if (b->own_load) {
        b->own_load = false;
        rc = rv_vault_load_commit(b->load);
    }
    if (rc == 0 && st != NULL)
        *st = b->fs;
out:
    rv_vault_batch_abort(b);
    return rc;
}

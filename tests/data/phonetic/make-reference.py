#!/usr/bin/python3
"""Writes the NYSIIS and Jaro-Winkler reference tables that tests/unit/test_core_phonetic.c
checks rv_nysiis and rv_jaro_winkler against, so the unit test needs no Python.

Oracle: the jellyfish library (Debian package python3-jellyfish). Run with the system
Python, from anywhere:

    /usr/bin/python3 tests/data/phonetic/make-reference.py

NYSIIS comes from jellyfish's reference Python implementation (jellyfish._jellyfish.nysiis).
The C accelerator that jellyfish.nysiis dispatches to in 0.8.9 differs from it on a few
inputs (it compares "KN" over three bytes, and after dropping a final S it skips the AY rule;
see the README), so the script counts and prints those differences but does not use them.
jellyfish does not truncate NYSIIS codes; our contract keeps six characters, so the table
holds both the full code and its first six characters.

Inputs are the name lists in data/names (lower-cased, as rv_fold leaves them) plus hard
cases. Only a-z count for the phonetic codes: the input column keeps apostrophes and spaces,
and the expected code is computed on its letters alone.
"""
import csv
import os
import random
import sys

import jellyfish
import jellyfish._jellyfish as pyjf

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))

HARD = [
    "a", "b", "s", "h", "w", "y", "aa", "ay", "as", "sa", "kn", "knt", "k", "ph", "pf", "sch",
    "mac", "macdonald", "mcdonald", "knight", "knuth", "kneale", "phillips", "pfeiffer",
    "schmidt", "schneider", "schofield", "christopher", "brownlee", "mackie", "grant",
    "hubbard", "lorenzo", "evans", "evelyn", "nevill", "bosch", "ashcroft", "hughes", "shaw",
    "mayhew", "lowe", "dawes", "keys", "ways", "humphreys", "valleys", "aoyz", "rhys", "leigh",
    "featherstonehaugh", "cholmondeley", "marjoribanks", "menzies", "dalziel", "farquharson",
    "urquhart", "ffoulkes", "o'neill", "o'brien", "mary ann", "smith-jones", "st john",
    "zoe", "zebedee", "quigley", "yeates", "iyer", "nguyen", "ng", "ho", "oyelaran",
    "abdulrahman", "wojciechowski", "szczepanski", "van der berg", "de la cruz", "aaa", "sss",
]

JW_PAIRS = [
    ("martha", "marhta"), ("dwayne", "duane"), ("dixon", "dicksonx"), ("jones", "johnson"),
    ("abcvwxyz", "cabvwxyz"), ("", ""), ("", "a"), ("a", ""), ("a", "a"), ("a", "b"),
    ("ab", "ba"), ("abc", "abc"), ("smith", "smyth"), ("macdonald", "mcdonald"),
    ("catherine", "kathryn"), ("stephen", "steven"), ("jon", "john"), ("shackleford",
    "shackelford"), ("dunningham", "cunnigham"), ("nichleson", "nichulson"),
    ("massey", "massie"), ("abroms", "abrams"), ("hardin", "martinez"), ("itman", "smith"),
    ("jeraldine", "geraldine"), ("michelle", "michael"), ("julies", "julius"),
    ("tanya", "tonya"), ("sean", "susan"), ("jon", "jan"), ("brookhaven", "brrokhaven"),
    ("brook hallow", "brook hllw"), ("decatur", "decatir"), ("fitzrureiter", "fitzrureiter"),
    ("higbee", "highee"), ("lacura", "locura"), ("iowa", "iona"), ("1st", "ist"),
    ("o'brien", "obrien"), ("mary ann", "maryann"), ("smith jones", "jones smith"),
    ("aaaa", "aaab"), ("abcd", "abce"), ("abcdefgh", "abcdefgi"),
    # Either side of the 0.7 threshold for the prefix bonus, including floating-point ties.
    ("harper", "hardy"), ("bailey", "boyle"), ("winter", "whitehead"), ("george", "glover"),
    ("bentley", "bartlett"), ("holloway", "howarth"),
    ("zo\u00eb", "zoe"), ("\u0161imon", "simon"), ("\u03b1\u03bb\u03ad\u03be\u03b7\u03c2",
    "\u03b1\u03bb\u03b5\u03be\u03b7\u03c2"), ("\u4e2d\u6587", "\u4e2d\u6587"),
]


def letters(s):
    # Only ASCII letters count; upper-case after filtering, since e.g. "\u0131".upper() is "I".
    return "".join(c for c in s if "a" <= c <= "z" or "A" <= c <= "Z").upper()


def read_names():
    names = []
    for fname in sorted(os.listdir(os.path.join(ROOT, "data", "names"))):
        if not fname.endswith(".csv"):
            continue
        with open(os.path.join(ROOT, "data", "names", fname), encoding="utf-8") as f:
            rows = list(csv.reader(f))
        for row in rows[1:]:
            if row and row[0].strip():
                names.append(row[0].strip().lower())
    seen, out = set(), []
    for n in names + HARD:
        if n not in seen:
            seen.add(n)
            out.append(n)
    return out


def check_field(s):
    if "\t" in s or "\n" in s:
        sys.exit("reference input contains a tab or newline")
    return s


def main():
    names = read_names()
    c_differs = []
    with open(os.path.join(HERE, "nysiis.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("# input\tnysiis (6)\tnysiis (untruncated), from jellyfish %s\n"
                % getattr(jellyfish, "__version__", "0.8.9"))
        for n in names:
            full = pyjf.nysiis(letters(n))
            if letters(n) and jellyfish.nysiis(letters(n)) != full:
                c_differs.append(n)
            f.write("%s\t%s\t%s\n" % (check_field(n), full[:6], full))

    pairs = list(JW_PAIRS)
    rnd = random.Random(20211201)
    surnames = [n for n in names if " " not in n][:400]
    for n in surnames:
        # A typo of each kind, and one unrelated name.
        if len(n) > 2:
            i = rnd.randrange(len(n) - 1)
            pairs.append((n, n[:i] + n[i + 1] + n[i] + n[i + 2:]))   # transposition
            pairs.append((n, n[:i] + n[i + 1:]))                      # deletion
            pairs.append((n, n[:i] + rnd.choice("aeiouy") + n[i + 1:]))  # substitution
        pairs.append((n, rnd.choice(surnames)))
    with open(os.path.join(HERE, "jaro_winkler.tsv"), "w", encoding="utf-8",
              newline="\n") as f:
        f.write("# a\tb\tjellyfish.jaro_winkler_similarity(a, b) (%.17g)\n")
        for a, b in pairs:
            f.write("%s\t%s\t%.17g\n" % (check_field(a), check_field(b),
                                         jellyfish.jaro_winkler_similarity(a, b)))
    print("nysiis.tsv: %d names; the C accelerator differs on %d: %s"
          % (len(names), len(c_differs), " ".join(c_differs)))
    print("jaro_winkler.tsv: %d pairs" % len(pairs))


if __name__ == "__main__":
    main()

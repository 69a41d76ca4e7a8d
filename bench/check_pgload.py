#!/usr/bin/env python3
"""Flattens a synth output folder for the PostgreSQL comparison of bench/check.sh.

    check_pgload.py SYNTH_DIR REGISTER.tsv DONORS.tsv

REGISTER.tsv gets surname, forename, postcode, address1 of every revised-register row
(every layout synth writes: CSV or TSV, UTF-8 or Windows-1252, one name column or two);
DONORS.tsv gets the surname and postcode of every individual donor, normalised the same
way (lower-case surname, upper-case postcode with one space), for the lookup
SELECT ... WHERE surname = $1 AND postcode = $2. Synthetic data only.
"""
import csv
import glob
import os
import sys


def pc(s):
    s = "".join(s.split()).upper()
    return s[:-3] + " " + s[-3:] if len(s) > 3 else s


def clean(s):
    return s.replace("\t", " ").replace("\n", " ").replace("\\", "")


def rows(path):
    raw = open(path, "rb").read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:  # a few broken bytes on purpose (donations)
            text = raw.decode("utf-8-sig", errors="replace")
    first = text.split("\n", 1)[0]
    return csv.DictReader(text.splitlines(), delimiter="\t" if "\t" in first else ",")


def main():
    src, reg_out, don_out = sys.argv[1:4]
    n = 0
    with open(reg_out, "w", encoding="utf-8") as out:
        for path in sorted(glob.glob(os.path.join(src, "*", "full-*.csv"))):
            for r in rows(path):
                if "Elector Surname" in r:
                    sn, fn = r.get("Elector Surname") or "", r.get("Elector Forename") or ""
                else:
                    name = r.get("Elector Name") or ""
                    sn, _, fn = name.partition(",")
                out.write("\t".join(clean(x) for x in (sn.strip().lower(), fn.strip().lower(),
                          pc(r.get("PostCode") or ""), r.get("Address1") or "")) + "\n")
                n += 1
    d = 0
    with open(don_out, "w", encoding="utf-8") as out:
        for r in rows(os.path.join(src, "donations.csv")):
            if r.get("DonorStatus") != "Individual" or not (r.get("DonorName") or "").split():
                continue
            out.write(f"{d + 1}\t{clean(r['DonorName'].split()[-1].lower())}\t"
                      f"{clean(pc(r.get('Postcode') or ''))}\n")
            d += 1
    print(f"{n} register rows, {d} donors")


if __name__ == "__main__":
    main()

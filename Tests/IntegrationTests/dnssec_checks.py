#!/usr/bin/env python3
"""DNSSEC checks against a running `lodestar dns`, with dnspython as the validating client.

usage: dnssec_checks.py PORT ZONE TAG ALG DIGEST_HEX

The DNSKEY RRset is fetched over TCP and must match the DS (TAG ALG 2 DIGEST) and validate with its own RRSIG. Then:
  * geo answers with DO and ECS from London and Tokyo: different addresses, each RRset validated with its RRSIG;
  * a name that does not exist: NOERROR with an NSEC at that name (bitmap NSEC RRSIG NXNAME), validated;
  * no data (www TXT): the NSEC's bitmap holds A and not TXT, validated;
  * a large TXT RRset at `big`: with DO and a 512-byte buffer the answer is truncated (TC), without DO it fits, and
    over TCP the signed answer is whole and validates.
Prints one JSON line with the findings; exits 1 on the first failed check (with the reason).
"""
import json
import sys

import dns.dnssec
import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype


def fail(why):
    print(json.dumps({"ok": False, "error": why}), flush=True)
    sys.exit(1)


def ask(port, name, rdtype, do=True, ecs=None, payload=1232, tcp=False):
    options = [dns.edns.ECSOption(ecs[0], ecs[1])] if ecs else []
    q = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=do, payload=payload, options=options)
    q.flags &= ~dns.flags.RD
    if tcp:
        return dns.query.tcp(q, "127.0.0.1", port=port, timeout=3)
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=3, ignore_trailing=False)


def validated(section, keys, zone, what):
    """Every RRset of `section` (RRSIGs aside) validates with its RRSIG against `keys`."""
    sigs = {(r.name, r.covers): r for r in section if r.rdtype == dns.rdatatype.RRSIG}
    count = 0
    for rrset in section:
        if rrset.rdtype == dns.rdatatype.RRSIG:
            continue
        sig = sigs.get((rrset.name, rrset.rdtype))
        if sig is None:
            fail("%s: %s %s has no RRSIG" % (what, rrset.name, dns.rdatatype.to_text(rrset.rdtype)))
        try:
            dns.dnssec.validate(rrset, sig, {zone: keys})
        except dns.dnssec.ValidationFailure as e:
            fail("%s: %s %s does not validate: %s" % (what, rrset.name, dns.rdatatype.to_text(rrset.rdtype), e))
        count += 1
    return count


def main():
    port, zone_text, tag, alg, digest = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    zone = dns.name.from_text(zone_text)
    out = {}

    r = ask(port, zone, "DNSKEY", tcp=True)
    keys = r.find_rrset(r.answer, zone, dns.rdataclass.IN, dns.rdatatype.DNSKEY)
    matching = [k for k in keys if dns.dnssec.key_id(k) == tag
                and dns.dnssec.make_ds(zone, k, "SHA256").digest.hex().upper() == digest.upper() and k.algorithm == alg]
    if not matching:
        fail("no DNSKEY matches DS %d %d 2 %s" % (tag, alg, digest))
    validated(r.answer, keys, zone, "DNSKEY")
    out["dnskeys"] = len(keys)

    addresses = {}
    for city, subnet in (("london", "81.2.69.0"), ("tokyo", "133.1.2.0")):
        r = ask(port, "www." + zone_text, "A", ecs=(subnet, 24))
        validated(r.answer, keys, zone, "www A from " + city)
        addresses[city] = sorted(str(rd) for rs in r.answer if rs.rdtype == dns.rdatatype.A for rd in rs)
    if addresses["london"] == addresses["tokyo"]:
        fail("London and Tokyo got the same answer %s" % addresses)
    out["addresses"] = addresses

    r = ask(port, "no-such-name." + zone_text, "A")
    if r.rcode() != dns.rcode.NOERROR:
        fail("a missing name with DO: rcode %s (compact denial answers NOERROR)" % dns.rcode.to_text(r.rcode()))
    nsec = [rs for rs in r.authority if rs.rdtype == dns.rdatatype.NSEC]
    if not nsec or 128 not in [t for w in nsec[0][0].windows for t in _types(w)]:
        fail("a missing name: no NSEC with NXNAME in %s" % r.authority)
    out["nxdomain_signed_rrsets"] = validated(r.authority, keys, zone, "NXDOMAIN")

    r = ask(port, "www." + zone_text, "TXT")
    nsec = [rs for rs in r.authority if rs.rdtype == dns.rdatatype.NSEC]
    types = [t for w in nsec[0][0].windows for t in _types(w)] if nsec else []
    if dns.rdatatype.A not in types or dns.rdatatype.TXT in types:
        fail("NODATA www TXT: NSEC bitmap %s should hold A and not TXT" % types)
    out["nodata_signed_rrsets"] = validated(r.authority, keys, zone, "NODATA")

    plain = ask(port, "big." + zone_text, "TXT", do=False, payload=512)
    signed = ask(port, "big." + zone_text, "TXT", do=True, payload=512)
    whole = ask(port, "big." + zone_text, "TXT", do=True, tcp=True)
    out["big_plain_tc"] = bool(plain.flags & dns.flags.TC)
    out["big_signed_tc"] = bool(signed.flags & dns.flags.TC)
    if out["big_plain_tc"] or not out["big_signed_tc"]:
        fail("truncation: without DO TC=%s (want False), with DO TC=%s (want True)" % (out["big_plain_tc"], out["big_signed_tc"]))
    out["big_tcp_signed_rrsets"] = validated(whole.answer, keys, zone, "big TXT over TCP")
    out["ok"] = True
    print(json.dumps(out), flush=True)


def _types(window):
    base, bitmap = window
    for i, byte in enumerate(bitmap):
        for bit in range(8):
            if byte & (0x80 >> bit):
                yield base * 256 + i * 8 + bit


if __name__ == "__main__":
    main()

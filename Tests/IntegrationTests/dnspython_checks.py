#!/usr/bin/env python3
"""Wire-level checks of a running Lodestar DNS server with dnspython, independent of dig.

Usage: python3 dnspython_checks.py --server 127.0.0.1 --port PORT

Expects the default topology.json (zone example.test, service www over 127.0.1.1 us-east / 127.0.2.1 eu-central /
127.0.3.1 ap-southeast, fallback us-east, nodeId dns-local-1, SOA minimum 60) with the sample GeoIP database.
Prints one line per check and "N passed, M failed"; exits 0 only if every check passed.
"""

import argparse
import random
import socket
import struct
import sys
import traceback

try:
    import dns.edns
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdataclass
    import dns.rdatatype
except ImportError as error:  # pragma: no cover - reported by the caller
    print(f"dnspython is not installed ({error}); pip install dnspython", file=sys.stderr)
    sys.exit(3)

US, EU, AP = "127.0.1.1", "127.0.2.1", "127.0.3.1"
ZONE = "example.test."
TIMEOUT = 3.0


class CheckFailed(AssertionError):
    pass


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


class Checker:
    def __init__(self, server, port):
        self.server = server
        self.port = port
        self.passed = 0
        self.failed = 0

    # --- helpers -------------------------------------------------------------------------------------------

    def udp(self, qname, rdtype="A", **kwargs):
        q = dns.message.make_query(qname, rdtype, **kwargs)
        return dns.query.udp(q, self.server, port=self.port, timeout=TIMEOUT)

    def tcp(self, qname, rdtype="A", **kwargs):
        q = dns.message.make_query(qname, rdtype, **kwargs)
        return dns.query.tcp(q, self.server, port=self.port, timeout=TIMEOUT)

    @staticmethod
    def addresses(response, rdtype=dns.rdatatype.A):
        return sorted(rd.address for rrset in response.answer if rrset.rdtype == rdtype for rd in rrset)

    @staticmethod
    def ecs_option(response):
        for option in response.options:
            if isinstance(option, dns.edns.ECSOption):
                return option
        return None

    @staticmethod
    def show(response):
        return "\n    " + response.to_text().replace("\n", "\n    ")

    def run(self, name, function):
        try:
            function()
        except CheckFailed as error:
            self.failed += 1
            print(f"FAIL {name}: {error}")
        except Exception as error:  # a timeout or a parse error is a failure, not a crash of the script
            self.failed += 1
            print(f"FAIL {name}: {type(error).__name__}: {error}")
            traceback.print_exc(file=sys.stderr)
        else:
            self.passed += 1
            print(f"PASS {name}")

    # --- checks --------------------------------------------------------------------------------------------

    def a_answer(self):
        r = self.udp("www.example.test", "A", use_edns=0)
        expect(r.rcode() == dns.rcode.NOERROR, f"rcode {dns.rcode.to_text(r.rcode())}{self.show(r)}")
        expect(r.flags & dns.flags.QR, "QR not set")
        expect(r.flags & dns.flags.AA, f"AA not set{self.show(r)}")
        expect(not r.flags & dns.flags.RA, f"RA set by an authoritative-only server{self.show(r)}")
        expect(self.addresses(r) == [US], f"expected [{US}] (fallback us-east), got {self.addresses(r)}")
        expect(r.answer[0].ttl == 30, f"TTL {r.answer[0].ttl}, expected 30")
        expect(r.answer[0].name == dns.name.from_text("www.example.test."), f"owner {r.answer[0].name}")
        expect(r.edns == 0, f"EDNS version {r.edns} in reply to an EDNS(0) query")
        expect(self.ecs_option(r) is None, "ECS option in reply to a query without ECS")

    def ecs(self, address, source, edge, scope):
        def check():
            option = dns.edns.ECSOption(address, source)
            r = self.udp("www.example.test", "A", use_edns=0, options=[option])
            expect(r.rcode() == dns.rcode.NOERROR, f"rcode {dns.rcode.to_text(r.rcode())}")
            expect(self.addresses(r) == [edge], f"{address}/{source}: expected [{edge}], got {self.addresses(r)}")
            reply = self.ecs_option(r)
            expect(reply is not None, f"no ECS option in the reply{self.show(r)}")
            expect(reply.address == address, f"ECS address {reply.address}, sent {address}")
            expect(reply.srclen == source, f"ECS source prefix {reply.srclen}, sent {source}")
            # The scope may be wider (shorter) than the GeoIP network: the answer engine merges neighbours alike.
            expect(reply.scopelen <= scope, f"{address}/{source}: ECS scope {reply.scopelen}, expected at most {scope}")
        return check

    def nxdomain(self):
        r = self.udp("nope.example.test", "A")
        expect(r.rcode() == dns.rcode.NXDOMAIN, f"rcode {dns.rcode.to_text(r.rcode())}")
        expect(r.flags & dns.flags.AA, "AA not set")
        expect(not r.answer, f"answers in NXDOMAIN{self.show(r)}")
        self.expect_negative_soa(r)

    def expect_negative_soa(self, r):
        soas = [rrset for rrset in r.authority if rrset.rdtype == dns.rdatatype.SOA]
        expect(len(soas) == 1, f"expected one SOA in authority{self.show(r)}")
        soa = soas[0]
        expect(soa.name == dns.name.from_text(ZONE), f"SOA owner {soa.name}")
        expect(soa.ttl == 60, f"negative TTL {soa.ttl}, expected 60 = min(SOA TTL, minimum)")
        expect(soa[0].minimum == 60, f"SOA minimum {soa[0].minimum}")

    def nodata(self):
        for qname in ("mail.example.test", "www.example.test"):
            r = self.udp(qname, "AAAA")
            expect(r.rcode() == dns.rcode.NOERROR, f"{qname} AAAA: rcode {dns.rcode.to_text(r.rcode())}")
            expect(r.flags & dns.flags.AA, f"{qname} AAAA: AA not set")
            expect(not r.answer, f"{qname} AAAA: answers in NODATA{self.show(r)}")
            self.expect_negative_soa(r)

    def refused(self):
        r = self.udp("www.example.com", "A")
        expect(r.rcode() == dns.rcode.REFUSED, f"rcode {dns.rcode.to_text(r.rcode())}")
        expect(not r.flags & dns.flags.AA, "AA set on REFUSED")
        expect(not r.answer and not r.authority, f"records in REFUSED{self.show(r)}")

    def tcp_answer(self):
        r = self.tcp("www.example.test", "A")
        expect(r.rcode() == dns.rcode.NOERROR, f"rcode {dns.rcode.to_text(r.rcode())}")
        expect(r.flags & dns.flags.AA, "AA not set")
        expect(self.addresses(r) == [US], f"got {self.addresses(r)}")
        option = dns.edns.ECSOption("81.2.69.0", 24)
        r = self.tcp("www.example.test", "A", use_edns=0, options=[option])
        expect(self.addresses(r) == [EU], f"ECS over TCP: got {self.addresses(r)}")
        reply = self.ecs_option(r)
        expect(reply is not None and reply.scopelen == 24, f"ECS over TCP: {reply}")

    def nsid(self):
        r = self.udp("www.example.test", "A", use_edns=0, options=[dns.edns.GenericOption(dns.edns.NSID, b"")])
        values = [o.data if hasattr(o, "data") else getattr(o, "nsid", None) for o in r.options if o.otype == dns.edns.NSID]
        expect(values, f"no NSID option in the reply{self.show(r)}")
        expect(bytes(values[0]) == b"dns-local-1", f"NSID {values[0]!r}, expected b'dns-local-1'")

    def badvers(self):
        r = self.udp("www.example.test", "A", use_edns=1)
        expect(r.rcode() == dns.rcode.BADVERS, f"rcode {dns.rcode.to_text(r.rcode())}, expected BADVERS")
        expect(r.edns == 0, f"BADVERS reply has EDNS version {r.edns}, expected 0")
        expect(not r.answer, "answers in BADVERS")

    def no_edns(self):
        r = self.udp("www.example.test", "A", use_edns=False)
        expect(r.edns == -1, "OPT in a reply to a query without EDNS")
        expect(self.addresses(r) == [US], f"got {self.addresses(r)}")

    def malformed(self):
        junk = [
            b"",
            b"\x01\x02\x03\x04\x05",
            struct.pack(">HHHHHH", 0xBEEF, 0, 1, 0, 0, 0),
            struct.pack(">HHHHHH", 0xCAFE, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01",
            struct.pack(">HHHHHH", 0xD00D, 0, 1, 0, 0, 0) + b"\x3fabc",
        ]
        rng = random.Random(7871)
        junk += [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300))) for _ in range(200)]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.5)
            for wire in junk:
                dns.query.send_udp(sock, wire, (self.server, self.port))
            # The header-only query must come back as FORMERR with its ID (first reply to a readable header).
            sock.settimeout(TIMEOUT)
            dns.query.send_udp(sock, struct.pack(">HHHHHH", 0xF00D, 0, 1, 0, 0, 0), (self.server, self.port))
            formerr = None
            try:
                while formerr is None:
                    data, _ = sock.recvfrom(65535)
                    if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == 0xF00D:
                        formerr = data
            except socket.timeout:
                pass
            expect(formerr is not None, "no reply to a header-only query")
            flags = struct.unpack(">H", formerr[2:4])[0]
            expect(flags & 0x8000, "QR not set in FORMERR")
            expect(flags & 0x000F == dns.rcode.FORMERR, f"rcode {flags & 0xF}, expected FORMERR (1)")
        # Still alive and answering.
        r = self.udp("www.example.test", "A")
        expect(self.addresses(r) == [US], f"after junk: got {self.addresses(r)}")

    def main(self):
        self.run("A answer www.example.test (aa, TTL 30, fallback us-east)", self.a_answer)
        self.run("ECS EU 81.2.69.0/24 -> 127.0.2.1 scope 24", self.ecs("81.2.69.0", 24, EU, 24))
        self.run("ECS EU 85.214.3.0/24 -> 127.0.2.1 scope 16", self.ecs("85.214.3.0", 24, EU, 16))
        self.run("ECS US 8.8.8.0/24 -> 127.0.1.1 scope 24", self.ecs("8.8.8.0", 24, US, 24))
        self.run("ECS AP 133.1.2.0/24 -> 127.0.3.1 scope 8", self.ecs("133.1.2.0", 24, AP, 8))
        self.run("ECS AP 1.128.5.0/24 -> 127.0.3.1 scope 11", self.ecs("1.128.5.0", 24, AP, 11))
        self.run("ECS AP 2404:6800:1::/48 -> 127.0.3.1 scope 32", self.ecs("2404:6800:1::", 48, AP, 32))
        self.run("ECS override 198.51.100.0/24 -> 127.0.3.1 scope 24", self.ecs("198.51.100.0", 24, AP, 24))
        self.run("NXDOMAIN with SOA (TTL 60)", self.nxdomain)
        self.run("NODATA with SOA (mail AAAA, www AAAA)", self.nodata)
        self.run("REFUSED outside the zone, no AA", self.refused)
        self.run("TCP answer (dns.query.tcp)", self.tcp_answer)
        self.run("NSID dns-local-1", self.nsid)
        self.run("BADVERS for EDNS version 1", self.badvers)
        self.run("no OPT without EDNS", self.no_edns)
        self.run("survives malformed wire data; FORMERR keeps the ID", self.malformed)
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 else 1


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5300)
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args(sys.argv[1:])
    sys.exit(Checker(args.server, args.port).main())

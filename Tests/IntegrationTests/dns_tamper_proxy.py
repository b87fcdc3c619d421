#!/usr/bin/env python3
"""A UDP relay between a resolver and an authoritative server that can forge answers.

usage: dns_tamper_proxy.py LISTEN_PORT UPSTREAM_PORT LOG_FILE [TAMPER_NAME]

Every query from 127.0.0.0/8 to 127.0.0.1:LISTEN_PORT goes to 127.0.0.1:UPSTREAM_PORT and the answer comes back; each
forwarded query is logged as one line "NAME TYPE ECS" (ECS as ADDRESS/SOURCE, or -). Answers for TAMPER_NAME get
their A addresses changed (the RRSIGs are left as signed), so a validating resolver must reject them.
Prints "ready" once listening.
"""
import socket
import sys
import threading

import dns.edns
import dns.message
import dns.rdatatype


def main():
    listen, upstream, log_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    tamper = sys.argv[4].lower().rstrip(".") + "." if len(sys.argv) > 4 else None
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", listen))
    log_lock = threading.Lock()

    def relay(data, client):
        try:
            query = dns.message.from_wire(data)
            q = query.question[0]
            ecs = next((f"{o.address}/{o.srclen}" for o in query.options if isinstance(o, dns.edns.ECSOption)), "-")
            with log_lock, open(log_path, "a") as log:
                log.write(f"{q.name.to_text().lower()} {dns.rdatatype.to_text(q.rdtype)} {ecs}\n")
        except Exception:
            q = None
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        up.settimeout(3)
        try:
            up.sendto(data, ("127.0.0.1", upstream))
            answer, _ = up.recvfrom(65535)
        except OSError:
            return
        finally:
            up.close()
        if tamper and q is not None and q.name.to_text().lower() == tamper:
            msg = dns.message.from_wire(answer)
            for rrset in msg.answer:
                if rrset.rdtype == dns.rdatatype.A:
                    for rd in list(rrset):
                        rrset.remove(rd)
                        rrset.add(dns.rdata.from_text("IN", "A", "192.0.2.66"))
            answer = msg.to_wire()
        server.sendto(answer, client)

    print("ready", flush=True)
    while True:
        data, client = server.recvfrom(65535)
        threading.Thread(target=relay, args=(data, client), daemon=True).start()


if __name__ == "__main__":
    main()

/*
 * ecsload: a small closed-loop UDP DNS load generator for Benchmarks/dns.sh.
 *
 * dnsperf can attach only ONE fixed EDNS option per run, so it cannot send
 * EDNS Client Subnet (RFC 7871) from many different subnets. This tool can:
 * every query takes the next subnet from a list (cycled), keeps N queries in
 * flight over K connected non-blocking UDP sockets, matches responses by
 * (socket, id), and prints sent / received / lost / QPS / avg / p99.
 *
 * Modes:
 *   default   queries carry EDNS0 + ECS, subnets cycled from -f FILE
 *   -n        plain queries: no EDNS at all (like dnsperf's default)
 *   -e        with -n: EDNS0 OPT record but no ECS option
 *   -D        the DO bit in the OPT record (asks for DNSSEC records)
 *   -1 OUT    one pass: each subnet queried once, writes
 *             "subnet<TAB>rcode<TAB>answer<TAB>scope" per line to OUT (in
 *             the order of -f FILE), for comparing two servers' answers.
 *
 * Validation per response (minimal): QR set, id outstanding, rcode NOERROR,
 * ANCOUNT >= 1, TC clear. Anything else counts as a failure (still a
 * response for QPS/latency purposes, listed separately).
 *
 * Build: gcc -O2 -Wall -o ecsload ecsload.c      (Linux only: epoll, *mmsg)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOCKETS 64
#define BATCH 64
#define PKT_MAX 512
#define RESP_MAX 4096
#define HIST_US 2000000 /* latency histogram: 1 us buckets up to 2 s */

typedef struct {
    uint8_t opt[24]; /* ECS option: code(2) len(2) family(2) src(1) scope(1) addr(<=16) */
    uint8_t optlen;
    char text[64];   /* as written in the subnets file */
} subnet_t;

typedef struct {
    uint8_t wire[300]; /* qname in wire format + qtype + qclass */
    uint16_t len;
} question_t;

typedef struct {
    uint64_t sent_ns; /* 0 = free */
    uint32_t subnet;  /* index into subnets (for -1 mode) */
} slot_t;

typedef struct {
    int fd;
    int inflight;
    int target;
    uint16_t next_id;
    slot_t *slots; /* 65536 */
} sock_t;

/* ---- options and state ---- */
static const char *opt_server = "127.0.0.1";
static int opt_port = 53;
static double opt_duration = 10.0;
static int opt_inflight = 100;
static int opt_sockets = 4;
static const char *opt_subnets = NULL;
static const char *opt_queries = NULL;
static int opt_no_ecs = 0;
static int opt_edns_plain = 0;
static int opt_dnssec_ok = 0; /* -D: the DO bit in the OPT record (RFC 3225) */
static int opt_timeout_ms = 1000;
static const char *opt_onepass = NULL;
static double opt_max_qps = 0;
static int opt_quiet = 1;

static subnet_t *subnets;
static size_t n_subnets, cap_subnets;
static question_t *questions;
static size_t n_questions, cap_questions;

static uint32_t *hist;
static uint64_t lat_sum_ns, lat_max_ns, lat_count;
static uint64_t c_sent, c_recv, c_recv_in_window, c_ok, c_lost, c_late, c_bad_rcode, c_noanswer, c_trunc,
    c_malformed, c_ecs_resp, c_send_err;
static uint64_t c_rcode[16];
static uint64_t c_scope[129];

/* one-pass results */
typedef struct {
    int state; /* 0 pending/lost, 1 answered */
    int rcode;
    int scope; /* -1 if no ECS in response */
    char answer[64];
} onepass_t;
static onepass_t *onepass;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *msg) {
    fprintf(stderr, "ecsload: %s\n", msg);
    exit(2);
}

static void usage(void) {
    fprintf(stderr,
        "usage: ecsload -s ADDR -p PORT [-d SECONDS] [-c INFLIGHT] [-k SOCKETS]\n"
        "               [-f SUBNETS] [-q QUERIES] [-n [-e]] [-t TIMEOUT_MS]\n"
        "               [-Q MAX_QPS] [-1 OUTFILE] [-v]\n"
        "  -f  file of client subnets, one 'addr/len' per line (IPv4 or IPv6)\n"
        "  -q  file of queries 'name TYPE' (dnsperf format); default 'www.example.test A'\n"
        "  -n  no ECS and no EDNS (plain queries); -e adds a bare EDNS0 OPT\n"
        "  -1  one pass over SUBNETS, write 'subnet rcode answer scope' lines to OUTFILE\n"
        "  -v  quiet=0: print per-second progress to stderr\n");
    exit(2);
}

/* ---- input files ---- */

static int parse_subnet(const char *s, subnet_t *out) {
    char buf[80];
    size_t n = strlen(s);
    if (n >= sizeof buf || n == 0) return -1;
    memcpy(buf, s, n + 1);
    char *slash = strchr(buf, '/');
    if (!slash) return -1;
    *slash = 0;
    char *end;
    long plen = strtol(slash + 1, &end, 10);
    if (*end != 0) return -1;
    uint8_t addr[16];
    int family;
    size_t alen;
    if (inet_pton(AF_INET, buf, addr) == 1) {
        family = 1; alen = 4;
        if (plen < 0 || plen > 32) return -1;
    } else if (inet_pton(AF_INET6, buf, addr) == 1) {
        family = 2; alen = 16;
        if (plen < 0 || plen > 128) return -1;
    } else {
        return -1;
    }
    size_t nbytes = ((size_t)plen + 7) / 8; /* RFC 7871 6: address truncated to source prefix */
    (void)alen;
    if (nbytes > 0 && (plen % 8) != 0) addr[nbytes - 1] &= (uint8_t)(0xff << (8 - plen % 8));
    uint8_t *o = out->opt;
    uint16_t optdata = (uint16_t)(4 + nbytes);
    o[0] = 0; o[1] = 8;                         /* OPTION-CODE 8 = ECS */
    o[2] = (uint8_t)(optdata >> 8); o[3] = (uint8_t)optdata;
    o[4] = 0; o[5] = (uint8_t)family;
    o[6] = (uint8_t)plen; o[7] = 0;             /* source prefix, scope 0 */
    memcpy(o + 8, addr, nbytes);
    out->optlen = (uint8_t)(8 + nbytes);
    snprintf(out->text, sizeof out->text, "%s", s);
    return 0;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
    return s;
}

static void load_subnets(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); exit(2); }
    char line[256];
    size_t lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (*s == 0 || *s == '#') continue;
        if (n_subnets == cap_subnets) {
            cap_subnets = cap_subnets ? cap_subnets * 2 : 16384;
            subnets = realloc(subnets, cap_subnets * sizeof *subnets);
            if (!subnets) die("out of memory");
        }
        if (parse_subnet(s, &subnets[n_subnets]) != 0) {
            fprintf(stderr, "ecsload: %s:%zu: not a subnet: '%s'\n", path, lineno, s);
            exit(2);
        }
        n_subnets++;
    }
    fclose(f);
    if (n_subnets == 0) die("no subnets in file");
}

static int qtype_code(const char *t) {
    static const struct { const char *n; int c; } types[] = {
        {"A", 1}, {"NS", 2}, {"CNAME", 5}, {"SOA", 6}, {"PTR", 12}, {"MX", 15}, {"TXT", 16},
        {"AAAA", 28}, {"SRV", 33}, {"ANY", 255}, {"CAA", 257}, {"HTTPS", 65}, {NULL, 0}};
    for (int i = 0; types[i].n; i++)
        if (strcasecmp(t, types[i].n) == 0) return types[i].c;
    if (strncasecmp(t, "TYPE", 4) == 0) return atoi(t + 4);
    return -1;
}

static int encode_question(const char *name, const char *type, question_t *q) {
    int code = qtype_code(type);
    if (code <= 0 || code > 65535) return -1;
    size_t pos = 0;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l == 0) { if (dot && dot[1] == 0) break; return -1; }
        if (l > 63 || pos + l + 1 > 255) return -1;
        q->wire[pos++] = (uint8_t)l;
        memcpy(q->wire + pos, p, l);
        pos += l;
        if (!dot) break;
        p = dot + 1;
    }
    q->wire[pos++] = 0;
    q->wire[pos++] = (uint8_t)(code >> 8);
    q->wire[pos++] = (uint8_t)code;
    q->wire[pos++] = 0;
    q->wire[pos++] = 1; /* IN */
    q->len = (uint16_t)pos;
    return 0;
}

static void add_question(const char *name, const char *type) {
    if (n_questions == cap_questions) {
        cap_questions = cap_questions ? cap_questions * 2 : 64;
        questions = realloc(questions, cap_questions * sizeof *questions);
        if (!questions) die("out of memory");
    }
    if (encode_question(name, type, &questions[n_questions]) != 0) {
        fprintf(stderr, "ecsload: bad query '%s %s'\n", name, type);
        exit(2);
    }
    n_questions++;
}

static void load_queries(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); exit(2); }
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *s = trim(line);
        if (*s == 0 || *s == '#' || *s == ';') continue;
        char name[300], type[32];
        if (sscanf(s, "%299s %31s", name, type) != 2) {
            fprintf(stderr, "ecsload: bad query line '%s'\n", s);
            exit(2);
        }
        add_question(name, type);
    }
    fclose(f);
    if (n_questions == 0) die("no queries in file");
}

/* ---- packets ---- */

static size_t n_query_seq; /* query counter for cycling names */
static size_t n_subnet_seq;

static size_t build_query(uint8_t *buf, uint16_t id, const question_t *q, const subnet_t *sn) {
    buf[0] = (uint8_t)(id >> 8); buf[1] = (uint8_t)id;
    buf[2] = 0x00; buf[3] = 0x00; /* RD=0: authoritative server */
    buf[4] = 0; buf[5] = 1;       /* QDCOUNT */
    buf[6] = buf[7] = buf[8] = buf[9] = 0;
    buf[10] = 0; buf[11] = (sn || opt_edns_plain) ? 1 : 0; /* ARCOUNT */
    size_t pos = 12;
    memcpy(buf + pos, q->wire, q->len);
    pos += q->len;
    if (sn || opt_edns_plain) {
        uint16_t rdlen = sn ? sn->optlen : 0;
        buf[pos++] = 0;                  /* root */
        buf[pos++] = 0; buf[pos++] = 41; /* OPT */
        buf[pos++] = 0x04; buf[pos++] = 0xd0; /* UDP payload 1232 */
        buf[pos++] = 0; buf[pos++] = 0; buf[pos++] = opt_dnssec_ok ? 0x80 : 0; buf[pos++] = 0;
        buf[pos++] = (uint8_t)(rdlen >> 8); buf[pos++] = (uint8_t)rdlen;
        if (sn) { memcpy(buf + pos, sn->opt, sn->optlen); pos += sn->optlen; }
    }
    return pos;
}

/* Skip a (possibly compressed) name; returns new offset or -1. */
static long skip_name(const uint8_t *p, size_t len, size_t off) {
    for (int guard = 0; guard < 128; guard++) {
        if (off >= len) return -1;
        uint8_t l = p[off];
        if ((l & 0xc0) == 0xc0) return (off + 2 <= len) ? (long)(off + 2) : -1;
        if (l & 0xc0) return -1;
        if (l == 0) return (long)(off + 1);
        off += 1 + (size_t)l;
    }
    return -1;
}

typedef struct {
    int rcode, ancount, tc, scope; /* scope -1: no ECS option */
    char answer[64];
} resp_info_t;

/* Bounds-checked walk to the OPT record (for the ECS scope) and the first answer. */
static int parse_response(const uint8_t *p, size_t len, resp_info_t *ri, int want_answer) {
    ri->scope = -1;
    ri->answer[0] = 0;
    if (len < 12) return -1;
    ri->rcode = p[3] & 0x0f;
    ri->tc = (p[2] & 0x02) != 0;
    int qd = (p[4] << 8) | p[5];
    ri->ancount = (p[6] << 8) | p[7];
    int ns = (p[8] << 8) | p[9];
    int ar = (p[10] << 8) | p[11];
    size_t off = 12;
    for (int i = 0; i < qd; i++) {
        long o = skip_name(p, len, off);
        if (o < 0 || (size_t)o + 4 > len) return -1;
        off = (size_t)o + 4;
    }
    int total = ri->ancount + ns + ar;
    for (int i = 0; i < total; i++) {
        long o = skip_name(p, len, off);
        if (o < 0 || (size_t)o + 10 > len) return -1;
        off = (size_t)o;
        uint16_t type = (uint16_t)((p[off] << 8) | p[off + 1]);
        uint16_t rdlen = (uint16_t)((p[off + 8] << 8) | p[off + 9]);
        off += 10;
        if (off + rdlen > len) return -1;
        const uint8_t *rd = p + off;
        if (want_answer && i == 0 && ri->ancount > 0) {
            if (type == 1 && rdlen == 4) inet_ntop(AF_INET, rd, ri->answer, sizeof ri->answer);
            else if (type == 28 && rdlen == 16) inet_ntop(AF_INET6, rd, ri->answer, sizeof ri->answer);
            else snprintf(ri->answer, sizeof ri->answer, "type%u", type);
        }
        if (type == 41 && i >= ri->ancount + ns) {
            size_t o2 = 0;
            while (o2 + 4 <= rdlen) {
                uint16_t code = (uint16_t)((rd[o2] << 8) | rd[o2 + 1]);
                uint16_t olen = (uint16_t)((rd[o2 + 2] << 8) | rd[o2 + 3]);
                if (o2 + 4 + olen > rdlen) return -1;
                if (code == 8 && olen >= 4) ri->scope = rd[o2 + 4 + 3];
                o2 += 4 + (size_t)olen;
            }
        }
        off += rdlen;
    }
    return 0;
}

/* ---- main loop ---- */

static sock_t socks[MAX_SOCKETS];
static int epfd;
static uint64_t t_start, t_deadline;
static int sending = 1;
static size_t onepass_next; /* next subnet index to send in -1 mode */

static void record_latency(uint64_t ns) {
    uint64_t us = ns / 1000;
    if (us >= HIST_US) us = HIST_US - 1;
    hist[us]++;
    lat_sum_ns += ns;
    lat_count++;
    if (ns > lat_max_ns) lat_max_ns = ns;
}

static double percentile_ms(double pct) {
    if (lat_count == 0) return 0;
    uint64_t want = (uint64_t)((double)lat_count * pct / 100.0);
    if (want >= lat_count) want = lat_count - 1;
    uint64_t acc = 0;
    for (uint32_t i = 0; i < HIST_US; i++) {
        acc += hist[i];
        if (acc > want) return (i + 0.5) / 1000.0;
    }
    return HIST_US / 1000.0;
}

static uint64_t allowed_sends(uint64_t now) {
    if (opt_max_qps <= 0) return UINT64_MAX;
    double el = (double)(now - t_start) / 1e9;
    double allowed = opt_max_qps * el + 1;
    if (allowed <= (double)c_sent) return 0;
    return (uint64_t)(allowed - (double)c_sent);
}

static void fill_socket(sock_t *s, uint64_t now) {
    static uint8_t bufs[BATCH][PKT_MAX];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    uint16_t ids[BATCH];
    while (sending && s->inflight < s->target) {
        uint64_t allow = allowed_sends(now);
        if (allow == 0) return;
        int want = s->target - s->inflight;
        if (want > BATCH) want = BATCH;
        if ((uint64_t)want > allow) want = (int)allow;
        int n = 0;
        for (; n < want; n++) {
            if (opt_onepass && onepass_next >= n_subnets) { sending = 0; break; }
            uint16_t id = s->next_id;
            int guard = 0;
            while (s->slots[id].sent_ns != 0 && guard++ < 65536) id++;
            s->next_id = (uint16_t)(id + 1);
            const question_t *q;
            const subnet_t *sn = NULL;
            uint32_t sidx = 0;
            if (opt_onepass) {
                q = &questions[0];
                sidx = (uint32_t)onepass_next++;
                if (!opt_no_ecs) sn = &subnets[sidx];
            } else {
                q = &questions[n_query_seq++ % n_questions];
                if (!opt_no_ecs) { sidx = (uint32_t)(n_subnet_seq++ % n_subnets); sn = &subnets[sidx]; }
            }
            ids[n] = id;
            s->slots[id].subnet = sidx;
            s->slots[id].sent_ns = 1; /* reserve; real time set after send */
            iov[n].iov_base = bufs[n];
            iov[n].iov_len = build_query(bufs[n], id, q, sn);
            memset(&msgs[n].msg_hdr, 0, sizeof msgs[n].msg_hdr);
            msgs[n].msg_hdr.msg_iov = &iov[n];
            msgs[n].msg_hdr.msg_iovlen = 1;
        }
        if (n == 0) return;
        int r = sendmmsg(s->fd, msgs, (unsigned)n, 0);
        uint64_t t = now_ns();
        int sent = r < 0 ? 0 : r;
        for (int i = 0; i < n; i++) {
            if (i < sent) {
                s->slots[ids[i]].sent_ns = t;
            } else {
                s->slots[ids[i]].sent_ns = 0;
                /* unsent ones are the tail of this batch: give their subnets back, in order */
                if (opt_onepass) { onepass_next--; sending = 1; }
            }
        }
        s->inflight += sent;
        c_sent += (uint64_t)sent;
        if (sent < n) {
            if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS && errno != ECONNREFUSED) {
                c_send_err++;
            }
            return; /* socket buffer full: wait for epoll */
        }
    }
}

static void handle_responses(sock_t *s) {
    static uint8_t bufs[BATCH][RESP_MAX];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = RESP_MAX;
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int r = recvmmsg(s->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (r <= 0) return; /* EAGAIN, or ECONNREFUSED (server not listening): queries time out */
        uint64_t t = now_ns();
        for (int i = 0; i < r; i++) {
            const uint8_t *p = bufs[i];
            size_t len = msgs[i].msg_len;
            if (len < 12 || !(p[2] & 0x80)) { c_malformed++; continue; }
            uint16_t id = (uint16_t)((p[0] << 8) | p[1]);
            slot_t *sl = &s->slots[id];
            if (sl->sent_ns <= 1) { c_late++; continue; } /* timed out earlier, or unknown id */
            record_latency(t - sl->sent_ns);
            uint32_t sidx = sl->subnet;
            sl->sent_ns = 0;
            s->inflight--;
            c_recv++;
            if (t <= t_deadline) c_recv_in_window++;
            resp_info_t ri;
            if (parse_response(p, len, &ri, opt_onepass != NULL) != 0) { c_malformed++; continue; }
            c_rcode[ri.rcode]++;
            if (ri.scope >= 0) { c_ecs_resp++; if (ri.scope <= 128) c_scope[ri.scope]++; }
            if (opt_onepass && sidx < n_subnets) {
                onepass[sidx].state = 1;
                onepass[sidx].rcode = ri.rcode;
                onepass[sidx].scope = ri.scope;
                snprintf(onepass[sidx].answer, sizeof onepass[sidx].answer, "%s",
                         ri.answer[0] ? ri.answer : "-");
            }
            if (ri.rcode != 0) c_bad_rcode++;
            else if (ri.tc) c_trunc++;
            else if (ri.ancount < 1) c_noanswer++;
            else c_ok++;
        }
        if (r < BATCH) return;
    }
}

static void expire(uint64_t now) {
    uint64_t limit = (uint64_t)opt_timeout_ms * 1000000ull;
    for (int k = 0; k < opt_sockets; k++) {
        sock_t *s = &socks[k];
        if (s->inflight == 0) continue;
        for (uint32_t id = 0; id < 65536; id++) {
            uint64_t st = s->slots[id].sent_ns;
            if (st > 1 && now - st > limit) {
                s->slots[id].sent_ns = 0;
                s->inflight--;
                c_lost++;
            }
        }
    }
}

int main(int argc, char **argv) {
    int c;
    while ((c = getopt(argc, argv, "s:p:d:c:k:f:q:neDt:Q:1:vh")) != -1) {
        switch (c) {
        case 's': opt_server = optarg; break;
        case 'p': opt_port = atoi(optarg); break;
        case 'd': opt_duration = atof(optarg); break;
        case 'c': opt_inflight = atoi(optarg); break;
        case 'k': opt_sockets = atoi(optarg); break;
        case 'f': opt_subnets = optarg; break;
        case 'q': opt_queries = optarg; break;
        case 'n': opt_no_ecs = 1; break;
        case 'e': opt_edns_plain = 1; break;
        case 'D': opt_dnssec_ok = 1; break;
        case 't': opt_timeout_ms = atoi(optarg); break;
        case 'Q': opt_max_qps = atof(optarg); break;
        case '1': opt_onepass = optarg; break;
        case 'v': opt_quiet = 0; break;
        default: usage();
        }
    }
    if (opt_port <= 0 || opt_port > 65535) die("bad port");
    if (opt_sockets < 1 || opt_sockets > MAX_SOCKETS) die("-k must be 1..64");
    if (opt_inflight < opt_sockets) opt_inflight = opt_sockets;
    if (opt_inflight / opt_sockets > 32768) die("too many in flight per socket (max 32768)");
    if (opt_timeout_ms < 1) die("bad timeout");
    if (!opt_no_ecs && !opt_subnets) die("need -f SUBNETS (or -n for plain queries)");
    if (opt_onepass && !opt_subnets) die("-1 needs -f SUBNETS");
    if (!opt_no_ecs) opt_edns_plain = 0;
    if (opt_subnets) load_subnets(opt_subnets);
    if (opt_queries) load_queries(opt_queries);
    else add_question("www.example.test", "A");

    hist = calloc(HIST_US, sizeof *hist);
    if (!hist) die("out of memory");
    if (opt_onepass) {
        onepass = calloc(n_subnets, sizeof *onepass);
        if (!onepass) die("out of memory");
    }

    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, opt_server, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET; s4->sin_port = htons((uint16_t)opt_port); sslen = sizeof *s4;
    } else if (inet_pton(AF_INET6, opt_server, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6; s6->sin6_port = htons((uint16_t)opt_port); sslen = sizeof *s6;
    } else {
        die("-s must be a numeric IPv4 or IPv6 address");
    }

    epfd = epoll_create1(0);
    if (epfd < 0) die("epoll_create1 failed");
    for (int k = 0; k < opt_sockets; k++) {
        sock_t *s = &socks[k];
        s->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (s->fd < 0) die("socket failed");
        int bufsz = 4 << 20;
        setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof bufsz);
        setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof bufsz);
        if (connect(s->fd, (struct sockaddr *)&ss, sslen) != 0) die("connect failed");
        s->slots = calloc(65536, sizeof *s->slots);
        if (!s->slots) die("out of memory");
        s->target = opt_inflight / opt_sockets + (k < opt_inflight % opt_sockets ? 1 : 0);
        s->next_id = (uint16_t)(rand() & 0xffff);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)k};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev) != 0) die("epoll_ctl failed");
    }

    t_start = now_ns();
    t_deadline = opt_onepass ? UINT64_MAX : t_start + (uint64_t)(opt_duration * 1e9);
    uint64_t last_expire = t_start, last_report = t_start, report_sent = 0;
    uint64_t drain_until = 0;
    struct epoll_event evs[MAX_SOCKETS];
    for (;;) {
        uint64_t now = now_ns();
        if (sending && now >= t_deadline) {
            sending = 0;
        }
        if (!sending) {
            int left = 0;
            for (int k = 0; k < opt_sockets; k++) left += socks[k].inflight;
            if (drain_until == 0) drain_until = now + (uint64_t)opt_timeout_ms * 1000000ull;
            if (left == 0 || now >= drain_until) break;
        }
        for (int k = 0; k < opt_sockets; k++) fill_socket(&socks[k], now);
        int n = epoll_wait(epfd, evs, MAX_SOCKETS, 1);
        for (int i = 0; i < n; i++) handle_responses(&socks[evs[i].data.u32]);
        now = now_ns();
        if (now - last_expire > 50000000ull) { expire(now); last_expire = now; }
        if (!opt_quiet && now - last_report >= 1000000000ull) {
            fprintf(stderr, "ecsload: %.1fs sent/s=%llu\n", (double)(now - t_start) / 1e9,
                    (unsigned long long)(c_sent - report_sent));
            report_sent = c_sent;
            last_report = now;
        }
    }
    uint64_t t_end = now_ns();
    /* whatever is still outstanding after the drain is lost */
    for (int k = 0; k < opt_sockets; k++) {
        for (uint32_t id = 0; id < 65536; id++)
            if (socks[k].slots[id].sent_ns > 1) { c_lost++; socks[k].slots[id].sent_ns = 0; }
        socks[k].inflight = 0;
    }

    double window_s = opt_onepass ? (double)(t_end - t_start) / 1e9
                                  : (double)(t_deadline - t_start) / 1e9;
    double qps = (double)(opt_onepass ? c_recv : c_recv_in_window) / window_s;
    double avg_ms = lat_count ? (double)lat_sum_ns / (double)lat_count / 1e6 : 0;
    uint64_t failed = c_bad_rcode + c_noanswer + c_trunc + c_malformed;
    size_t distinct = opt_no_ecs ? 0 : n_subnets;
    double scope_sum = 0;
    for (int i = 0; i <= 128; i++) scope_sum += (double)c_scope[i] * i;

    printf("ecsload: server %s port %d, %s, %d in flight over %d sockets, %.1f s%s\n", opt_server, opt_port,
           opt_no_ecs ? (opt_edns_plain ? "EDNS0 without ECS" : "no EDNS") : "EDNS0 + ECS",
           opt_inflight, opt_sockets, window_s, opt_onepass ? " (one pass)" : "");
    if (!opt_no_ecs) printf("  distinct client subnets: %zu\n", distinct);
    printf("  queries: %zu distinct question(s)\n", n_questions);
    printf("  sent %llu, received %llu, lost %llu (%.3f%%), late/stray %llu, send errors %llu\n",
           (unsigned long long)c_sent, (unsigned long long)c_recv, (unsigned long long)c_lost,
           c_sent ? 100.0 * (double)c_lost / (double)c_sent : 0.0, (unsigned long long)c_late,
           (unsigned long long)c_send_err);
    printf("  valid (NOERROR, >=1 answer) %llu; failed %llu: rcode!=0 %llu, no answer %llu, TC %llu, malformed %llu\n",
           (unsigned long long)c_ok, (unsigned long long)failed, (unsigned long long)c_bad_rcode,
           (unsigned long long)c_noanswer, (unsigned long long)c_trunc, (unsigned long long)c_malformed);
    if (c_bad_rcode) {
        printf("  rcodes:");
        for (int i = 0; i < 16; i++)
            if (c_rcode[i]) printf(" %d=%llu", i, (unsigned long long)c_rcode[i]);
        printf("\n");
    }
    printf("  QPS %.0f, latency avg %.3f ms, p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms\n", qps, avg_ms,
           percentile_ms(50), percentile_ms(99), percentile_ms(99.9), (double)lat_max_ns / 1e6);
    if (!opt_no_ecs) {
        printf("  responses with ECS option %llu (avg scope /%.1f); scopes:", (unsigned long long)c_ecs_resp,
               c_ecs_resp ? scope_sum / (double)c_ecs_resp : 0.0);
        for (int i = 0; i <= 128; i++)
            if (c_scope[i]) printf(" /%d=%llu", i, (unsigned long long)c_scope[i]);
        printf("\n");
    }
    printf("RESULT sent=%llu received=%llu lost=%llu failed=%llu ok=%llu qps=%.0f avg_ms=%.4f p50_ms=%.4f "
           "p99_ms=%.4f max_ms=%.4f ecs_responses=%llu\n",
           (unsigned long long)c_sent, (unsigned long long)c_recv, (unsigned long long)c_lost,
           (unsigned long long)failed, (unsigned long long)c_ok, qps, avg_ms, percentile_ms(50),
           percentile_ms(99), (double)lat_max_ns / 1e6, (unsigned long long)c_ecs_resp);

    if (opt_onepass) {
        FILE *f = fopen(opt_onepass, "w");
        if (!f) { perror(opt_onepass); return 2; }
        for (size_t i = 0; i < n_subnets; i++) {
            if (onepass[i].state)
                fprintf(f, "%s\t%d\t%s\t%d\n", subnets[i].text, onepass[i].rcode, onepass[i].answer,
                        onepass[i].scope);
            else
                fprintf(f, "%s\tLOST\t-\t-1\n", subnets[i].text);
        }
        fclose(f);
    }
    return 0;
}

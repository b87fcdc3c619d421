vcl 4.1;

# Varnish for Benchmarks/cache-conformance.sh (rendered into a temp dir; @ORIGIN_PORT@ is
# replaced). Only the backend is defined here: every subroutine falls through to Varnish's
# builtin VCL (requests with Authorization or Cookie are passed, only GET/HEAD are looked up,
# responses with Set-Cookie, no-store/no-cache/private or Vary: * are not stored, TTL from
# s-maxage / max-age / Expires). The script starts varnishd with the parameters the
# cache-tests project uses for its own Varnish runs: -p default_ttl=0 -p default_grace=0
# -p default_keep=3600 (no default TTL for responses without freshness information, no
# grace beyond what the response asks for, keep objects for revalidation).
backend origin {
    .host = "127.0.0.1";
    .port = "@ORIGIN_PORT@";
}

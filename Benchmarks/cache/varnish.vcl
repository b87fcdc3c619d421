# Varnish as the caching proxy under test in Benchmarks/cache.sh: one backend, the origin, and
# nothing else: the built-in VCL decides (GET without Cookie/Authorization is looked up; the
# origin's Cache-Control max-age=3600 gives the TTL). @ORIGIN_PORT@ is filled in by cache.sh.
vcl 4.1;

backend origin {
    .host = "127.0.0.1";
    .port = "@ORIGIN_PORT@";
}

#!/usr/bin/env python3
"""Converts Natural Earth 110m Admin 0 countries (a public-domain shapefile) into one SVG path for the status page.

The shapefile is the copy geopandas 0.14 ships as `naturalearth_lowres` (Natural Earth 110m cultural vectors,
version 5.x, public domain: https://www.naturalearthdata.com/about/terms-of-use/). To regenerate the committed file:

    pip download --no-deps geopandas==0.14.4 -d /tmp/gp
    unzip -o -q /tmp/gp/geopandas-0.14.4-py3-none-any.whl 'geopandas/datasets/naturalearth_lowres/*' -d /tmp/gp
    python3 GeoData/tools/naturalearth_to_svg_path.py \
        /tmp/gp/geopandas/datasets/naturalearth_lowres/naturalearth_lowres.shp \
        Sources/LodestarStatusPage/Resources/world-110m.path

Projection: equirectangular, x = longitude + 180, y = 90 - latitude (a 360 x 180 viewBox), one decimal place, points closer than 0.3 degrees to the previous one dropped;
rings whose bounding box is smaller than 0.5 degrees are left out. Standard library only.
"""
import struct
import sys


def rings(shp_path):
    """Yields each polygon ring as a list of (lon, lat)."""
    with open(shp_path, "rb") as f:
        data = f.read()
    pos = 100  # main file header
    while pos + 8 <= len(data):
        _, length_words = struct.unpack(">ii", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length_words * 2]
        pos += 8 + length_words * 2
        if len(body) < 44:
            continue
        shape_type = struct.unpack("<i", body[:4])[0]
        if shape_type not in (5, 15, 25):  # polygon, polygonZ, polygonM
            continue
        num_parts, num_points = struct.unpack("<ii", body[36:44])
        parts = list(struct.unpack("<%di" % num_parts, body[44:44 + 4 * num_parts]))
        base = 44 + 4 * num_parts
        points = [struct.unpack("<dd", body[base + 16 * i:base + 16 * i + 16]) for i in range(num_points)]
        parts.append(num_points)
        for a, b in zip(parts, parts[1:]):
            yield points[a:b]


def main():
    src, dst = sys.argv[1], sys.argv[2]
    commands = []
    kept = dropped = 0
    for ring in rings(src):
        xs = [p[0] for p in ring]
        ys = [p[1] for p in ring]
        if max(xs) - min(xs) < 0.5 and max(ys) - min(ys) < 0.5:
            dropped += 1
            continue
        out = []
        last = None
        for lon, lat in ring:
            pt = (round(lon + 180, 1), round(90 - lat, 1))
            # Points closer than 0.3 degrees to the last one kept add nothing at the page's scale.
            if last is None or abs(pt[0] - last[0]) + abs(pt[1] - last[1]) >= 0.3:
                out.append(pt)
                last = pt
        if len(out) < 3:
            dropped += 1
            continue
        kept += 1
        commands.append("M" + "L".join("%g %g" % p for p in out) + "Z")
    with open(dst, "w") as f:
        f.write("".join(commands) + "\n")
    print("%s: %d rings kept, %d dropped, %d bytes" % (dst, kept, dropped, sum(len(c) for c in commands)))


if __name__ == "__main__":
    main()

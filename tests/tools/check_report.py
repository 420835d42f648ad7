#!/usr/bin/env python3
"""Checks of a semaim-report run folder (RUN/report), for the shell tests:
  check_report.py render DIR MIN   every DIR/*.svg parses as SVG and rsvg-convert (librsvg2-bin)
                                   renders it to a PNG of its size that is not blank (ink, and
                                   colour: curves, pictures); at least MIN files
  check_report.py orders DIR N S   summary.json lists N order pictures of S x S images, and each
                                   order-K.png shows them: every patch one flat colour, the order
                                   panels' patches brightest first in exactly the ranks of
                                   summary.json (semantic, raster, stochastic), raster row by row,
                                   the centre the most cls-like patch, predicted first and
                                   outlined on the image and similarity panels
Prints PASS/FAIL-free diagnostics; the exit status is the verdict."""
import glob, json, subprocess, sys
import xml.etree.ElementTree as ET
from PIL import Image


def render(d, least):
    files = sorted(glob.glob(d + "/*.svg"))
    assert len(files) >= least, f"{len(files)} SVG files in {d}, want at least {least}"
    no_monitor = not json.load(open(d + "/summary.json"))["monitor"]
    for svg in files:
        root = ET.parse(svg).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg", svg
        subprocess.run(["rsvg-convert", svg, "-o", svg + ".png"], check=True)
        im = Image.open(svg + ".png").convert("RGB")
        assert im.size[0] == round(float(root.get("width"))) and im.size[0] >= 300 and im.size[1] >= 200, (svg, im.size)
        px = im.getdata()
        ink = sum(1 for p in px if p != (255, 255, 255))
        colour = sum(1 for p in px if max(p) - min(p) > 60)
        empty = no_monitor and svg.endswith("/knn.svg")   # axes and "no data in this run" only
        assert ink > 0.01 * len(px) and (colour > 200 or empty), (svg, ink, colour)
    print(f"render: {len(files)} SVG files of {d} valid and rendered")


def orders(d, want_n, want_S):
    O = json.load(open(f"{d}/summary.json"))["orders"]
    assert O and len(O["images"]) == want_n and O["image"] == want_S, (O and len(O["images"]), want_n)
    S, P, G = O["image"], O["patch"], O["grid"]
    z = 1 if S >= 128 else -(-128 // S)
    panel, gap = S * z, 8
    lum = lambda p: 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
    for i, im in enumerate(O["images"]):
        pic = Image.open(f"{d}/order-{i}.png").convert("RGB")
        assert pic.size == (5 * panel + 4 * gap, panel), pic.size
        px = pic.load()

        def block(k, p):   # the colour of patch p in panel k: one colour over the whole block
            x0, y0 = k * (panel + gap) + (p % G) * P * z, (p // G) * P * z
            cols = {px[x, y] for y in range(y0, y0 + P * z) for x in range(x0, x0 + P * z)}
            assert len(cols) == 1, (i, k, p, len(cols))
            return cols.pop()

        for k, name in enumerate(("semantic", "raster", "stochastic")):
            ranks = im[name]
            assert sorted(ranks) == list(range(G * G))
            bright = sorted(range(G * G), key=lambda p: -lum(block(2 + k, p)))
            assert [ranks[p] for p in bright] == list(range(G * G)), (i, name)   # brightest = predicted first
        assert im["raster"] == list(range(G * G))
        sim, c = im["sim"], im["center"]
        assert c == max(range(G * G), key=lambda p: sim[p]) and im["semantic"][c] == 0, (i, c)
        cx, cy = (c % G) * P * z, (c // G) * P * z
        assert px[cx, cy] == (0, 255, 255) and px[panel + gap + cx, cy] == (0, 255, 255), "centre outlined"
    print(f"orders: {len(O['images'])} images of {S}x{S}, {G}x{G} patches: the heat maps are the ranks")


if __name__ == "__main__":
    if sys.argv[1] == "render":
        render(sys.argv[2], int(sys.argv[3]))
    else:
        orders(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))

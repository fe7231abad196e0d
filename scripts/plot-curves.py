#!/usr/bin/env python3
"""plot-curves.py - draw training curves from `deepseek train --log` TSV files as PNG.

Standard library only (zlib + struct write the PNG; a 3x5 pixel font draws the labels), so it
runs anywhere python3 does. Usage:
    plot-curves.py OUT.png TITLE FILE.tsv COLUMN [FILE.tsv COLUMN ...] [--smooth N] [--logy]
Each FILE/COLUMN pair is one line (step on x). --smooth N plots a moving average of N points
over the raw points drawn faintly.
"""
import math
import struct
import sys
import zlib

FONT = {  # 3x5 glyphs, rows top to bottom, bits left to right
    '0': '111101101101111', '1': '010110010010111', '2': '111001111100111',
    '3': '111001111001111', '4': '101101111001001', '5': '111100111001111',
    '6': '111100111101111', '7': '111001010010010', '8': '111101111101111',
    '9': '111101111001111', '.': '000000000000010', '-': '000000111000000',
    'e': '000111101110011', ' ': '000000000000000', ':': '000010000010000',
    '/': '001001010100100', '(': '010100100100010', ')': '010001001001010',
}
for ch, bits in {
    'a': '000011101101011', 'b': '100110101101110', 'c': '000011100100011', 'd': '001011101101011',
    'f': '011100110100100', 'g': '011101011001110', 'h': '100110101101101', 'i': '010000010010010',
    'k': '100101110101101', 'l': '110010010010111', 'm': '000111111101101', 'n': '000110101101101',
    'o': '000010101101010', 'p': '000110101110100', 'r': '000011100100100', 's': '000011110011110',
    't': '010111010010011', 'u': '000101101101011', 'v': '000101101101010', 'w': '000101101111111',
    'x': '000101010010101', 'y': '000101011001110', 'z': '000111011110111', 'q': '000011101011001',
    'j': '001000001001110',
}.items():
    FONT[ch] = bits
COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]


class Canvas:
    def __init__(self, w, h):
        self.w, self.h = w, h
        self.px = bytearray([255] * (w * h * 3))

    def set(self, x, y, c, alpha=1.0):
        if 0 <= x < self.w and 0 <= y < self.h:
            i = (y * self.w + x) * 3
            for k in range(3):
                self.px[i + k] = int(self.px[i + k] * (1 - alpha) + c[k] * alpha)

    def line(self, x0, y0, x1, y1, c, alpha=1.0, width=1):
        n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        for i in range(n + 1):
            t = i / n
            x, y = round(x0 + (x1 - x0) * t), round(y0 + (y1 - y0) * t)
            for dx in range(width):
                for dy in range(width):
                    self.set(x + dx, y + dy, c, alpha)

    def text(self, x, y, s, c=(0, 0, 0), scale=2):
        for ch in s.lower():
            g = FONT.get(ch, FONT[' '])
            for r in range(5):
                for col in range(3):
                    if g[r * 3 + col] == '1':
                        for a in range(scale):
                            for b in range(scale):
                                self.set(x + col * scale + a, y + r * scale + b, c)
            x += 4 * scale

    def png(self, path):
        raw = b''.join(b'\x00' + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3])
                       for y in range(self.h))
        def chunk(t, d):
            return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
        with open(path, 'wb') as f:
            f.write(b'\x89PNG\r\n\x1a\n')
            f.write(chunk(b'IHDR', struct.pack('>IIBBBBB', self.w, self.h, 8, 2, 0, 0, 0)))
            f.write(chunk(b'IDAT', zlib.compress(raw, 9)))
            f.write(chunk(b'IEND', b''))


def read(path, col):
    with open(path) as f:
        head = f.readline().rstrip('\n').split('\t')
        j = head.index(col)
        xs, ys = [], []
        for line in f:
            p = line.rstrip('\n').split('\t')
            if len(p) > j:
                xs.append(float(p[0]) + 1)
                ys.append(float(p[j]))
    return xs, ys


def fmt(v):
    if v == 0:
        return '0'
    if abs(v) >= 100:
        return '%d' % round(v)
    if abs(v) < 0.01:
        return '%.0e' % v
    return ('%.2f' % v).rstrip('0').rstrip('.')


def main(argv):
    args, smooth, logy = [], 1, False
    i = 0
    while i < len(argv):
        if argv[i] == '--smooth':
            smooth = int(argv[i + 1]); i += 2
        elif argv[i] == '--logy':
            logy = True; i += 1
        else:
            args.append(argv[i]); i += 1
    out, title, pairs = args[0], args[1], args[2:]
    series = [(pairs[k], pairs[k + 1], *read(pairs[k], pairs[k + 1])) for k in range(0, len(pairs), 2)]
    W, H, L, R, T, B = 900, 520, 90, 30, 50, 60
    cv = Canvas(W, H)
    tr = (lambda v: math.log10(max(v, 1e-6))) if logy else (lambda v: v)
    allx = [x for s in series for x in s[2]]
    ally = [tr(y) for s in series for y in s[3]]
    x0, x1 = min(allx), max(allx)
    y0, y1 = min(ally), max(ally)
    if y1 - y0 < 1e-9:
        y1 = y0 + 1
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad
    X = lambda x: L + (x - x0) / max(x1 - x0, 1e-9) * (W - L - R)
    Y = lambda y: H - B - (y - y0) / (y1 - y0) * (H - T - B)
    for k in range(6):  # grid and y labels
        yv = y0 + (y1 - y0) * k / 5
        cv.line(L, Y(yv), W - R, Y(yv), (220, 220, 220))
        cv.text(4, int(Y(yv)) - 5, fmt(10 ** yv if logy else yv))
    for k in range(6):
        xv = x0 + (x1 - x0) * k / 5
        cv.line(X(xv), T, X(xv), H - B, (235, 235, 235))
        cv.text(int(X(xv)) - 10, H - B + 10, fmt(round(xv)))
    cv.line(L, H - B, W - R, H - B, (0, 0, 0))
    cv.line(L, T, L, H - B, (0, 0, 0))
    cv.text(L, 14, title, scale=3)
    cv.text(W // 2 - 20, H - 24, 'step')
    for n, (path, col, xs, ys) in enumerate(series):
        c = COLORS[n % len(COLORS)]
        pts = [(X(x), Y(tr(y))) for x, y in zip(xs, ys)]
        if smooth > 1:
            for a, b in zip(pts, pts[1:]):
                cv.line(a[0], a[1], b[0], b[1], c, alpha=0.25)
            sm = []
            for k in range(len(ys)):
                w = ys[max(0, k - smooth + 1):k + 1]
                sm.append((X(xs[k]), Y(tr(sum(w) / len(w)))))
            pts = sm
        for a, b in zip(pts, pts[1:]):
            cv.line(a[0], a[1], b[0], b[1], c, width=2)
        cv.line(W - R - 250, T + 10 + 18 * n, W - R - 230, T + 10 + 18 * n, c, width=3)
        cv.text(W - R - 222, T + 5 + 18 * n, col)
    cv.png(out)


if __name__ == '__main__':
    main(sys.argv[1:])

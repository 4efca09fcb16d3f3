#!/usr/bin/env python3
"""Build the kit's embedded default data set ``data/sprites.npz`` from the Noto Color Emoji font.

Each chosen emoji is drawn on a transparent canvas, cropped to its drawn pixels plus a small
margin (so it fills the frame like a game sprite), put on white, downsampled to 20x20 and
quantised to a 167-colour k-means palette, as the course's Pokémon sprites were. Labels are
the Unicode emoji groups.

Needs (only to rebuild; loading the .npz needs none of them):
    apt-get install fonts-noto-color-emoji unicode-data   # the font and emoji-test.txt
    pip install numpy pillow scikit-learn fonttools

    python data/build_sprites.py -o data/sprites.npz --force

Which emoji: the fully-qualified ones of ``emoji-test.txt``, without skin-tone variants,
without the Flags group (wide rectangles, mostly look-alike tricolours at 20x20), without
the text-like Symbols subgroups (keycaps, letters, arrows, media buttons...), and without
the grey "family: ..." silhouettes. The same font, list and options give the same file,
byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the kit's checkout

from coursekit.data.build import BuildConfig, images_to_dataset, square_and_resize, to_rgb_on_background  # noqa: E402
from coursekit.data.files import save_npz  # noqa: E402

DEFAULT_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"  # Debian fonts-noto-color-emoji
DEFAULT_GROUPS = "/usr/share/unicode/emoji/emoji-test.txt"  # Debian unicode-data
FONT_PIXELS = 109  # the one size of the font's bitmaps (CBDT): 136x128 pixels an emoji
MARGIN = 0.04  # margin around the drawn pixels, as a share of the larger side

DROP_GROUPS = {"Flags", "Component"}
DROP_SUBGROUPS = {"keycap", "alphanum", "arrow", "av-symbol", "math", "punctuation", "currency", "other-symbol"}
SKIN_TONES = range(0x1F3FB, 0x1F400)


def read_emoji_list(path: Path) -> tuple[list[tuple[str, str, str]], str]:
    """``emoji-test.txt`` -> [(emoji, group, name)] of the chosen emoji, in file order, and its version."""
    chosen, group, subgroup, version = [], "", "", "?"
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# Version:"):
            version = line.split(":", 1)[1].strip()
        elif line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#"):
            # 1F600 ; fully-qualified # 😀 E1.0 grinning face
            codes, rest = line.split(";", 1)
            status, comment = (s.strip() for s in rest.split("#", 1))
            points = [int(c, 16) for c in codes.split()]
            name = re.sub(r"^\S+ E\d+\.\d+ ", "", comment)
            if (
                status == "fully-qualified"
                and group not in DROP_GROUPS
                and subgroup not in DROP_SUBGROUPS
                and not any(p in SKIN_TONES for p in points)
                and not name.startswith("family:")
            ):
                chosen.append(("".join(map(chr, points)), group, name))
    return chosen, version


def render(emoji: str, font, size: int):
    """One emoji -> an RGB PIL image size x size: drawn, cropped with a margin, on white, downsampled."""
    from PIL import Image, ImageDraw

    canvas = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((32, 32), emoji, font=font, embedded_color=True)
    left, top, right, bottom = canvas.getchannel("A").getbbox()
    m = round(MARGIN * max(right - left, bottom - top))
    crop = canvas.crop((left - m, top - m, right + m, bottom + m))
    return square_and_resize(to_rgb_on_background(crop), size)


def font_version(path: Path) -> str:
    from fontTools.ttLib import TTFont

    with TTFont(path, lazy=True) as f:
        return str(f["name"].getDebugName(5))  # e.g. "Version 2.042;GOOG;noto-emoji:..."


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--font", type=Path, default=Path(DEFAULT_FONT), help=f"Noto Color Emoji .ttf (default {DEFAULT_FONT})")
    ap.add_argument("--groups-file", type=Path, default=Path(DEFAULT_GROUPS), help=f"Unicode emoji-test.txt (default {DEFAULT_GROUPS})")
    ap.add_argument("-o", "--output", type=Path, default=Path(__file__).resolve().parent / "sprites.npz")
    ap.add_argument("--force", action="store_true", help="overwrite the output file")
    ap.add_argument("--size", type=int, default=20, help="image side in pixels (default 20)")
    ap.add_argument("--colors", type=int, default=167, help="palette size (default 167)")
    ap.add_argument("--seed", type=int, default=0, help="k-means seed (default 0)")
    args = ap.parse_args(argv)

    from PIL import ImageFont

    for p in (args.font, args.groups_file):
        if not p.is_file():
            sys.exit(f"{p}: no such file (apt-get install fonts-noto-color-emoji unicode-data)")
    if args.output.exists() and not args.force:
        sys.exit(f"{args.output} already exists; pass --force to overwrite it")

    emoji, list_version = read_emoji_list(args.groups_file)
    font = ImageFont.truetype(str(args.font), FONT_PIXELS)
    single = font.getlength("\U0001F600")
    images, groups = [], []
    for i, (e, group, name) in enumerate(emoji, start=1):
        if font.getlength(e) > 1.1 * single:  # the font has no glyph for this sequence: it would draw several
            print(f"skipped (not in the font): {name}")
            continue
        images.append(np.asarray(render(e, font, args.size), dtype=np.uint8))
        groups.append(group)
        if i % 500 == 0:
            print(f"rendered {i}/{len(emoji)}")

    names = list(dict.fromkeys(groups))  # in Unicode's group order
    labels = np.array([names.index(g) for g in groups], dtype=np.int64)
    config = BuildConfig(size=args.size, colors=args.colors, seed=args.seed)
    ds = images_to_dataset(np.stack(images), "sprites", config, labels, names, source="Noto Color Emoji (Debian fonts-noto-color-emoji)")
    meta = {
        "description": f"{len(ds)} emoji of Noto Color Emoji as {args.size}x{args.size} palette sprites, labelled by Unicode emoji group",
        "license": "images: SIL Open Font License 1.1 (Noto Color Emoji font; its artwork Apache-2.0), Google Inc.; "
        "labels: Unicode License (emoji-test.txt), Unicode, Inc.",
        "font": args.font.name,
        "font_version": font_version(args.font),
        "font_sha256": sha256(args.font),
        "groups_file": args.groups_file.name,
        "groups_file_version": f"Unicode emoji {list_version}",
        "groups_file_sha256": sha256(args.groups_file),
        "num_emoji": len(ds),
        "build": {"size": args.size, "colors": args.colors, "seed": args.seed, "font_pixels": FONT_PIXELS, "margin": MARGIN},
        "excluded": "Flags group; Symbols subgroups " + ", ".join(sorted(DROP_SUBGROUPS)) + "; skin-tone variants; 'family:' silhouettes",
    }
    save_npz(ds, args.output, meta=meta, force=args.force)
    print(ds.describe())
    print(f"palette colours used: {len(np.unique(ds.indices))} of {ds.num_colors}")
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

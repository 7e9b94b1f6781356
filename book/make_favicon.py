"""Draw the book's favicon, book/_static/favicon.png: a small landscape with a rectangular
hole, half filled in. Run it again after changing it: ``python book/make_favicon.py``."""
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 64


def favicon(size: int = SIZE) -> Image.Image:
    image = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    for y in range(size):  # sky fading to light blue, then a green hill
        t = y / (size - 1)
        draw.line([(0, y), (size, y)], fill=(int(70 + 110 * t), int(130 + 80 * t), 230))
    draw.ellipse((-size // 2, size * 5 // 8, size * 3 // 2, size * 2), fill=(60, 150, 70))
    draw.ellipse((size * 5 // 8, size // 8, size * 7 // 8, size * 3 // 8), fill=(250, 215, 80))
    hole = (size // 4, size * 3 // 8, size * 3 // 4, size * 13 // 16)
    draw.rectangle(hole, fill=(128, 128, 128))                      # the hole, mean-filled
    draw.rectangle((hole[0], hole[1], size // 2, hole[3]), fill=(245, 245, 245))
    draw.rectangle(hole, outline=(20, 20, 20), width=max(1, size // 32))
    return image


if __name__ == "__main__":
    target = Path(__file__).resolve().parent / "_static" / "favicon.png"
    favicon().save(target, optimize=True)
    print(target)

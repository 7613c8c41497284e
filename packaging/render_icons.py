"""Render the application icon from its SVG into every raster form the packages need.

From ``resources/icons/transcriber.svg`` it writes:
  - ``resources/icons/hicolor/<N>x<N>/apps/transcriber.png`` for the Linux icon theme,
  - ``resources/icons/transcriber.ico`` (Windows: the executable, the installer, shortcuts),
  - ``resources/icons/transcriber.icns`` (macOS: the .app bundle and the disk image).

Qt's own SVG renderer does the drawing, so nothing beyond the app's dependencies is needed.
Run it after changing the SVG and commit the results:

    python packaging/render_icons.py          # write the files
    python packaging/render_icons.py --check  # exit 1 if the committed files are stale
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ICONS = REPO / "resources" / "icons"
SVG = ICONS / "transcriber.svg"
HICOLOR_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)  # 256 is the largest an .ico entry can describe
# .icns entry types holding PNG data, by pixel size (the @2x types share sizes with the 1x ones).
ICNS_TYPES = (
    (b"icp4", 16), (b"icp5", 32), (b"ic11", 32), (b"icp6", 64), (b"ic12", 64),
    (b"ic07", 128), (b"ic08", 256), (b"ic13", 256), (b"ic09", 512), (b"ic14", 512), (b"ic10", 1024),
)


def hicolor_png(size: int, root: Path = ICONS) -> Path:
    return root / "hicolor" / f"{size}x{size}" / "apps" / "transcriber.png"


def _qt():
    # Rendering needs a QGuiApplication (fonts, image plugins) but never a screen.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    return QGuiApplication.instance() or QGuiApplication([])


def render(svg: Path, size: int):
    """The SVG drawn on a transparent ``size`` x ``size`` QImage."""
    _qt()
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg} is not an SVG Qt can draw")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    return image


def png_bytes(image) -> bytes:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise SystemExit("Qt could not encode a PNG")
    buffer.close()
    return bytes(data.data())


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """An .ico file whose entries are PNG images (understood by Windows Vista and later)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    directory, payload = b"", b""
    for size in sizes:
        data = pngs[size]
        # Width and height are one byte each; 0 means 256.
        directory += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(data), offset + len(payload))
        payload += data
    return header + directory + payload


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    """An Apple .icns file made of PNG entries (macOS 10.7 and later)."""
    body = b"".join(kind + struct.pack(">I", 8 + len(pngs[size])) + pngs[size] for kind, size in ICNS_TYPES)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def outputs(svg: Path = SVG, root: Path = ICONS) -> dict[Path, bytes]:
    """Every file this script writes, with its content."""
    sizes = sorted(set(HICOLOR_SIZES) | set(ICO_SIZES) | {size for _, size in ICNS_TYPES})
    pngs = {size: png_bytes(render(svg, size)) for size in sizes}
    files = {hicolor_png(size, root): pngs[size] for size in HICOLOR_SIZES}
    files[root / "transcriber.ico"] = ico_bytes({size: pngs[size] for size in ICO_SIZES})
    files[root / "transcriber.icns"] = icns_bytes(pngs)
    return files


def stale(svg: Path = SVG, root: Path = ICONS) -> list[Path]:
    """Files that are missing or do not look like the SVG any more.

    PNG bytes can differ between Qt versions for the same picture, so the committed
    hicolor PNGs are compared pixel by pixel (within a small tolerance), not byte by byte.
    """
    _qt()
    from PySide6.QtGui import QImage

    problems = []
    for size in HICOLOR_SIZES:
        path = hicolor_png(size, root)
        committed = QImage(str(path))
        if committed.isNull() or not _same_picture(committed, render(svg, size)):
            problems.append(path)
    for name in ("transcriber.ico", "transcriber.icns"):
        if not (root / name).is_file():
            problems.append(root / name)
    return problems


def _same_picture(first, second, tolerance: int = 8) -> bool:
    from PySide6.QtGui import QImage

    if first.size() != second.size():
        return False
    a = first.convertToFormat(QImage.Format.Format_ARGB32)
    b = second.convertToFormat(QImage.Format.Format_ARGB32)
    bytes_a, bytes_b = bytes(a.constBits()), bytes(b.constBits())
    return max(abs(x - y) for x, y in zip(bytes_a, bytes_b)) <= tolerance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="only report files that are missing or stale")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale()
        for path in problems:
            print(f"stale: {path.relative_to(REPO)}", file=sys.stderr)
        if problems:
            print("run: python packaging/render_icons.py", file=sys.stderr)
        return 1 if problems else 0
    for path, data in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(path.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())

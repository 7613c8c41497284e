"""Shared-library housekeeping for the Linux bundle: strip it safely, and turn it into .deb dependencies.

    python elfdeps.py strip BUNDLE
        Remove debug symbols from the bundle's ELF files, keeping any file that stripping would
        break (binutils' strip mangles some libraries that auditwheel patched with patchelf:
        "ELF load command address/offset not page-aligned" at load time).

    python elfdeps.py debian ROOT [--depends PKG ...]
        For the copy of the bundle that goes into the .deb: delete the libraries PyInstaller
        copied from this system (byte-identical to a file a Debian package installed), so the
        installed app uses the system's own, security-updated ones; check that every library
        any file needs is either in the bundle or installed here; print the ``Depends:`` value
        (the packages owning the system libraries it needs, plus ``--depends``, and libc6 at
        the glibc version the bundle's symbols need).

The .deb therefore fits the distribution it was built on (and later ones with the same
library packages); the .tar.gz keeps every library and runs on more systems.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import filecmp
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
PT_LOAD = 1
# ldconfig -p tags each library with its ABI; only libraries of our machine count.
LDCONFIG_ABI = {"x86_64": "x86-64", "aarch64": "AArch64"}


def elf_files(root: Path) -> list[Path]:
    """Every regular (non-symlink) ELF file under ``root``."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        with open(path, "rb") as handle:
            if handle.read(4) == ELF_MAGIC:
                found.append(path)
    return found


def loadable_segments_aligned(path: Path) -> bool:
    """Whether every PT_LOAD segment's file offset and address agree modulo its alignment (what ld.so demands)."""
    with open(path, "rb") as handle:
        header = handle.read(64)
        if header[:4] != ELF_MAGIC:
            return True
        wide, order = header[4] == 2, "<" if header[5] == 1 else ">"
        if wide:
            (phoff,) = struct.unpack_from(order + "Q", header, 32)
            entry_size, count = struct.unpack_from(order + "HH", header, 54)
            layout = order + "IIQQQQQQ"  # type, flags, offset, vaddr, paddr, filesz, memsz, align
        else:
            (phoff,) = struct.unpack_from(order + "I", header, 28)
            entry_size, count = struct.unpack_from(order + "HH", header, 42)
            layout = order + "IIIIIIII"  # type, offset, vaddr, paddr, filesz, memsz, flags, align
        for index in range(count):
            handle.seek(phoff + index * entry_size)
            fields = struct.unpack(layout, handle.read(struct.calcsize(layout)))
            if wide:
                kind, offset, vaddr, align = fields[0], fields[2], fields[3], fields[7]
            else:
                kind, offset, vaddr, align = fields[0], fields[1], fields[2], fields[7]
            if kind == PT_LOAD and align > 1 and offset % align != vaddr % align:
                return False
    return True


def strip_bundle(root: Path) -> tuple[int, int, list[Path]]:
    """Strip debug symbols where that is safe.

    Returns:
        (bytes saved, files stripped, files left alone because stripping broke them).
    """
    saved, stripped, refused = 0, 0, []
    for path in elf_files(root):
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".strip-", delete=False) as handle:
            temporary = Path(handle.name)
        try:
            result = subprocess.run(
                ["strip", "--strip-unneeded", "-o", str(temporary), str(path)], capture_output=True, text=True
            )
            before, after = path.stat().st_size, temporary.stat().st_size if temporary.exists() else 0
            if result.returncode != 0 or after == 0 or after >= before:
                continue
            if not loadable_segments_aligned(temporary):
                refused.append(path)
                continue
            shutil.copymode(path, temporary)
            os.replace(temporary, path)
            saved += before - after
            stripped += 1
        finally:
            temporary.unlink(missing_ok=True)
    return saved, stripped, refused


def dynamic_section(path: Path) -> tuple[list[str], list[str]]:
    """The NEEDED libraries of an ELF file and the GLIBC_x.y symbol versions it requires."""
    output = subprocess.run(["objdump", "-p", str(path)], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"^\s+NEEDED\s+(\S+)", output, re.M)
    glibc = re.findall(r"\bGLIBC_(\d+(?:\.\d+)+)\b", output)
    return needed, glibc


def system_libraries() -> dict[str, Path]:
    """Library file name -> path, from the dynamic linker's cache, for this machine's ABI."""
    abi = LDCONFIG_ABI.get(platform.machine(), "")
    libraries: dict[str, Path] = {}
    output = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    for match in re.finditer(r"^\s+(\S+) \(([^)]*)\) => (\S+)$", output, re.M):
        name, tags, path = match.groups()
        if abi and abi not in tags and platform.machine() == "x86_64":
            continue  # skip the i386 copies of multilib systems
        libraries.setdefault(name, Path(path))
    return libraries


def _path_variants(path: Path) -> list[str]:
    """The names dpkg may know a file by: as given or resolved, with and without the /usr prefix (usrmerge)."""
    variants = []
    for candidate in (str(path), os.path.realpath(path)):
        variants.append(candidate)
        variants.append(candidate[4:] if candidate.startswith("/usr/") else "/usr" + candidate)
    return list(dict.fromkeys(variants))


def owning_packages(paths: list[Path]) -> dict[Path, str]:
    """The Debian package that installed each of ``paths`` (those no package installed are left out)."""
    names = {variant: path for path in paths for variant in _path_variants(path)}
    # One dpkg-query for all of them: it prints what it finds and complains about the rest.
    output = subprocess.run(["dpkg-query", "-S", *names], capture_output=True, text=True).stdout
    owners: dict[Path, str] = {}
    for line in output.splitlines():
        packages, _, file_name = line.partition(": ")
        path = names.get(file_name.strip())
        if path is not None:
            owners.setdefault(path, packages.split(",")[0].strip().split(":")[0])  # "libxcb1:amd64" -> "libxcb1"
    return owners


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def prepare_debian(root: Path, extra_depends: list[str]) -> tuple[str, list[tuple[Path, str]]]:
    """Drop the bundle's copies of packaged system libraries and work out the package dependencies.

    Returns:
        (the Depends value, the (dropped file, package) pairs).

    Raises:
        SystemExit: a library some file needs is neither bundled nor installed on this system.
    """
    system = system_libraries()
    files = elf_files(root)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        sections = dict(zip(files, pool.map(dynamic_section, files)))
    wanted = {path.name for path in files} | {name for needed, _ in sections.values() for name in needed}
    owners = owning_packages([system[name] for name in wanted if name in system])

    packages: set[str] = set(extra_depends)
    dropped: list[tuple[Path, str]] = []
    for path in files:
        installed = system.get(path.name)
        package = owners.get(installed) if installed else None
        # Same name and same bytes as a packaged system library: PyInstaller copied it from here.
        if package is None or not filecmp.cmp(path, installed, shallow=False):
            continue
        dropped.append((path, package))
        path.unlink()
    # A dropped library that only other dropped libraries needed comes with their packages; the
    # rest were loaded by the bundle itself, some through ctypes (libsndfile), so they are depended on.
    needed_by_dropped = {name for path, _ in dropped for name in sections.pop(path)[0]}
    packages.update(package for path, package in dropped if path.name not in needed_by_dropped)
    for link in [path for path in root.rglob("*") if path.is_symlink() and not path.exists()]:
        link.unlink()  # pointed at a copy just dropped

    bundled = {path.name for path in sections} | {path.name for path in root.rglob("*") if path.is_symlink()}
    missing, glibc_versions = [], ["2.17"]
    for path, (needed, glibc) in sections.items():
        glibc_versions += glibc
        for name in needed:
            if name in bundled:
                continue
            package = owners.get(system[name]) if name in system else None
            if package is None:
                missing.append(f"{path.relative_to(root)} needs {name}")
            else:
                packages.add(package)
    if missing:
        raise SystemExit("libraries neither bundled nor installed from a package here:\n  " + "\n  ".join(missing))
    packages.discard("libc6")
    libc = f"libc6 (>= {max(glibc_versions, key=_version_key)})"
    return ", ".join([libc, *sorted(packages)]), dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    strip = commands.add_parser("strip", help="strip debug symbols where that is safe")
    strip.add_argument("root", type=Path)
    debian = commands.add_parser("debian", help="drop system copies, check libraries, print Depends")
    debian.add_argument("root", type=Path)
    debian.add_argument("--depends", nargs="*", default=[], metavar="PKG", help="packages needed but not linked (dlopen)")
    args = parser.parse_args(argv)
    if args.command == "strip":
        saved, stripped, refused = strip_bundle(args.root)
        print(f"stripped {stripped} files, {saved / 1e6:.0f} MB saved", file=sys.stderr)
        for path in refused:
            print(f"  kept unstripped (stripping breaks it): {path.relative_to(args.root)}", file=sys.stderr)
        return 0
    depends, dropped = prepare_debian(args.root, args.depends)
    print(f"using {len(dropped)} system libraries instead of bundled copies:", file=sys.stderr)
    for path, package in dropped:
        print(f"  {path.name} ({package})", file=sys.stderr)
    print(depends)
    return 0


if __name__ == "__main__":
    sys.exit(main())

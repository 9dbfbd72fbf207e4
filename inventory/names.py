"""Names as Windows allows them: one rule for clip, folder and host names.

Microsoft Learn, "Naming Files, Paths, and Namespaces" (win32/fileio/naming-a-file):
any character of the current code page or Unicode may be used, except the reserved
characters < > : " / \\ | ? *, the characters 0-31, a trailing space or period
(Windows strips them when it normalises a path, so the name on disk differs from
the name asked for), and the reserved device names CON, PRN, AUX, NUL, COM0-9,
COM¹²³, LPT0-9, LPT¹²³, also followed by an extension (NUL.txt). A name is never
refused for being outside ASCII: newsrooms name clips in their languages (Genève,
Straße). Every check matches the whole string (`re.fullmatch`): `match` with `$`
accepts a trailing newline.
"""

from __future__ import annotations

import re
import unicodedata

RESERVED_CHARACTERS = '<>:"/\\|?*'
# NTFS allows 255 UTF-16 code units per component.
MAX_SEGMENT = 255
_DEVICE = re.compile(
    r"(CON|PRN|AUX|NUL|COM[0-9\u00b9\u00b2\u00b3]|LPT[0-9\u00b9\u00b2\u00b3])", re.I
)


def segment_problem(name: str) -> str | None:
    """Why Windows would refuse or rewrite one path segment (a file or folder name), or None."""
    if not isinstance(name, str) or not name:
        return "an empty name"
    if name in (".", ".."):
        return f"{name!r} is not a name"
    if len(name.encode("utf-16-le")) // 2 > MAX_SEGMENT:
        return f"longer than {MAX_SEGMENT} characters"
    for c in name:
        if c in RESERVED_CHARACTERS:
            return f"the reserved character {c!r}"
        if unicodedata.category(c) == "Cc":
            return f"the control character U+{ord(c):04X}"
    if name[-1] in ". ":
        return "a trailing " + ("period" if name[-1] == "." else "space") + " (Windows strips it)"
    stem = name.split(".", 1)[0].rstrip(" ")
    if _DEVICE.fullmatch(stem):
        return f"the reserved device name {stem.upper()}"
    return None


def path_join(folder: str, name: str) -> str:
    """The Windows path of `name` in `folder`."""
    return folder.rstrip("\\") + "\\" + name


def path_problem(path: str, segments: int | None = None) -> str | None:
    """Why a relative path (segments joined by backslash) is not safe, or None."""
    if not isinstance(path, str):
        return "not text"
    parts = path.split("\\")
    if segments is not None and len(parts) != segments:
        return f"{len(parts)} segment(s), not {segments}"
    for part in parts:
        why = segment_problem(part)
        if why:
            return f"segment {part!r}: {why}"
    return None


# A host name: letters and digits of any script, '-' and '.' between them (NetBIOS
# and DNS names; a DNS name outside ASCII is sent as IDNA by the resolver), at most 63,
# beginning and ending with a letter or digit.
HOST_NAME = re.compile(r"[^\W_](?:(?:[^\W_]|[.-]){0,61}[^\W_])?")
_DRIVE_FOLDER = re.compile(r"[A-Za-z]:\\(.*)", re.S)


def host_name_problem(name: str) -> str | None:
    if not isinstance(name, str) or not HOST_NAME.fullmatch(name):
        return "letters and digits (any language), '-' and '.', at most 63"
    return None


def windows_folder_problem(path: str) -> str | None:
    """Why `path` is not an absolute folder C:\\segment\\... Windows keeps as named."""
    m = _DRIVE_FOLDER.fullmatch(path) if isinstance(path, str) else None
    if m is None:
        return "not an absolute folder (C:\\...)"
    rest = m.group(1).rstrip("\\")
    return path_problem(rest) if rest else None

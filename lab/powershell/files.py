"""Files: the host's own (C:\\) and its side's V: volume, with its links; Test-Path,
Get-Content, Get-FileHash, Set-Content, Copy-Item, Rename-Item, Get-ChildItem,
Remove-Item."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from typing import Any

from lab.powershell.errors import CmdletError, not_found
from lab.powershell.registry import key_exists
from lab.powershell.session import Session
from lab.powershell.syntax import Command

# What Get-ChildItem's items (FileInfo/DirectoryInfo) offer Select-Object in the lab;
# LinkType is the CodeProperty that Windows PowerShell 5.1's types.ps1xml adds to
# FileSystemInfo ('Junction', 'SymbolicLink', 'HardLink' or null).
CHILD_ITEM_PROPERTIES = ("FullName", "Name", "Attributes", "Length", "LastWriteTimeUtc", "LinkType")
# System.IO.FileAttributes; 5.1's ConvertTo-Json writes an enum as its number.
ATTR_DIRECTORY, ATTR_ARCHIVE, ATTR_REPARSE_POINT = 0x10, 0x20, 0x400
# Windows PowerShell 5.1 in -NonInteractive mode cannot ask Remove-Item's question
# "The item at ... has children and the Recurse parameter was not specified".
NON_INTERACTIVE = (
    "Windows PowerShell is in NonInteractive mode. Read and Prompt functionality is not available."
)

# Hosts that see their own side's V: without an iSCSI initiator of their own.
SIDE_VOLUME_KINDS = frozenset({"smartbins", "nas-cifs", "nas-ftp", "bridge"})


def visible_volume(doc: dict[str, Any]) -> str | None:
    """Which side's V: volume this host sees, if any."""
    if doc.get("kind") in SIDE_VOLUME_KINDS:
        side = doc.get("side")
        return str(side) if side else None
    mounted = doc.get("mounted_v")
    return str(mounted) if mounted else None


_ABSOLUTE = re.compile(r"^[A-Za-z]:\\")
_REGISTRY = re.compile(r"^HKLM:\\", re.I)


def _entry(
    folder: str, name: str, attrs: int, size: int | None, mtime: float, link: str | None
) -> dict[str, Any]:
    return {
        "FullName": f"{folder}\\{name}",
        "Name": name,
        "Attributes": attrs,
        "Length": size,
        "_mtime": mtime,
        "LinkType": link,
    }


def _split(path: str) -> tuple[str, str]:
    """(folder, leaf) of an absolute path without a trailing backslash."""
    folder, _, leaf = path.rpartition("\\")
    return (folder + "\\" if len(folder) == 2 else folder), leaf


class FileCmdlets(Session):
    """The file cmdlets: C:\\ is the host document's `files` ({path: content}), V: the
    volume of the side the host sees (the World's)."""

    def _path(self, cmdlet: str, path: str) -> str:
        if not _ABSOLUTE.match(path):
            # The lab has no current directory to resolve a relative path against.
            raise not_found(cmdlet, path)
        trimmed = path.rstrip("\\")
        return trimmed + "\\" if len(trimmed) == 2 else trimmed

    def _volume_side(self, cmdlet: str) -> str:
        side = visible_volume(self.host)
        if side is None:
            raise CmdletError(
                cmdlet, "Cannot find drive. A drive with the name 'V' does not exist."
            )
        return side

    def _files(self) -> dict[str, str]:
        files: dict[str, str] = self.host.setdefault("files", {})
        return files

    def _host_file_key(self, path: str) -> str | None:
        low = path.lower()
        return next((k for k in self._files() if k.lower() == low), None)

    def _read(self, cmdlet: str, path: str) -> str | None:
        if path[0] in "vV":
            side = self._volume_side(cmdlet)
            return self.world.volume_read(side, self._resolve(side, path))
        key = self._host_file_key(path)
        return None if key is None else self._files()[key]

    def _is_folder(self, path: str) -> bool:
        if len(path) == 3:
            drive = path[0].upper()
            return drive == "C" or (drive == "V" and visible_volume(self.host) is not None)
        if path[0] in "vV":
            side = visible_volume(self.host)
            return side is not None and self.world.volume_has_folder(
                side, self._resolve(side, path)
            )
        prefix = path.lower() + "\\"
        return any(k.lower().startswith(prefix) for k in self._files())

    def _exists(self, path: str) -> bool:
        if path[0] in "vV" and visible_volume(self.host) is None:
            return False
        return self._is_folder(path) or self._read("Test-Path", path) is not None

    def _write(self, cmdlet: str, path: str, content: str) -> None:
        folder, _ = _split(path)
        if not self._is_folder(folder):
            if path[0] in "vV":
                self._volume_side(cmdlet)
            raise CmdletError(cmdlet, f"Could not find a part of the path '{path}'.")
        if path[0] in "vV":
            side = self._volume_side(cmdlet)
            self.world.volume_write(side, path, content)
            return
        key = self._host_file_key(path)
        if key is not None:
            del self._files()[key]
        self._files()[path] = content

    def _delete(self, cmdlet: str, path: str) -> None:
        if path[0] in "vV":
            side = self._volume_side(cmdlet)
            self.world.volume_delete(side, path)
            return
        key = self._host_file_key(path)
        if key is not None:
            del self._files()[key]

    def _file_content(self, cmdlet: str, path: str) -> str:
        if self._is_folder(path):
            raise CmdletError(cmdlet, f"'{path}' is a folder; the lab reads files only.")
        content = self._read(cmdlet, path)
        if content is None:
            raise not_found(cmdlet, path)
        return content

    def _copy_item(self, commands: tuple[Command, ...]) -> str:
        args = commands[0].args
        source = self._path("Copy-Item", args["LiteralPath"])
        content = self._file_content("Copy-Item", source)
        destination = self._path("Copy-Item", args["Destination"])
        if self._is_folder(destination):
            destination = destination.rstrip("\\") + "\\" + _split(source)[1]
        self._write("Copy-Item", destination, content)
        return ""

    def _rename_item(self, commands: tuple[Command, ...]) -> str:
        args = commands[0].args
        source = self._path("Rename-Item", args["LiteralPath"])
        new_name: str = args["NewName"]
        if not new_name or "\\" in new_name or "/" in new_name:
            raise CmdletError("Rename-Item", f"Cannot rename to '{new_name}': not a file name.")
        if self._is_folder(source):
            raise CmdletError("Rename-Item", "The lab renames files only.")
        content = self._read("Rename-Item", source)
        if content is None:
            raise CmdletError(
                "Rename-Item", f"Cannot rename because item at '{source}' does not exist."
            )
        target = _split(source)[0].rstrip("\\") + "\\" + new_name
        if target.lower() != source.lower() and self._exists(target):
            raise CmdletError("Rename-Item", "Cannot create a file when that file already exists.")
        self._delete("Rename-Item", source)
        self._write("Rename-Item", target, content)
        return ""

    def _test_path(self, commands: tuple[Command, ...]) -> str:
        path: str = commands[0].args["LiteralPath"]
        if _REGISTRY.match(path):
            # The registry provider's items are keys; a value is no path (Microsoft
            # Learn, about_Registry_Provider: Test-Path tests keys).
            return "True" if key_exists(self.host, path) else "False"
        if not _ABSOLUTE.match(path):
            return "False"
        return "True" if self._exists(self._path("Test-Path", path)) else "False"

    def _get_content(self, commands: tuple[Command, ...]) -> str:
        path = self._path("Get-Content", commands[0].args["LiteralPath"])
        return json.dumps(self._file_content("Get-Content", path))

    def _get_file_hash(self, commands: tuple[Command, ...]) -> str:
        path = self._path("Get-FileHash", commands[0].args["LiteralPath"])
        content = self._file_content("Get-FileHash", path)
        digest = hashlib.sha256(content.encode("utf-8")).hexdigest().upper()
        return self._select(commands, [{"Algorithm": "SHA256", "Hash": digest, "Path": path}])

    # Reparse points (junctions, directory symbolic links) on V:. Windows resolves a
    # path through them; Windows PowerShell 5.1 follows them both when
    # `Get-ChildItem -Recurse` descends (PowerShell 6 added -FollowSymlink and stopped
    # by default: PowerShell/PowerShell#1875) and when `Remove-Item -Recurse` deletes
    # (the target's contents go: PowerShell/PowerShell#621).
    def _resolve(self, side: str, path: str) -> str:
        links = self.world.volume_links(side)
        for _ in range(32):
            low = path.lower()
            hit = next(
                (k for k in links if low == k or low.startswith(k + "\\")),
                None,
            )
            if hit is None:
                return path
            path = links[hit][1] + path[len(hit) :]
        raise CmdletError(
            "Get-ChildItem", f"The name of the file cannot be resolved by the system: '{path}'."
        )

    def _children(self, side: str, folder: str) -> list[dict[str, Any]]:
        """The entries directly in `folder` (read through any link), as 5.1 shows them."""
        real = self._resolve(side, folder).rstrip("\\")
        links = self.world.volume_links(side)
        shown = folder.rstrip("\\")
        entries: dict[str, dict[str, Any]] = {}
        for path in self.world.volume_list(side, real):
            rest = path[len(real) + 1 :].split("\\")
            if len(rest) == 1:
                stat = self.world.volume_stat(side, path)
                size, mtime = stat if stat else (0, 0.0)
                entries[rest[0].lower()] = _entry(shown, rest[0], ATTR_ARCHIVE, size, mtime, None)
            else:
                d = entries.setdefault(
                    rest[0].lower(), _entry(shown, rest[0], ATTR_DIRECTORY, None, 0.0, None)
                )
                stat = self.world.volume_stat(side, path)
                if stat and len(rest) == 2:
                    d["_mtime"] = max(d["_mtime"], stat[1])
        for path in self.world.volume_dirs(side, real):
            rest = path[len(real) + 1 :].split("\\")
            link = links.get(path.lower()) if len(rest) == 1 else None
            if link is not None:
                attrs = ATTR_DIRECTORY | ATTR_REPARSE_POINT
                entries[rest[0].lower()] = _entry(shown, rest[0], attrs, None, 0.0, link[2])
            else:
                entries.setdefault(
                    rest[0].lower(), _entry(shown, rest[0], ATTR_DIRECTORY, None, 0.0, None)
                )
        out = []
        for _, e in sorted(entries.items()):
            e["LastWriteTimeUtc"] = f"/Date({int(e.pop('_mtime') * 1000)})/"
            out.append(e)
        return out

    def _get_child_item(self, commands: tuple[Command, ...]) -> str:
        """A V: folder's entries (-Force), or the folders below it matching a filter
        (-Recurse -Directory -Filter, descending into links as 5.1 does)."""
        args = commands[0].args
        root = self._path("Get-ChildItem", args["LiteralPath"])
        if root[0] not in "vV":
            raise CmdletError("Get-ChildItem", "the lab lists folders on V: only")
        side = self._volume_side("Get-ChildItem")
        if not self.world.volume_has_folder(side, self._resolve(side, root)):
            raise not_found("Get-ChildItem", root)
        if "Force" in args:
            found = self._children(side, root)
            self._ingest_after_listing(side, root)
        else:
            pattern = str(args["Filter"]).lower()
            found = []
            todo = [(root.rstrip("\\"), 0)]
            while todo:
                folder, depth = todo.pop(0)
                if depth > 30:
                    # What following a link loop ends in on Windows.
                    raise CmdletError(
                        "Get-ChildItem",
                        f"The specified path, file name, or both are too long: '{folder}'.",
                    )
                for e in self._children(side, folder):
                    if not e["Attributes"] & ATTR_DIRECTORY:
                        continue
                    if fnmatch.fnmatchcase(e["Name"].lower(), pattern):
                        found.append(e)
                    todo.append((e["FullName"], depth + 1))
            found.sort(key=lambda e: e["FullName"].lower())
        if len(commands) == 4:  # | Measure-Object | Select-Object Count | ConvertTo-Json
            return self._select(commands[1:], [{"Count": len(found)}])
        return self._select(commands, found)

    def _ingest_after_listing(self, side: str, folder: str) -> None:
        """The `ingesting` fault (lab/faults.py): a clip recorded into a SmartBin just
        after the host enumerated it, before anything else it runs."""
        fault = self.host.get("fault") or {}
        parent, name = _split(folder.rstrip("\\"))
        if fault.get("kind") != "ingesting" or parent.lower() != "v:\\vibrantavifiles":
            return
        fault["count"] = int(fault.get("count", 0)) + 1
        clip = f"ingested-{fault['count']:04d}"
        for part in fault.get("parts", []):
            path = str(part).replace("{bin}", name).replace("{clip}", clip)
            self.world.volume_write(side, path, f"{clip} recorded on {side}\n")

    def _unreachable(self, commands: tuple[Command, ...]) -> str:
        raise AssertionError("Measure-Object only appears inside a pipeline")

    def _remove_following(self, side: str, folder: str) -> None:
        """Remove-Item -Recurse as 5.1 does it: into every link, deleting what it reaches."""
        for e in self._children(side, folder):
            if e["Attributes"] & ATTR_DIRECTORY:
                self._remove_following(side, e["FullName"])
            else:
                self.world.volume_delete(side, self._resolve(side, e["FullName"]))
        links = self.world.volume_links(side)
        if folder.rstrip("\\").lower() in links:
            self.world.dir_delete(side, folder)  # the (now emptied) link itself goes last
        else:
            real = self._resolve(side, folder)
            self.world.volume_delete_tree(side, real)

    def _remove_item(self, commands: tuple[Command, ...]) -> str:
        args = commands[0].args
        path = self._path("Remove-Item", args["LiteralPath"])
        if path[0] in "vV":
            side = self._volume_side("Remove-Item")
            real = self._resolve(side, path)
            is_link = path.rstrip("\\").lower() in self.world.volume_links(side)
            if is_link or self.world.volume_has_folder(side, real):
                if args.get("Recurse"):
                    self._remove_following(side, path)
                elif self._children(side, path):
                    raise CmdletError("Remove-Item", NON_INTERACTIVE)
                else:
                    # An empty folder, or a link (RemoveDirectory removes a junction
                    # itself, never its target: Microsoft Learn, RemoveDirectoryW).
                    self.world.dir_delete(side, path)
                return ""
            if self.world.volume_read(side, real) is None:
                raise not_found("Remove-Item", path)
            self.world.volume_delete(side, real)
            return ""
        if self._read("Remove-Item", path) is None:
            raise not_found("Remove-Item", path)
        self._delete("Remove-Item", path)
        return ""

    def _set_content(self, commands: tuple[Command, ...]) -> str:
        args = commands[0].args
        path = self._path("Set-Content", args["LiteralPath"])
        if path[0] in "vV":
            raise CmdletError("Set-Content", "The lab writes host files only with Set-Content.")
        self._write("Set-Content", path, "".join(v + "\n" for v in args["Value"]))
        return ""

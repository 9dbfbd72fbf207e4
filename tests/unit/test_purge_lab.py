"""The orphan purge's driver against the lab's interpreter on lab.db (no transport):
listing without following reparse points, content-checked deletes, batches under the
command-line limit, names as Windows allows them. Over SSH/WinRM: tests/integration."""

from __future__ import annotations

import pytest

from activities.drivers import powershell as ps
from activities.drivers.errors import CommandFailed
from activities.drivers.facts import media as media_facts
from activities.drivers.host import ExecResult
from activities.drivers.operations import media as media_ops
from lab.faults import set_fault
from lab.media import ingest, link
from lab.state import LabState
from tests.unit.labdriver import LabDriver

ROOT = "V:\\VibrantAVIFiles"


def files(lab: LabState, side: str) -> dict[str, str]:
    with lab.transaction() as txn:
        return txn.volume_files(side)


def drivers(lab: LabState) -> tuple[LabDriver, LabDriver]:
    return LabDriver(lab, "sb-x1"), LabDriver(lab, "sb-y1")


async def test_find_and_purge_many_long_non_ascii_names_in_batches(lab: LabState) -> None:
    x, y = drivers(lab)
    names = [f"Genève Straße reportage numéro {i:03d} " + "x" * 60 for i in range(70)]
    for n in names:
        ingest(lab.dir, "Y", n, "Sports")
    ingest(lab.dir, "X", "kept on both", "Sports")
    ingest(lab.dir, "Y", "kept on both", "Sports")
    found = await media_facts.find_orphans(x, y)
    assert sorted(r.clip for r in found.records) == sorted(f"Sports\\{n}.vmf" for n in names)
    assert not found.refused
    assert all(len(r.files) == 4 and r.size > 0 and r.modified for r in found.records)
    one = [ps.remove_item(f"{ROOT}\\{r.clip}") for r in found.records]
    assert ps.command_length(one) > ps.max_command_length("ssh")  # one line could not carry it
    beats: list[str] = []
    out = await media_ops.purge_orphans(y, "Y", "X", found.records, x, progress=beats.append)
    assert sorted(out.deleted) == sorted(r.clip for r in found.records) and not out.refused
    assert len(beats) > 2  # several batches, a heartbeat after each
    left = files(lab, "Y")
    assert not any("reportage" in p for p in left if p.startswith(ROOT))
    assert "V:\\VibrantAVIFiles\\Sports\\kept on both.vmf\\kept on both.vid" in left
    assert any("reportage" in p for p in left if p.startswith("V:\\PDR"))  # essence stays
    # A retry after the purge deletes nothing twice and nothing new.
    again = await media_ops.purge_orphans(y, "Y", "X", found.records, x)
    assert not again.deleted and len(again.gone) == 70


async def test_a_changed_clip_is_refused_and_the_others_go(lab: LabState) -> None:
    x, y = drivers(lab)
    for n in ("a", "b", "c"):
        ingest(lab.dir, "Y", n)
    ingest(lab.dir, "X", "on-x")
    found = await media_facts.find_orphans(x, y)
    with lab.transaction() as txn:  # b grows after the approval, c gets a new file
        txn.volume_write("Y", f"{ROOT}\\News\\b.vmf\\b.vid", "a longer recording than before\n")
        txn.volume_write("Y", f"{ROOT}\\News\\c.vmf\\c.new", "later\n")
    out = await media_ops.purge_orphans(y, "Y", "X", found.records, x)
    assert out.deleted == ["News\\a.vmf"]
    assert set(out.refused) == {"News\\b.vmf", "News\\c.vmf"}
    assert "changed since approval" in out.refused["News\\b.vmf"]
    assert "new file 'c.new'" in out.refused["News\\c.vmf"]
    assert "2 refused, not deleted: News\\b.vmf (changed" in out.message
    left = files(lab, "Y")
    assert f"{ROOT}\\News\\b.vmf\\b.tc" in left and f"{ROOT}\\News\\c.vmf\\c.vid" in left


async def test_a_clip_recorded_on_main_after_approval_is_kept(lab: LabState) -> None:
    x, y = drivers(lab)
    ingest(lab.dir, "Y", "late")
    ingest(lab.dir, "X", "on-x")
    found = await media_facts.find_orphans(x, y)
    ingest(lab.dir, "X", "late")  # InSync, or someone, brought it to the main side
    out = await media_ops.purge_orphans(y, "Y", "X", found.records, x)
    assert not out.deleted and "exists on the main side" in out.refused["News\\late.vmf"]
    assert f"{ROOT}\\News\\late.vmf\\late.vid" in files(lab, "Y")


async def test_a_junction_inside_a_clip_is_never_followed(lab: LabState) -> None:
    x, y = drivers(lab)
    ingest(lab.dir, "X", "precious")
    ingest(lab.dir, "Y", "precious")  # main-side material, mirrored on Y
    ingest(lab.dir, "Y", "trap")
    ingest(lab.dir, "Y", "plain")
    link(lab.dir, "Y", f"{ROOT}\\News\\trap.vmf\\j", f"{ROOT}\\News\\precious.vmf")
    before = files(lab, "Y")
    found = await media_facts.find_orphans(x, y)
    assert [r.clip for r in found.records] == ["News\\plain.vmf"]
    assert "reparse point 'j'" in found.refused["News\\trap.vmf"]
    # Even if a junction appears after the approval, the purge refuses that clip.
    ingest(lab.dir, "Y", "trap2")
    found2 = await media_facts.find_orphans(x, y)
    link(lab.dir, "Y", f"{ROOT}\\News\\trap2.vmf\\j", f"{ROOT}\\News\\precious.vmf")
    out = await media_ops.purge_orphans(y, "Y", "X", found2.records, x)
    assert "News\\trap2.vmf" in out.refused and "News\\plain.vmf" in out.deleted
    after = files(lab, "Y")
    precious = {p: c for p, c in before.items() if "precious" in p}
    assert precious and all(after.get(p) == c for p, c in precious.items())


def test_the_lab_follows_junctions_as_windows_powershell_5_1_does(lab: LabState) -> None:
    """What a naive driver would do: Remove-Item -Recurse empties the junction's target."""
    ingest(lab.dir, "Y", "precious")
    ingest(lab.dir, "Y", "trap")
    link(lab.dir, "Y", f"{ROOT}\\News\\trap.vmf\\j", f"{ROOT}\\News\\precious.vmf")
    link(lab.dir, "Y", f"{ROOT}\\News\\trap.vmf\\bin", f"{ROOT}\\Sports")
    listed = lab.run_script("sb-y1", ps.script(ps.list_folders(ROOT, "*.vmf")))
    names = {o["FullName"] for o in ps.parse_json_list(ps.split_output(listed.stdout, 1)[0])}
    # -Recurse descended through the link into the SmartBin it points at.
    assert f"{ROOT}\\News\\trap.vmf\\bin\\clip-001.vmf" in names
    r = lab.run_script("sb-y1", ps.script(ps.remove_tree(f"{ROOT}\\News\\trap.vmf")))
    assert r.exit_status == 0
    left = files(lab, "Y")
    assert not any("precious.vmf\\" in p for p in left)  # the target's files went
    assert not any(p.startswith(f"{ROOT}\\Sports\\") for p in left)  # and the SmartBin's
    entries = lab.run_script("sb-y1", ps.script(ps.list_children(f"{ROOT}\\News")))
    names = {e["Name"] for e in ps.parse_json_list(ps.split_output(entries.stdout, 1)[0])}
    assert "precious.vmf" in names and "trap.vmf" not in names  # the emptied target stays


async def test_one_odd_name_refuses_that_clip_alone(lab: LabState) -> None:
    x, y = drivers(lab)
    ingest(lab.dir, "X", "on-x")
    ingest(lab.dir, "Y", "fine")
    with lab.transaction() as txn:  # made through a \\?\ path, or over SMB: Windows keeps it
        for odd in ("trailing.vmf.", "CON.vmf", "spaced.vmf ", "dotted..vmf"):
            txn.volume_write("Y", f"{ROOT}\\News\\{odd}\\x.vid", "odd\n")
    found = await media_facts.find_orphans(x, y)
    assert sorted(r.clip for r in found.records) == ["News\\dotted..vmf", "News\\fine.vmf"]
    assert set(found.refused) == {"News\\trailing.vmf.", "News\\CON.vmf", "News\\spaced.vmf "}
    assert "trailing period" in found.refused["News\\trailing.vmf."]
    assert "reserved device name CON" in found.refused["News\\CON.vmf"]
    found.records.sort(key=lambda r: r.clip)
    out = await media_ops.purge_orphans(y, "Y", "X", found.records, x)
    assert out.deleted == ["News\\dotted..vmf", "News\\fine.vmf"]
    # Names that never came from a listing are refused one by one, the rest still go.
    rec = media_facts.ClipRecord("News\\CON.vmf", ())
    bad = media_facts.ClipRecord("..\\..\\PDR", ())
    out = await media_ops.purge_orphans(y, "Y", "X", [rec, bad], x)
    assert set(out.refused) == {"News\\CON.vmf", "..\\..\\PDR"} and not out.deleted
    assert f"{ROOT}\\News\\CON.vmf\\x.vid" in files(lab, "Y")


async def test_an_empty_or_partial_listing_is_an_error_naming_the_host(lab: LabState) -> None:
    x, y = drivers(lab)
    ingest(lab.dir, "Y", "only-y")
    with lab.transaction() as txn:  # X's clips vanished from view (a volume not mounted right)
        txn.volume_delete_tree("X", ROOT)
        txn.dir_add("X", ROOT)
    with pytest.raises(CommandFailed) as e:
        await media_facts.find_orphans(x, y)
    assert e.value.host == "sb-x1" and "lists no master clips" in str(e.value)

    class Truncated(LabDriver):
        async def _execute(self, script_text: str) -> ExecResult:
            r = await super()._execute(script_text)
            return ExecResult(r.exit_status, r.stdout.replace(b'"Name"', b'"Nom"', 1), r.stderr)

    with lab.transaction() as txn:
        txn.volume_delete_tree("X", ROOT)
    with pytest.raises(CommandFailed) as e:  # no V:\VibrantAVIFiles at all
        await media_facts.find_orphans(x, y)
    assert e.value.host == "sb-x1"
    ingest(lab.dir, "X", "on-x")
    with pytest.raises(CommandFailed) as e:
        await media_facts.find_orphans(x, Truncated(lab, "sb-y1"))
    assert e.value.host == "sb-y1"


async def test_an_empty_answer_is_an_error_not_an_empty_folder(lab: LabState) -> None:
    x, _ = drivers(lab)
    ingest(lab.dir, "Y", "only-y")

    class Emptied(LabDriver):
        """A listing lost on the way (a decoding failure, a shifted line): only the
        markers arrive."""

        async def _execute(self, script_text: str) -> ExecResult:
            r = await super()._execute(script_text)
            lines = r.stdout.split(b"\r\n")
            kept = [ln for ln in lines if ln.startswith(b"#amsm") or not ln]
            return ExecResult(r.exit_status, b"\r\n".join(kept), b"")

    with pytest.raises(CommandFailed) as e:
        await media_facts.find_orphans(x, Emptied(lab, "sb-y1"))
    assert e.value.host == "sb-y1" and "could not be read whole" in str(e.value)
    # An empty folder answers `[]`: known empty, not taken from an empty answer.
    with lab.transaction() as txn:
        txn.dir_add("Y", f"{ROOT}\\Empty")
    empty = await media_facts.folder_entries(LabDriver(lab, "sb-y1"), [f"{ROOT}\\Empty"])
    assert empty == {f"{ROOT}\\Empty": []}


async def test_a_retry_after_a_partial_purge_deletes_nothing_twice_and_nothing_new(
    lab: LabState,
) -> None:
    x, y = drivers(lab)
    names = [f"long clip name number {i:02d} " + "z" * 80 for i in range(20)]
    for n in names:
        ingest(lab.dir, "Y", n)
    found = await media_facts.find_orphans(x, y)
    assert len(found.records) == 20

    class DiesAfterOneDelete(LabDriver):
        """The worker dies (or the link drops) after the first batch of deletes."""

        deletes = 0

        async def _execute(self, script_text: str) -> ExecResult:
            if "Remove-Item" in script_text:
                if self.deletes:
                    raise CommandFailed(self.name, "connection lost")
                self.deletes += 1
            return await super()._execute(script_text)

    with pytest.raises(CommandFailed):
        await media_ops.purge_orphans(DiesAfterOneDelete(lab, "sb-y1"), "Y", "X", found.records, x)
    first = [st for _, h, c, st in lab.journal() if h == "sb-y1" and c == "Remove-Item"]
    assert 0 < len(first) < 20 * 5
    # Meanwhile someone records a new clip on Y: it was never approved.
    ingest(lab.dir, "Y", "recorded during the retry")
    out = await media_ops.purge_orphans(y, "Y", "X", found.records, x)
    assert len(out.deleted) + len(out.gone) == 20 and not out.refused
    removes = [st for _, h, c, st in lab.journal() if h == "sb-y1" and c == "Remove-Item"]
    assert len(removes) == len(set(removes)) == 20 * 5  # each file and folder once
    assert not any("recorded during the retry" in st for st in removes)
    assert f"{ROOT}\\News\\recorded during the retry.vmf\\recorded during the retry.vid" in (
        files(lab, "Y")
    )


def test_the_lab_lists_links_and_refuses_to_empty_a_folder_without_recurse(lab: LabState) -> None:
    ingest(lab.dir, "Y", "trap")
    link(lab.dir, "Y", f"{ROOT}\\News\\trap.vmf\\j", f"{ROOT}\\News\\clip-001.vmf", "SymbolicLink")
    listed = lab.run_script("sb-y1", ps.script(ps.list_children(f"{ROOT}\\News\\trap.vmf")))
    by_name = {e["Name"]: e for e in ps.parse_json_list(ps.split_output(listed.stdout, 1)[0])}
    assert by_name["j"]["Attributes"] == 0x410 and by_name["j"]["LinkType"] == "SymbolicLink"
    assert by_name["trap.vid"]["Attributes"] == 0x20 and by_name["trap.vid"]["LinkType"] is None
    assert by_name["trap.vid"]["LastWriteTimeUtc"].startswith("/Date(")
    assert len(by_name) == 5
    r = lab.run_script("sb-y1", ps.script(ps.remove_item(f"{ROOT}\\News\\trap.vmf")))
    assert r.exit_status == 1 and "NonInteractive" in r.stderr
    # Without -Recurse a link to a non-empty folder is refused like a folder with
    # children (5.1 enumerates through it); its target is untouched either way.
    r = lab.run_script("sb-y1", ps.script(ps.remove_item(f"{ROOT}\\News\\trap.vmf\\j")))
    assert r.exit_status == 1
    assert f"{ROOT}\\News\\clip-001.vmf\\clip-001.vid" in files(lab, "Y")


async def test_a_main_side_smartbin_that_is_a_link_protects_its_clips(lab: LabState) -> None:
    x, y = drivers(lab)
    ingest(lab.dir, "X", "elsewhere", "Archive")  # X's News is a junction to Archive
    with lab.transaction() as txn:
        txn.volume_delete_tree("X", f"{ROOT}\\News")
    link(lab.dir, "X", f"{ROOT}\\News", f"{ROOT}\\Archive")
    ingest(lab.dir, "Y", "elsewhere", "News")
    found = await media_facts.find_orphans(x, y)
    assert "News\\elsewhere.vmf" not in [r.clip for r in found.records]
    assert (
        "its SmartBin on the main side (sb-x1) was not read" in found.refused["News\\elsewhere.vmf"]
    )
    out = await media_ops.purge_orphans(
        y, "Y", "X", [media_facts.ClipRecord("News\\clip-001.vmf", ())], x
    )
    assert not out.deleted and "was not read" in out.refused["News\\clip-001.vmf"]


async def test_a_clip_recorded_while_the_volume_is_listed_does_not_fail_the_listing(
    lab: LabState,
) -> None:
    # The K2 keeps recording while the restore reads V: (the lab's `ingesting` fault: a
    # new clip lands in each SmartBin right after it is listed). One enumeration per
    # folder: the listing is what the folder held when it was read, never two
    # enumerations that disagree.
    x, y = drivers(lab)
    ingest(lab.dir, "Y", "orphan on y", "News")
    set_fault(lab.dir, "sb-y1", "ingesting")
    found = await media_facts.find_orphans(x, y)
    orphans = sorted(r.clip for r in found.records)
    assert "News\\orphan on y.vmf" in orphans and not found.refused
    assert all(len(r.files) == 4 for r in found.records)
    listed = await media_facts.media_listing(y)
    assert "news\\ingested-0001.vmf" in listed.clips  # recorded after the first listing
    set_fault(lab.dir, "sb-y1", "clear")
    outcome = await media_ops.purge_orphans(y, "Y", "X", found.records, x)
    assert "News\\orphan on y.vmf" in outcome.deleted and not outcome.refused

"""The orphan purge on the lab over real SSH and WinRM: approved content only, in
batches under cmd.exe's command-line limit, names in any language, reparse points
never followed, odd names and changed clips refused one by one."""

from __future__ import annotations

from temporalio.client import Client

from activities.drivers import powershell as ps
from lab.media import ingest, link
from lab.state import LabState
from tests.support.cli import cli, cli_json
from tests.support.driving import drive, step
from tests.support.lab import Lab
from tests.support.worker import running_worker

ROOT = "V:\\VibrantAVIFiles"


def volume(lab: Lab, side: str) -> dict[str, str]:
    with LabState(lab.dir).transaction() as txn:
        return txn.volume_files(side)


async def test_restore_purges_exactly_what_was_approved(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    async with running_worker(temporal, lab):
        run = (await cli_json(temporal, lab, "start", "split", "--main", "X"))["run_id"]
        assert (await drive(temporal, lab, run, "X", stop_allsync_on="X"))["state"] == "completed"

        # While split, X records on its own: 64 clips with long names in its languages.
        orphans = [
            f"Régions\\Genève Straße reportage {i:02d} – "
            + "édition du soir très longue " * 2
            + "fin"
            + ".vmf"
            for i in range(64)
        ]
        for c in orphans:
            ingest(lab.dir, "X", c.split("\\")[1][:-4], "Régions")
        ingest(lab.dir, "Y", "Zürich", "News")  # Y, the main side, lists a name in German too
        for side in ("X", "Y"):  # material of the main side, mirrored on X
            ingest(lab.dir, side, "précieux", "News")
        ingest(lab.dir, "X", "piège", "News")
        link(lab.dir, "X", f"{ROOT}\\News\\piège.vmf\\lien", f"{ROOT}\\News\\précieux.vmf")
        with LabState(lab.dir).transaction() as txn:  # made over SMB: Windows keeps the dot
            txn.volume_write("X", f"{ROOT}\\News\\point final.vmf.\\point final.vid", "odd\n")
        one_line = [ps.remove_item(f"{ROOT}\\{c}") for c in orphans]
        # more than one command line can carry
        assert ps.command_length(one_line) > ps.max_command_length("ssh")
        precious = {p: c for p, c in volume(lab, "X").items() if "précieux" in p}
        assert len(precious) == 5  # four clip files and the essence

        # Restore with Y main: X (reached over SSH, through cmd.exe) loses its orphans.
        run = (await cli_json(temporal, lab, "start", "restore", "--main", "Y"))["run_id"]
        shown = await drive(
            temporal,
            lab,
            run,
            "Y",
            until=lambda s: step(s, "approve-purge")["status"] == "awaiting-approval",
        )
        found = step(shown, "find-orphans")
        assert found["items"] == sorted(orphans), found["items"][:3]
        assert "2 refused, never deleted" in found["message"], found["message"]
        assert "News\\piège.vmf (holds a reparse point 'lien'" in found["message"]
        assert (
            "News\\point final.vmf. (segment 'point final.vmf.': a trailing period"
            in (found["message"])
        )
        gate = step(shown, "approve-purge")
        assert gate["items"] == sorted(orphans)
        assert "64 clip(s) will be deleted on X only" in gate["message"], gate["message"]
        assert "2 refused, kept" in gate["message"]

        # After the approval is shown, one approved clip changes on X.
        changed = sorted(orphans)[5]
        vid = f"{ROOT}\\{changed}\\{changed.split(chr(92))[1][:-4]}.vid"
        with LabState(lab.dir).transaction() as txn:
            assert txn.volume_read("X", vid) is not None
            txn.volume_write("X", vid, "recorded again, longer, after the approval\n")

        # Checked as soon as the purge is done: later InSync copies Y's clips onto X.
        shown = await drive(
            temporal, lab, run, "Y", until=lambda s: step(s, "purge-orphans")["status"] == "done"
        )
        purge = step(shown, "purge-orphans")
        assert purge["items"] == sorted(orphans)
        msg = purge["message"]
        assert msg.startswith("63 orphan clip(s) deleted on sb-x1 (X)"), msg
        assert f"1 refused, not deleted: {changed} (changed since approval" in msg, msg

        x = volume(lab, "X")
        left = {c for c in orphans if any(p.startswith(f"{ROOT}\\{c}\\") for p in x)}
        assert left == {changed}
        assert x[vid] == "recorded again, longer, after the approval\n"
        assert all(x.get(p) == c for p, c in precious.items())  # the junction's target
        assert any(p.startswith(f"{ROOT}\\News\\piège.vmf\\") for p in x)
        assert f"{ROOT}\\News\\point final.vmf.\\point final.vid" in x

        final = await drive(temporal, lab, run, "Y", timeout=240)
        assert final["state"] == "completed", final

        # Deleted file by file and folder by folder, never with -Recurse, in batches.
        removes = [
            st for _, host, cmdlet, st in LabState(lab.dir).journal()
            if host.lower() == "sb-x1" and cmdlet == "Remove-Item"
        ]  # fmt: skip
        assert removes and not any("-Recurse" in st for st in removes)
        assert len(removes) == 63 * 5

        rc, text = await cli(temporal, lab, "show", run)
        assert rc == 0 and "63 orphan clip(s) deleted" in text

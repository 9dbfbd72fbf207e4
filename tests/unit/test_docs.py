"""The book stays a book: a short README that says what is not done yet, and links
(README and docs/) that lead to a page and a heading that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def test_the_readme_is_short_and_says_what_is_not_done() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "## Not yet" in text and "(docs/not-yet.md)" in text
    assert "make run" in text and "make test" in text and "make test-unit" in text


def test_every_link_leads_to_a_page_and_a_heading() -> None:
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            where = (page.parent / path).resolve() if path else page
            assert where.exists(), (page.relative_to(ROOT), target)
            if anchor and where.suffix == ".md":
                assert anchor in _anchors(where), (page.relative_to(ROOT), target)


def test_every_page_of_the_book_is_in_its_index() -> None:
    index = (ROOT / "docs" / "README.md").read_text()
    for page in PAGES:
        if page.parent != ROOT and page.name != "README.md":
            assert f"({page.relative_to(ROOT / 'docs').as_posix()})" in index, page


def test_the_rules_reference_names_every_interlock_and_every_check() -> None:
    """docs/reference/rules.md against the code's own tables: inventory/rules.py RULES
    (with whether each can be overridden) and workflows/checks.py CHECK_STEPS."""
    from inventory.rules import RULES
    from workflows.checks import CHECK_STEPS

    text = (ROOT / "docs" / "reference" / "rules.md").read_text()
    rows = {
        m.group(1): m.group(2).strip()
        for m in re.finditer(r"^\| `([a-z-]+)` \|.*\| ([^|]+) \|$", text, flags=re.M)
    }
    for rule in RULES:
        assert rows.get(rule.name) == ("yes" if rule.overridable else "never"), rule.name
    for check in CHECK_STEPS:
        assert f"`{check}`" in text, check


def test_the_program_names_pages_of_the_book_not_sections_of_the_old_readme() -> None:
    """A message that says where to read on names a page that exists (the README was one
    long page; its sections moved to docs/)."""
    rooms = [p for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    files = [f for room in rooms for f in room.rglob("*.py")] + [
        ROOT / "dynamicconfig" / "amsm.yaml",
        ROOT / "etc" / "openssl-legacy-tls.cnf",
    ]
    stale, missing = [], []
    for f in files:
        text = f.read_text()
        if re.search(r"README,? [\"']", text):
            stale.append(str(f.relative_to(ROOT)))
        for page in re.findall(r"docs/[a-z-]+/[a-z-]+\.md", text):
            if not (ROOT / page).exists():
                missing.append(f"{f.relative_to(ROOT)}: {page}")
    assert stale == [] and missing == []

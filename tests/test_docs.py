"""The manual stays usable: README.md is short, every relative link and #anchor in it and in
docs/ resolves, every command in its Quick start, Usage and Your own data sections names a
script and flags that exist, docs/results.md is what benchmarks/report.py makes of the committed
JSON, and the README's recipe table quotes that page."""
import re
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").rglob("*.md"))]
COMMAND_SECTIONS = ("Quick start", "Usage", "Your own data", "Recommended recipes")
LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)\)|\!\[[^\]]*\]\(([^)\s]+)\)")
FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set:
    found, seen, in_code = set(), {}, False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        m = re.match(r"^(#{1,6}) (.+)$", line)
        if m and not in_code:
            slug = github_anchor(m.group(2))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def links(path: Path):
    in_code = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        for m in LINK.finditer(line):
            yield number, m.group(1) or m.group(2)


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= 300, f"README.md has {lines} lines; the manual keeps to 300"


def test_github_anchor_rules():
    assert github_anchor("Masks (`--masks`, `--alpha_as_mask`)") == "masks---masks---alpha_as_mask"
    assert github_anchor("Speed (CPU, this project's 2-core machine)") == \
        "speed-cpu-this-projects-2-core-machine"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_and_anchors_resolve(page):
    broken = []
    for number, target in links(page):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        if not destination.exists():
            broken.append(f"{page.name}:{number}: {target} (no such file)")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{page.name}:{number}: {target} (no heading with that anchor)")
    assert not broken, "\n".join(broken)


def test_no_text_about_the_development_process():
    """User-facing pages speak of the software, not of how its development is organised, and
    never point outside the repository's folder."""
    pattern = re.compile(r"\.\./shared|\bsessions?\b|(?<!GitHub )\bissues?\b(?! #)", re.I)
    found = [f"{page.relative_to(REPO)}:{n}: {line.strip()}"
             for page in PAGES
             for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
             if pattern.search(line)]
    assert not found, "\n".join(found)


def section_text(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(rf"^## {re.escape(name)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"README.md has no section '{name}'"
    return m.group(1)


def commands(text: str):
    """Shell commands in a section: its code blocks (continuations joined, comments dropped,
    `&&` split) and table cells or inline code that start with a script."""
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            yield from (part.strip() for part in line.split("&&") if part.strip())
    for code in re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S)):
        if re.match(r"^(\.venv/bin/)?(python )?\w+\.py( |$)", code):
            yield code


@lru_cache(maxsize=None)
def script_flags(script: str) -> frozenset:
    out = subprocess.run([sys.executable, str(REPO / script), "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"{script} --help failed: {out.stderr[-500:]}"
    return frozenset(FLAG.findall(out.stdout))


def makefile_targets() -> set:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([\w-]+):", text, re.M))


def check_command(command: str):
    words = command.split()
    if words[0] == "make":
        missing = [w for w in words[1:] if w not in makefile_targets()]
        return [f"make target {w} does not exist" for w in missing]
    if words[0] in ("mkdir", "cp", "conda"):
        return []
    scripts = [i for i, w in enumerate(words) if w.endswith(".py")]
    if not scripts:
        return [f"no script in: {command}"]
    i = scripts[0]
    script = words[i]
    if not (REPO / script).is_file():
        return [f"{script} does not exist"]
    known = script_flags(script)
    return [f"{script} has no flag {flag} ({command})"
            for word in words[i + 1:] for flag in FLAG.findall(word)
            if word.startswith("-") and flag not in known]


@pytest.mark.parametrize("section", COMMAND_SECTIONS)
def test_readme_commands_exist(section):
    found = list(commands(section_text(section)))
    assert found, f"no commands found in '{section}'"
    problems = [p for command in found for p in check_command(command)]
    assert not problems, "\n".join(problems)


def test_results_page_is_generated_from_the_committed_json(tmp_path):
    """benchmarks/report.py makes docs/results.md byte for byte from the JSON files that git
    tracks (local, uncommitted runs left out)."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs the git checkout to know which results are committed")
    tracked = subprocess.run(["git", "ls-files", "benchmarks/results/*.json"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.split()
    assert tracked, "no benchmark results are committed"
    results = tmp_path / "results"
    results.mkdir()
    for name in tracked:
        shutil.copy(REPO / name, results)
    page = tmp_path / "results.md"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "report.py"), "--results",
                    str(results), "--output", str(page)], check=True, capture_output=True)
    assert page.read_bytes() == (REPO / "docs" / "results.md").read_bytes(), \
        "docs/results.md is stale: run python benchmarks/report.py"


def test_readme_recipe_numbers_come_from_the_results_page():
    results = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    rows = [line for line in section_text("Recommended recipes").splitlines()
            if line.startswith("|") and not line.startswith("|---")][1:]
    assert rows
    quoted = [row.split("|")[3] for row in rows]
    numbers = [n for cell in quoted for n in re.findall(r"\d+\.\d+ dB|\d+ %|sd \d+\.\d+", cell)]
    assert numbers, "the recipe table quotes no measurements"
    missing = [n for n in numbers if n.replace(" dB", "") not in results]
    assert not missing, \
        f"README's recipe table quotes numbers docs/results.md does not have: {missing}"


def test_flags_named_in_the_readme_exist():
    """Flags quoted on their own (the Usage table, Your own data) belong to one of the scripts."""
    scripts = ("train.py", "render.py", "metrics.py", "view.py", "export.py", "convert.py")
    known = frozenset().union(*(script_flags(s) for s in scripts))
    text = re.sub(r"```.*?```", "", README.read_text(encoding="utf-8"), flags=re.S)
    quoted = [code for code in re.findall(r"`([^`\n]+)`", text) if code.startswith("-")
              and not code.startswith("-march")]  # a compiler flag
    assert len(quoted) > 20
    unknown = sorted({flag for code in quoted for flag in FLAG.findall(code)} - known)
    assert not unknown, f"README.md names flags no script has: {unknown}"

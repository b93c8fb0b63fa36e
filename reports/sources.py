"""Where the guide links a file and line to: the repository's web view when one is known (`--repo-url`,
else `git remote get-url origin`), else a copy of the file inside the site (relative links), else nothing.
Also the published guide's address, which the report links to."""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def web_url(remote: str) -> str | None:
    """`git@host:owner/repo.git` or `https://host/owner/repo(.git)` -> `https://host/owner/repo`."""
    remote = remote.strip()
    if m := re.match(r"^[\w.-]+@([\w.-]+):(.+?)(?:\.git)?/?$", remote):
        return f"https://{m.group(1)}/{m.group(2)}"
    if m := re.match(r"^(https?)://(?:[^@/]+@)?([^/]+)/(.+?)(?:\.git)?/?$", remote):
        return f"{m.group(1)}://{m.group(2)}/{m.group(3)}"
    return None


def pages_url(repo: str | None) -> str | None:
    """The forge's Pages address of a GitHub repository (https://OWNER.github.io/REPO/)."""
    m = re.match(r"^https://github\.com/([^/]+)/([^/]+)$", repo or "")
    return f"https://{m.group(1)}.github.io/{m.group(2)}/" if m else None


def site_url() -> str | None:
    """The published guide: $DLROSETTA_GUIDE_URL, else the Pages address of the origin remote."""
    if os.environ.get("DLROSETTA_GUIDE_URL"):
        return os.environ["DLROSETTA_GUIDE_URL"]
    remote = _git("remote", "get-url", "origin")
    return pages_url(web_url(remote)) if remote else None


@dataclass(frozen=True)
class SourceLinks:
    """`blob`: a web view's file prefix (https://github.com/o/r/blob/<ref>); `relative`: a folder prefix
    inside the site holding copies of the files. Neither: no links."""
    blob: str | None = None
    relative: str | None = None

    @classmethod
    def for_site(cls, repo_url: str | None = None, ref: str | None = None) -> "SourceLinks":
        repo = repo_url or web_url(_git("remote", "get-url", "origin") or "")
        if repo:
            return cls(blob=f"{repo.rstrip('/')}/blob/{ref or _git('rev-parse', 'HEAD') or 'main'}")
        return cls(relative="src/")

    @property
    def copies_files(self) -> bool:
        return self.blob is None and self.relative is not None

    def file(self, path: str, start: int | None = None, end: int | None = None) -> str | None:
        if self.blob:
            anchor = "" if start is None else f"#L{start}" + (f"-L{end}" if end and end != start else "")
            return f"{self.blob}/{path}{anchor}"
        if self.relative is not None:
            return f"{self.relative}{path}"  # a plain-text copy: no line anchors
        return None

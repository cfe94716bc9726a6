"""The README's Python quick start runs as written."""

import os
import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[3]


def test_readme_python_quick_start(tmp_path, monkeypatch):
    text = (REPO / "README.md").read_text()
    section = text.split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "testdata").symlink_to(REPO / "testdata")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    for name in ["counts.vfm", "cooc.vfm", "cooc.h5ad"]:
        assert os.path.getsize(name) > 0

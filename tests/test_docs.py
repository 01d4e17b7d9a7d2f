"""The API reference (mkdocs + mkdocstrings, ``mkdocs.yml``) builds with warnings as errors, holds
every public name of every public namespace, and its internal links resolve; the worked
examples (``docs/examples.md``) run as written."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
# page of the reference -> the namespaces it documents
PAGES = {
    "api/torch_api.html": ["torch_api"],
    "api/torch_api_utils.html": ["torch_api.utils"],
    "api/torch_api_models.html": ["torch_api.distributions", "torch_api.encoders"],
    "api/torch_api_bindings.html": ["torch_api.jax", "torch_api.cupy"],
    "api/jax_api.html": ["jax_api"],
    "api/bridge.html": ["bridge"],
}


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links, self.code = set(), [], set()
        self._in_code = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if tag in ("a", "img", "link", "script") and attrs.get(key):
                self.links.append(attrs[key])
        self._in_code = tag == "code"

    def handle_data(self, data):
        if self._in_code:
            self.code.add(data.strip())

    def handle_endtag(self, tag):
        if tag == "code":
            self._in_code = False


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocstrings_handlers.python")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                           str(ROOT / "mkdocs.yml"), "-d", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "WARNING" not in proc.stderr, proc.stderr[-4000:]
    pages = {}
    for html in out.rglob("*.html"):
        parser = _Page()
        parser.feed(html.read_text())
        pages[html.relative_to(out).as_posix()] = parser
    return out, pages


def test_every_public_name_is_documented(site):
    _, pages = site
    for page, namespaces in PAGES.items():
        parsed = pages[page]
        for namespace in namespaces:
            for name in importlib.import_module(namespace).__all__:
                # an entry (its anchor ends with the name) or, for a plain value, named in the text
                assert any(i == name or i.endswith("." + name) for i in parsed.ids) or (
                    name in parsed.code), f"{namespace}.{name} missing from {page}"


def test_internal_links_resolve(site):
    out, pages = site
    checked = 0
    for page, parsed in pages.items():
        for link in parsed.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith("//"):
                continue  # outside the site
            checked += 1
            path = unquote(parts.path)
            if path.startswith("/"):  # from the site's root (404.html)
                target = out / path.lstrip("/")
            else:
                target = (out / page).parent / path if path else out / page
            target = target.resolve()
            if target.is_dir():
                target = target / "index.html"
            assert target.is_file(), f"{page}: {link} -> {target} missing"
            if parts.fragment and target.suffix == ".html":
                anchors = pages[target.relative_to(out).as_posix()].ids
                assert parts.fragment in anchors, f"{page}: {link}: no #{parts.fragment}"
    assert checked > 100  # the navigation of every page, the reference's cross-links


def test_reference_shows_docstrings_and_signatures(site):
    out, _ = site
    text = (out / "api" / "torch_api.html").read_text()
    body = re.sub(r"<[^>]+>", "", text)
    assert "sparse_mm(" in body  # a signature
    import torch_api

    first_line = torch_api.sparse_mm.__doc__.strip().splitlines()[0]
    assert first_line.split("``")[0].strip()[:30] in body


EXAMPLES = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "examples.md").read_text(), re.S)


def test_examples_cover_every_operation():
    import torch_api

    text = "".join(EXAMPLES)
    ops = [n for n in torch_api.__all__ if n[0].islower() and n != "clear_caches"]
    for name in ops:
        assert f"{name}(" in text, f"torch_api.{name} has no worked example"
    for name in ("sparse_mm", "sparse_triangular_solve", "sparse_generic_solve", "gather_mm"):
        assert f"jax_api.{name}(" in text, f"jax_api.{name} has no worked example"
    assert "PairwiseEncoder(" in text and "SparseMultivariateNormal(" in text


@pytest.mark.parametrize("source", EXAMPLES, ids=lambda s: s.split("\n")[1][:40])
def test_example_runs(source):
    if "jax" in source:
        pytest.importorskip("jax")
    exec(compile(source, "docs/examples.md", "exec"), {"__name__": "docs_example"})

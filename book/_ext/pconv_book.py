"""Sphinx additions of the pconv book (listed under sphinx.local_extensions in _config.yml).

* Drops repeated ``<script>`` entries. sphinx-thebe adds its inline configuration
  (``const THEBE_JS_URL = ...``) once per read phase, and a second copy of a ``const`` is a
  JavaScript error on every page ("Identifier 'THEBE_JS_URL' has already been declared").
* Turns the docstrings' Google-style ``Returns:`` sections into a "Returns" rubric over plain
  reStructuredText before napoleon reads them: a list when the entries are named
  (``name: description``, one per array returned), a paragraph otherwise. Napoleon's own
  parsing takes the first words of a free-text entry for a name and prints its markup raw
  (double backquotes, ``:class:`...```) in bold.
"""
import re

_NAMED = re.compile(r"^(``[^`]+``|\*{0,2}[A-Za-z_][\w.\[\], ]*)\s*(\([^)]*\))?:\s")


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        attrs = getattr(js, "attributes", {}) or {}
        # an inline script has no file name: None from one extension, "" from another
        key = (str(getattr(js, "filename", js) or ""), tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    scripts[:] = kept


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def returns_section(lines: list[str]) -> list[str]:
    """``lines`` of a docstring with each ``Returns:`` section rewritten (see the module doc)."""
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.strip() not in ("Returns:", "Return:"):
            out.append(line)
            i += 1
            continue
        head = _indent(line)
        j, body = i + 1, []
        while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > head):
            body.append(lines[j])
            j += 1
        while body and not body[-1].strip():
            body.pop()
        i = j
        if not body:
            out.append(line)
            continue
        base = min(_indent(b) for b in body if b.strip())
        top = [b for b in body if b.strip() and _indent(b) == base]
        named = bool(_NAMED.match(top[0].strip())) and sum(bool(_NAMED.match(b.strip())) for b in top) > 1
        if out and out[-1].strip():
            out.append("")
        out += [" " * head + ".. rubric:: Returns", ""]
        for b in body:
            if not b.strip():
                out.append("")
            elif named and _indent(b) == base and _NAMED.match(b.strip()):
                out.append(" " * head + "- " + b.strip())
            else:
                out.append(" " * (head + (2 if named else 0) + _indent(b) - base) + b.strip())
        out.append("")
    return out


def _returns(app, what, name, obj, options, lines):
    lines[:] = returns_section(lines)


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("autodoc-process-docstring", _returns, priority=400)   # before napoleon (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

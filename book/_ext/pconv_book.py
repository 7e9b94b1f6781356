"""Sphinx additions of the pconv book (listed under sphinx.local_extensions in _config.yml).

* Drops repeated ``<script>`` entries. sphinx-thebe adds its inline configuration
  (``const THEBE_JS_URL = ...``) once per read phase, and a second copy of a ``const`` is a
  JavaScript error on every page ("Identifier 'THEBE_JS_URL' has already been declared").
* Turns the docstrings' Google-style ``Returns:`` sections into a "Returns" rubric over plain
  reStructuredText before napoleon reads them: a list when the entries are named
  (``name: description``, one per array returned), a paragraph otherwise. Napoleon's own
  parsing takes the first words of a free-text entry for a name and prints its markup raw
  (double backquotes, ``:class:`...```) in bold.
* Replaces the theme's Font Awesome script (``_static/scripts/fontawesome.js``, 1.5 MB on every
  page, for about fifteen icons) by one that holds only the solid icons the built pages name
  (``<i class="fa-solid fa-list">``, ``<span class="fas fa-bars">``, plus the ``fa-xmark`` that the theme's script creates), and
  turns them into inline SVG the way Font Awesome does (``svg.svg-inline--fa`` with the ``<i>``'s
  classes), also for icons added later. A page that names an icon the theme's file lacks fails
  the build.
* Sets ``mathjax_path`` to ``pconv_mathjax_path`` (sphinx-mathjax-offline overwrites the former).
* Leaves the search scripts (``searchtools.js``, ``language_data.js``, ``searchindex.js``) out of
  every page but search.html: the theme loads them everywhere for its search-as-you-type, which
  is off.
"""
import json
import re
from pathlib import Path

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


# Where the theme's bundle keeps its icon packs: brands, then regular, then solid, each an object
# {name: [width, height, [aliases], unicode, path]} passed to a call ending in ("fab", p) etc.
_ICON = re.compile(r'[{,](?:"([a-z0-9-]+)"|([a-z0-9]+)):\[(\d+),(\d+),\[[^\]]*\],"[0-9a-f]+","([^"]+)"\]')
_PACK_END = re.compile(r'\("(fab|far|fas)",[A-Za-z_$]+\)')
_ICON_CLASS = re.compile(r'<(?:i|span) class="((?:[^"]* )?(?:fas|fa-solid)(?: [^"]*)?)"')
_NOT_ICONS = {"fa-solid", "fa-regular", "fa-brands", "fa-lg", "fa-xs", "fa-sm", "fa-xl", "fa-2x",
              "fa-fw", "fa-spin", "fa-pulse"}
#: Icons that the theme's own script creates at run time (pydata-sphinx-theme's banners).
_SCRIPT_ICONS = {"xmark"}

_FA_JS = """/* Font Awesome Free icons (https://fontawesome.com, CC BY 4.0), only those the pages of
   this book use, written by book/_ext/pconv_book.py in place of the theme's full bundle. */
(() => {
  const ICONS = %s;
  const css = document.createElement("style");
  css.textContent = "svg.svg-inline--fa{display:var(--fa-display,inline-block);height:1em;"
    + "overflow:visible;box-sizing:content-box;vertical-align:-.125em}"
    + "svg.svg-inline--fa.fa-lg{font-size:1.25em;line-height:.05em;vertical-align:-.2em}";
  document.head.appendChild(css);
  const NS = "http://www.w3.org/2000/svg";
  const swap = (i) => {
    // A regular expression, not a quoted prefix: book/_ext/pconv_weight.py keeps every style of a
    // class that a script could build from a string literal ending in a hyphen.
    const name = [...i.classList].filter(c => /^fa-/.test(c)).map(c => c.slice(3)).find(n => ICONS[n]);
    const icon = name && ICONS[name];
    if (!icon) return;
    const svg = document.createElementNS(NS, "svg");
    for (const a of i.attributes) svg.setAttribute(a.name, a.value);   // data-mode, title, ...
    svg.setAttribute("class", i.getAttribute("class") + " svg-inline--fa");
    svg.setAttribute("viewBox", `0 0 ${icon[0]} ${icon[1]}`);
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("role", "img");
    svg.setAttribute("data-icon", name);
    const path = document.createElementNS(NS, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("d", icon[2]);
    svg.appendChild(path);
    i.replaceWith(svg);
  };
  const ICON = "i.fa-solid, i.fas, span.fa-solid, span.fas";
  const sweep = (root) => root.querySelectorAll && root.querySelectorAll(ICON).forEach(swap);
  const start = () => {
    sweep(document);
    new MutationObserver(changes => changes.forEach(c => c.addedNodes.forEach(n => {
      if (n.nodeType !== 1) return;
      if (n.matches(ICON)) swap(n); else sweep(n);
    }))).observe(document.body, {childList: true, subtree: true});
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
"""


def solid_icons(bundle: str) -> dict[str, list]:
    """{name: [width, height, path]} of the solid pack of Font Awesome's JavaScript bundle."""
    ends = {}
    for m in _PACK_END.finditer(bundle):
        ends.setdefault(m.group(1), m.start())
    if not {"far", "fas"} <= set(ends):
        raise RuntimeError("fontawesome.js: no solid icon pack found (a new theme version?)")
    icons = {}
    for m in _ICON.finditer(bundle, ends["far"], ends["fas"]):
        icons[m.group(1) or m.group(2)] = [int(m.group(3)), int(m.group(4)), m.group(5)]
    return icons


def icons_named(html: str) -> set[str]:
    """The icon names (``bars`` for ``fa-bars``) of the ``<i class="fa-solid ...">`` of a page."""
    names = set()
    for m in _ICON_CLASS.finditer(html):
        names |= {c[3:] for c in m.group(1).split() if c.startswith("fa-") and c not in _NOT_ICONS}
    return names


# What pydata-sphinx-theme adds to every page for a search that shows results as you type; with
# that off (the theme's default, and this book's), only search.html uses them (0.16 MB).
_SEARCH_SCRIPTS = re.compile(
    r'\s*<script src="[^"]*(?:_static/searchtools\.js|_static/language_data\.js|searchindex\.js)"></script>')


def drop_search_scripts(html: str) -> str:
    """``html`` without the search scripts of pydata-sphinx-theme's page head."""
    return _SEARCH_SCRIPTS.sub("", html)


def _search_scripts_off(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    if str(app.builder.theme_options.get("search_as_you_type", "false")).lower() in ("true", "1"):
        return
    for page in Path(app.outdir).rglob("*.html"):
        if page.name == "search.html" and page.parent == Path(app.outdir):
            continue
        text = page.read_text(encoding="utf-8")
        slimmer = drop_search_scripts(text)
        if slimmer != text:
            page.write_text(slimmer, encoding="utf-8")


def _small_fontawesome(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    import pydata_sphinx_theme

    source = (Path(pydata_sphinx_theme.__file__).parent / "theme" / "pydata_sphinx_theme"
              / "static" / "scripts" / "fontawesome.js")
    out = Path(app.outdir)
    target = out / "_static" / "scripts" / "fontawesome.js"
    if not target.exists():
        return
    available = solid_icons(source.read_text(encoding="utf-8"))
    wanted = set(_SCRIPT_ICONS)
    for page in out.rglob("*.html"):
        wanted |= icons_named(page.read_text(encoding="utf-8", errors="replace"))
    missing = sorted(wanted - set(available))
    if missing:
        raise RuntimeError(f"pages name Font Awesome icons that the solid pack lacks: {missing}")
    chosen = {name: available[name] for name in sorted(wanted)}
    target.write_text(_FA_JS % json.dumps(chosen, separators=(",", ":")), encoding="utf-8")
    stale_map = target.with_name("fontawesome.js.map")
    if stale_map.exists():
        stale_map.unlink()


def _mathjax_path(app, config):
    if config.pconv_mathjax_path:
        config.mathjax_path = config.pconv_mathjax_path


def setup(app):
    # sphinx-mathjax-offline sets mathjax_path to its combined tex-chtml.js when it is set up,
    # over the book's own value: pconv_mathjax_path (in _config.yml) is applied after it.
    app.add_config_value("pconv_mathjax_path", None, "html")
    app.connect("config-inited", _mathjax_path)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("build-finished", _small_fontawesome)
    app.connect("build-finished", _search_scripts_off)
    app.connect("autodoc-process-docstring", _returns, priority=400)   # before napoleon (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

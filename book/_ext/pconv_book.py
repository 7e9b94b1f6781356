"""Sphinx additions of the pconv book (listed under sphinx.local_extensions in _config.yml).

* Adds ``_static/pconv_draw_hole.js`` to every page: the "draw a hole" piece of chapter 3, which
  runs only where a page has a ``<div class="pconv-draw-hole">``.
* Drops repeated ``<script>`` entries. sphinx-thebe adds its inline configuration
  (``const THEBE_JS_URL = ...``) once per read phase, and a second copy of a ``const`` is a
  JavaScript error on every page ("Identifier 'THEBE_JS_URL' has already been declared").
"""


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        attrs = getattr(js, "attributes", {}) or {}
        key = (str(getattr(js, "filename", js)), tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    scripts[:] = kept


def setup(app):
    app.add_js_file("pconv_draw_hole.js", defer="defer")
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

/* Layout of the pconv book (with pconv.css). Between 1200 and 1599 px the chapter list starts
 * folded (pconv.css); every "Toggle primary sidebar" button folds and unfolds it there. The
 * theme's own handler is attached to the first such button only (sphinx-book-theme), which at
 * these widths is not the one shown. */
(() => {
  const range = window.matchMedia("(min-width: 1200px) and (max-width: 1599.98px)");
  const start = () => {
    const sidebar = document.querySelector("#pst-primary-sidebar");
    if (!sidebar) return;
    document.querySelectorAll(".primary-toggle").forEach((button) => {
      button.addEventListener("click", (event) => {
        if (!range.matches) return;
        event.preventDefault();
        event.stopImmediatePropagation();
        sidebar.classList.toggle("pst-sidebar-hidden");
        button.blur();
      }, true);
    });
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

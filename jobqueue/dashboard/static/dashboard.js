// The dashboard's only script, served from /static: the Content-Security-Policy allows no
// inline script, so no page carries an onclick attribute or a <script> block of its own.

// The failed-jobs list: the header's box ticks or clears every row's box.
document.addEventListener("change", (event) => {
  const box = event.target;
  if (box instanceof HTMLInputElement && box.id === "select-all") {
    for (const row of document.querySelectorAll("input[name=ids]")) row.checked = box.checked;
  }
});

// The dashboard's only script, served from /static: the Content-Security-Policy allows no
// inline script, so no page carries an onclick attribute or a <script> block of its own.

// The failed-jobs list: the header's box ticks or clears every row's box.
document.addEventListener("change", (event) => {
  const box = event.target;
  if (box instanceof HTMLInputElement && box.id === "select-all") {
    for (const row of document.querySelectorAll("input[name=ids]")) row.checked = box.checked;
  }
});

// Clearing a queue: the Discard button counts the jobs of the ticked statuses.
document.addEventListener("change", (event) => {
  const box = event.target;
  const button = document.getElementById("discard");
  if (!(box instanceof HTMLInputElement) || box.name !== "status" || !button) return;
  let total = 0;
  for (const status of document.querySelectorAll("input[name=status][form=clear]:checked")) {
    total += Number(status.dataset.count) || 0;
  }
  button.textContent = `Discard ${total} job${total === 1 ? "" : "s"}`;
});

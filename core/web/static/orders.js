// New order, step two: the "+" button adds a service row by copying the last one.
// Without JavaScript the button posts the form and the page comes back with one row more.
document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("add-order-row");
  var table = document.getElementById("order-items");
  if (!button || !table) {
    return;
  }
  button.addEventListener("click", function (event) {
    event.preventDefault();
    var body = table.tBodies[0];
    var rows = body.querySelectorAll("tr.order-item");
    var index = rows.length;
    var copy = rows[index - 1].cloneNode(true);
    copy.querySelectorAll("select, input").forEach(function (el) {
      el.name = el.name.replace(/^items-\d+-/, "items-" + index + "-");
      var label = el.getAttribute("aria-label");
      if (label) {
        el.setAttribute("aria-label", label.replace(/\d+$/, String(index + 1)));
      }
      if (el.tagName === "SELECT") {
        el.selectedIndex = 0;
      } else {
        el.value = "";
      }
    });
    copy.querySelectorAll(".error").forEach(function (message) {
      message.remove();
    });
    body.appendChild(copy);
    copy.querySelector("select").focus();
  });
});

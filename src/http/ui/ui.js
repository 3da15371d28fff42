// userdrop's tenant admin page works without this script. With it, the
// upload form shows how much of the file has been sent and then
// "Validating…" while the server checks it, and a form marked `once`
// cannot be sent twice by a double click (the server makes one job anyway).
(function () {
  "use strict";
  // The stylesheet (and the tests) can tell that scripts run.
  document.documentElement.classList.add("js");
  function ready() {
    var form = document.getElementById("upload-form");
    var box = document.getElementById("progress");
    if (form && box && window.FormData && window.XMLHttpRequest) {
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var bar = box.querySelector("progress");
        var text = box.querySelector("span");
        box.hidden = false;
        text.textContent = "Uploading…";
        var buttons = form.querySelectorAll("button");
        var data = new FormData(form);
        for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = true; }
        var xhr = new XMLHttpRequest();
        xhr.open("POST", form.action);
        xhr.upload.onprogress = function (e) {
          if (e.lengthComputable && e.total > 0) {
            bar.max = e.total;
            bar.value = e.loaded;
            text.textContent = "Uploading… " + Math.floor((100 * e.loaded) / e.total) + "%";
          }
        };
        xhr.upload.onload = function () {
          bar.removeAttribute("value");
          text.textContent = "Validating…";
        };
        xhr.onload = function () {
          if (xhr.status < 400 && xhr.responseURL) {
            window.location.assign(xhr.responseURL);
          } else {
            document.open();
            document.write(xhr.responseText);
            document.close();
          }
        };
        xhr.onerror = function () {
          text.textContent = "The upload failed: check the connection and try again.";
          for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = false; }
        };
        xhr.send(data);
      });
    }
    var once = document.querySelectorAll("form.once");
    for (var j = 0; j < once.length; j++) {
      once[j].addEventListener("submit", function (ev) {
        var f = ev.target;
        if (f.dataset.sent) { ev.preventDefault(); return; }
        f.dataset.sent = "1";
      });
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();

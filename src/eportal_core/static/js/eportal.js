// eportal console behaviour: vanilla JS, loaded with `defer`; the CSP allows no inline script.
//
// - .nav-toggle: opens/closes the main menu on narrow screens (aria-expanded + .open / .nav-open)
// - .nav-group > button.nav-group-toggle + .nav-menu: a group of the navigation bar (e.g. Settings); the
//   button opens its menu (aria-expanded + .open; ArrowDown/ArrowUp move through it), one open at a time,
//   closed by Escape, an outside click or focus leaving it. On a phone the menu is a section, always shown.
// - .flash: gets a close button (unless it has data-persist)
// - <form data-confirm="message" [data-confirm-button="Delete"] [data-confirm-title="…"]>: asks in a
//   modal <dialog> first (window.confirm where <dialog> is unsupported); Cancel or Escape do not submit
//   With data-confirm-count="NAME" the message's {n} becomes the number of checked NAME checkboxes of the
//   form (form= attribute included), data-confirm-one is the message for exactly one; none checked: no dialog
// - input[type=checkbox][data-check-all="NAME"]: checks/unchecks the form's NAME checkboxes and follows them;
//   [data-checked-count="NAME"] shows "N selected"
// - every submitted form: its submit buttons are disabled for a few seconds (no double posts)
// - details.inline-details: a popover; one open at a time, closes on outside click and Escape
// - .table-card: gets .can-scroll-left / .can-scroll-right while its table is wider than the card
(function () {
  "use strict";

  var doc = document;
  var LOCK_MS = 6000;

  function each(selector, fn, root) {
    Array.prototype.forEach.call((root || doc).querySelectorAll(selector), fn);
  }

  // ------------------------------------------------------------------ navigation toggle
  function initNav() {
    var toggle = doc.querySelector(".nav-toggle");
    if (!toggle) return;
    var nav = doc.getElementById(toggle.getAttribute("aria-controls") || "mainnav");
    if (!nav) return;
    var bar = toggle.closest(".topbar");

    function setOpen(open) {
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      nav.classList.toggle("open", open);
      if (bar) bar.classList.toggle("nav-open", open);
    }
    function isOpen() { return toggle.getAttribute("aria-expanded") === "true"; }

    toggle.addEventListener("click", function () { setOpen(!isOpen()); });
    doc.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape" && isOpen() && !doc.querySelector("dialog[open]")) {
        setOpen(false);
        toggle.focus();
      }
    });
    doc.addEventListener("click", function (ev) {
      if (isOpen() && bar && !bar.contains(ev.target)) setOpen(false);
    });
    if (window.matchMedia) {
      var wide = window.matchMedia("(min-width: 901px)");
      var onChange = function () { if (wide.matches) setOpen(false); };
      if (wide.addEventListener) wide.addEventListener("change", onChange);
      else if (wide.addListener) wide.addListener(onChange);
    }
  }

  // ------------------------------------------------------------------ navigation groups (menus in the bar)
  function setGroupOpen(group, open) {
    var toggle = group.querySelector(".nav-group-toggle");
    group.classList.toggle("open", open);
    if (toggle) toggle.setAttribute("aria-expanded", open ? "true" : "false");
    var bar = group.closest(".nav-links");
    if (bar) bar.classList.toggle("group-open", !!bar.querySelector(".nav-group.open"));
  }

  function closeGroups(except) {
    each(".nav-group.open", function (g) { if (g !== except) setGroupOpen(g, false); });
  }

  function initNavGroup(group) {
    var toggle = group.querySelector(".nav-group-toggle");
    if (!toggle) return;
    function links() { return Array.prototype.slice.call(group.querySelectorAll(".nav-menu a")); }
    function moveFocus(step) {
      var list = links();
      if (!list.length) return;
      var i = list.indexOf(doc.activeElement);
      list[(i < 0 ? (step > 0 ? 0 : list.length - 1) : (i + step + list.length) % list.length)].focus();
    }

    toggle.addEventListener("click", function () {
      var open = !group.classList.contains("open");
      closeGroups(group);
      setGroupOpen(group, open);
    });
    group.addEventListener("keydown", function (ev) {
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        if (toggle.offsetParent === null) return;  // a phone's menu section: plain Tab order
        ev.preventDefault();
        if (!group.classList.contains("open")) { closeGroups(group); setGroupOpen(group, true); }
        moveFocus(ev.key === "ArrowDown" ? 1 : -1);
      }
    });
    group.addEventListener("focusout", function (ev) {
      if (ev.relatedTarget && !group.contains(ev.relatedTarget)) setGroupOpen(group, false);
    });
  }

  function initNavGroupEvents() {
    doc.addEventListener("click", function (ev) {
      each(".nav-group.open", function (g) { if (!g.contains(ev.target)) setGroupOpen(g, false); });
    });
    // capture: an open group takes Escape before the phone menu's handler would close the whole menu
    doc.addEventListener("keydown", function (ev) {
      if (ev.key !== "Escape" || doc.querySelector("dialog[open]")) return;
      var group = doc.querySelector(".nav-group.open");
      if (!group) return;
      ev.stopPropagation();
      var refocus = group.contains(doc.activeElement);
      setGroupOpen(group, false);
      if (refocus) group.querySelector(".nav-group-toggle").focus();
    }, true);
    if (window.matchMedia) {
      var narrow = window.matchMedia("(max-width: 900px)");
      var onChange = function () { closeGroups(null); };
      if (narrow.addEventListener) narrow.addEventListener("change", onChange);
      else if (narrow.addListener) narrow.addListener(onChange);
    }
  }

  // ------------------------------------------------------------------ dismissible flash messages
  function initFlash(flash) {
    if (flash.hasAttribute("data-persist") || flash.querySelector(".flash-close")) return;
    var text = doc.createElement("div");
    text.className = "flash-text";
    while (flash.firstChild) text.appendChild(flash.firstChild);
    flash.appendChild(text);

    var close = doc.createElement("button");
    close.type = "button";
    close.className = "flash-close";
    close.setAttribute("aria-label", "Dismiss message");
    close.title = "Dismiss";
    close.textContent = "\u00d7";
    close.addEventListener("click", function () {
      flash.classList.add("flash-hiding");
      window.setTimeout(function () {
        if (flash.parentNode) flash.parentNode.removeChild(flash);
      }, 200);
    });
    flash.appendChild(close);
  }

  // ------------------------------------------------------------------ confirm dialog
  var dialogSupported = typeof window.HTMLDialogElement === "function" &&
    typeof doc.createElement("dialog").showModal === "function";
  var dialog = null;
  var pending = null; // {form, submitter}

  function buildDialog() {
    dialog = doc.createElement("dialog");
    dialog.className = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "confirm-title");
    dialog.setAttribute("aria-describedby", "confirm-message");

    var body = doc.createElement("div");
    body.className = "confirm-body";
    var icon = doc.createElement("div");
    icon.className = "confirm-icon";
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = "!";
    var text = doc.createElement("div");
    text.className = "confirm-text";
    var title = doc.createElement("h2");
    title.id = "confirm-title";
    var message = doc.createElement("p");
    message.id = "confirm-message";
    text.appendChild(title);
    text.appendChild(message);
    body.appendChild(icon);
    body.appendChild(text);

    var actions = doc.createElement("div");
    actions.className = "confirm-actions";
    var cancel = doc.createElement("button");
    cancel.type = "button";
    cancel.className = "btn confirm-cancel";
    cancel.textContent = "Cancel";
    var ok = doc.createElement("button");
    ok.type = "button";
    ok.className = "btn btn-danger confirm-ok";
    actions.appendChild(cancel);
    actions.appendChild(ok);

    dialog.appendChild(body);
    dialog.appendChild(actions);
    doc.body.appendChild(dialog);

    cancel.addEventListener("click", function () { dialog.close("cancel"); });
    ok.addEventListener("click", function () { dialog.close("confirm"); });
    // a click on the backdrop (outside the dialog box) cancels
    dialog.addEventListener("click", function (ev) {
      if (ev.target !== dialog) return;
      var r = dialog.getBoundingClientRect();
      var inside = ev.clientX >= r.left && ev.clientX <= r.right && ev.clientY >= r.top && ev.clientY <= r.bottom;
      if (!inside) dialog.close("cancel");
    });
    // Escape fires "cancel" and then closes the dialog with the returnValue left empty
    dialog.addEventListener("close", function () {
      var job = pending;
      pending = null;
      if (!job) return;
      if (dialog.returnValue === "confirm") {
        proceed(job.form, job.submitter);
      } else if (job.submitter && doc.contains(job.submitter)) {
        job.submitter.focus();
      }
    });
  }

  function checkedBoxes(form, name) {
    return Array.prototype.filter.call(form.elements, function (el) {
      return el.type === "checkbox" && el.name === name && el.checked;
    });
  }

  function askConfirm(form, submitter) {
    var message = form.getAttribute("data-confirm") || "Are you sure?";
    var countName = form.getAttribute("data-confirm-count");
    if (countName) {
      var n = checkedBoxes(form, countName).length;
      if (n === 0) { proceed(form, submitter); return; }  // nothing to confirm: the server says what is missing
      message = (n === 1 && form.getAttribute("data-confirm-one")) || message.replace("{n}", n.toLocaleString());
    }
    if (!dialogSupported) {
      if (window.confirm(message)) proceed(form, submitter);
      return;
    }
    if (!dialog) buildDialog();
    if (dialog.open) return;
    dialog.querySelector("#confirm-title").textContent = form.getAttribute("data-confirm-title") || "Please confirm";
    dialog.querySelector("#confirm-message").textContent = message;
    dialog.querySelector(".confirm-ok").textContent = form.getAttribute("data-confirm-button") || "Confirm";
    dialog.returnValue = "";
    pending = { form: form, submitter: submitter };
    dialog.showModal();
    dialog.querySelector(".confirm-cancel").focus();
  }

  function proceed(form, submitter) {
    form.setAttribute("data-confirmed", "1");
    if (typeof form.requestSubmit === "function") {
      if (submitter && submitter.form === form) form.requestSubmit(submitter);
      else form.requestSubmit();
      // the submit event ran synchronously; if validation stopped it, ask again next time
      form.removeAttribute("data-confirmed");
    } else {
      // no requestSubmit: submit() fires no submit event, so lock the buttons here
      form.removeAttribute("data-confirmed");
      lockForm(form);
      form.submit();
    }
  }

  // ------------------------------------------------------------------ no double posts
  function submitButtons(form) {
    var list = [];
    each("button, input[type=submit], input[type=image]", function (el) {
      var type = (el.getAttribute("type") || "submit").toLowerCase();
      if (type === "submit" || type === "image") list.push(el);
    }, form);
    if (form.id) {
      each('button[form="' + form.id + '"], input[type=submit][form="' + form.id + '"]', function (el) {
        if (list.indexOf(el) < 0) list.push(el);
      });
    }
    return list;
  }

  function lockForm(form) {
    var buttons = submitButtons(form).filter(function (b) { return !b.disabled; });
    buttons.forEach(function (b) {
      b.disabled = true;
      b.classList.add("is-busy");
      b.setAttribute("data-locked", "1");
    });
    window.setTimeout(function () { unlock(buttons); }, LOCK_MS);
  }

  function unlock(buttons) {
    buttons.forEach(function (b) {
      if (b.getAttribute("data-locked") !== "1") return;
      b.disabled = false;
      b.classList.remove("is-busy");
      b.removeAttribute("data-locked");
    });
  }

  function onSubmit(ev) {
    var form = ev.target;
    if (!(form instanceof HTMLFormElement)) return;
    if ((form.getAttribute("method") || "").toLowerCase() === "dialog") return;

    if (form.hasAttribute("data-confirm") && form.getAttribute("data-confirmed") !== "1") {
      ev.preventDefault();
      askConfirm(form, ev.submitter || null);
      return;
    }
    form.removeAttribute("data-confirmed");
    // after every other handler ran: a submission somebody cancelled must not lock the form;
    // disabling later also keeps the clicked button's name/value in the posted data
    window.setTimeout(function () {
      if (!ev.defaultPrevented) lockForm(form);
    }, 0);
  }

  // ------------------------------------------------------------------ inline popovers
  function closeDetails(except) {
    each("details.inline-details[open]", function (d) {
      if (d !== except) d.open = false;
    });
  }

  function initDetails(details) {
    details.addEventListener("toggle", function () {
      var card = details.closest(".table-card");
      if (details.open) {
        closeDetails(details);
        details.classList.remove("flip-up");
        var panel = details.querySelector(":scope > form, :scope > .popover");
        if (panel && !window.matchMedia("(max-width: 640px)").matches) {
          var r = panel.getBoundingClientRect();
          var s = details.getBoundingClientRect();
          if (r.bottom > window.innerHeight - 8 && s.top - r.height - 16 > 0) details.classList.add("flip-up");
        }
        var first = details.querySelector("input:not([type=hidden]), select, textarea");
        if (first) first.focus({ preventScroll: true });
      }
      if (card) card.classList.toggle("popover-open", !!card.querySelector("details.inline-details[open]"));
    });
  }

  function initPopoverEvents() {
    doc.addEventListener("click", function (ev) {
      each("details.inline-details[open]", function (d) {
        if (!d.contains(ev.target)) d.open = false;
      });
    });
    doc.addEventListener("keydown", function (ev) {
      if (ev.key !== "Escape" || doc.querySelector("dialog[open]")) return;
      each("details.inline-details[open]", function (d) {
        d.open = false;
        var summary = d.querySelector("summary");
        if (summary) summary.focus();
      });
    });
  }

  // ------------------------------------------------------------------ select all / selected count
  function initCheckAll(box) {
    var name = box.getAttribute("data-check-all");
    var scope = box.form || doc;
    function boxes() {
      var list = box.form ? box.form.elements : doc.querySelectorAll("input[type=checkbox]");
      return Array.prototype.filter.call(list, function (el) { return el.type === "checkbox" && el.name === name; });
    }
    function sync() {
      var all = boxes();
      var checked = all.filter(function (el) { return el.checked; }).length;
      box.checked = all.length > 0 && checked === all.length;
      box.indeterminate = checked > 0 && checked < all.length;
      each('[data-checked-count="' + name + '"]', function (el) {
        el.textContent = checked ? checked.toLocaleString() + " selected" : "";
      });
    }
    box.addEventListener("change", function () {
      boxes().forEach(function (el) { el.checked = box.checked; });
      sync();
    });
    doc.addEventListener("change", function (ev) {
      if (ev.target !== box && ev.target.name === name && (!box.form || ev.target.form === scope)) sync();
    });
    sync();
  }

  // ------------------------------------------------------------------ wide tables
  // a .table-card scrolls sideways on a narrow screen; mark the edges that hide more columns
  function initScrollHint(card) {
    var queued = false;
    function update() {
      queued = false;
      var max = card.scrollWidth - card.clientWidth;
      card.classList.toggle("can-scroll-left", max > 1 && card.scrollLeft > 1);
      card.classList.toggle("can-scroll-right", max > 1 && card.scrollLeft < max - 1);
    }
    function queue() {
      if (queued) return;
      queued = true;
      window.requestAnimationFrame(update);
    }
    card.addEventListener("scroll", queue, { passive: true });
    window.addEventListener("resize", queue);
    update();
  }

  // ------------------------------------------------------------------ start
  function init() {
    doc.documentElement.classList.add("js");
    initNav();
    each(".nav-group", initNavGroup);
    initNavGroupEvents();
    each(".flash", initFlash);
    each("details.inline-details", initDetails);
    each(".table-card", initScrollHint);
    each("input[type=checkbox][data-check-all]", initCheckAll);
    initPopoverEvents();
    doc.addEventListener("submit", onSubmit);
    // coming back with the browser's Back button must not leave buttons disabled
    window.addEventListener("pageshow", function (ev) {
      if (ev.persisted) unlock(Array.prototype.slice.call(doc.querySelectorAll("[data-locked]")));
    });
  }

  if (doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", init);
  else init();
})();

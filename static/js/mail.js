/* Courrier's mail pages: selection, keyboard shortcuts, toasts, live updates and the drawer.
 *
 * Everything here enhances plain forms and links that work without it. The CSP forbids eval and
 * inline styles set from strings, so this file only adds listeners, toggles classes and
 * attributes, and sets text; every text it shows comes from the page (data-* attributes rendered
 * with {% translate %}). htmx (global `htmx`) does the requests; this file reacts to its events.
 */
(function () {
  "use strict";

  const TOAST_MS = 8000;
  const POLL_MS = 3000;
  const POLL_MAX_MS = 60000;
  const G_WINDOW_MS = 1500;
  const NOTIFY_KEY = "courrier-notify";

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

  function scrollBehavior() {
    return reducedMotion.matches ? "auto" : "smooth";
  }

  // The list: rows, the cursor ("current" row) and the selection ------------------------------

  function listPanel() {
    return document.getElementById("mail-list");
  }

  function rows() {
    return $$("#mail-list [data-row]");
  }

  function boxes() {
    return $$("#mail-list input.select");
  }

  function currentRow() {
    return $("#mail-list [data-row].current");
  }

  function boxKey(box) {
    return `${box.name}:${box.value}`;
  }

  function setCurrent(row, { focus = true, scroll = true } = {}) {
    for (const other of $$("#mail-list [data-row].current")) {
      if (other !== row) other.classList.remove("current");
    }
    if (row) {
      row.classList.add("current");
      if (focus) {
        const link = $("[data-open]", row);
        if (link) link.focus({ preventScroll: true });
      }
      if (scroll) row.scrollIntoView({ block: "nearest", behavior: scrollBehavior() });
    }
    selectionChanged();
  }

  function moveCursor(step) {
    const all = rows();
    if (!all.length) return;
    const current = currentRow();
    let index = current ? all.indexOf(current) + step : 0;
    index = Math.max(0, Math.min(all.length - 1, index));
    setCurrent(all[index]);
  }

  /** Keeps the select-all box, the row classes and the "acts on the current row" cue in step. */
  function selectionChanged() {
    const panel = listPanel();
    if (!panel) return;
    const all = boxes();
    const checked = all.filter((box) => box.checked);
    for (const box of all) {
      const row = box.closest("[data-row]");
      if (row) row.classList.toggle("selected", box.checked);
    }
    const selectAll = $("[data-select-all]", panel);
    if (selectAll) {
      selectAll.checked = all.length > 0 && checked.length === all.length;
      selectAll.indeterminate = checked.length > 0 && checked.length < all.length;
    }
    // With nothing selected, the toolbar acts on the current row (as in Gmail): show it.
    panel.classList.toggle("acts-on-current", checked.length === 0 && currentRow() !== null);
  }

  let anchor = ""; // the checkbox clicked last, for Shift+click ranges

  document.addEventListener("click", (event) => {
    const box = event.target.closest && event.target.closest("#mail-list input.select");
    if (!box) return;
    const all = boxes();
    const from = all.findIndex((other) => boxKey(other) === anchor);
    if (event.shiftKey && from >= 0) {
      const to = all.indexOf(box);
      for (const other of all.slice(Math.min(from, to), Math.max(from, to) + 1)) {
        other.checked = box.checked;
      }
    }
    anchor = boxKey(box);
    const row = box.closest("[data-row]");
    if (row) row.classList.remove("implied");
    selectionChanged();
  });

  document.addEventListener("change", (event) => {
    const selectAll = event.target.closest && event.target.closest("#mail-list [data-select-all]");
    if (!selectAll) return;
    for (const box of boxes()) box.checked = selectAll.checked;
    anchor = "";
    selectionChanged();
  });

  // Tabbing or clicking into a row makes it the current one.
  document.addEventListener("focusin", (event) => {
    const row = event.target.closest && event.target.closest("#mail-list [data-row]");
    if (row && !row.classList.contains("current")) setCurrent(row, { focus: false, scroll: false });
  });

  // Submitting: confirmations, and the current row standing in for an empty selection ---------

  window.addEventListener(
    "submit",
    (event) => {
      const form = event.target;
      const submitter = event.submitter || null;
      const question = (submitter && submitter.dataset.confirm) || form.dataset.confirm;
      if (question && !window.confirm(question)) {
        // Captured on the window: neither the browser nor htmx (on the form) sees the submit.
        event.preventDefault();
        event.stopImmediatePropagation();
        return;
      }
      const panel = listPanel();
      const toolbarAction = submitter && submitter.name === "action";
      if (panel && panel.contains(form) && form.id === "mail-actions" && toolbarAction) {
        if (!boxes().some((box) => box.checked)) {
          const row = currentRow();
          const box = row && $("input.select", row);
          if (box) {
            box.checked = true;
            row.classList.add("implied"); // not kept as a selection once the list reloads
            selectionChanged();
          }
        }
      }
    },
    true,
  );

  // Keyboard shortcuts (Gmail's) ----------------------------------------------------------------

  function shortcutsEnabled() {
    return document.querySelector("#mail-shortcuts[data-enabled]") !== null;
  }

  const NOT_TEXT = new Set([
    "checkbox", "radio", "button", "submit", "reset", "image", "range", "color", "file",
  ]);

  function isTextField(element) {
    if (!element || element === document.body) return false;
    if (element.isContentEditable) return true;
    if (element.tagName === "TEXTAREA" || element.tagName === "SELECT") return true;
    return element.tagName === "INPUT" && !NOT_TEXT.has(element.type);
  }

  function clickIfThere(selector) {
    const element = document.querySelector(selector);
    if (!element) return false;
    element.click();
    return true;
  }

  function goTo(attribute) {
    const element = document.querySelector(`[${attribute}]`);
    const url = element && element.getAttribute(attribute);
    if (url) window.location.assign(url);
  }

  /** A toolbar action on the selection (list) or on the conversation shown. */
  function act(action) {
    return clickIfThere(`#mail-actions [data-action="${action}"]`);
  }

  function star() {
    const row = currentRow();
    if (row) {
      const button = $("[data-star]", row);
      if (button) button.click();
      return;
    }
    if (!listPanel()) act("star");
  }

  function openCurrent() {
    const row = currentRow();
    const link = row && $("[data-open]", row);
    if (link) {
      link.click();
      return;
    }
    // In a conversation: open or close the message the focus is in.
    const card = document.activeElement && document.activeElement.closest("details.message-card");
    if (card) card.open = !card.open;
  }

  function next(step) {
    if (listPanel()) {
      moveCursor(step);
      return;
    }
    // In a conversation: the next or previous one, when the page links to it.
    const target = step > 0 ? "next" : "previous";
    clickIfThere(`a[data-shortcut-target="${target}"]`);
  }

  function toggleSelected() {
    const row = currentRow();
    const box = row && $("input.select", row);
    if (box) box.click();
  }

  function focusSearch() {
    const search = $('[data-shortcut="search"]');
    if (search) {
      search.focus();
      search.select();
    }
  }

  let gPressedAt = 0;

  function shortcutFor(event) {
    const key = event.key;
    if (event.shiftKey && (key === "I" || key === "i")) return () => act("read");
    if (event.shiftKey && (key === "U" || key === "u")) return () => act("unread");
    switch (key) {
      case "?":
        return openHelp;
      case "#":
        return () => act("delete") || act("delete_forever");
      case "!":
        return () => act("spam");
      case "/":
        return focusSearch;
      case "Enter": {
        const target = event.target;
        const native = "a, button, summary, select, [role=button]";
        if (target.closest && target.closest(native)) return null;
        return currentRow() ? openCurrent : null;
      }
      default:
        break;
    }
    if (event.shiftKey || key.length !== 1) return null;
    switch (key.toLowerCase()) {
      case "j":
        return () => next(1);
      case "k":
        return () => next(-1);
      case "o":
        return openCurrent;
      case "u":
        return () => clickIfThere("[data-back]");
      case "x":
        return listPanel() ? toggleSelected : null;
      case "s":
        return star;
      case "e":
        return () => act("archive");
      case "c":
        return () => goTo("data-compose-url");
      case "r":
        return () => goTo("data-reply-url");
      case "a":
        return () => goTo("data-reply-all-url");
      case "f":
        return () => goTo("data-forward-url");
      case "g":
        return () => {
          gPressedAt = Date.now();
        };
      default:
        return null;
    }
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.isComposing || !shortcutsEnabled()) return;
    const altGraph = event.getModifierState && event.getModifierState("AltGraph");
    if (event.metaKey || ((event.ctrlKey || event.altKey) && !altGraph)) return;
    if (isTextField(event.target) || document.querySelector("dialog[open]")) return;
    if (gPressedAt && Date.now() - gPressedAt < G_WINDOW_MS) {
      gPressedAt = 0;
      if (event.key === "i" || event.key === "I") {
        event.preventDefault();
        clickIfThere('[data-shortcut-target="inbox"]');
      }
      return;
    }
    gPressedAt = 0;
    const shortcut = shortcutFor(event);
    if (shortcut) {
      event.preventDefault();
      shortcut();
    }
  });

  // Arrow keys move between a toolbar's controls (the ARIA toolbar pattern).
  document.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    const toolbar = event.target.closest && event.target.closest("[role=toolbar]");
    if (!toolbar || event.target.tagName === "SELECT") return;
    const controls = $$("button:not([hidden]), input, select", toolbar).filter((c) => !c.disabled);
    const index = controls.indexOf(event.target);
    if (index < 0) return;
    event.preventDefault();
    const step = event.key === "ArrowRight" ? 1 : -1;
    controls[(index + step + controls.length) % controls.length].focus();
  });

  // The shortcuts dialog -------------------------------------------------------------------------

  let beforeHelp = null;

  function openHelp() {
    const dialog = document.getElementById("shortcuts-help");
    if (!dialog || dialog.open) return;
    beforeHelp = document.activeElement;
    dialog.showModal();
  }

  document.addEventListener("click", (event) => {
    if (event.target.closest && event.target.closest("[data-shortcuts-open]")) openHelp();
    // A click on the backdrop (outside the dialog's box) closes it.
    const dialog = event.target.id === "shortcuts-help" ? event.target : null;
    if (dialog && dialog.open) {
      const box = dialog.getBoundingClientRect();
      const inside =
        event.clientX >= box.left &&
        event.clientX <= box.right &&
        event.clientY >= box.top &&
        event.clientY <= box.bottom;
      if (!inside) dialog.close();
    }
  });

  function initHelp() {
    const dialog = document.getElementById("shortcuts-help");
    if (!dialog) return;
    dialog.addEventListener("close", () => {
      // The event comes a moment after the closing: leave the focus alone if it moved on since.
      const lost = !document.activeElement || document.activeElement === document.body;
      if (lost && beforeHelp && beforeHelp.isConnected) beforeHelp.focus();
      beforeHelp = null;
    });
    if (shortcutsEnabled()) {
      for (const button of $$("[data-shortcuts-open]")) button.hidden = false;
    }
  }

  // Toasts ----------------------------------------------------------------------------------------

  let toastTimer = 0;
  const armed = new WeakSet();

  function dismissToast(toast) {
    clearTimeout(toastTimer);
    const hadFocus = toast.contains(document.activeElement);
    toast.remove();
    if (hadFocus) focusCurrentRow();
  }

  function armToast() {
    const area = document.getElementById("toast");
    const toast = area && $("[data-toast]", area);
    if (!toast || armed.has(toast)) return;
    armed.add(toast);
    for (const button of $$("[data-toast-close]", toast)) button.hidden = false;
    // Undo stays offered while the pointer or the focus is on the toast (WCAG 2.2.1).
    const start = () => {
      clearTimeout(toastTimer);
      toastTimer = setTimeout(() => dismissToast(toast), TOAST_MS);
    };
    const pause = () => clearTimeout(toastTimer);
    toast.addEventListener("mouseenter", pause);
    toast.addEventListener("mouseleave", () => {
      if (!toast.contains(document.activeElement)) start();
    });
    toast.addEventListener("focusin", pause);
    toast.addEventListener("focusout", (event) => {
      if (!toast.contains(event.relatedTarget)) start();
    });
    start();
  }

  function showErrorToast() {
    const area = document.getElementById("toast");
    if (!area || !area.dataset.error) return;
    const toast = document.createElement("div");
    toast.className = "toast error";
    toast.dataset.toast = "";
    const text = document.createElement("span");
    text.className = "toast-text";
    text.textContent = area.dataset.error;
    toast.append(text);
    area.replaceChildren(toast);
    armToast();
  }

  document.addEventListener("click", (event) => {
    const close = event.target.closest && event.target.closest("[data-toast-close]");
    if (close) dismissToast(close.closest("[data-toast]"));
  });

  // After a reload of the list: the same selection, the same row (or the one now at its place) --

  let restore = null;

  function focusCurrentRow() {
    const link = $("#mail-list [data-row].current [data-open]");
    if (link) link.focus({ preventScroll: true });
  }

  document.addEventListener("htmx:beforeSwap", (event) => {
    const target = event.detail.target;
    if (!target || target.id !== "mail-list") return;
    const all = rows();
    const current = currentRow();
    const move = $("select[name=target]", target);
    restore = {
      key: current ? current.dataset.key : "",
      index: current ? all.indexOf(current) : -1,
      checked: new Set(boxes().filter((b) => b.checked && !b.closest(".implied")).map(boxKey)),
      moveTarget: move ? move.value : "",
      hadFocus: target.contains(document.activeElement),
    };
  });

  function restoreList(panel) {
    const saved = restore;
    restore = null;
    if (saved) {
      for (const box of boxes()) box.checked = saved.checked.has(boxKey(box));
      const move = $("select[name=target]", panel);
      if (move && saved.moveTarget) move.value = saved.moveTarget;
      const all = rows();
      let row = saved.key ? all.find((r) => r.dataset.key === saved.key) : null;
      if (!row && saved.index >= 0 && all.length) row = all[Math.min(saved.index, all.length - 1)];
      const focusLost = !document.activeElement || document.activeElement === document.body;
      if (row) setCurrent(row, { focus: saved.hadFocus || focusLost, scroll: false });
    }
    selectionChanged();
  }

  document.addEventListener("htmx:afterSettle", (event) => {
    const element = event.target;
    if (element.id === "mail-list") {
      takeVersion(element);
      restoreList(element);
    } else if (element.id === "mail-sidebar") {
      takeVersion(element);
      countsChanged();
    }
  });

  document.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail && event.detail.target;
    if (target && target.id === "toast") armToast();
    // Rows of an older page arrived: keep the select-all box honest.
    if (target && target.closest && target.closest("#mail-list")) selectionChanged();
  });

  document.addEventListener("htmx:afterRequest", (event) => {
    const element = event.detail.elt;
    // The current row stood in for the selection for this request only.
    if (element && element.id === "mail-actions") {
      for (const row of $$("#mail-list [data-row].implied")) {
        row.classList.remove("implied");
        const box = $("input.select", row);
        if (box) box.checked = false;
      }
      selectionChanged();
    }
    const starSelector = "#mail-actions [data-action=star]";
    const conversationStar = element && element.matches && element.matches(starSelector);
    if (conversationStar && event.detail.successful) flipConversationStar(element);
    const target = event.detail.target;
    if (!event.detail.successful && target && target.id === "toast") showErrorToast();
  });

  function flipConversationStar(button) {
    const on = button.value === "star";
    button.value = on ? "unstar" : "star";
    button.classList.toggle("on", on);
    button.setAttribute("aria-pressed", String(on));
    const mark = $(".star-mark", button);
    if (mark) mark.textContent = on ? "★" : "☆";
    const label = $(".star-label", button);
    if (label) label.textContent = on ? button.dataset.labelOn : button.dataset.labelOff;
  }

  // Live updates ----------------------------------------------------------------------------------

  const live = document.getElementById("mail-live");
  let version = live ? live.dataset.version || "" : "";
  let pollTimer = 0;
  let pollDelay = POLL_MS;
  let polling = false;

  function takeVersion(element) {
    if (element.dataset.version) version = element.dataset.version;
  }

  function mailChanged() {
    if (window.htmx) window.htmx.trigger(document.body, "mail-changed");
    else document.body.dispatchEvent(new CustomEvent("mail-changed"));
  }

  function schedulePoll(delay) {
    clearTimeout(pollTimer);
    if (document.visibilityState === "visible") pollTimer = setTimeout(poll, delay);
  }

  async function poll() {
    if (!live || polling) return;
    polling = true;
    clearTimeout(pollTimer);
    try {
      const url = new URL(live.dataset.pollUrl, window.location.href);
      url.searchParams.set("v", version);
      const response = await fetch(url, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
        redirect: "error", // signed out: a redirect to the sign-in page is not an answer
      });
      if (response.status === 204) {
        pollDelay = POLL_MS;
      } else if (response.ok && (response.headers.get("Content-Type") || "").includes("json")) {
        const data = await response.json();
        pollDelay = POLL_MS;
        if (data.version && data.version !== version) {
          const known = version !== "";
          version = data.version;
          if (known) mailChanged();
        }
      } else {
        pollDelay = Math.min(pollDelay * 2, POLL_MAX_MS);
      }
    } catch (error) {
      pollDelay = Math.min(pollDelay * 2, POLL_MAX_MS);
    } finally {
      polling = false;
      schedulePoll(pollDelay);
    }
  }

  function initLive() {
    if (!live || !live.dataset.pollUrl) return;
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") poll();
      else clearTimeout(pollTimer);
    });
    window.addEventListener("focus", () => poll());
    schedulePoll(POLL_MS);
  }

  // Unread counts: the tab title, and a desktop notification when the inbox count rises --------

  const baseTitle = document.title;
  let inboxCount = -1;

  function readInboxCount() {
    const count = $("[data-count=inbox]");
    const text = count ? count.textContent.trim() : "";
    return { text, value: parseInt(text.replace(/\D/g, ""), 10) || 0 };
  }

  function announce(text) {
    const region = document.getElementById("mail-announce");
    if (!region || !text) return;
    region.textContent = "";
    // A change the screen reader notices even when the text is the same as last time.
    setTimeout(() => {
      region.textContent = text;
    }, 100);
  }

  function countsChanged() {
    const { text, value } = readInboxCount();
    document.title = value ? `(${text}) ${baseTitle}` : baseTitle;
    if (inboxCount >= 0 && value > inboxCount) {
      const title = (live && live.dataset.notifyTitle) || "";
      announce(title);
      if (notificationsWanted() && !document.hasFocus()) {
        const notification = new Notification(title || document.title, {
          body: document.title,
          tag: "courrier-mail",
        });
        notification.addEventListener("click", () => window.focus());
      }
    }
    inboxCount = value;
  }

  function storedOptIn() {
    try {
      return window.localStorage.getItem(NOTIFY_KEY) === "1";
    } catch (error) {
      return false;
    }
  }

  function notificationsWanted() {
    return "Notification" in window && Notification.permission === "granted" && storedOptIn();
  }

  function showNotifyButton() {
    const button = $("[data-notify-ask]");
    if (!button) return;
    const possible = "Notification" in window && Notification.permission !== "denied";
    button.hidden = !possible || notificationsWanted();
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("[data-notify-ask]");
    if (!button || !("Notification" in window)) return;
    // Asked only here, on the user's click: never on load.
    Notification.requestPermission().then((permission) => {
      if (permission === "granted") {
        try {
          window.localStorage.setItem(NOTIFY_KEY, "1");
        } catch (error) {
          // Private modes may refuse storage: the notification stays off.
        }
      }
      showNotifyButton();
    });
  });

  // The sidebar as a drawer on narrow screens -----------------------------------------------------

  function drawerToggle() {
    return $("[data-drawer-toggle]");
  }

  function setDrawer(open, { returnFocus = true } = {}) {
    const toggle = drawerToggle();
    if (!toggle) return;
    document.body.classList.toggle("drawer-open", open);
    toggle.setAttribute("aria-expanded", String(open));
    const main = document.getElementById("main");
    if (main) main.inert = open;
    if (open) {
      const first = $(".sidebar a, .sidebar button");
      if (first) first.focus();
    } else if (returnFocus) {
      toggle.focus();
    }
  }

  function initDrawer() {
    const toggle = drawerToggle();
    if (!toggle) return;
    toggle.hidden = false;
    document.body.classList.add("has-drawer");
    const isOpen = () => document.body.classList.contains("drawer-open");
    toggle.addEventListener("click", () => setDrawer(!isOpen()));
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && isOpen()) setDrawer(false);
    });
    document.addEventListener("click", (event) => {
      if (!isOpen()) return;
      if (event.target.closest(".sidebar") || event.target.closest("[data-drawer-toggle]")) return;
      setDrawer(false, { returnFocus: false });
    });
    // Back to a wide screen: the drawer is the plain sidebar again.
    window.matchMedia("(min-width: 721px)").addEventListener("change", (event) => {
      if (event.matches && isOpen()) setDrawer(false, { returnFocus: false });
    });
  }

  // Start -----------------------------------------------------------------------------------------

  function init() {
    initHelp();
    initDrawer();
    initLive();
    showNotifyButton();
    countsChanged();
    selectionChanged();
    armToast();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();

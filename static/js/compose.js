/* The compose page: the rich-text editor, autosave, recipient suggestions and attachments.
 *
 * The CSP forbids inline script, eval and styles set from strings: this file only adds
 * listeners, sets attributes, properties and text. Every text it shows comes from the page
 * (data-text-* attributes rendered with {% translate %}). The server sanitises whatever the
 * editor sends (compose.drafts.save); cleaning pasted HTML here only keeps remote content from
 * loading in the page meanwhile.
 */
(function () {
  "use strict";

  const SAVE_DELAY_MS = 2000; // after the last change
  const RETRY_DELAY_MS = 10000; // after a failed save
  const SUGGEST_DELAY_MS = 150;

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

  const page = document.getElementById("compose");
  const form = document.getElementById("compose-form");
  if (!page || !form) return; // not editable: nothing to enhance
  const editor = document.getElementById("compose-editor");
  const htmlField = document.getElementById("id_html");
  const status = $("[data-save-status]", page);
  const csrf = $("input[name=csrfmiddlewaretoken]", form).value;
  const text = page.dataset;

  // The editor ------------------------------------------------------------------------------------

  document.execCommand("defaultParagraphSeparator", false, "p");

  function copyBody() {
    htmlField.value = editor.innerHTML;
  }

  /** The closest `tag` around the selection, inside the editor. */
  function around(tag) {
    const selection = window.getSelection();
    let node = selection && selection.rangeCount ? selection.anchorNode : null;
    while (node && node !== editor) {
      if (node.nodeType === Node.ELEMENT_NODE && node.tagName === tag) return node;
      node = node.parentNode;
    }
    return null;
  }

  function selectionInEditor() {
    const selection = window.getSelection();
    return Boolean(selection && selection.rangeCount && editor.contains(selection.anchorNode));
  }

  const toolbar = $(".editor-toolbar", page);
  toolbar.hidden = false;
  // The buttons must not take the selection away from the editor.
  toolbar.addEventListener("mousedown", (event) => {
    if (event.target.closest("button")) event.preventDefault();
  });
  toolbar.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-command]");
    if (button) format(button.dataset.command);
  });

  function format(command) {
    if (!selectionInEditor()) editor.focus();
    if (command === "createLink") {
      const selection = window.getSelection();
      const range = selection.rangeCount ? selection.getRangeAt(0).cloneRange() : null;
      const answer = window.prompt(text.textLinkPrompt, "https://");
      if (answer === null) return;
      const url = answer.trim();
      if (!/^(https?:\/\/\S+|mailto:\S+)$/i.test(url)) {
        setStatus(text.textBadLink, "error");
        return;
      }
      editor.focus();
      if (range) {
        selection.removeAllRanges();
        selection.addRange(range);
      }
      if (range && !range.collapsed) {
        document.execCommand("createLink", false, url);
      } else {
        // Nothing selected: the address is the link's text.
        const link = document.createElement("a");
        link.href = url;
        link.textContent = url;
        insertNodes([link]);
      }
    } else if (command === "quote") {
      const quote = around("BLOCKQUOTE");
      if (quote) unwrap(quote);
      else document.execCommand("formatBlock", false, "blockquote");
    } else {
      document.execCommand(command, false, null);
    }
    changed();
    updateToolbar();
  }

  function unwrap(element) {
    const parent = element.parentNode;
    while (element.firstChild) parent.insertBefore(element.firstChild, element);
    element.remove();
  }

  function updateToolbar() {
    if (!selectionInEditor()) return;
    for (const button of $$("button[aria-pressed]", toolbar)) {
      const command = button.dataset.command;
      let on = false;
      if (command === "quote") on = around("BLOCKQUOTE") !== null;
      else on = document.queryCommandState(command);
      button.setAttribute("aria-pressed", String(on));
    }
  }

  document.addEventListener("selectionchange", updateToolbar);

  // Pasted or dropped HTML: no script, no style, nothing from elsewhere (images included).
  const DROPPED =
    "script, style, link, meta, title, base, iframe, frame, object, embed, form, input, " +
    "button, select, textarea, svg, math, template, noscript, video, audio, source, picture";
  const INLINE_IMAGE = /^data:image\/(png|gif|jpeg|webp);base64,/i;
  // Style and event handler attributes are taken out of the text before parsing: the CSP reaches
  // DOMParser's documents and would refuse each one with a report in the console. The cleaning
  // proper happens on the parsed tree below; one missed here is refused, never applied or run.
  const REFUSED_ATTRIBUTE = /(<[^>]*?[\s/])(?:style|on[a-z]+)\s*=\s*("[^"]*"|'[^']*'|[^\s>]*)/gi;

  /** Cleaned nodes from HTML, ready to insert here. */
  function cleanNodes(source) {
    // A DOMParser document has no browsing context: nothing in it loads or runs.
    let text = source;
    for (let i = 0; i < 10; i += 1) {
      const next = text.replace(REFUSED_ATTRIBUTE, "$1"); // one per tag at each pass
      if (next === text) break;
      text = next;
    }
    const parsed = new DOMParser().parseFromString(text, "text/html");
    for (const element of $$(DROPPED, parsed)) element.remove();
    for (const image of $$("img", parsed)) {
      if (!INLINE_IMAGE.test((image.getAttribute("src") || "").trim())) image.remove();
    }
    for (const element of $$("*", parsed.body)) {
      for (const attribute of Array.from(element.attributes)) {
        const name = attribute.name.toLowerCase();
        const keep = name === "href" || name === "src" || name === "alt" || name === "title";
        if (!keep) element.removeAttribute(attribute.name);
      }
      if (element.hasAttribute("href") && !/^(https?:|mailto:)/i.test(element.getAttribute("href").trim())) {
        element.removeAttribute("href");
      }
    }
    return Array.from(parsed.body.childNodes, (node) => document.importNode(node, true));
  }

  /** Put nodes at the selection, in place of what is selected; the caret goes after them.
   * Not execCommand("insertHTML"): Chromium would add style attributes, which the CSP refuses. */
  function insertNodes(nodes) {
    const selection = window.getSelection();
    if (!selection.rangeCount || !editor.contains(selection.anchorNode)) {
      editor.focus();
      const end = document.createRange();
      end.selectNodeContents(editor);
      end.collapse(false);
      selection.removeAllRanges();
      selection.addRange(end);
    }
    const range = selection.getRangeAt(0);
    range.deleteContents();
    const fragment = document.createDocumentFragment();
    fragment.append(...nodes);
    const last = fragment.lastChild;
    range.insertNode(fragment);
    if (last) {
      range.setStartAfter(last);
      range.collapse(true);
      selection.removeAllRanges();
      selection.addRange(range);
    }
    changed();
  }

  editor.addEventListener("paste", (event) => {
    const data = event.clipboardData;
    const pasted = data ? data.getData("text/html") : "";
    if (!pasted) return; // plain text: the browser inserts it as text
    event.preventDefault();
    insertNodes(cleanNodes(pasted));
  });

  editor.addEventListener("drop", (event) => {
    const data = event.dataTransfer;
    if (!data || hasFiles(event)) return; // files are attachments (below)
    const dropped = data.getData("text/html");
    if (!dropped) return;
    event.preventDefault();
    const caret = document.caretRangeFromPoint && document.caretRangeFromPoint(event.clientX, event.clientY);
    if (caret) {
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(caret);
    }
    insertNodes(cleanNodes(dropped));
  });

  // Autosave --------------------------------------------------------------------------------------

  let saveTimer = 0;
  let dirty = false;
  let saving = false;
  let locked = false; // the server said it is no longer a draft
  let submitting = false; // Send was pressed: the page is going away with the form

  function setStatus(message, kind) {
    status.textContent = message;
    status.dataset.kind = kind || "";
  }

  function changed() {
    if (locked || submitting) return;
    dirty = true;
    clearTimeout(saveTimer);
    saveTimer = setTimeout(save, SAVE_DELAY_MS);
  }

  function formData() {
    copyBody();
    const data = new FormData(form);
    data.delete("action");
    return data;
  }

  async function save() {
    clearTimeout(saveTimer);
    if (!dirty || locked || submitting) return;
    if (saving) {
      saveTimer = setTimeout(save, SAVE_DELAY_MS);
      return;
    }
    saving = true;
    dirty = false;
    setStatus(text.textSaving, "saving");
    try {
      const response = await fetch(text.saveUrl, {
        method: "POST",
        body: formData(),
        headers: { "X-CSRFToken": csrf, Accept: "application/json" },
        credentials: "same-origin",
      });
      if (response.ok) {
        setStatus(text.textSaved, "saved");
      } else if (response.status === 409) {
        locked = true;
        setStatus(text.textNotDraft, "error");
      } else if (response.status === 400) {
        setStatus(text.textSaveRefused, "error"); // saved again at the next change
      } else {
        throw new Error(String(response.status));
      }
    } catch (error) {
      dirty = true;
      setStatus(text.textSaveFailed, "error");
      saveTimer = setTimeout(save, RETRY_DELAY_MS);
    } finally {
      saving = false;
    }
  }

  /** The page is going away (tab hidden, closed, reloaded): send what is not saved yet. */
  function flush() {
    if (!dirty || locked || submitting) return;
    dirty = false;
    clearTimeout(saveTimer);
    const data = formData();
    // sendBeacon carries the CSRF token in the form data; fetch keepalive is the fallback.
    const sent = navigator.sendBeacon && navigator.sendBeacon(text.saveUrl, data);
    if (!sent) {
      fetch(text.saveUrl, {
        method: "POST",
        body: data,
        headers: { "X-CSRFToken": csrf },
        credentials: "same-origin",
        keepalive: true,
      }).catch(() => {});
    }
  }

  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") flush();
  });
  window.addEventListener("pagehide", flush);

  form.addEventListener("submit", () => {
    copyBody();
    submitting = true; // the send request saves the draft itself
    clearTimeout(saveTimer);
  });

  // Enter in a field never submits (the form's disabled default button sees to it without
  // JavaScript too); in a recipient field it picks a suggestion (below).
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.tagName === "INPUT") event.preventDefault();
  });

  // Cc and Bcc: shown on demand ------------------------------------------------------------------

  for (const button of $$("[data-reveal]", page)) {
    const row = $(`[data-recipient-row="${button.dataset.reveal}"]`, page);
    if (!row) continue;
    button.hidden = !row.hidden;
    button.addEventListener("click", () => {
      row.hidden = false;
      button.hidden = true;
      $("input", row).focus();
    });
  }

  // Recipient suggestions: a combobox with a listbox (WAI-ARIA APG) ------------------------------

  /** Where the address being typed starts (after the last comma or semicolon outside quotes). */
  function tokenStart(value) {
    let start = 0;
    let quoted = false;
    for (let i = 0; i < value.length; i += 1) {
      const char = value[i];
      if (char === '"') quoted = !quoted;
      else if ((char === "," || char === ";") && !quoted) start = i + 1;
    }
    return start;
  }

  function combobox(input) {
    const list = document.getElementById(input.getAttribute("aria-controls"));
    let options = [];
    let active = -1;
    let timer = 0;
    let asked = 0;

    function close() {
      list.hidden = true;
      list.replaceChildren();
      options = [];
      active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    function caret() {
      return input.selectionStart === null ? input.value.length : input.selectionStart;
    }

    function typed() {
      const before = input.value.slice(0, caret());
      const start = tokenStart(before);
      return { start, query: before.slice(start).trim() };
    }

    async function lookUp() {
      const { query } = typed();
      if (!query) {
        close();
        return;
      }
      const ask = ++asked;
      try {
        const url = `${text.contactsUrl}?q=${encodeURIComponent(query.slice(0, 200))}`;
        const response = await fetch(url, {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
        if (!response.ok || ask !== asked) return;
        const data = await response.json();
        if (ask === asked && document.activeElement === input) show(data.contacts || []);
      } catch (error) {
        close();
      }
    }

    function show(contacts) {
      close();
      options = contacts.map((contact, index) => {
        const option = document.createElement("li");
        option.id = `${list.id}-${index}`;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.dataset.value = contact.value;
        if (contact.name) {
          const name = document.createElement("span");
          name.className = "suggestion-name";
          name.textContent = contact.name;
          option.append(name, " ");
        }
        const address = document.createElement("span");
        address.className = "suggestion-email";
        address.textContent = contact.email;
        option.append(address);
        // mousedown, not click: the input keeps the focus.
        option.addEventListener("mousedown", (event) => {
          event.preventDefault();
          pick(index);
        });
        list.append(option);
        return option;
      });
      if (!options.length) return;
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }

    function setActive(index) {
      active = index;
      options.forEach((option, i) => option.setAttribute("aria-selected", String(i === index)));
      if (index >= 0) {
        input.setAttribute("aria-activedescendant", options[index].id);
        options[index].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function pick(index) {
      const option = options[index];
      if (!option) return;
      const { start } = typed();
      const before = input.value.slice(0, start).replace(/\s+$/, "");
      const after = input.value.slice(caret()).replace(/^[^,;]*[,;]?\s*/, "");
      const head = before ? `${before} ` : "";
      const chosen = `${option.dataset.value}, `;
      input.value = head + chosen + after;
      const position = (head + chosen).length;
      input.setSelectionRange(position, position);
      close();
      changed();
    }

    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(lookUp, SUGGEST_DELAY_MS);
    });
    input.addEventListener("blur", () => {
      clearTimeout(timer);
      asked += 1; // an answer on its way is not shown any more
      close();
    });
    input.addEventListener("keydown", (event) => {
      const open = !list.hidden && options.length > 0;
      if (event.key === "ArrowDown") {
        event.preventDefault();
        if (open) setActive((active + 1) % options.length);
        else lookUp();
      } else if (event.key === "ArrowUp" && open) {
        event.preventDefault();
        setActive(active <= 0 ? options.length - 1 : active - 1);
      } else if (event.key === "Enter" && open && active >= 0) {
        event.preventDefault();
        pick(active);
      } else if (event.key === "Escape" && open) {
        event.preventDefault();
        event.stopPropagation();
        close();
      } else if (event.key === "Tab") {
        close();
      }
    });
  }

  for (const input of $$("input[data-recipients]", form)) combobox(input);

  // Attachments: one upload at a time, each with its progress bar -------------------------------

  const attachments = document.getElementById("attachments");
  const fileInput = $("[data-attach-input]", attachments);
  const uploads = $("[data-uploads]", attachments);
  const attachError = $("[data-attach-error]", attachments);
  const limit = Number(attachments.dataset.limit);
  let reserved = 0; // bytes accepted here but not uploaded yet
  let queue = Promise.resolve();

  $("[data-attach-submit]", attachments).hidden = true;

  function used() {
    const list = document.getElementById("attachment-list");
    return list ? Number(list.dataset.used || 0) : 0;
  }

  function showError(message) {
    attachError.textContent = message;
    attachError.hidden = false;
  }

  function attachAll(files) {
    attachError.hidden = true;
    for (const file of Array.from(files)) {
      if (used() + reserved + file.size > limit) {
        showError(attachments.dataset.textTooLarge);
        continue;
      }
      reserved += file.size;
      const item = document.createElement("li");
      item.className = "upload";
      const name = document.createElement("span");
      name.className = "upload-name";
      name.textContent = file.name;
      const bar = document.createElement("progress");
      bar.max = Math.max(file.size, 1);
      bar.value = 0;
      bar.setAttribute("aria-label", file.name);
      item.append(name, bar);
      uploads.append(item);
      queue = queue.then(() => upload(file, bar)).finally(() => {
        reserved -= file.size;
        item.remove();
      });
    }
  }

  function upload(file, bar) {
    return new Promise((resolve) => {
      const data = new FormData();
      data.append("csrfmiddlewaretoken", csrf);
      data.append("file", file, file.name);
      const request = new XMLHttpRequest();
      request.open("POST", attachments.dataset.attachUrl);
      request.setRequestHeader("X-CSRFToken", csrf);
      request.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) {
          bar.max = event.total;
          bar.value = event.loaded;
        }
      });
      request.addEventListener("load", () => {
        if (request.status === 200) replaceList(request.responseText);
        else showError(errorOf(request));
        resolve();
      });
      request.addEventListener("error", () => {
        showError(attachments.dataset.textFailed);
        resolve();
      });
      request.send(data);
    });
  }

  function errorOf(request) {
    try {
      return JSON.parse(request.responseText).error || attachments.dataset.textFailed;
    } catch (error) {
      return attachments.dataset.textFailed;
    }
  }

  function replaceList(html) {
    const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("attachment-list");
    const old = document.getElementById("attachment-list");
    if (!fresh || !old) return;
    const adopted = document.importNode(fresh, true);
    old.replaceWith(adopted);
    if (window.htmx) window.htmx.process(adopted);
  }

  fileInput.addEventListener("change", () => {
    const files = Array.from(fileInput.files || []);
    fileInput.value = "";
    attachAll(files);
  });

  // Files dropped anywhere on the page are attached.
  let dragDepth = 0;

  function hasFiles(event) {
    return Boolean(event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files"));
  }

  document.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    dragDepth += 1;
    page.classList.add("dropping");
  });
  document.addEventListener("dragleave", (event) => {
    if (!hasFiles(event)) return;
    dragDepth = Math.max(dragDepth - 1, 0);
    if (!dragDepth) page.classList.remove("dropping");
  });
  document.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    page.classList.remove("dropping");
    attachAll(event.dataTransfer.files);
  });
})();

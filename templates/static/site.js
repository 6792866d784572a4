// Language switch and copy buttons of every page.
//
// The build writes `const MESSAGES = {...}` (templates/messages.json) above
// this comment. The pages arrive with English text in elements marked
// `data-i18n="key"`, and this script swaps in the chosen language. The
// choice comes from localStorage when the user made one, else from the browser.
// The switch and the copy buttons are added here rather than in the HTML,
// since they only work with JavaScript and would add bytes to every page.
(function () {
  "use strict";

  const STORAGE_KEY = "registry-index.language";
  const DEFAULT_LANGUAGE = "en";
  const LANGUAGES = Object.keys(MESSAGES);
  const TRANSLATED_ATTRIBUTES = ["placeholder", "title"];
  const COPIED_MILLISECONDS = 2000;

  let current = DEFAULT_LANGUAGE;

  function storedLanguage() {
    try {
      return window.localStorage.getItem(STORAGE_KEY);
    } catch (error) {
      return null; // Storage is off (privacy settings, file:// pages): fall back to the browser.
    }
  }

  function storeLanguage(language) {
    try {
      window.localStorage.setItem(STORAGE_KEY, language);
    } catch (error) {
      // Storage is off: the choice lasts until the page is left.
    }
  }

  // Return the first supported language in the browser's preference list,
  // matching on the primary subtag, so zh-TW and zh-HK also get zh-CN.
  function browserLanguage() {
    const preferred = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || ""];
    for (const tag of preferred) {
      const primary = String(tag).toLowerCase().split("-")[0];
      const match = LANGUAGES.find((language) => language.toLowerCase().split("-")[0] === primary);
      if (match) {
        return match;
      }
    }
    return DEFAULT_LANGUAGE;
  }

  function chosenLanguage() {
    const stored = storedLanguage();
    return LANGUAGES.includes(stored) ? stored : browserLanguage();
  }

  // Return the text of `key` in the current language with `{name}`
  // placeholders filled from `values`. A numeric `values.count` picks the
  // plural form `key.one` or `key.other` where the messages have them.
  function format(key, values) {
    const table = MESSAGES[current];
    values = values || {};
    let text;
    if (typeof values.count === "number") {
      const form = new Intl.PluralRules(current).select(values.count);
      text = table[key + "." + form] || table[key + ".other"];
    }
    if (text === undefined) {
      text = table[key];
    }
    if (text === undefined) {
      text = MESSAGES[DEFAULT_LANGUAGE][key] || key;
    }
    return text.replace(/\{(\w+)\}/g, (placeholder, name) => (name in values ? String(values[name]) : placeholder));
  }

  function otherLanguage() {
    return LANGUAGES.find((language) => language !== current) || DEFAULT_LANGUAGE;
  }

  function applyLanguage(language) {
    current = language;
    document.documentElement.lang = language;
    for (const element of document.querySelectorAll("[data-i18n]")) {
      const values = element.dataset.i18nArgs ? JSON.parse(element.dataset.i18nArgs) : {};
      element.textContent = format(element.dataset.i18n, values);
    }
    for (const attribute of TRANSLATED_ATTRIBUTES) {
      for (const element of document.querySelectorAll("[data-i18n-" + attribute + "]")) {
        element.setAttribute(attribute, format(element.getAttribute("data-i18n-" + attribute)));
      }
    }
    const switcher = document.getElementById("language");
    if (switcher) {
      // The button names the other language in that language, so it is marked as such.
      switcher.textContent = format("language.switch");
      switcher.lang = otherLanguage();
    }
    document.dispatchEvent(new CustomEvent("registry-index:language", { detail: language }));
  }

  // Return a byte count in binary units with one decimal, rounded half up in
  // integers exactly as human_size in registry_index/pages.py does.
  function humanSize(size) {
    const bytes = BigInt(size);
    if (bytes < 1024n) {
      return bytes.toString() + " B";
    }
    let unit = 1024n;
    const suffixes = ["KiB", "MiB", "GiB", "TiB"];
    for (let i = 0; i < suffixes.length; i += 1) {
      const tenths = (bytes * 20n + unit) / (2n * unit);
      if (tenths < 10240n || i === suffixes.length - 1) {
        return (tenths / 10n).toString() + "." + (tenths % 10n).toString() + " " + suffixes[i];
      }
      unit *= 1024n;
    }
    return bytes.toString() + " B";
  }

  // Return the identity spelling that paths use: lowercase, `_` written as `-`.
  function identity(value) {
    return value.toLowerCase().replace(/_/g, "-");
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Pages served over plain http from another host are not a secure
    // context and have no clipboard API; a selected textarea still copies.
    return new Promise((resolve, reject) => {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      const copied = document.execCommand("copy");
      area.remove();
      if (copied) {
        resolve();
      } else {
        reject(new Error("copy command failed"));
      }
    });
  }

  function announce(text) {
    const status = document.getElementById("copy-status");
    if (status) {
      status.textContent = text;
    }
  }

  function onCopyClick(event) {
    const button = event.target.closest("button.copy");
    if (!button) {
      return;
    }
    const code = document.getElementById(button.getAttribute("aria-describedby"));
    const label = button.querySelector("[data-i18n]");
    copyText(code.textContent).then(
      () => {
        label.textContent = format("copy.done");
        announce(format("copy.done"));
        window.setTimeout(() => {
          label.textContent = format("copy.button");
        }, COPIED_MILLISECONDS);
      },
      () => announce(format("copy.failed")),
    );
  }

  function translatedSpan(key) {
    const span = document.createElement("span");
    span.dataset.i18n = key;
    return span;
  }

  // Add a copy button after every `code` element inside an element of class
  // `copyable`. The button names its code through aria-describedby, so the
  // code gets an id when it has none.
  function addCopyButtons() {
    let count = 0;
    for (const code of document.querySelectorAll(".copyable code")) {
      if (!code.id) {
        count += 1;
        code.id = "copy-" + count;
      }
      const button = document.createElement("button");
      button.type = "button";
      button.className = "copy";
      button.setAttribute("aria-describedby", code.id);
      button.appendChild(translatedSpan("copy.button"));
      code.after(" ", button);
    }
    const status = document.createElement("p");
    status.id = "copy-status";
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    document.body.appendChild(status);
  }

  // Add the language switch to the page header. Its text and title are set by applyLanguage.
  function addLanguageSwitch() {
    const bar = document.querySelector("header.bar");
    if (!bar) {
      return;
    }
    const switcher = document.createElement("button");
    switcher.type = "button";
    switcher.id = "language";
    switcher.className = "language";
    switcher.dataset.i18nTitle = "language.switch_label";
    switcher.addEventListener("click", () => {
      const language = otherLanguage();
      storeLanguage(language);
      applyLanguage(language);
    });
    bar.appendChild(switcher);
  }

  window.RegistryIndex = {
    format: format,
    humanSize: humanSize,
    identity: identity,
    language: () => current,
  };

  addLanguageSwitch();
  addCopyButtons();
  applyLanguage(chosenLanguage());
  document.addEventListener("click", onCopyClick);
})();

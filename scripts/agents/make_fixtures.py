# Turns requests recorded by record_proxy.py into the replay fixtures of
# crates/server/tests/fixtures/agents/ (dev-only; the fixtures are committed, CI only replays
# them). Every field and every block is kept as the agent sent it; only long texts (system
# prompts, tool descriptions, injected context) are cut to their first 160 characters, so that a
# fixture tests the protocol's shape on a small model in seconds rather than replaying a
# 10k-token prompt, and holds no vendor's prompt text. Ids and the model name are made stable.
#
# Usage: python3 make_fixtures.py LOG.jsonl INDEX NAME [INDEX NAME ...]
#   writes crates/server/tests/fixtures/agents/NAME.json for the INDEX-th (0-based) request
import json
import os
import sys

KEEP_CHARS = 160
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "server", "tests", "fixtures", "agents")
VOLATILE = {"user_id", "prompt_cache_key", "session_id", "thread_id", "x-codex-turn-metadata", "x-codex-window-id",
            "root_turn_id", "turn_id", "x-codex-installation-id", "x-claude-code-session-id"}


def trimmed(value, key=None):
    if isinstance(value, dict):
        return {k: trimmed(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [trimmed(v) for v in value]
    if isinstance(value, str):
        if key in VOLATILE:
            return "recorded"
        if len(value) > KEEP_CHARS:
            return value[:KEEP_CHARS] + " [cut]"
    return value


def main():
    entries = [json.loads(line) for line in open(sys.argv[1])]
    os.makedirs(OUT, exist_ok=True)
    pairs = sys.argv[2:]
    for index, name in zip(pairs[0::2], pairs[1::2]):
        entry = entries[int(index)]
        body = trimmed(entry["body"])
        body["model"] = "smollm"
        headers = {k: v for k, v in entry["headers"].items() if k.startswith(("anthropic-", "x-stainless-package", "user-agent", "openai-"))}
        fixture = {"method": entry["method"], "path": entry["path"], "headers": headers, "body": body}
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            json.dump(fixture, f, indent=1, ensure_ascii=False)
            f.write("\n")
        print(f"{name}: {entry['method']} {entry['path']}, {len(json.dumps(body))} bytes (recorded {len(json.dumps(entry['body']))})")


main()

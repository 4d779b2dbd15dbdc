"""The official `ollama` Python package against hearth's /api: list, show, chat and generate,
streamed and not. Usage: ollama_sdk.py BASE_URL MODEL; prints "ok" when every assertion holds."""

import json
import sys

import ollama

base_url, model = sys.argv[1], sys.argv[2]
client = ollama.Client(host=base_url)
greedy = {"temperature": 0, "num_predict": 24}

listed = client.list()
assert any(m.model == model for m in listed.models), listed

shown = client.show(model)
assert shown.template and "completion" in (shown.capabilities or []), shown

question = [{"role": "user", "content": "Count from 1 to 5."}]
answer = client.chat(model=model, messages=question, options=greedy)
assert answer.message.role == "assistant" and answer.message.content, answer
assert answer.done and answer.done_reason in ("stop", "length") and answer.eval_count > 0 and answer.prompt_eval_count > 0, answer

chunks = list(client.chat(model=model, messages=question, options=greedy, stream=True))
assert all(not c.done for c in chunks[:-1]) and chunks[-1].done, chunks[-1]
assert "".join(c.message.content for c in chunks) == answer.message.content
assert chunks[-1].eval_count == answer.eval_count

generated = client.generate(model=model, prompt="The capital of France is", options=greedy)
assert generated.response and generated.done, generated
pieces = list(client.generate(model=model, prompt="The capital of France is", options=greedy, stream=True))
assert "".join(p.response for p in pieces) == generated.response

schema = {"type": "object", "additionalProperties": False, "required": ["name", "age"],
          "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}}}
as_json = client.chat(model=model, messages=[{"role": "user", "content": "Describe a cat as JSON."}], format=schema,
                      options={"temperature": 0, "num_predict": 120})
cat = json.loads(as_json.message.content)
assert isinstance(cat["name"], str) and isinstance(cat["age"], int), cat
print("ok")

# Dev only: renders the Qwen3 and Qwen3-Coder chat templates (fetched by scripts/fetch-models.sh
# into the model folder's templates/) with the reference renderer, Jinja2 set up as Hugging Face
# transformers' apply_chat_template sets it up (sandboxed, trim_blocks, lstrip_blocks,
# loopcontrols, its tojson, raise_exception), over cases with tools, tool calls and results,
# thinking on and off; writes crates/tokenizer/tests/golden/qwen3_templates.json.
# Usage: python3 scripts/dev/render-template-goldens.py [MODELS_DIR]
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

models = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("HEARTH_MODELS", os.path.expanduser("~/.cache/hearth/models"))
root = os.path.join(os.path.dirname(__file__), "..", "..")


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception

weather = {"type": "function", "function": {"name": "get_weather", "description": "Get the weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"},
                                                           "days": {"type": "integer"}}, "required": ["city"]}}}
call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}
turns = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [call]},
    {"role": "tool", "content": "{\"temp\": 21, \"sky\": \"clear\"}"},
]
cases = [
    ("plain", [{"role": "user", "content": "Hello, who are you? ünïcode ✓"}], None, {}),
    ("system_and_history", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                            {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "2+2?"}], None, {}),
    ("thinking_off", [{"role": "user", "content": "2+2?"}], None, {"enable_thinking": False}),
    ("thinking_on", [{"role": "user", "content": "2+2?"}], None, {"enable_thinking": True}),
    ("earlier_reasoning_dropped", [{"role": "user", "content": "Hi"},
                                   {"role": "assistant", "content": "<think>\nGreet back.\n</think>\n\nHello!"},
                                   {"role": "user", "content": "Bye"}], None, {}),
    ("tools", [turns[0], turns[1]], [weather], {}),
    ("tool_call_and_result", turns, [weather], {}),
    ("tool_call_and_result_thinking_off", turns, [weather], {"enable_thinking": False}),
]
templates = [("qwen3", "Qwen-Qwen3-0.6B.jinja"), ("qwen3-coder", "Qwen3-Coder.jinja")]
out = []
for name, file in templates:
    source = open(os.path.join(models, "templates", file), encoding="utf-8").read()
    template = env.from_string(source)
    for case, messages, tools, kwargs in cases:
        # transformers passes `tools` always, None when there are none
        context = dict(messages=messages, tools=tools, add_generation_prompt=True, bos_token="", eos_token="<|im_end|>", **kwargs)
        out.append({"template": file, "model": name, "case": case, "messages": messages, "tools": tools,
                    "kwargs": kwargs, "expected": template.render(**context)})
path = os.path.join(root, "crates", "tokenizer", "tests", "golden", "qwen3_templates.json")
with open(path, "w", encoding="utf-8") as f:
    json.dump(out, f, indent=1, ensure_ascii=False)
    f.write("\n")
print(f"{len(out)} cases -> {path}")
